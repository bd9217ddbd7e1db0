"""The beta-VAE: shapes, the objective against its analytic parts, IWAE, training, resume, safety."""

from __future__ import annotations

import math

import pytest
import torch
from click.testing import CliRunner

from latentdyn.engine import checkpoint
from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.vae.model import BetaVAE
from latentdyn.vae.train import load_vae, train_vae

from tests.helpers import fails_cleanly as _fails_cleanly
from tests.helpers import make_vae, vae_config, killed_in_epoch


@pytest.mark.parametrize("arch", ["tutorial", "mlp", "resnet"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 30, 30), (3, 32, 32), (1, 64, 64), (3, 17, 23)])
def test_shapes(arch, shape):
    C, H, W = shape
    m = make_vae(arch=arch, latent_dim=3, channels=C, height=H, width_px=W,
                          likelihood="gaussian" if C == 3 else "bernoulli")
    x = torch.rand(5, C, H, W)
    mu, logvar = m.encode(x)
    assert mu.shape == (5, 3) and logvar.shape == (5, 3)
    assert m.decode(mu).shape == (5, C, H, W)
    out = m(x)
    assert all(v.shape == (5,) for v in out.values())


def test_tutorial_architecture_is_the_tf_tutorials():
    m = make_vae(arch="tutorial", latent_dim=2)
    convs = [mod for mod in m.encoder.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [(32, (3, 3), (2, 2), (0, 0)), (64, (3, 3), (2, 2), (0, 0))]
    assert m.encoder[-1].in_features == 6 * 6 * 64 and m.encoder[-1].out_features == 4
    deconvs = [mod for mod in m.decoder.modules() if isinstance(mod, torch.nn.ConvTranspose2d)]
    assert [(d.out_channels, d.stride) for d in deconvs] == [(64, (2, 2)), (32, (2, 2)), (1, (1, 1))]
    assert m.decoder[0].out_features == 7 * 7 * 32


def test_elbo_equals_its_analytic_parts():
    torch.manual_seed(0)
    m = make_vae(arch="mlp", latent_dim=3, beta=4.0, height=5, width_px=5)
    x = torch.rand(7, 1, 5, 5).round()
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    out = m(x, generator=g1)
    mu, logvar = m.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g2)
    p = torch.sigmoid(m.decode_logits(z))
    rec = (x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)  # Bernoulli log-likelihood, by hand
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
    torch.testing.assert_close(out["rec"], rec, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["elbo"], rec - kl, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out["loss"], -(rec - 4.0 * kl), rtol=1e-5, atol=1e-4)
    # the closed-form KL agrees with a Monte-Carlo estimate of E_q[log q(z) - log p(z)]
    std = (0.5 * logvar).exp()
    zs = mu + std * torch.randn((200000, *mu.shape), generator=torch.Generator().manual_seed(3))
    log_q = torch.distributions.Normal(mu, std).log_prob(zs).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(zs).sum(-1)
    torch.testing.assert_close((log_q - log_p).mean(0), kl.detach(), rtol=0.02, atol=0.02)


def test_gaussian_likelihood_analytic():
    m = make_vae(arch="mlp", latent_dim=2, height=4, width_px=4, channels=3, likelihood="gaussian", sigma=0.5)
    x = torch.rand(3, 3, 4, 4)
    logits = torch.zeros(3, 3, 4, 4)  # mean 0.5 everywhere
    want = torch.distributions.Normal(0.5, 0.5).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(m.log_px_z(x, logits), want)
    assert not m.log_sigma.requires_grad
    assert make_vae(arch="mlp", channels=3, likelihood="gaussian").log_sigma.requires_grad


def test_importance_weighted_bound_is_above_elbo_and_tightens():
    torch.manual_seed(0)
    m = make_vae(arch="mlp", latent_dim=2, height=6, width_px=6)
    x = torch.rand(64, 1, 6, 6).round()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(300):  # a trained posterior: the bounds then differ by more than the sampling noise
        opt.zero_grad()
        m(x)["loss"].mean().backward()
        opt.step()
    g = torch.Generator().manual_seed(0)
    elbo = torch.stack([m(x, generator=g)["elbo"] for _ in range(200)]).mean(0)  # E_q ELBO per example
    iw = {k: m.log_px_iw(x, k, generator=g).mean().item() for k in (1, 10, 100, 1000)}
    assert abs(iw[1] - elbo.mean().item()) < 0.5  # K = 1 is the ELBO
    assert iw[1] < iw[10] < iw[100] < iw[1000]  # tightens with K
    assert iw[1000] > elbo.mean().item()


def _cfg(source, **kw):
    return vae_config(source, **kw)


