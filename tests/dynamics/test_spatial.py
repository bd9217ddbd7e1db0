"""The spatial latent (TrainVAEConfig.latent_channels) and the convolutional GRU predictor
(TrainDynamicsConfig.cell = "convgru"): shapes, refusals, the ConvGRU's weight sharing over
positions, learning a moving blob, and the pipeline end to end through the CLI."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.model import LatentConvGRU, LatentGRU, load_dynamics, make_predictor
from latentdyn.dynamics.train import train_dynamics
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.latents.file import open_latents
from latentdyn.vae.model import BetaVAE

from tests.helpers import fails_cleanly


@pytest.mark.parametrize("size, grid, stride", [(64, 8, 8), (28, 4, 8), (30, 4, 8), (64, 16, 4), (30, 8, 4), (29, 8, 4)])
def test_spatial_vae_shapes(size, grid, stride):
    c = 3
    cfg = TrainVAEConfig(latent_dim=c * grid * grid, latent_channels=c, width=4, likelihood="gaussian", latent_stride=stride)
    torch.manual_seed(0)
    m = BetaVAE(cfg, (1, size, size))
    assert m.latent_shape == (c, grid, grid)
    x = torch.rand(2, 1, size, size)
    mu, lv = m.encode(x)  # (2, d) each
    assert mu.shape == lv.shape == (2, c * grid * grid)
    assert m.decode(mu).shape == (2, 1, size, size)
    out = m(x)
    assert out["elbo"].shape == (2,) and torch.isfinite(out["elbo"]).all()
    # a flat model is untouched
    assert BetaVAE(TrainVAEConfig(latent_dim=5, width=4, likelihood="gaussian"), (1, size, size)).latent_shape == (5,)


@pytest.mark.parametrize("stride", [8, 4])
def test_spatial_latent_is_where_the_image_is(stride):
    """A latent map cell reads mostly its own part of the image: changing the image's bottom-right
    corner moves the bottom-right cells' means far more than the top-left ones (which move a little
    only through the group normalisation's statistics)."""
    torch.manual_seed(0)
    g = 64 // stride
    m = BetaVAE(TrainVAEConfig(latent_dim=2 * g * g, latent_channels=2, width=4, likelihood="gaussian", latent_stride=stride),
                (1, 64, 64)).eval()
    x = torch.rand(1, 1, 64, 64)
    y = x.clone()
    y[..., 48:, 48:] = 1.0 - y[..., 48:, 48:]
    with torch.no_grad():
        diff = (m.encode(x)[0] - m.encode(y)[0]).abs().view(2, g, g)  # the mu maps
    q = g // 4
    assert diff[:, -q:, -q:].mean() > 3 * diff[:, :q, :q].mean()


def test_spatial_latent_refusals():
    with pytest.raises(LatentdynError, match=r"latent_stride 6: use 8 \(a map at 1/8 of the input's size\) or 4"):
        BetaVAE(TrainVAEConfig(latent_dim=2 * 11 * 11, latent_channels=2, latent_stride=6, likelihood="gaussian"), (1, 64, 64))
    with pytest.raises(LatentdynError, match=r"a 2 x 16 x 16 map has 512 dimensions; set latent_dim = 512"):
        BetaVAE(TrainVAEConfig(latent_dim=128, latent_channels=2, latent_stride=4, likelihood="gaussian"), (1, 64, 64))
    with pytest.raises(LatentdynError, match=r"a 8 x 8 x 8 map has 512 dimensions; set latent_dim = 512"):
        BetaVAE(TrainVAEConfig(latent_dim=64, latent_channels=8, likelihood="gaussian"), (1, 64, 64))
    with pytest.raises(LatentdynError, match="needs --arch resnet, not mlp"):
        BetaVAE(TrainVAEConfig(arch="mlp", latent_dim=32, latent_channels=2, likelihood="gaussian"), (1, 28, 28))
    with pytest.raises(LatentdynError, match="set posterior = gaussian"):
        BetaVAE(TrainVAEConfig(latent_dim=32, latent_channels=2, posterior="iaf", likelihood="gaussian"), (1, 28, 28))
    with pytest.raises(LatentdynError, match="needs a spatial latent: train the VAE with latent_channels"):
        make_predictor(TrainDynamicsConfig(cell="convgru"), (16,))
    with pytest.raises(LatentdynError, match="kernel 4: use an odd size"):
        make_predictor(TrainDynamicsConfig(cell="convgru", kernel=4), (2, 4, 4))


