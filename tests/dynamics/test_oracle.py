"""The state oracle: state latents, the oracle's renderer, and the oracle in a rollout."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.dynamics import objects as O
from latentdyn.dynamics.oracle import state_renderer
from latentdyn.latents.file import open_latents
from latentdyn.latents.states import is_states, write_states
from latentdyn.scenes.file import open_scenes
from tests.helpers import fails_cleanly


def test_state_latents_hold_the_states(scene_file, tmp_path):
    out = write_states(scene_file, tmp_path / "deep" / "states.h5")
    with open_latents(out) as lf, open_scenes(scene_file) as sf:
        st = np.asarray(sf.states)  # (24, 20, 3, 4)
        assert lf.kind == "sequences" and lf.latent_shape == (3, 4) and lf.latent_dim == 12 and is_states(lf.file.attrs)
        np.testing.assert_array_equal(lf.file["mu"][...], st.reshape(24, 20, 12))  # object-major: ball 0's x, y, vx, vy first
        assert not lf.file["logvar"][...].any() and lf.vae_sha256 == ""
        assert {k: v.tolist() for k, v in lf.splits.items()} == {k: v.tolist() for k, v in sf.splits.items()}
        assert json.loads(lf.file.attrs["scene"]) == sf.scene


def test_encode_states_through_the_cli_and_its_errors(scene_file, tmp_path):
    run = CliRunner().invoke
    r = run(cli, ["encode", "--states", "--data", str(scene_file), "--out", str(tmp_path / "s.h5")])
    assert r.exit_code == 0, r.output
    with open_latents(tmp_path / "s.h5") as lf:
        assert lf.latent_shape == (3, 4)
    fails_cleanly(run(cli, ["encode", "--states", "--out", str(tmp_path / "x.h5")]), "--states needs --data")
    bare = tmp_path / "bare.h5"  # a scene file without states (an imported video)
    with h5py.File(scene_file, "r") as src, h5py.File(bare, "w") as f:
        f.attrs.update(dict(src.attrs))
        src.copy("frames", f)
    fails_cleanly(run(cli, ["encode", "--states", "--data", str(bare), "--out", str(tmp_path / "y.h5")]), "has no states")
    assert not (tmp_path / "y.h5").exists()


def test_the_oracle_renderer_draws_the_true_frames_from_the_true_states(scene_file):
    with open_scenes(scene_file) as sf:
        ids = np.array([0, 3, 5])
        frames, states = sf.read_frames(ids), np.asarray(sf.states[ids])  # (3, 20, 30, 30), (3, 20, 3, 4)
        draw = state_renderer(sf.scene, sf, ids, (30, 30, 1))
        balls = O.balls_from_scene(sf.scene)
        no_definition = state_renderer(None, sf, ids, (30, 30, 1), balls)  # a file from elsewhere: the metrics' balls
    drawn = draw(states)
    assert drawn.shape == (3, 20, 30, 30, 1) and drawn.dtype == np.float32
    np.testing.assert_array_equal(np.round(drawn[..., 0] * 255).astype(np.uint8), frames)
    np.testing.assert_array_equal(no_definition(states), drawn)
    shifted = draw(states + np.array([2.0, 0, 0, 0], np.float32))  # a 2 px error shows
    assert np.abs(shifted - drawn).sum() > 100


def test_the_oracle_renderer_pastes_each_sequences_own_sprites(tmp_path):
    from tests.helpers import need_fashion_mnist

    need_fashion_mnist()
    from latentdyn.scenes import generate as scenes

    path = tmp_path / "m.h5"
    scenes.generate(scenes.load_scene("moving_fashion", ["scene.length=6"]), path, 8, seed=3,
                    splits={"train": 0.5, "val": 0.25, "test": 0.25}, workers=1, progress=False)
    with open_scenes(path) as sf:
        ids = np.sort(sf.split_indices("test"))
        draw = state_renderer(sf.scene, sf, ids, (64, 64, 1))
        np.testing.assert_array_equal(np.round(draw(np.asarray(sf.states[ids]))[..., 0] * 255).astype(np.uint8),
                                      sf.read_frames(ids))


COMMON = ["--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def small_vae(scene_file, tmp_path_factory):
    """A one-epoch mlp VAE of the session's three-ball file and its latents."""
    d = tmp_path_factory.mktemp("oracle")
    for args in (["train", "vae", "--data", str(scene_file), "--out", str(d / "vae"), "--arch", "mlp", "--latent-dim", "4",
                  "--epochs", "1", *COMMON],
                 ["encode", "--vae", str(d / "vae"), "--data", str(scene_file), "--out", str(d / "lat.h5")]):
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
    return d