def test_one_epoch_on_real_fashion_mnist_lowers_the_loss(tmp_path):
    from tests.helpers import need_fashion_mnist as _need_fashion_mnist

    _need_fashion_mnist()
    cfg = _cfg("fashion-mnist", epochs=1, limit=3000)
    cfg.val_split = ""  # no validation pass: quick
    row = train_vae(cfg, tmp_path / "run", progress=False)
    model, cfg2, _ = load_vae(tmp_path / "run", "last")
    from latentdyn.datasets import load

    x = torch.from_numpy(load("fashion-mnist", "test").images[:1000]).permute(0, 3, 1, 2).float().div(255).gt(0.5).float()
    torch.manual_seed(0)
    fresh = BetaVAE(cfg2, model.shape)
    with torch.no_grad():
        before = -fresh(x)["elbo"].mean().item()
        after = -model(x)["elbo"].mean().item()
    assert after < before - 100  # 543 -> about 280 nats for an untrained -> one-epoch mlp
    assert row["train_loss"] < 400


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    from latentdyn.scenes import generate as scenes

    cfg = scenes.load_scene("light_ball", ["scene.length=8"])
    p = tmp_path_factory.mktemp("vae") / "ball.h5"
    scenes.generate(cfg, p, 40, seed=0, splits={"train": 0.75, "val": 0.25}, progress=False)
    return p