def test_convgru_contract_and_start():
    cfg = TrainDynamicsConfig(cell="convgru", hidden=6, layers=2)
    torch.manual_seed(0)
    m = make_predictor(cfg, (2, 4, 5))
    assert isinstance(m, LatentConvGRU) and m.latent_dim == 40
    assert isinstance(make_predictor(TrainDynamicsConfig(), (2, 4, 5)), LatentGRU)  # the flat GRU reads the maps flat
    mu, lv = torch.randn(3, 7, 40), torch.randn(3, 7, 40)
    mean, s, lv_next, h = m(mu, lv)
    assert mean.shape == s.shape == lv_next.shape == (3, 7, 40) and h.shape == (2, 3, 6, 4, 5)
    assert torch.equal(mean, mu)  # the head starts at zero: "nothing moves", as the GRU starts
    out = m.rollout(mu[:, :4], lv[:, :4], 5)
    assert out["mu"].shape == out["logvar"].shape == (3, 5, 40)
    torch.testing.assert_close(out["mu"], mu[:, 3:4].expand(3, 5, 40))
    g = torch.Generator().manual_seed(1)
    assert m.rollout(mu[:, :4], lv[:, :4], 5, samples=2, generator=g)["mu"].shape == (2, 3, 5, 40)


def test_convgru_shares_weights_over_positions():
    """Shifting every input map by one cell shifts every output map by one cell, away from the
    border (whose zero padding reaches one cell further in per step and convolution): the ConvGRU
    is translation-equivariant, unlike a GRU on the flat vector."""
    cfg = TrainDynamicsConfig(cell="convgru", hidden=5, kernel=3)
    torch.manual_seed(0)
    m = make_predictor(cfg, (2, 24, 24))
    inner = (..., slice(8, 16), slice(8, 16))  # 8 cells from every border; 4 steps x 2 convolutions reach 8
    with torch.no_grad():
        for p in m.head.conv.parameters():
            p.normal_(0, 0.3)  # a head that moves things
        maps = torch.zeros(1, 4, 2, 24, 24)
        maps[..., 10:13, 10:13] = torch.randn(1, 4, 2, 3, 3)  # a patch in the middle
        shifted = torch.roll(maps, 1, dims=-1)
        lv = torch.full((1, 4, 2 * 24 * 24), -3.0)
        a = m(maps.flatten(2), lv)[0].view(1, 4, 2, 24, 24)
        b = m(shifted.flatten(2), lv)[0].view(1, 4, 2, 24, 24)
        torch.testing.assert_close(torch.roll(a, 1, dims=-1)[inner], b[inner], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(a[inner], b[inner], atol=1e-3)  # the outputs did move
        flat = LatentGRU(TrainDynamicsConfig(hidden=8), 2 * 24 * 24)
        for p in flat.head.parameters():
            p.normal_(0, 0.3)
        fa = flat(maps.flatten(2), lv)[0].view(1, 4, 2, 24, 24)
        fb = flat(shifted.flatten(2), lv)[0].view(1, 4, 2, 24, 24)
        assert not torch.allclose(torch.roll(fa, 1, dims=-1)[inner], fb[inner], atol=1e-3)


def _moving_blobs(n: int, rng, T: int = 10, h: int = 6, w: int = 14) -> np.ndarray:
    """(n, T, 1 * h * w) latent maps: one Gaussian bump per sequence moving 0.5 cells right per step."""
    yy, xx = np.mgrid[:h, :w]
    out = np.zeros((n, T, h, w), np.float32)
    for i in range(n):
        y, x = rng.uniform(1.5, h - 2.5), rng.uniform(1.0, 3.0)
        for t in range(T):
            out[i, t] = np.exp(-((yy - y) ** 2 + (xx - x - 0.5 * t) ** 2) / (2 * 0.8 ** 2))
    return out.reshape(n, T, h * w)


def test_convgru_learns_a_moving_blob(tmp_path):
    rng = np.random.default_rng(0)
    mu = np.concatenate([_moving_blobs(64, rng), _moving_blobs(16, rng)])
    path = tmp_path / "blobs.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "latentdyn-latents", "format_version": 1, "kind": "sequences", "latent_dim": 84,
                        "latent_shape": json.dumps([1, 6, 14]), "vae_sha256": "0" * 64})
        f["mu"] = mu
        f["logvar"] = np.full(mu.shape, -4.0, np.float32)
        f["splits/train"] = np.arange(64)
        f["splits/val"] = np.arange(64, 80)
    cfg = TrainDynamicsConfig(latents=str(path), cell="convgru", hidden=8, epochs=8, batch_size=16, lr=1e-2, context=3,
                              horizon=6, windows=2, device="cpu", seed=0)
    train_dynamics(cfg, tmp_path / "dyn", progress=False, verbose=False)
    model, got, ck = load_dynamics(tmp_path / "dyn")
    assert isinstance(model, LatentConvGRU) and got.cell == "convgru" and ck["data"]["latent_shape"] == [1, 6, 14]
    val = torch.from_numpy(mu[64:])
    with torch.no_grad():
        pred = model.rollout(val[:, :3], torch.full((16, 3, 84), -4.0), 6)["mu"]  # (16, 6, 84)
    err = ((pred - val[:, 3:9]) ** 2).sum(-1).mean().item()
    copy_last = ((val[:, 2:3] - val[:, 3:9]) ** 2).sum(-1).mean().item()
    assert err < 0.25 * copy_last, (err, copy_last)


