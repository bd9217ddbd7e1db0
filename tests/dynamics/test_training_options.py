"""The predictor's training options: the decoded-frame loss, input noise and posterior-sampled inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics import train as DT
from latentdyn.dynamics.config import TrainDynamicsConfig

from tests.dynamics.test_dynamics import write_latents
from tests.helpers import make_gru, make_vae


def _seeded_gru(**kw):
    """A GRU with fixed, nonzero weights (the same on every machine)."""
    model = make_gru(3, hidden=8, **kw)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))) * 0.1)
    return model


def _windows():
    mu = np.cumsum(np.random.default_rng(1).normal(0, 0.1, (24, 20, 3)), 1)
    w = torch.as_tensor(mu[:4, :10], dtype=torch.float32)  # (4, 10, 3): K = 4, H = 6
    return w, torch.full_like(w, -4.0)


def _frozen_vae():
    return make_vae("mlp", latent_dim=3, height=30, width_px=30).eval().requires_grad_(False)


def test_default_loss_is_the_one_before_the_options():
    # numbers of window_loss(model, w, lv, 4, 6, 1.0) before vae/frame_loss_weight/latent_noise existed
    before = {"loss": [0.6071772575378418, 0.5949980020523071, 0.7537754774093628, 0.7510263323783875],
              "one_step_se": [0.04412459209561348, 0.04505973681807518, 0.04872114956378937, 0.07241880148649216],
              "open_loop_se": [0.5335560441017151, 0.5203395485877991, 0.6754550933837891, 0.6489987373352051]}
    w, lv = _windows()
    terms = DT.window_loss(_seeded_gru(), w, lv, 4, 6, 1.0)
    assert set(terms) == set(DT.TERMS)  # no frame term unless asked for
    for k, v in before.items():
        np.testing.assert_allclose(terms[k].detach().numpy(), v, rtol=1e-5)


def test_frame_loss_oracle_perturbed_and_gradients():
    vae = _frozen_vae()
    still = torch.randn(2, 1, 3).repeat(1, 10, 1)  # (2, 10, 3): nothing moves
    lv = torch.full_like(still, -4.0)
    model = make_gru(3, hidden=8)  # zero-initialised head: predicts "nothing moves", exactly right here
    t = DT.window_loss(model, still, lv, 4, 6, 1.0, vae=vae, frame_weight=2.0)
    assert torch.equal(t["open_loop_frame_se"], torch.zeros(2)) and torch.equal(t["open_loop_se"], torch.zeros(2))
    w, lv = _windows()
    model = _seeded_gru()
    t = DT.window_loss(model, w, lv, 4, 6, 1.0, vae=vae, frame_weight=2.0)
    plain = DT.window_loss(model, w, lv, 4, 6, 1.0)
    z = model.rollout(w[:, :4], lv[:, :4], 6)["mu"]  # (4, 6, 3)
    by_hand = ((vae.decode(z.reshape(-1, 3)) - vae.decode(w[:, 4:].reshape(-1, 3))) ** 2).sum((1, 2, 3)).view(4, 6).mean(1)
    assert (t["open_loop_frame_se"] > 0).all()
    torch.testing.assert_close(t["open_loop_frame_se"], by_hand)
    torch.testing.assert_close(t["loss"], plain["loss"] + 2.0 * by_hand)
    # gradients reach the GRU through the decoder, never the VAE
    DT.frame_error(vae, model.rollout(w[:, :4], lv[:, :4], 6)["mu"], w[:, 4:]).sum().backward()
    assert model.gru.weight_ih_l0.grad.abs().sum() > 0 and model.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in vae.parameters())


def test_noise_is_seeded_and_scaled():
    mu, lv = torch.zeros(64, 30, 3), torch.full((64, 30, 3), 2 * np.log(0.5))  # posterior std 0.5
    scale = torch.tensor([1.0, 2.0, 4.0])

    def draw(seed, noise=1.0, sample=False):
        return DT.perturb_inputs(mu, lv, scale, noise, sample, torch.Generator().manual_seed(seed))

    assert torch.equal(draw(3), draw(3)) and not torch.equal(draw(3), draw(4))
    np.testing.assert_allclose(draw(0, 0.5).std((0, 1)).numpy(), [0.5, 1.0, 2.0], rtol=0.05)  # latent_noise * spread
    np.testing.assert_allclose(draw(0, 0.0, True).std((0, 1)).numpy(), [0.5] * 3, rtol=0.05)  # exp(logvar / 2)
    assert DT.perturb_inputs(mu, lv, scale, 0.0, False, None) is mu


def test_training_with_noise_is_reproducible(tmp_path):
    mu = np.cumsum(np.random.default_rng(1).normal(0, 0.1, (16, 14, 2)), 1)
    p = write_latents(tmp_path / "lat.h5", mu)

    def weights(name, **kw):
        cfg = TrainDynamicsConfig(latents=str(p), hidden=8, epochs=2, batch_size=16, context=3, horizon=4, windows=2,
                                  device="cpu", **kw)
        DT.train_dynamics(cfg, tmp_path / name, progress=False, verbose=False)
        return torch.load(tmp_path / name / "last.pt", weights_only=True)["model"]

    a, b, clean = weights("a", latent_noise=0.3, sample_inputs=True), weights("b", latent_noise=0.3, sample_inputs=True), weights("c")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], clean[k]) for k in a)


def test_frame_loss_without_a_vae_is_one_line(tmp_path):
    p = write_latents(tmp_path / "lat.h5", np.zeros((4, 12, 2)))
    cfg = TrainDynamicsConfig(latents=str(p), frame_loss_weight=1.0, device="cpu")
    with pytest.raises(LatentdynError, match=r"--frame-loss-weight 1 needs --vae RUN") as e:
        DT.train_dynamics(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()


def test_three_balls_dynamics_can_read_the_vae_stage():
    from latentdyn.pipeline import plan as P

    sets = ["dynamics.frame_loss_weight=1", "dynamics.vae=vae"]
    exp = P.load_experiment("three_balls", sets, "quick")
    dyn = exp.stage("dynamics")
    assert dyn.refs == {"latents": ["encode"], "vae": ["vae"]} and dyn.settings.frame_loss_weight == 1.0
    P.compute_keys(exp)
    other = P.load_experiment("three_balls", sets + ["vae.beta=2"], "quick")
    P.compute_keys(other)
    assert other.stage("dynamics").key != dyn.key  # the VAE's key is part of the predictor's
    assert json.dumps(exp.resolved["stages"]["dynamics"]["vae"]) == '"vae"'
    with pytest.raises(LatentdynError, match="is a encode stage|must be train-vae"):
        P.load_experiment("three_balls", ["dynamics.vae=encode"], "quick")


def test_init_names_a_train_dynamics_stage():
    from latentdyn.pipeline import plan as P

    exp = P.load_experiment("three_balls", ["oracle.init=dynamics"], "quick")
    assert exp.stage("oracle").refs["init"] == ["dynamics"]
    P.compute_keys(exp)
    other = P.load_experiment("three_balls", ["oracle.init=dynamics", "dynamics.hidden=64"], "quick")
    P.compute_keys(other)
    assert other.stage("oracle").key != exp.stage("oracle").key  # the init run's key is part of the fine-tune's
    with pytest.raises(LatentdynError, match="must be train-dynamics|is a encode stage"):
        P.load_experiment("three_balls", ["oracle.init=encode"], "quick")
