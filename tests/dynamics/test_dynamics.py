"""Latents files, the GRU predictor, rollout metrics and baselines, and the pipeline through the CLI."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentdyn.dynamics import metrics as M
from latentdyn.dynamics import rollout as R
from latentdyn.cli.main import cli
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.model import predict
from latentdyn.dynamics.train import load_dynamics, train_dynamics
from latentdyn.core.errors import LatentdynError
from latentdyn.latents.file import open_latents
from latentdyn.scenes.render import Renderer

from tests.helpers import fails_cleanly as _fails_cleanly
from tests.helpers import make_gru, killed_in_epoch


def write_latents(path, mu, splits=None, sha="0" * 64):
    """A latents file written by hand from docs/formats.md."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "latentdyn-latents", "format_version": 1, "kind": "sequences",
                        "latent_dim": mu.shape[-1], "vae_sha256": sha})
        f["mu"] = mu.astype(np.float32)
        f["logvar"] = np.full(mu.shape, -4.0, np.float32)
        for k, v in (splits or {}).items():
            f[f"splits/{k}"] = v
    return path


def _dyn_cfg(latents, **kw):
    return TrainDynamicsConfig(**{"latents": str(latents), "hidden": 32, "epochs": 60, "batch_size": 32, "lr": 5e-3,
                                  "context": 4, "horizon": 8, "windows": 4, "device": "cpu", **kw})


@pytest.mark.parametrize("kind", ["constant", "constant_velocity"])
def test_predictor_learns_constant_and_constant_velocity(tmp_path, kind):
    rng = np.random.default_rng(0)
    N, T = 64, 16
    a = rng.uniform(-1, 1, (N, 1, 2))
    b = rng.uniform(-0.1, 0.1, (N, 1, 2)) if kind == "constant_velocity" else np.zeros((N, 1, 2))
    mu = a + b * np.arange(T)[None, :, None]  # (N, T, 2)
    p = write_latents(tmp_path / "lat.h5", mu)
    train_dynamics(_dyn_cfg(p), tmp_path / "run", progress=False, verbose=False)
    model, _, _ = load_dynamics(tmp_path / "run", "last")
    pred = predict(model, mu[:, :4], 12, context_logvar=np.full((N, 4, 2), -4.0))  # (N, 12, 2)
    err = np.abs(pred - mu[:, 4:16]).mean()
    if kind == "constant":
        assert err < 0.01, err  # latents span about 2 units
    else:  # far below what "stay where you are" would cost (the mean displacement over the horizon)
        moved = np.abs(mu[:, 4:16] - mu[:, 3:4]).mean()
        assert err < 0.1 * moved, (err, moved)


def test_predict_api_shapes_and_samples(tmp_path):
    model = make_gru(3, hidden=8, use_logvar=False)
    ctx = np.zeros((5, 4, 3), np.float32)
    assert predict(model, ctx, 7).shape == (5, 7, 3)
    s = predict(model, ctx, 7, samples=4, seed=1)
    assert s.shape == (4, 5, 7, 3) and np.array_equal(s, predict(model, ctx, 7, samples=4, seed=1))
    t = predict(model, torch.zeros(4, 3), 2)
    assert isinstance(t, torch.Tensor) and t.shape == (1, 2, 3)
    with pytest.raises(LatentdynError, match="horizon 0"):
        predict(model, ctx, 0)
    with pytest.raises(LatentdynError, match="log-variances"):
        predict(make_gru(3), ctx, 2)