def test_resume_after_kill_matches_uninterrupted(tiny_scene, tmp_path, monkeypatch):
    full = tmp_path / "full"
    train_vae(_cfg(tiny_scene, epochs=3), full, progress=False)
    part = tmp_path / "part"
    with killed_in_epoch(2):  # killed after epoch 1 was saved
        train_vae(_cfg(tiny_scene, epochs=3), part, progress=False)
    assert checkpoint.load_checkpoint(part / "last.pt")["epoch"] == 1
    train_vae(_cfg(tiny_scene, epochs=3), part, resume=True, progress=False)
    a, b = torch.load(full / "last.pt", weights_only=True), torch.load(part / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    rows = [r["epoch"] for r in checkpoint.MetricsLog(part / "metrics.jsonl").read()]
    assert rows == [1, 2, 3]
    full_rows = checkpoint.MetricsLog(full / "metrics.jsonl").read()
    part_rows = checkpoint.MetricsLog(part / "metrics.jsonl").read()
    assert [r["train_loss"] for r in full_rows] == [r["train_loss"] for r in part_rows]


def test_lr_warmup_rises_linearly_over_steps_and_resumes(tiny_scene, tmp_path):
    """lr_warmup N: step k runs at lr * min(1, k / N); a resumed run counts the steps it already took."""
    kw = dict(epochs=3, lr_warmup=100, lr=2e-3)
    train_vae(_cfg(tiny_scene, **kw), tmp_path / "full", progress=False)
    n_batches = -(-30 * 8 // 64)  # 30 train sequences of 8 frames, batch 64
    ck = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    assert ck["optimizer"]["param_groups"][0]["lr"] == pytest.approx(2e-3 * 3 * n_batches / 100)
    with killed_in_epoch(2):
        train_vae(_cfg(tiny_scene, **kw), tmp_path / "part", progress=False)
    train_vae(_cfg(tiny_scene, **kw), tmp_path / "part", resume=True, progress=False)
    again = torch.load(tmp_path / "part" / "last.pt", weights_only=True)
    assert all(torch.equal(ck["model"][k], again["model"][k]) for k in ck["model"])
    short = tmp_path / "short"
    train_vae(_cfg(tiny_scene, epochs=1, lr_warmup=2, lr=2e-3), short, progress=False)  # warm after 2 steps
    assert torch.load(short / "last.pt", weights_only=True)["optimizer"]["param_groups"][0]["lr"] == 2e-3
    with pytest.raises(LatentdynError, match="lr_warmup 10 works with lr_schedule constant, not cosine"):
        train_vae(_cfg(tiny_scene, lr_warmup=10, lr_schedule="cosine"), tmp_path / "bad", progress=False)
    assert not (tmp_path / "bad").exists()


def test_resume_refuses_other_config_and_new_run_refuses_existing(tiny_scene, tmp_path):
    train_vae(_cfg(tiny_scene, epochs=1), tmp_path / "r", progress=False)
    with pytest.raises(LatentdynError, match="config differs .*lr"):
        train_vae(_cfg(tiny_scene, epochs=2, lr=0.01), tmp_path / "r", resume=True, progress=False)
    with pytest.raises(LatentdynError, match="already holds a vae run; pass --resume"):
        train_vae(_cfg(tiny_scene, epochs=1), tmp_path / "r", progress=False)
    with pytest.raises(LatentdynError, match="no last.pt"):
        train_vae(_cfg(tiny_scene, epochs=1), tmp_path / "new", resume=True, progress=False)


def test_nan_stops_training_and_keeps_last_good_checkpoint(tiny_scene, tmp_path, monkeypatch):
    real_forward = BetaVAE.forward

    def forward(self, x, beta=None, generator=None):
        out = real_forward(self, x, beta, generator)
        if self.training and getattr(self, "_epoch2", False):
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(BetaVAE, "forward", forward)
    from latentdyn.vae.flow import FlowRecorder

    real_snapshot = FlowRecorder.snapshot

    def snapshot(self, model, epoch, score, tracker=None):
        model._epoch2 = epoch >= 1
        return real_snapshot(self, model, epoch, score, tracker)

    monkeypatch.setattr(FlowRecorder, "snapshot", snapshot)
    with pytest.raises(LatentdynError, match="became nan in epoch 2.*last good epoch"):
        train_vae(_cfg(tiny_scene, epochs=3), tmp_path / "r", progress=False)
    assert checkpoint.load_checkpoint(tmp_path / "r" / "last.pt")["epoch"] == 1


def test_malicious_checkpoint_is_refused_and_does_not_run(tmp_path):
    import os

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    run = tmp_path / "run"
    run.mkdir()
    torch.save({"format": "latentdyn-checkpoint", "format_version": 1, "kind": "vae", "x": Payload()}, run / "best.pt")
    with pytest.raises(LatentdynError, match="refused"):
        load_vae(run)
    assert not marker.exists()
    r = CliRunner().invoke(cli, ["evaluate", str(run)])
    _fails_cleanly(r, "refused")
    assert not marker.exists()
    (run / "best.pt").write_bytes(b"PK\x03\x04 truncated zip")
    _fails_cleanly(CliRunner().invoke(cli, ["evaluate", str(run)]), "not a readable checkpoint")


def test_cli_train_evaluate_and_animation(tiny_scene, tmp_path):
    from latentdyn.viz.video import count_frames

    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(tiny_scene), "--out", str(out), "--arch", "tutorial",
                                 "--epochs", "3", "--batch-size", "32", "--device", "cpu", "--latent-dim", "3"])
    assert r.exit_code == 0, r.output
    assert count_frames(out / "flow.gif") == 3 and count_frames(out / "flow.mp4") == 3
    assert len(list((out / "flow").glob("epoch_*.png"))) == 3
    assert (out / "config.toml").read_text().count('arch = "tutorial"') == 1
    r = CliRunner().invoke(cli, ["evaluate", str(out), "--split", "val", "--iw-samples", "8"])
    assert r.exit_code == 0, r.output
    import json

    res = json.loads((out / "eval_val.json").read_text())
    # --likelihood auto on 8-bit frames is the discretised logistic: the ELBO is a log-probability of the frames
    assert res["protocol"] == {"likelihood": "discretized-logistic", "data": "8bit", "is_log_probability": True}
    assert res["n"] == 10 * 8 and len(res["kl_per_dim"]) == 3 and res["log_px_iw"] >= res["elbo"] - 1.0
    assert res["elbo_bits_per_dim"] == pytest.approx(-res["elbo"] / (28 * 28 * math.log(2)))
    assert 0 <= res["active_units"] <= 3 and math.isclose(sum(res["kl_per_dim"]), res["kl"], rel_tol=1e-4)
    # Bernoulli cross-entropy on grey intensities is reported as a training loss only, never as an ELBO
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(tiny_scene), "--out", str(tmp_path / "b"), "--arch", "mlp",
                                 "--epochs", "1", "--likelihood", "bernoulli", "--device", "cpu"])
    assert r.exit_code == 0 and "not a likelihood" in r.output and "ELBO" not in r.output, r.output
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "b"), "--split", "val", "--iw-samples", "8"])
    res = json.loads((tmp_path / "b" / "eval_val.json").read_text())
    assert res["protocol"]["is_log_probability"] is False and "elbo" not in res and "log_px_iw" not in res
    assert res["bernoulli_ce"] > 0


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--epochs", "0"], ["--epochs 0"]),
        (["--lr", "-1"], ["--lr -1"]),
        (["--latent-dim", "0"], ["--latent-dim 0"]),
        (["--device", "cuda"], ["no CUDA GPU"]),
        (["--arch", "tutorial", "--data", "TINY4"], ["too small for --arch tutorial"]),
        (["--binarize", "static", "--likelihood", "gaussian"], ["Bernoulli"]),
        (["--data", "nope"], ["unknown dataset 'nope'"]),
    ],
)
def test_train_bad_input(tiny_scene, tmp_path, args, needles):
    from latentdyn.scenes import generate as scenes

    if "TINY4" in args:
        p = tmp_path / "tiny4.h5"
        scenes.generate(scenes.load_scene("light_ball", ["render.width=4", "render.height=4", "box.width=4", "box.height=4",
                                                         "physics.radius=1.0", "physics.speed=0.3", "scene.length=3"]),
                        p, 4, progress=False)
        args = [str(p) if a == "TINY4" else a for a in args]
    base = ["train", "vae", "--data", str(tiny_scene), "--out", str(tmp_path / "run"), "--epochs", "1"]
    r = CliRunner().invoke(cli, base + args)
    _fails_cleanly(r, *needles)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_run_folder_of_another_model_is_refused(tiny_scene, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    checkpoint.save_checkpoint(run / "last.pt", {"kind": "dynamics", "config": {}})
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(tiny_scene), "--out", str(run), "--resume"])
    _fails_cleanly(r, "'dynamics' checkpoint, not a 'vae' one")
    r = CliRunner().invoke(cli, ["train", "vae", "--data", str(tiny_scene), "--out", str(run)])
    _fails_cleanly(r, "already holds a dynamics run")
    with pytest.raises(LatentdynError, match="'dynamics' checkpoint"):
        load_vae(run, "last")
