"""Fresh training sequences (``fresh_sequences``): drawn from the scene definition every epoch,
seeded, new, bounded in memory, for state latents and VAE latents, through training."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics import fresh as F
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.train import train_dynamics
from latentdyn.latents.file import write_sequences
from latentdyn.scenes import generate as scenes

from tests.dynamics.test_dynamics import write_latents
from tests.helpers import fails_cleanly, need_fashion_mnist, vae_config

SEED = 7  # the scene file's generator seed


def write_state_latents(scene_path, out):
    """A state-latents file as ``latentdyn encode --states`` writes it (the format of the brief)."""
    with h5py.File(scene_path) as sf:
        st = sf["states"][:]  # (N, T, n, 4)
        splits = {k: v[:] for k, v in sf["splits"].items()}
        scene = sf.attrs["scene"]
    N, T, n, _ = st.shape
    attrs = {"latents": "states", "latent_shape": json.dumps([n, 4]), "vae_run": "", "vae_checkpoint": "",
             "vae_sha256": "", "vae_config": "{}", "config": "{}", "source": str(scene_path),
             "source_format": "latentdyn-scenes", "source_splits": json.dumps(sorted(splits)), "scene": scene}
    with write_sequences(out, attrs, N, T, n * 4, st, splits) as f:
        f["mu"][:] = st.reshape(N, T, n * 4)
        f["logvar"][:] = 0.0
    return out


@pytest.fixture(scope="module")
def balls(tmp_path_factory):
    """three_balls, 20 frames, 30 sequences (train 18 / val 6 / test 6), and its state latents."""
    d = tmp_path_factory.mktemp("fresh")
    cfg = scenes.load_scene("three_balls", ["scene.length=20"])
    scenes.generate(cfg, d / "balls.h5", 30, seed=SEED, splits={"train": 0.6, "val": 0.2, "test": 0.2}, workers=1,
                    progress=False)
    return cfg, d / "balls.h5", write_state_latents(d / "balls.h5", d / "states.h5")


def _epoch(stream, epoch):
    mus, lvs = zip(*stream.blocks(epoch))
    return np.concatenate(mus), np.concatenate(lvs)


def test_fresh_states_are_the_simulators_seeded_and_new(balls):
    cfg, _, lat = balls
    src = F.fresh_source(lat)
    assert src.states and src.generator_seed == SEED and src.length == 20 and src.latent_dim == 12
    with h5py.File(lat) as f:
        file_mu = f["mu"][:]  # (30, 20, 12)
    # the maker under the generator's seed is the file: fresh sequences are the same definition
    np.testing.assert_array_equal(F.SequenceMaker(src)(SEED, np.arange(30))[0], file_mu)
    with F.FreshStream(src, 10, seed=3, workers=0, block=4) as s:
        mu, lv = _epoch(s, 1)
        mu2 = _epoch(s, 2)[0]
    truth = scenes.simulate_states(cfg, F.fresh_seed(SEED, 3, 1), np.arange(10))  # (10, 20, 3, 4)
    np.testing.assert_array_equal(mu, truth.reshape(10, 20, 12))
    assert mu.dtype == np.float32 and not lv.any()
    with F.FreshStream(src, 10, seed=3, workers=0, block=5) as s:  # same config, other blocks: same bytes
        assert _epoch(s, 1)[0].tobytes() == mu.tobytes()
    with F.FreshStream(src, 10, seed=4, workers=0) as s:
        other_seed = _epoch(s, 1)[0]

    def nearest(a, b):  # for each sequence of a, the largest first-frame difference to its closest in b
        return np.abs(a[:, None, 0] - b[None, :, 0]).max(-1).min(1)

    assert nearest(mu, file_mu).min() > 0.1  # no fresh sequence is one of the file's
    assert nearest(mu2, mu).min() > 0.1 and nearest(other_seed, mu).min() > 0.1  # epochs and seeds differ


def test_workers_give_the_same_bytes_and_hold_a_few_blocks(balls):
    src = F.fresh_source(balls[2])
    with F.FreshStream(src, 10, seed=3, workers=0) as s:
        want = [_epoch(s, e)[0] for e in (1, 2, 5)]
    with F.FreshStream(src, 10, seed=3, workers=1, block=2, ahead=2) as s:
        s.start(1)
        got = [_epoch(s, 1)[0]]
        assert [p[:2] for p in s.pending] == [(2, 0), (2, 1)]  # the next epoch is under way
        got.append(_epoch(s, 2)[0])
        got.append(_epoch(s, 5)[0])  # a resumed run jumps to its epoch
        assert s.peak == 3 and s.n_blocks == 5  # 2 made ahead + the one training, of 5 blocks an epoch
    for a, b in zip(want, got):
        assert a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def vae_latents(tmp_path_factory):
    """A tiny VAE (mlp, latent 3, one epoch) on light_ball sequences, and its latents."""
    from latentdyn.vae.encode import encode
    from latentdyn.vae.train import train_vae

    d = tmp_path_factory.mktemp("fresh_vae")
    cfg = scenes.load_scene("light_ball", ["scene.length=12"])
    scenes.generate(cfg, d / "ball.h5", 20, seed=SEED, splits={"train": 0.7, "val": 0.3}, workers=1, progress=False)
    train_vae(vae_config(d / "ball.h5", latent_dim=3, epochs=1, binarize="none"), d / "vae", progress=False,
              verbose=False)
    encode(d / "vae", d / "ball.h5", d / "lat.h5", device="cpu", progress=False)
    return cfg, d


def test_vae_fresh_sequences_are_encoded_by_the_files_vae(vae_latents, tmp_path):
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import load_vae

    cfg, d = vae_latents
    src = F.fresh_source(d / "lat.h5")
    assert not src.states and src.vae_run == str((d / "vae").resolve()) and src.latent_dim == 3
    with h5py.File(d / "lat.h5") as f:
        file_mu, file_lv = f["mu"][:], f["logvar"][:]
    mu, lv = F.SequenceMaker(src)(SEED, np.arange(20))  # the generator's seed: the file again
    np.testing.assert_allclose(mu, file_mu, atol=1e-5)
    np.testing.assert_allclose(lv, file_lv, atol=1e-5)
    with F.FreshStream(src, 6, seed=0, workers=0) as s:
        fmu, flv = _epoch(s, 3)
    frames = scenes.sample(cfg, F.fresh_seed(SEED, 0, 3), np.arange(6))[0]  # (6, 12, 28, 28)
    vae = load_vae(d / "vae", "best", "cpu")[0]
    want = encode_frames(vae, frames.reshape(72, 28, 28, 1), "cpu")[0].reshape(6, 12, 3)
    np.testing.assert_allclose(fmu, want, atol=1e-5)
    assert np.abs(fmu[:, 0, None] - file_mu[None, :, 0]).max(-1).min() > 1e-3  # none of the file's
    other = tmp_path / "other.h5"
    other.write_bytes((d / "lat.h5").read_bytes())
    with h5py.File(other, "a") as f:
        f.attrs["vae_sha256"] = "1" * 64
    with pytest.raises(LatentdynError, match="fresh_sequences: .* was made by another VAE") as e:
        F.fresh_source(other)
    assert "\n" not in str(e.value)


def test_sprite_scenes_draw_training_sprites_only():
    need_fashion_mnist()
    from latentdyn.core.config import to_dict
    from latentdyn.scenes import sprites

    cfg = scenes.load_scene("moving_fashion")
    src = F.FreshSource("x", {**to_dict(cfg), "kind": "sprites"}, 20, 0, False, "", "float32", 3)
    draw = F.SceneDrawer(src)
    frames, rec = draw.frames(F.fresh_seed(3, 0, 1), np.arange(40))
    assert frames.shape == (40, 20, 64, 64, 1)
    assert (rec["source_split"] == sprites.SOURCES.index("train")).all()
    assert rec["index"].max() < 60000 - cfg.sprites.val_images and len(np.unique(rec["index"])) > 60
    states = draw.states(F.fresh_seed(3, 0, 1), np.arange(40))
    images = draw.bank.images["train"][rec["index"]]  # (40, 2, 28, 28, 1)
    np.testing.assert_array_equal(frames[..., 0], sprites.render(states, images, 64, 64))


def test_latents_without_a_scene_are_refused_in_one_line(balls, tmp_path):
    p = write_latents(tmp_path / "video.h5", np.zeros((6, 12, 2)), splits={"train": np.arange(6)})
    cfg = TrainDynamicsConfig(latents=str(p), fresh_sequences=4, context=3, horizon=4, device="cpu")
    with pytest.raises(LatentdynError, match=r"fresh_sequences cannot draw new sequences; encode a scene file") as e:
        train_dynamics(cfg, tmp_path / "run", progress=False)
    assert "\n" not in str(e.value) and not (tmp_path / "run").exists()
    r = CliRunner().invoke(cli, ["train", "dynamics", "--latents", str(p), "--out", str(tmp_path / "run"),
                                 "--fresh-sequences", "4", "--context", "3", "--horizon", "4", "--device", "cpu",
                                 "--no-progress"])
    fails_cleanly(r, "fresh_sequences = 0")
    gone = tmp_path / "gone.h5"
    gone.write_bytes(balls[2].read_bytes())
    with h5py.File(gone, "a") as f:
        f.attrs["source"] = str(tmp_path / "nowhere.h5")
    with pytest.raises(LatentdynError, match="needs the generator seed of .*nowhere.h5"):
        F.fresh_source(gone)


def test_training_on_fresh_sequences_end_to_end(balls, tmp_path):
    lat = balls[2]

    def run(name, **kw):
        cfg = TrainDynamicsConfig(latents=str(lat), hidden=8, epochs=2, batch_size=16, context=3, horizon=4, windows=2,
                                  device="cpu", **kw)
        train_dynamics(cfg, tmp_path / name, progress=False, verbose=False)
        rows = [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
        return torch.load(tmp_path / name / "last.pt", weights_only=True)["model"], rows

    a, rows = run("a", fresh_sequences=12, fresh_workers=1)
    b, _ = run("b", fresh_sequences=12, fresh_workers=0)
    fixed, fixed_rows = run("fixed")
    assert [(r["sequences_seen"], r["distinct_sequences"]) for r in rows] == [(12, 12), (24, 24)]
    assert [(r["sequences_seen"], r["distinct_sequences"]) for r in fixed_rows] == [(18, 18), (36, 18)]
    assert all(np.isfinite(r["val_open_loop_se"]) for r in rows)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the workers change nothing
    assert not all(torch.equal(a[k], fixed[k]) for k in a)  # the data did
    assert (tmp_path / "a" / "open_loop_vs_sequences.png").stat().st_size > 1000
    assert not (tmp_path / "fixed" / "open_loop_vs_sequences.png").exists()
    from latentdyn.pipeline.report import sections as S
    from latentdyn.pipeline.report.html import Page

    assert 'src="a/open_loop_vs_sequences.png"' in S._section_dynamics(Page(tmp_path), tmp_path / "a", "a")
    assert "open_loop_vs_sequences" not in S._section_dynamics(Page(tmp_path), tmp_path / "fixed", "fixed")


def test_fresh_frames_feed_the_decoder_trained_on_predictions(vae_latents, tmp_path):
    """decoder_finetune with fresh sequences: each fresh window brings the frames its latents were
    encoded from, and the tuned decoder trains on them."""
    from latentdyn.dynamics.train import load_dynamics
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import load_vae

    cfg, d = vae_latents
    src = F.fresh_source(d / "lat.h5")
    mu, _, fr = F.SequenceMaker(src, frames=True)(F.fresh_seed(SEED, 0, 2), np.arange(5))
    want = scenes.sample(cfg, F.fresh_seed(SEED, 0, 2), np.arange(5))[0]  # (5, 12, 28, 28)
    assert fr.shape == (5, 12, 1, 28, 28) and fr.dtype == np.uint8
    np.testing.assert_array_equal(fr[:, :, 0], want)
    vae = load_vae(d / "vae", "best", "cpu")[0]
    g = torch.Generator().manual_seed(0)
    with F.FreshStream(src, 6, seed=0, workers=0, block=4, frames=True) as s:
        batches = list(s.batches(1, 5, 2, 5, g, "cpu"))
    assert [len(b) for b in batches] == [3] * 3 and [len(b[0]) for b in batches] == [5, 5, 2]
    for m, _, f in batches:  # every window's latents are its own frames encoded
        assert f.shape[1:] == (5, 1, 28, 28)
        enc = encode_frames(vae, f.reshape(-1, 28, 28, 1).numpy(), "cpu")[0].reshape(len(f), 5, 3)
        np.testing.assert_allclose(m.numpy(), enc, atol=1e-5)
    with pytest.raises(LatentdynError, match="fresh frames need a VAE's latents file"):
        F.SequenceMaker(F.FreshSource("x", {}, 20, 0, True, "", "float32", 12), frames=True)
    run = TrainDynamicsConfig(latents=str(d / "lat.h5"), hidden=8, epochs=2, batch_size=8, context=3, horizon=4,
                              vae=str(d / "vae"), frame_loss_weight=0.1, decoder_finetune=True, decoder_lr=1e-3,
                              fresh_sequences=10, fresh_workers=0, device="cpu")
    train_dynamics(run, tmp_path / "dyn", progress=False, verbose=False)
    rows = [json.loads(x) for x in (tmp_path / "dyn" / "metrics.jsonl").read_text().splitlines()]
    assert [r["distinct_sequences"] for r in rows] == [10, 20]
    assert all(r["train_recon_frame_se"] > 0 and r["train_open_loop_frame_se"] > 0 for r in rows)
    tuned = dict(load_dynamics(tmp_path / "dyn", "best")[0].tuned_vae.named_parameters())
    orig = dict(vae.named_parameters())
    assert any(not torch.equal(p, orig[n]) for n, p in tuned.items() if n.startswith("decoder."))  # trained
