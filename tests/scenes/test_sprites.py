"""Moving sprites (Moving MNIST protocol) on real Fashion-MNIST: frames, states, pools, determinism."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from latentdyn.cli.main import cli
from latentdyn.core.errors import LatentdynError
from latentdyn.scenes import generate as scenes
from latentdyn.scenes import sprites
from latentdyn.scenes.file import open_scenes
from tests.helpers import fails_cleanly, need_fashion_mnist

SPLITS = {"train": 0.5, "val": 0.25, "test": 0.25}
N = 24


@pytest.fixture(scope="module")
def fashion():
    need_fashion_mnist()
    from latentdyn import datasets

    return {s: datasets.load("fashion-mnist", s) for s in sprites.SOURCES}


@pytest.fixture(scope="module")
def moving(fashion, tmp_path_factory):
    cfg = scenes.load_scene("moving_fashion")
    path = tmp_path_factory.mktemp("sprites") / "m.h5"
    scenes.generate(cfg, path, N, seed=3, splits=SPLITS, workers=1, progress=False)
    return cfg, path


def _oracle(states, index, source, fashion, size=28, canvas=64):
    """Paste each sprite at floor(centre - size/2) with a plain loop and the pixel maximum."""
    S, T, n = states.shape[:3]
    out = np.zeros((S, T, canvas, canvas), np.uint8)
    for s in range(S):
        imgs = [fashion[sprites.SOURCES[source[s]]].images[index[s, k], :, :, 0] for k in range(n)]
        for t in range(T):
            for k in range(n):
                x0 = int(np.floor(float(states[s, t, k, 0]) - size / 2))
                y0 = int(np.floor(float(states[s, t, k, 1]) - size / 2))
                patch = out[s, t, y0 : y0 + size, x0 : x0 + size]
                np.maximum(patch, imgs[k], out=patch)
    return out


def test_frames_equal_the_sprites_pasted_at_the_stored_states(moving, fashion):
    _, path = moving
    with open_scenes(path) as sf:
        frames, states = sf.frames[:], sf.states[:]
        index, label, source = (sf.sprites[k][:] for k in ("index", "label", "source_split"))
        attrs = dict(sf.file["sprites"].attrs)
    assert frames.shape == (N, 20, 64, 64) and frames.dtype == np.uint8
    assert states.shape == (N, 20, 2, 4) and states.dtype == np.float32
    assert index.shape == label.shape == (N, 2) and source.shape == (N,)
    np.testing.assert_array_equal(frames, _oracle(states, index, source, fashion))
    for s in range(N):  # labels are the dataset's labels of the stored indices
        np.testing.assert_array_equal(label[s], fashion[sprites.SOURCES[source[s]]].labels[index[s]])
    assert attrs["dataset"] == "fashion-mnist" and json.loads(attrs["class_names"])[9] == "Ankle boot"
    assert frames.max() == 255 and (frames == 0).mean() > 0.5  # real sprites on a black canvas


def test_positions_stay_in_range_and_steps_are_a_tenth_of_the_range(moving):
    _, path = moving
    with open_scenes(path) as sf:
        st = sf.states[:].astype(np.float64)  # (N, T, 2, 4)
    pos, vel = st[..., :2], st[..., 2:]
    assert pos.min() >= 14.0 - 1e-5 and pos.max() <= 50.0 + 1e-5  # centre = corner + 14, corner in [0, 36]
    np.testing.assert_allclose(np.linalg.norm(vel, axis=-1), 3.6, rtol=1e-5)  # 0.1 of the 36 px range
    step = pos[:, 1:] - pos[:, :-1]  # (N, T-1, 2, 2)
    clamped = ((pos[:, 1:] <= 14 + 1e-4) | (pos[:, 1:] >= 50 - 1e-4)).any(-1)  # (N, T-1, 2)
    free = ~clamped
    assert free.mean() > 0.5 and clamped.sum() >= 5  # both cases occur
    np.testing.assert_allclose(np.linalg.norm(step, axis=-1)[free], 3.6, rtol=1e-5)
    np.testing.assert_allclose(step[free], vel[:, :-1][free], atol=1e-4)  # the stored velocity is the next step
    # at a clamp the component towards the edge reverses; the other one is kept
    s, t, k = np.argwhere(clamped)[0]
    at_edge = (pos[s, t + 1, k] <= 14 + 1e-4) | (pos[s, t + 1, k] >= 50 - 1e-4)
    np.testing.assert_allclose(vel[s, t + 1, k][at_edge], -vel[s, t, k][at_edge], rtol=1e-6)
    np.testing.assert_allclose(vel[s, t + 1, k][~at_edge], vel[s, t, k][~at_edge], rtol=1e-6)


def test_same_seed_same_bytes_and_workers_do_not_matter(moving, tmp_path):
    cfg, path = moving
    again, other = tmp_path / "again.h5", tmp_path / "other.h5"
    scenes.generate(cfg, again, N, seed=3, splits=SPLITS, workers=2, block_frames=100, progress=False)
    scenes.generate(cfg, other, N, seed=4, splits=SPLITS, workers=1, progress=False)
    assert again.read_bytes() == path.read_bytes()
    with h5py.File(path) as a, h5py.File(other) as b:
        assert not np.array_equal(a["frames"][:], b["frames"][:])


def test_sequence_i_is_independent_of_n(moving, tmp_path):
    cfg, path = moving
    small = tmp_path / "small.h5"
    scenes.generate(cfg, small, 7, seed=3, splits=SPLITS, workers=1, progress=False)
    with open_scenes(small) as a, open_scenes(path) as b:
        np.testing.assert_array_equal(a.frames[:], b.frames[:7])
        np.testing.assert_array_equal(a.states[:], b.states[:7])
        for k in ("index", "label", "source_split"):
            np.testing.assert_array_equal(a.sprites[k][:], b.sprites[k][:7])
        for name in SPLITS:  # sequence i keeps its split (and so its sprite pool)
            np.testing.assert_array_equal(a.splits[name], b.splits[name][b.splits[name] < 7])


def test_train_sequences_use_train_images_and_the_others_held_out_ones(moving):
    _, path = moving
    with open_scenes(path) as sf:
        sp, index, source = sf.splits, sf.sprites["index"][:], sf.sprites["source_split"][:]
    assert sorted(np.concatenate(list(sp.values()))) == list(range(N))
    assert {k: len(v) for k, v in sp.items()} == {"train": 12, "val": 6, "test": 6}
    tr, va, te = sp["train"], sp["val"], sp["test"]
    assert (source[tr] == 0).all() and (index[tr] < 50000).all()  # official train, minus the val part
    assert (source[va] == 0).all() and (index[va] >= 50000).all() and (index[va] < 60000).all()
    assert (source[te] == 1).all() and (index[te] < 10000).all()  # official test images


def test_split_shares_hold_for_any_n():
    part = sprites.split_of(0, np.arange(5000), {"train": 0.8, "val": 0.1, "test": 0.1})
    for n in (10, 64, 999, 5000):
        counts = np.bincount(part[:n], minlength=3)
        assert np.abs(counts - np.array([0.8, 0.1, 0.1]) * n).max() < 3, (n, counts)
    assert sprites.assign_splits(5, {}, 0) == {}


def test_options_digits_size_speed_and_canvas(fashion):
    cfg = scenes.load_scene("moving_fashion", ["sprites.n_sprites=3", "sprites.size=20", "sprites.step=0.05",
                                               "canvas.width=48", "canvas.height=40", "scene.length=6"])
    bank = sprites.prepare(cfg, None)
    frames, states, rec = sprites.sample(cfg, bank, 0, np.arange(5))
    assert frames.shape == (5, 6, 40, 48) and states.shape == (5, 6, 3, 4) and rec["index"].shape == (5, 3)
    assert bank.images["train"].shape[1:] == (20, 20, 1) and "test" not in bank.images  # no splits: train pool only
    rx, ry = 48 - 20, 40 - 20
    np.testing.assert_allclose(np.hypot(states[..., 2] / rx, states[..., 3] / ry), 0.05, rtol=1e-5)
    assert states[..., 0].min() >= 10 - 1e-5 and states[..., 0].max() <= 10 + rx + 1e-5
    assert states[..., 1].min() >= 10 - 1e-5 and states[..., 1].max() <= 10 + ry + 1e-5
    big = bank.images["train"][rec["index"]].max(axis=(1, 2, 3, 4))  # (5,) brightest sprite pixel
    np.testing.assert_array_equal(frames.max(axis=(1, 2, 3)), big)  # every frame shows all of each sprite


def test_cli_generate_moving_fashion(fashion, tmp_path):
    out = tmp_path / "m.h5"
    res = CliRunner().invoke(cli, ["generate", "moving_fashion", "-n", "8", "--out", str(out), "--workers", "1", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "8 sequences x 20 frames of 64x64" in res.output
    with open_scenes(out) as sf:
        assert sf.frames.shape == (8, 20, 64, 64) and json.loads(sf.file.attrs["scene"])["kind"] == "sprites"


def test_missing_dataset_is_one_line_and_writes_nothing(monkeypatch, tmp_path):
    from latentdyn import datasets

    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", [])
    out = tmp_path / "m.h5"
    res = CliRunner().invoke(cli, ["generate", "moving_fashion", "-n", "4", "--out", str(out),
                                   "--set", "sprites.download=false", "--no-progress"])
    fails_cleanly(res, "fashion-mnist is not available offline")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_data_dir_reaches_the_sprites(monkeypatch, tmp_path):
    """--data-dir names where a sprite scene's dataset is, as for the image commands."""
    from latentdyn import datasets

    need_fashion_mnist()
    real = datasets.source_files("fashion-mnist", None)  # the system copy's files
    mine = tmp_path / "mine"
    mine.mkdir()
    for f in real:
        (mine / f.name).symlink_to(f)
    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", [])
    out = tmp_path / "m.h5"
    args = ["generate", "moving_fashion", "-n", "2", "--out", str(out), "--set", "sprites.download=false", "--no-progress"]
    fails_cleanly(CliRunner().invoke(cli, args), "fashion-mnist is not available offline")
    res = CliRunner().invoke(cli, args + ["--data-dir", str(mine)])
    assert res.exit_code == 0, res.output
    with open_scenes(out) as sf:
        assert sf.frames.shape == (2, 20, 64, 64)