def test_the_oracle_in_a_rollout_through_the_cli(scene_file, small_vae, tmp_path):
    run = CliRunner().invoke
    d = tmp_path
    common = COMMON
    (d / "vae").symlink_to(small_vae / "vae")
    (d / "lat.h5").symlink_to(small_vae / "lat.h5")
    for args in (["encode", "--states", "--data", str(scene_file), "--out", str(d / "st.h5")],
                 ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(d / "dyn"), "--epochs", "1",
                  "--context", "3", "--horizon", "4", "--hidden", "8", *common],
                 ["train", "dynamics", "--latents", str(d / "st.h5"), "--out", str(d / "oracle"), "--cell", "interaction",
                  "--epochs", "1", "--context", "3", "--horizon", "4", "--hidden", "8", *common]):
        r = run(cli, args)
        assert r.exit_code == 0, r.output
    base = ["rollout", "--vae", str(d / "vae"), "--dynamics", str(d / "dyn"), "--data", str(scene_file), "--context", "4",
            "--horizon", "6", "--video-sequences", "0", "--device", "cpu"]
    r = run(cli, [*base, "--oracle", str(d / "oracle"), "--out", str(d / "roll")])
    assert r.exit_code == 0, r.output
    res = json.loads((d / "roll" / "metrics.json").read_text())
    assert res["oracle"] == "state_oracle" and "state_oracle" in res["one_step_se_per_frame"]
    per = res["open_loop"]["state_oracle"]["per_step"]
    assert len(per["all_present"]) == 6 and len(per["position_error_px"]) == 6 and 0 <= min(per["all_present"])
    fails_cleanly(run(cli, [*base, "--oracle", str(d / "dyn"), "--out", str(d / "bad")]), "not on true states")