def test_dynamics_resume_matches_uninterrupted(tmp_path, monkeypatch):
    mu = np.cumsum(np.random.default_rng(1).normal(0, 0.1, (24, 20, 2)), 1)
    p = write_latents(tmp_path / "lat.h5", mu, {"train": np.arange(18), "val": np.arange(18, 24)})
    train_dynamics(_dyn_cfg(p, epochs=3), tmp_path / "full", progress=False, verbose=False)
    with killed_in_epoch(2):
        train_dynamics(_dyn_cfg(p, epochs=3), tmp_path / "part", progress=False, verbose=False)
    train_dynamics(_dyn_cfg(p, epochs=3), tmp_path / "part", resume=True, progress=False, verbose=False)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "part" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_context_plus_horizon_longer_than_sequences(tmp_path):
    p = write_latents(tmp_path / "lat.h5", np.zeros((4, 10, 2)))
    with pytest.raises(LatentdynError, match="longer than the sequences"):
        train_dynamics(_dyn_cfg(p, context=5, horizon=8), tmp_path / "run", progress=False)


# ---- metrics and baselines --------------------------------------------------------------------------

def test_squared_error_and_baselines_analytic():
    S, T, h, w = 2, 8, 4, 5
    delta = 0.05
    ramp = (0.1 + delta * np.arange(T))[None, :, None, None, None] * np.ones((S, T, h, w, 1))  # brightening frames
    K, H = 3, 4
    truth = ramp[:, K : K + H]
    # copy-last misses by delta * j on every pixel: sum over j of (delta j)^2 h w per frame
    se_copy = M.squared_error(R.copy_last(ramp, K, H), truth)
    np.testing.assert_allclose(se_copy, np.broadcast_to((delta * np.arange(1, H + 1)) ** 2 * h * w, (S, H)))
    # a linear ramp is what linear extrapolation predicts exactly, open loop and one step
    np.testing.assert_allclose(M.squared_error(R.linear_pixels(ramp, K, H), truth), 0.0, atol=1e-20)
    np.testing.assert_allclose(R.one_step_linear(ramp), ramp[:, 2:], atol=1e-12)
    mu = np.arange(10.0)[None, :, None] * np.array([1.0, -2.0])  # (1, 10, 2), constant velocity
    np.testing.assert_allclose(R.constant_velocity(mu, 4, 3), mu[:, 4:7])


def test_ball_finding_oracle_and_degenerate_cases():
    rng = np.random.default_rng(0)
    true = rng.uniform(6, 22, (50, 1, 2))
    frames = Renderer(28, 28, [2.5], [[1.0]], "gaussian")(true.astype(np.float32)) / 255.0  # (50, 28, 28)
    m = M.match_positions(true, frames)
    assert np.nanmax(m["error"]) < 0.15 and (m["count"] == 1).all()
    empty = np.zeros((3, 28, 28))
    m = M.match_positions(true[:3], empty)
    assert (m["count"] == 0).all() and np.isnan(m["error"]).all()
    two = Renderer(28, 28, [2.0, 2.0], [[1.0]] * 2, "gaussian")(np.array([[[5.0, 5.0], [22.0, 22.0]]], np.float32)) / 255.0
    m = M.match_positions(np.array([[[21.5, 21.0]]]), two)
    assert m["count"][0] == 2 and m["error"][0, 0] < 1.2  # a split: matched to the nearer blob