@pytest.fixture(scope="module")
def spatial_pipeline(tmp_path_factory):
    from latentdyn.scenes import generate as scenes

    d = tmp_path_factory.mktemp("spatial")
    scenes.generate(scenes.load_scene("light_ball", ["scene.length=14"]), d / "ball.h5", 20, seed=0,
                    splits={"train": 0.7, "val": 0.1, "test": 0.2}, progress=False)
    run = CliRunner().invoke
    r = run(cli, ["train", "vae", "--data", str(d / "ball.h5"), "--out", str(d / "vae"), "--latent-dim", "32",
                  "--latent-channels", "2", "--width", "4", "--epochs", "1", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["encode", "--vae", str(d / "vae"), "--data", str(d / "ball.h5"), "--out", str(d / "lat.h5")])
    assert r.exit_code == 0, r.output
    return d


def test_spatial_pipeline_through_cli(spatial_pipeline, tmp_path):
    d = spatial_pipeline
    with open_latents(d / "lat.h5") as lf:
        assert lf.latent_shape == (2, 4, 4) and lf.latent_dim == 32 and lf.file["mu"].shape == (20, 14, 32)
    run = CliRunner().invoke
    r = run(cli, ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(tmp_path / "dyn"), "--cell", "convgru",
                  "--hidden", "4", "--epochs", "1", "--context", "3", "--horizon", "4", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "cell = \"convgru\"" in (tmp_path / "dyn" / "config.toml").read_text()
    r = run(cli, ["rollout", "--vae", str(d / "vae"), "--dynamics", str(tmp_path / "dyn"), "--data", str(d / "ball.h5"),
                  "--out", str(tmp_path / "roll"), "--context", "4", "--horizon", "6", "--sequences", "4",
                  "--video-sequences", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "roll" / "metrics.json").read_text())
    assert len(res["open_loop"]["model"]["per_step"]["se_per_frame"]) == 6
    assert res["predictor"] == "convgru" and res["latent_shape"] == [2, 4, 4]
    from latentdyn.pipeline.report.html import Page
    from latentdyn.pipeline.report.sections import _section_rollout

    html = _section_rollout(Page(tmp_path), tmp_path / "roll", "rollout")
    assert "ConvGRU predictor (ours)" in html and "GRU predictor (ours)</td>" not in html.replace("ConvGRU predictor (ours)", "")
    assert res["open_loop"]["model"]["summary"]["se_per_frame"] >= 0
    # a latent_dim that is not the map's size is refused in one line, before a run folder is made
    fails_cleanly(run(cli, ["train", "vae", "--data", str(d / "ball.h5"), "--out", str(tmp_path / "badvae"),
                            "--latent-dim", "30", "--latent-channels", "2", "--epochs", "1", "--device", "cpu",
                            "--no-progress"]), "a 2 x 4 x 4 map has 32 dimensions; set latent_dim = 32")
    assert not (tmp_path / "badvae").exists()
    # a convgru on flat latents is refused in one line, before a run folder is made
    r = run(cli, ["train", "vae", "--data", str(d / "ball.h5"), "--out", str(tmp_path / "flat"), "--arch", "mlp",
                  "--latent-dim", "3", "--epochs", "1", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["encode", "--vae", str(tmp_path / "flat"), "--data", str(d / "ball.h5"), "--out", str(tmp_path / "f.h5")])
    assert r.exit_code == 0, r.output
    bad = run(cli, ["train", "dynamics", "--latents", str(tmp_path / "f.h5"), "--out", str(tmp_path / "bad"),
                            "--cell", "convgru", "--epochs", "1", "--context", "3", "--horizon", "4", "--device", "cpu",
                            "--no-progress"])
    fails_cleanly(bad, "needs a spatial latent")
    assert not (tmp_path / "bad").exists()


def test_checkpoint_from_before_the_cell_option_resumes(tmp_path):
    """A dynamics run saved before ``cell`` and ``kernel`` existed (its config lacks them) resumes:
    a missing key reads as the default that computes what the old run computed."""
    from latentdyn.engine.checkpoint import config_diff

    rng = np.random.default_rng(1)
    mu = rng.standard_normal((8, 12, 3)).astype(np.float32)
    path = tmp_path / "lat.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "latentdyn-latents", "format_version": 1, "kind": "sequences", "latent_dim": 3,
                        "vae_sha256": "0" * 64})
        f["mu"] = mu
        f["logvar"] = np.full(mu.shape, -4.0, np.float32)
    cfg = TrainDynamicsConfig(latents=str(path), hidden=4, epochs=1, context=3, horizon=4, device="cpu")
    train_dynamics(cfg, tmp_path / "d", progress=False, verbose=False)
    last = tmp_path / "d" / "last.pt"
    ck = torch.load(last, weights_only=True)
    for k in ("cell", "kernel"):
        del ck["config"][k]  # as latentdyn wrote it before the options existed
    torch.save(ck, last)
    assert config_diff(ck["config"], {**ck["config"], "cell": "gru", "kernel": 3}, set()) == \
        ["cell: None -> 'gru'", "kernel: None -> 3"]  # without the defaults: a difference
    train_dynamics(TrainDynamicsConfig(**{**vars(cfg), "epochs": 2}), tmp_path / "d", resume=True, progress=False, verbose=False)
    assert load_dynamics(tmp_path / "d", "last")[2]["epoch"] == 2
    # a real difference is still refused
    with pytest.raises(LatentdynError, match="config differs"):
        train_dynamics(TrainDynamicsConfig(**{**vars(cfg), "epochs": 3, "kernel": 5}), tmp_path / "d", resume=True,
                       progress=False, verbose=False)
