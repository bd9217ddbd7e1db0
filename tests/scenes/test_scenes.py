"""Scene generation: determinism, chunk independence, splits and the HDF5 format."""

import json

import h5py
import numpy as np
import pytest

from latentdyn.scenes import generate as scenes
from latentdyn.core.errors import LatentdynError
from latentdyn.scenes.file import FORMAT, FORMAT_VERSION, open_scenes


def test_same_seed_same_bytes_and_different_seed_differs(three_balls, tmp_path):
    paths = []
    for k, (seed, workers) in enumerate([(3, 2), (3, 1), (4, 2)]):
        p = tmp_path / f"s{k}.h5"
        scenes.generate(three_balls, p, 20, seed=seed, workers=workers, progress=False)
        paths.append(p)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b  # the whole file, byte for byte, whatever the number of workers
    with h5py.File(paths[0]) as fa, h5py.File(paths[2]) as fc:
        assert not np.array_equal(fa["frames"][:], fc["frames"][:])


def test_sequence_i_independent_of_chunking_and_count(three_balls, tmp_path):
    small, big = tmp_path / "a.h5", tmp_path / "b.h5"
    scenes.generate(three_balls, small, 7, seed=11, block_frames=100, progress=False)  # 1 sequence per block
    scenes.generate(three_balls, big, 30, seed=11, block_frames=1000, progress=False)
    with open_scenes(small) as s, open_scenes(big) as b:
        np.testing.assert_array_equal(s.frames[:], b.frames[:7])
        np.testing.assert_array_equal(s.states[:], b.states[:7])
    frames, states = scenes.sample(three_balls, 11, np.array([5, 6]))
    with open_scenes(big) as b:
        np.testing.assert_array_equal(frames, b.frames[5:7])
        np.testing.assert_array_equal(states, b.states[5:7])


def test_file_layout_matches_the_documented_format(scene_file):
    with h5py.File(scene_file) as f:
        assert f.attrs["format"] == FORMAT and f.attrs["format_version"] == FORMAT_VERSION
        assert f["frames"].dtype == np.uint8 and f["frames"].shape == (24, 20, 30, 30)
        assert f["frames"].chunks == (1, 20, 30, 30) and f["frames"].compression == "gzip"
        assert f["states"].dtype == np.float32 and f["states"].shape == (24, 20, 3, 4)
        assert f["states"].attrs["columns"] == "x,y,vx,vy"
        scene = json.loads(f.attrs["scene"])
        assert scene["physics"]["n_balls"] == 3 and f.attrs["seed"] == 7
        train, test = f["splits/train"][:], f["splits/test"][:]
        assert len(train) == 18 and len(test) == 6
        assert sorted(np.concatenate([train, test])) == list(range(24))
        # states are in pixels: the rendered brightest pixel sits under a ball centre
        fr, st = f["frames"][0, 0], f["states"][0, 0]
        r, c = np.unravel_index(fr.argmax(), fr.shape)
        assert min(np.hypot(st[:, 0] - (c + 0.5), st[:, 1] - (r + 0.5))) < 3.6


def test_hand_written_file_is_accepted(tmp_path):
    """Someone with h5py and docs/formats.md alone can write a file the toolkit reads."""
    p = tmp_path / "mine.h5"
    frames = np.random.default_rng(0).integers(0, 256, (5, 8, 16, 16), dtype=np.uint8)
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "latentdyn-scenes"
        f.attrs["format_version"] = 1
        f["frames"] = frames
        f["splits/test"] = np.array([3, 4])
    with open_scenes(p) as sf:
        assert sf.n_sequences == 5 and sf.length == 8 and sf.frame_shape == (16, 16)
        assert sf.states is None and sf.scene is None
        np.testing.assert_array_equal(sf.split_indices("test"), [3, 4])
        np.testing.assert_array_equal(sf.read_frames(2), frames[2])
        with pytest.raises(LatentdynError, match="no split 'val'"):
            sf.split_indices("val")


@pytest.mark.parametrize(
    "attrs,data,match",
    [
        ({}, {"frames": np.zeros((2, 3, 4, 4), np.uint8)}, "not a scene file"),
        ({"format": "latentdyn-scenes", "format_version": 99}, {"frames": np.zeros((2, 3, 4, 4), np.uint8)}, "version 99"),
        ({"format": "latentdyn-scenes", "format_version": 1}, {"frames": np.zeros((2, 3, 4, 4), np.float32)}, "must be uint8"),
        ({"format": "latentdyn-scenes", "format_version": 1}, {"x": np.zeros(3)}, "no 'frames'"),
        (
            {"format": "latentdyn-scenes", "format_version": 1},
            {"frames": np.zeros((2, 3, 4, 4), np.uint8), "states": np.zeros((2, 4, 1, 4), np.float32)},
            "states",
        ),
        ({}, {"x": np.zeros(3), "y": np.zeros(2)}, r"not a scene file \(no 'format' attribute; top level: x, y\)"),
        ({"format": "latentdyn-latents", "format_version": 1}, {"mu": np.zeros((2, 3))},
         r"not a scene file \(format 'latentdyn-latents': a latents file\)"),
        ({"format": "latentdyn-scenes"}, {"frames": np.zeros((2, 3, 4, 4), np.uint8)}, "no 'format_version' attribute"),
    ],
)
def test_bad_files_are_refused_with_one_line(tmp_path, attrs, data, match):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f.attrs.update(attrs)
        for k, v in data.items():
            f[k] = v
    with pytest.raises(LatentdynError, match=match) as e:
        open_scenes(p)
    assert "\n" not in str(e.value) and "None" not in str(e.value)  # format errors name what was found