# ---- the pipeline through the CLI ------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from latentdyn.scenes import generate as scenes

    d = tmp_path_factory.mktemp("pipe")
    scenes.generate(scenes.load_scene("light_ball", ["scene.length=16"]), d / "ball.h5", 30, seed=0,
                    splits={"train": 0.8, "test": 0.2}, progress=False)
    run = CliRunner().invoke
    r = run(cli, ["train", "vae", "--data", str(d / "ball.h5"), "--out", str(d / "vae"), "--arch", "mlp", "--latent-dim", "3",
                  "--epochs", "2", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["encode", "--vae", str(d / "vae"), "--data", str(d / "ball.h5"), "--out", str(d / "lat.h5")])
    assert r.exit_code == 0, r.output
    r = run(cli, ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(d / "dyn"), "--epochs", "2",
                  "--context", "3", "--horizon", "5", "--hidden", "16", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    return d


def test_encode_writes_documented_latents(pipeline):
    from latentdyn.core.fileio import sha256_file

    with open_latents(pipeline / "lat.h5") as lf:
        assert lf.kind == "sequences" and lf.latent_dim == 3
        assert lf.file["mu"].shape == (30, 16, 3) and lf.file["logvar"].dtype == np.float32
        assert lf.file["states"].shape == (30, 16, 1, 4)
        assert lf.vae_sha256 == sha256_file(pipeline / "vae" / "best.pt")
        assert sorted(lf.splits) == ["test", "train"] and json.loads(lf.file.attrs["vae_config"])["latent_dim"] == 3
        lf.check_vae(pipeline / "vae")


def test_rollout_end_to_end_through_cli(pipeline):
    from latentdyn.viz.video import count_frames

    out = pipeline / "roll"
    r = CliRunner().invoke(cli, ["rollout", "--vae", str(pipeline / "vae"), "--dynamics", str(pipeline / "dyn"),
                                 "--data", str(pipeline / "ball.h5"), "--out", str(out), "--context", "4", "--horizon", "10",
                                 "--samples", "2", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    text = (out / "metrics.json").read_text()
    assert "NaN" not in text  # strict JSON: undefined measures are null
    res = json.loads(text)
    assert res["open_loop"]["model"]["per_step"]["direction_error_deg"][0] is None
    assert set(res["open_loop"]) >= {"model", "copy_last", "linear_pixels", "constant_velocity_latent", "reconstruction",
                                     "model_samples_mean"}
    assert len(res["open_loop"]["model"]["per_step"]["se_per_frame"]) == 10
    assert len(res["open_loop"]["model"]["per_step"]["position_error_px"]) == 10
    assert res["one_step_se_per_frame"]["copy_last"] > 0 and len(res["sequences"]) == 6
    assert count_frames(out / "rollout.mp4") == 14 and count_frames(out / "rollout.gif") == 14
    assert (out / "error_vs_horizon.png").stat().st_size > 10_000
    # the state-based protocol, named, and its per-step measures for every method
    assert res["objects"]["protocol"] == "states" and res["objects"]["truth_reading"]["all_present"] == 1.0
    assert res["objects"]["radii_px"] == [2.5] and res["ceiling"] == "reconstruction"
    assert res["objects"]["shape_from"] == "definition" and res["objects"]["truth_reading"]["count_exact"] == 1.0
    for v in res["open_loop"].values():
        per = v["per_step"]
        for k in ("se_per_frame", "psnr", "ssim", "all_present", "position_error_px", "direction_error_deg", "count_exact"):
            assert len(per[k]) == 10, k
        assert None not in per["position_error_px"] and all(0 <= a <= 1 for a in per["all_present"] + per["count_exact"])
        assert {"vanished_frames", "split_frames", "psnr", "ssim", "all_present", "count_exact", "count_mean"} <= set(v["summary"])
    # the ceiling is what it says: the true future frames encoded, decoded and scored
    from latentdyn.scenes.file import open_scenes
    from latentdyn.dynamics.objects import balls_from_scene
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import load_vae

    vae, _, _ = load_vae(pipeline / "vae", "best", torch.device("cpu"))
    with open_scenes(pipeline / "ball.h5") as sf:
        fr, st = sf.read_frames(np.array(res["sequences"]))[:, 4:14, ..., None], sf.states[np.array(res["sequences"])][:, 4:14]
        balls = balls_from_scene(sf.scene)
    mu, _ = encode_frames(vae, fr.reshape(-1, *fr.shape[2:]), torch.device("cpu"))
    ceiling = R.decode_latents(vae, mu.reshape(6, 10, -1))  # (6, 10, 28, 28, 1)
    again = R._finite(R.score(ceiling, fr / 255.0, st, 0.3, balls))
    np.testing.assert_allclose(np.array(again["position_error_px"]),
                               res["open_loop"]["reconstruction"]["per_step"]["position_error_px"], atol=1e-6)
    np.testing.assert_allclose(np.array(again["ssim"]), res["open_loop"]["reconstruction"]["per_step"]["ssim"], atol=1e-6)


def test_rollout_of_a_file_without_scene_definition_estimates_the_balls(pipeline, tmp_path):
    """The same scene file without its ``scene`` attribute (as another program would write it):
    the rollout still judges balls against the states, with their shape fitted to the true frames."""
    import shutil

    data = shutil.copy(pipeline / "ball.h5", tmp_path / "foreign.h5")
    with h5py.File(data, "r+") as f:
        del f.attrs["scene"]
    out = tmp_path / "roll"
    r = CliRunner().invoke(cli, ["rollout", "--vae", str(pipeline / "vae"), "--dynamics", str(pipeline / "dyn"),
                                 "--data", str(data), "--out", str(out), "--context", "4", "--horizon", "10",
                                 "--video-sequences", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    obj = json.loads((out / "metrics.json").read_text())["objects"]
    assert obj["protocol"] == "states" and obj["shape_from"] == "estimated from the true frames"
    assert obj["radii_px"] == pytest.approx([2.5], abs=0.02) and obj["profile_power"] == pytest.approx(1.0, abs=0.02)
    assert obj["truth_reading"]["all_present"] == 1.0 and obj["truth_reading"]["count_exact"] == 1.0


def test_rollout_and_encode_bad_input(pipeline, tmp_path):
    base = ["rollout", "--vae", str(pipeline / "vae"), "--dynamics", str(pipeline / "dyn"), "--data", str(pipeline / "ball.h5"),
            "--out", str(tmp_path / "r")]
    run = CliRunner().invoke
    _fails_cleanly(run(cli, base + ["--context", "12", "--horizon", "10"]), "longer than the sequences")
    _fails_cleanly(run(cli, base + ["--horizon", "0"]), "--horizon 0")
    _fails_cleanly(run(cli, base + ["--split", "val"]), "no split 'val'")
    # another VAE: same shapes, other weights -> refused by hash
    r = run(cli, ["train", "vae", "--data", str(pipeline / "ball.h5"), "--out", str(tmp_path / "vae2"), "--arch", "mlp",
                  "--latent-dim", "3", "--epochs", "1", "--seed", "9", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    _fails_cleanly(run(cli, base[:1] + ["--vae", str(tmp_path / "vae2")] + base[3:]), "another VAE")
    with open_latents(pipeline / "lat.h5") as lf, pytest.raises(LatentdynError, match="made by another VAE"):
        lf.check_vae(tmp_path / "vae2")
    _fails_cleanly(run(cli, ["train", "dynamics", "--latents", str(pipeline / "ball.h5"), "--out", str(tmp_path / "d")]),
                   "not a latents file")
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_train_dynamics_with_frame_loss_through_cli(pipeline, tmp_path):
    base = ["train", "dynamics", "--latents", str(pipeline / "lat.h5"), "--epochs", "1", "--context", "3", "--horizon", "5",
            "--hidden", "16", "--device", "cpu", "--no-progress"]
    run = CliRunner().invoke
    r = run(cli, base + ["--out", str(tmp_path / "d"), "--vae", str(pipeline / "vae"), "--frame-loss-weight", "1",
                         "--latent-noise", "0.1"])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "d" / "metrics.jsonl").read_text().splitlines()[-1])
    assert row["train_open_loop_frame_se"] > 0
    cfg = load_dynamics(tmp_path / "d", "last")[1]
    assert (cfg.vae, cfg.frame_loss_weight, cfg.latent_noise) == (str(pipeline / "vae"), 1.0, 0.1)
    _fails_cleanly(run(cli, base + ["--out", str(tmp_path / "e"), "--frame-loss-weight", "1"]), "needs --vae RUN")
    two = write_latents(tmp_path / "two.h5", np.zeros((4, 16, 2)))
    _fails_cleanly(run(cli, base[:2] + ["--latents", str(two)] + base[4:] + ["--out", str(tmp_path / "f"), "--vae",
                                                                              str(pipeline / "vae"), "--frame-loss-weight", "1"]),
                   "3 latent dimensions", "2; give the VAE")
    assert not (tmp_path / "e").exists()


def test_latent_map_for_scene_and_2d_dataset(pipeline, tmp_path):
    import numpy as np

    r = CliRunner().invoke(cli, ["latent-map", "--vae", str(pipeline / "vae"), "--data", str(pipeline / "ball.h5"),
                                 "--out", str(tmp_path / "m"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    for name in ("latent_map.png", "latent_map.pdf", "pairs.png", "pairs.pdf"):
        assert (tmp_path / "m" / name).stat().st_size > 5000
    arrays = np.load(tmp_path / "m" / "latent_map.npz")
    assert arrays["mu"].shape == (6 * 16, 3) and arrays["pca"].shape == (96, 2) and "factor_ball_x" in arrays
    _fails_cleanly(CliRunner().invoke(cli, ["latent-map", "--vae", str(tmp_path / "none"), "--out", str(tmp_path / "x")]),
                   "does not exist")


def test_inverse_cdf_grid_and_magnification_map():
    from scipy.stats import norm

    from latentdyn.geometry.latent_map import inverse_cdf_grid

    g = inverse_cdf_grid(5)
    assert g.shape == (25, 2)
    np.testing.assert_allclose(g[0], [norm.ppf(0.05), norm.ppf(0.95)])  # top-left: small z1, large z2
    np.testing.assert_allclose(g[12], [0.0, 0.0], atol=1e-12)  # the centre


def test_latent_map_2d_has_manifold_and_magnification(pipeline, tmp_path):
    run = CliRunner().invoke
    r = run(cli, ["train", "vae", "--data", str(pipeline / "ball.h5"), "--out", str(tmp_path / "v2"), "--arch", "mlp",
                  "--latent-dim", "2", "--epochs", "1", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["latent-map", "--vae", str(tmp_path / "v2"), "--out", str(tmp_path / "m"), "--grid", "6", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    arrays = np.load(tmp_path / "m" / "latent_map.npz")
    mag, grid = arrays["magnification"], arrays["magnification_grid"]
    assert mag.shape == (60, 60) and grid.shape == (3600, 2)
    # the map is the decoder's sqrt(det J^T J), recomputed here from a finite-difference Jacobian at three grid points
    from latentdyn.vae.train import load_vae

    vae, _, _ = load_vae(tmp_path / "v2", "best")
    for i in (0, 1234, 3599):
        z = torch.tensor(grid[i], dtype=torch.float64)
        h = 1e-3
        cols = [((vae.decode((z + h * e)[None].float()) - vae.decode((z - h * e)[None].float())) / (2 * h)).double().flatten()
                for e in torch.eye(2, dtype=torch.float64)]
        J = torch.stack(cols, 1)  # (D, 2)
        want = torch.linalg.det(J.T @ J).clamp_min(0).sqrt().item()
        assert mag.flat[i] == pytest.approx(want, rel=0.05, abs=1e-4), i
    assert mag.max() > 1.5 * mag.min()  # it varies over the latent box
    assert arrays["manifold"].shape == (6 * 28, 6 * 28, 1)
    assert (tmp_path / "m" / "manifold.png").exists() and (tmp_path / "m" / "manifold.pdf").exists()


def test_interpolate_through_cli(pipeline, tmp_path):
    from latentdyn.viz.video import count_frames

    out = tmp_path / "ip"
    r = CliRunner().invoke(cli, ["interpolate", "--vae", str(pipeline / "vae"), "--data", str(pipeline / "ball.h5"),
                                 "--out", str(out), "--pairs", "2", "--steps", "4", "--points", "8", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "interpolation.json").read_text())
    assert len(res["pairs"]) == 2 and "measure" in res
    for p in res["pairs"]:  # the ratio is the two measured lengths (a fallback pair is its line, ratio exactly 1)
        assert p["length_ratio"] == pytest.approx(p["geodesic_length"] / p["line_length"], rel=1e-6)
        assert p["length_ratio"] == pytest.approx(1.0) if p["fallback"] else p["length_ratio"] < 1.0
    assert res["length_ratio"]["q25"] <= res["length_ratio"]["median"] <= res["length_ratio"]["q75"]
    assert (out / "pair_00.png").exists() and (out / "pair_01.png").exists()
    assert count_frames(out / "interpolation.gif") == 6 and count_frames(out / "interpolation.mp4") == 6  # 4 steps there and back
    _fails_cleanly(CliRunner().invoke(cli, ["interpolate", "--vae", str(pipeline / "vae"), "--data", str(pipeline / "ball.h5"),
                                            "--out", str(out), "--classes", "1,2"]), "class names")


def test_parse_classes_and_pairs():
    from latentdyn.geometry.interpolate import parse_classes, pick_pairs

    names = ["a", "b", "c"]
    assert parse_classes("0,b", names) == (0, 1) and parse_classes(None, names) is None
    with pytest.raises(LatentdynError, match="unknown class 'z'"):
        parse_classes("a,z", names)
    labels = np.array([0, 0, 1, 1, 2])
    p = pick_pairs(labels, 5, 10, (0, 2), seed=0)
    assert (labels[p[:, 0]] == 0).all() and (labels[p[:, 1]] == 2).all()
    np.testing.assert_array_equal(p, pick_pairs(labels, 5, 10, (0, 2), seed=0))


def test_rollout_projection_is_applied_each_step():
    """rollout(project=...) replaces each step's latent before it is recorded and fed back."""
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.dynamics.model import LatentGRU

    torch.manual_seed(0)
    m = LatentGRU(TrainDynamicsConfig(hidden=8, use_logvar=False), 3).eval()  # log-variances unread
    torch.nn.init.normal_(m.head.weight, std=0.5)  # a predictor that moves
    mu, lv = torch.randn(2, 4, 3), torch.zeros(2, 4, 3)  # (B, K, d)
    with torch.no_grad():
        plain = m.rollout(mu, lv, 5)["mu"]  # (2, 5, 3)
        same = m.rollout(mu, lv, 5, project=lambda z: (z, torch.zeros_like(z)))["mu"]
        fixed = m.rollout(mu, lv, 5, project=lambda z: (torch.full_like(z, 0.25), torch.zeros_like(z)))["mu"]
    assert torch.equal(plain, same)  # identity projection: the plain rollout
    assert torch.equal(fixed, torch.full_like(fixed, 0.25)) and not torch.allclose(plain, fixed)


def test_reencoded_rollout_through_cli(pipeline, tmp_path):
    """--reencode: each step decoded, quantised, encoded; the first step equals the plain rollout's
    first step projected once, and the scores differ from the plain rollout's."""
    args = ["rollout", "--vae", str(pipeline / "vae"), "--dynamics", str(pipeline / "dyn"), "--data",
            str(pipeline / "ball.h5"), "--context", "4", "--horizon", "6", "--device", "cpu"]
    r0 = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "plain")])
    r1 = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "re"), "--reencode"])
    assert r0.exit_code == 0 and r1.exit_code == 0, r1.output
    a = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    b = json.loads((tmp_path / "re" / "metrics.json").read_text())
    assert b["config"]["reencode"] is True and a["config"]["reencode"] is False
    se_a, se_b = a["open_loop"]["model"]["per_step"]["se_per_frame"], b["open_loop"]["model"]["per_step"]["se_per_frame"]
    assert se_a != se_b and len(se_b) == 6
    assert a["open_loop"]["reconstruction"] == b["open_loop"]["reconstruction"]  # the ceiling does not change