def test_decoder_trained_on_predictions(scene_file, small_vae, tmp_path):
    """decoder_finetune: the tuned decoder is saved with the predictor, changed by training, used by
    the rollout beside the frozen one; without a frame loss it is refused."""
    import torch

    from latentdyn.dynamics.train import load_dynamics
    from latentdyn.vae.train import load_vae

    run = CliRunner().invoke
    d = tmp_path
    common = COMMON
    (d / "vae").symlink_to(small_vae / "vae")
    (d / "lat.h5").symlink_to(small_vae / "lat.h5")
    r = run(cli, ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(d / "dyn"), "--epochs", "2",
                  "--context", "3", "--horizon", "4", "--hidden", "8", "--vae", str(d / "vae"), "--frame-loss-weight", "0.1",
                  "--decoder-finetune", "--decoder-lr", "1e-3", *common])
    assert r.exit_code == 0, r.output
    dyn, cfg, ck = load_dynamics(d / "dyn", "best")
    frozen = load_vae(d / "vae")[0]
    assert cfg.decoder_finetune and ck["data"]["tuned_vae"]["shape"] == [1, 30, 30]
    tuned, orig = dict(dyn.tuned_vae.named_parameters()), dict(frozen.named_parameters())
    assert any(not torch.equal(p, orig[n]) for n, p in tuned.items() if n.startswith("decoder."))  # trained
    assert all(torch.equal(p, orig[n]) for n, p in tuned.items() if n.startswith("encoder."))  # the encoder is not
    rows = [json.loads(line) for line in (d / "dyn" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["train_recon_frame_se"] > 0 and r["train_open_loop_frame_se"] > 0 for r in rows)
    r = run(cli, ["rollout", "--vae", str(d / "vae"), "--dynamics", str(d / "dyn"), "--data", str(scene_file), "--context", "4",
                  "--horizon", "5", "--video-sequences", "0", "--device", "cpu", "--out", str(d / "roll")])
    assert r.exit_code == 0, r.output
    res = json.loads((d / "roll" / "metrics.json").read_text())
    a, b = res["open_loop"]["model"]["summary"], res["open_loop"]["model_frozen_decoder"]["summary"]
    assert a["se_per_frame"] != b["se_per_frame"]  # two decoders, two sets of frames from the same predictions
    fails_cleanly(run(cli, ["train", "dynamics", "--latents", str(d / "lat.h5"), "--out", str(d / "x"), "--decoder-finetune",
                            *common]), "--frame-loss-weight > 0")


def test_init_starts_from_a_trained_run(small_vae, tmp_path):
    """init: the predictor starts with the weights of a trained run's best.pt (here with a step too small
    to move them), with or without the tuned decoder after it;
    another size or another VAE's latents are refused in one line."""
    import torch

    from latentdyn.dynamics.train import load_dynamics

    run = CliRunner().invoke
    d = tmp_path
    base = ["train", "dynamics", "--latents", str(small_vae / "lat.h5"), "--context", "3", "--horizon", "4", *COMMON]
    r = run(cli, [*base, "--out", str(d / "a"), "--epochs", "2", "--hidden", "8"])
    assert r.exit_code == 0, r.output
    r = run(cli, [*base, "--out", str(d / "b"), "--epochs", "1", "--hidden", "8", "--init", str(d / "a"), "--lr", "1e-12"])
    assert r.exit_code == 0, r.output
    a, b = load_dynamics(d / "a")[0], load_dynamics(d / "b")[0]
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(q, p, atol=1e-6, rtol=0, msg=name)
    r = run(cli, [*base, "--out", str(d / "z"), "--epochs", "1", "--hidden", "8", "--lr", "1e-12"])  # no init
    z = load_dynamics(d / "z")[0]
    assert any((p - q).abs().max() > 1e-3 for p, q in zip(a.state_dict().values(), z.state_dict().values()))  # can fail
    r = run(cli, [*base, "--out", str(d / "c"), "--epochs", "1", "--hidden", "8", "--init", str(d / "a"), "--vae",
                  str(small_vae / "vae"), "--frame-loss-weight", "0.1", "--decoder-finetune"])
    assert r.exit_code == 0, r.output
    fails_cleanly(run(cli, [*base, "--out", str(d / "x"), "--hidden", "16", "--init", str(d / "a")]),
                  "--init", "another cell or size", "--hidden")
    fails_cleanly(run(cli, [*base, "--out", str(d / "y"), "--init", str(d / "nothing")]), "does not exist")
    other = d / "other.h5"  # the same latents as if another VAE had made them: a run on them is refused
    shutil.copy(small_vae / "lat.h5", other)
    with h5py.File(other, "r+") as f:
        f.attrs["vae_sha256"] = "f" * 64
    other_base = [base[0], base[1], "--latents", str(other), *base[4:]]
    r = run(cli, [*other_base, "--out", str(d / "o"), "--epochs", "1", "--hidden", "8"])
    assert r.exit_code == 0, r.output
    fails_cleanly(run(cli, [*base, "--out", str(d / "w"), "--hidden", "8", "--init", str(d / "o")]),
                  "--init", "another VAE", "start from a run trained on")
    assert not any((d / n).exists() for n in ("x", "y", "w"))
