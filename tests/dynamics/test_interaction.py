"""The interaction predictor: permutation equivariance, its scales, the horizon curriculum, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.interaction import LatentInteraction
from latentdyn.dynamics.model import make_predictor, predict
from latentdyn.dynamics.train import horizon_at, load_dynamics, train_dynamics
from latentdyn.latents.file import write_sequences


def _cfg(**kw):
    return TrainDynamicsConfig(**{"cell": "interaction", "hidden": 16, **kw})


def _randomised(model):
    """Non-zero output heads (they start at zero: 'nothing moves', trivially equivariant)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model


def _permute(x, perm, n, f):
    """Flat object-major latents (B, T, n*f) with their objects reordered by perm."""
    return x.view(*x.shape[:-1], n, f)[..., perm, :].reshape(x.shape)


def test_permuting_the_objects_permutes_the_predictions():
    n, f = 3, 4
    model = _randomised(make_predictor(_cfg(), (n, f))).eval()
    assert isinstance(model, LatentInteraction)
    g = torch.Generator().manual_seed(0)
    mu, lv = torch.randn(5, 7, n * f, generator=g), torch.randn(5, 7, n * f, generator=g)
    perm = torch.tensor([2, 0, 1])
    with torch.no_grad():
        a = model(mu, lv)[:3]
        b = model(_permute(mu, perm, n, f), _permute(lv, perm, n, f))[:3]
        ra = model.rollout(mu[:, :4], lv[:, :4], 6)["mu"]
        rb = model.rollout(_permute(mu[:, :4], perm, n, f), _permute(lv[:, :4], perm, n, f), 6)["mu"]
    for x, y in zip(a, b):
        torch.testing.assert_close(_permute(x, perm, n, f), y, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(x, _permute(x, torch.tensor([1, 0, 2]), n, f))  # objects do differ: the test can fail
    torch.testing.assert_close(_permute(ra, perm, n, f), rb, atol=1e-5, rtol=1e-5)


def test_objects_share_their_scales():
    model = make_predictor(_cfg(), (2, 3))
    mu = torch.cat([torch.randn(8, 10, 3), 5 + 3 * torch.randn(8, 10, 3)], -1)  # (8, 10, 6): two objects, unlike
    model.fit_scales(mu)
    objs = mu.view(-1, 2, 3).reshape(-1, 3)
    torch.testing.assert_close(model.mu_mean.view(2, 3), objs.mean(0).expand(2, 3))
    torch.testing.assert_close(model.mu_std.view(2, 3), objs.std(0).expand(2, 3))


@pytest.mark.parametrize("shape", [(12,), (3, 2, 2)])
def test_flat_or_spatial_latents_are_refused(shape):
    with pytest.raises(LatentdynError, match="object-factored latents"):
        make_predictor(_cfg(), shape)


def test_horizon_curriculum():
    cfg = _cfg(horizon=20, horizon_curriculum=10)
    assert [horizon_at(cfg, e) for e in (1, 2, 6, 11, 12, 50)] == [1, 2, 10, 20, 20, 20]
    assert horizon_at(_cfg(horizon=20), 1) == 20  # off: the full horizon from the first epoch
    assert all(1 <= horizon_at(_cfg(horizon=7, horizon_curriculum=3), e) <= 7 for e in range(1, 10))


def _states_file(path, states):
    """A state-latents file (latentdyn.latents.states' layout) of states (N, T, n, 4)."""
    N, T, n, _ = states.shape
    attrs = {"latents": "states", "latent_shape": f"[{n}, 4]", "vae_sha256": "", "vae_run": ""}
    with write_sequences(path, attrs, N, T, n * 4, splits={"train": np.arange(N)}) as f:
        f["mu"][...] = states.reshape(N, T, n * 4)
        f["logvar"][...] = 0.0
    return path


def test_learns_objects_moving_at_constant_velocity(tmp_path):
    rng = np.random.default_rng(0)
    N, T, n = 64, 14, 2
    x0, v = rng.uniform(5, 25, (N, 1, n, 2)), rng.uniform(-0.5, 0.5, (N, 1, n, 2))
    pos = x0 + v * np.arange(T)[None, :, None, None]  # (N, T, n, 2)
    states = np.concatenate([pos, np.broadcast_to(v, pos.shape)], -1).astype(np.float32)
    p = _states_file(tmp_path / "states.h5", states)
    cfg = _cfg(latents=str(p), epochs=40, batch_size=32, lr=5e-3, context=4, horizon=8, windows=4, device="cpu",
               horizon_curriculum=5, latent_noise=0.01)
    train_dynamics(cfg, tmp_path / "run", progress=False, verbose=False)
    model, saved, ck = load_dynamics(tmp_path / "run", "best")
    assert saved.cell == "interaction" and ck["data"]["latents_kind"] == "states"
    pred = predict(model, states[:, :4].reshape(N, 4, -1), 10, context_logvar=np.zeros((N, 4, n * 4)))  # (N, 10, 8)
    err = np.abs(pred.reshape(N, 10, n, 4)[..., :2] - pos[:, 4:14]).mean()
    moved = np.abs(pos[:, 4:14] - pos[:, 3:4]).mean()
    assert err < 0.1 * moved, (err, moved)