@pytest.mark.parametrize(
    "override,match",
    [
        ("sprites.size=65", "sprites.size = 65"),
        ("sprites.step=1.5", "sprites.step"),
        ("sprites.dataset='svhn'", "unknown dataset 'svhn'"),
        ("kind='cubes'", "scene kind = 'cubes'"),
        ("sprites.n_sprites=0", "n_sprites"),
        ("physics.n_balls=2", "unknown key physics"),
    ],
)
def test_impossible_sprite_definitions_are_refused(override, match):
    with pytest.raises(LatentdynError, match=match) as e:
        scenes.load_scene("moving_fashion", [override])
    assert "\n" not in str(e.value)


def test_val_split_needs_held_out_images(fashion, tmp_path):
    cfg = scenes.load_scene("moving_fashion", ["sprites.val_images=0"])
    with pytest.raises(LatentdynError, match="val_images = 0"):
        scenes.generate(cfg, tmp_path / "m.h5", 4, splits=SPLITS, progress=False)
    assert not (tmp_path / "m.h5").exists()


def test_render_colour_sprites_channel_by_channel(rng):
    """RGB sprites (e.g. cifar10): each channel is the grey rendering of that channel."""
    states = rng.uniform(5, 27, (3, 4, 2, 4)).astype(np.float32)  # (S, T, n, 4) centres in a 32x32 canvas
    images = rng.integers(0, 256, (3, 2, 10, 10, 3), dtype=np.uint8)  # (S, n, s, s, C)
    colour = sprites.render(states, images, 32, 32)
    assert colour.shape == (3, 4, 32, 32, 3) and colour.flags.c_contiguous
    for c in range(3):
        np.testing.assert_array_equal(colour[..., c], sprites.render(states, images[..., c : c + 1], 32, 32))
    corner = sprites.corners(states, 10, 32, 32)[1, 2, 0]  # sequence 1, frame 2, sprite 0
    patch = colour[1, 2, corner[1] : corner[1] + 10, corner[0] : corner[0] + 10]
    assert (patch >= images[1, 0]).all()  # the pixel maximum keeps every sprite at least as bright