def test_truncated_file_is_refused(scene_file, tmp_path):
    p = tmp_path / "cut.h5"
    p.write_bytes(scene_file.read_bytes()[:2000])
    with pytest.raises(LatentdynError, match="not a readable HDF5"):
        open_scenes(p)


def test_splits_parse_and_assign():
    assert scenes.parse_splits("train=0.8,val=0.1,test=0.1") == {"train": 0.8, "val": 0.1, "test": 0.1}
    for bad in ["train=0.5", "train=a", "train=0.5,train=0.5", "x"]:
        with pytest.raises(LatentdynError):
            scenes.parse_splits(bad)
    parts = scenes.assign_splits(10, {"a": 0.33, "b": 0.33, "c": 0.34}, 0)
    assert sum(len(v) for v in parts.values()) == 10
    assert sorted(np.concatenate(list(parts.values()))) == list(range(10))


@pytest.mark.parametrize(
    "override,match",
    [
        ("physics.radius=6.0", "too large"),
        ("physics.n_balls=0", "must be 1..1000"),
        ("render.profile='square'", "render.profile"),
        ("render.width=31", "aspect"),
        ("physics.mass=[1.0, 2.0]", "one value or 3"),
        ("physics.speed=20.0", "substeps"),
        ("physics.damping=1.5", "damping"),
        ("physics.n_balls=40", "cannot fit"),
        ("physics.n_balls=14", "cannot place"),
        ("render.radiuss=2", "unknown key render.radiuss"),
        ("physics.n_balls='three'", "whole number"),
    ],
)
def test_impossible_definitions_are_refused(override, match, tmp_path):
    with pytest.raises(LatentdynError, match=match):
        cfg = scenes.load_scene("three_balls", [override])
        scenes.sample(cfg, 0, 2)


def test_colour_scene_shapes():
    cfg = scenes.load_scene("gravity_balls", ["scene.length=6"])
    frames, states = scenes.sample(cfg, 0, 3)
    assert frames.shape == (3, 6, 32, 32, 3) and states.shape == (3, 6, 2, 4)
    assert frames[..., 0].max() > 0 and frames[..., 2].max() > 0


def test_workers_are_not_forked_from_a_process_that_imported_torch(tmp_path):
    import torch  # noqa: F401  (the situation that hangs forked workers)

    from latentdyn.scenes import generate as scenes

    cfg = scenes.load_scene("three_balls", ["scene.length=10"])
    pool = scenes._executor(2, cfg, 0)
    try:
        assert pool._mp_context.get_start_method() in ("forkserver", "spawn")
    finally:
        pool.shutdown()
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    scenes.generate(cfg, a, 40, seed=3, workers=2, progress=False)
    scenes.generate(cfg, b, 40, seed=3, workers=1, progress=False)
    assert a.read_bytes() == b.read_bytes()


def test_generate_starts_without_torch():
    """`latentdyn generate` imports no torch, scikit-learn or scipy (seconds of start-up, and a
    forkserver instead of fork for the workers); the package face still resolves its API lazily."""
    import subprocess
    import sys

    code = (
        "import sys, latentdyn, latentdyn.cli.main, latentdyn.api, latentdyn.scenes.generate\n"
        "from latentdyn.analysis.config import AnalyzeConfig\n"
        "assert latentdyn.GenerateConfig.__name__ == 'GenerateConfig' and 'train_vae' in dir(latentdyn)\n"
        "heavy = {'torch', 'sklearn', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "try:\n"
        "    latentdyn.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
        "from latentdyn.analysis import mig\n"
        "assert callable(mig) and callable(latentdyn.analyze)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_a_latents_file_error_names_the_format_found(tmp_path, scene_file):
    from latentdyn.latents.file import open_latents

    p = tmp_path / "plain.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(LatentdynError, match=r"not a latents file \(no 'format' attribute; top level: x\)") as e:
        open_latents(p)
    assert "None" not in str(e.value)
    with pytest.raises(LatentdynError, match=r"format 'latentdyn-scenes': a scene file"):
        open_latents(scene_file)
