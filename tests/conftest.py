"""Shared fixtures: small scene definitions and files made once per session."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# A fixed thread count: bit-identical replays (resume, same seed) hold at a fixed count, and a conv
# model's floats depend on it (latentdyn.engine.threads); tests/engine/test_threads.py clears it.
os.environ.setdefault("LATENTDYN_THREADS", str(min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def three_balls():
    from latentdyn.scenes import generate as scenes

    return scenes.load_scene("three_balls")


@pytest.fixture(scope="session")
def light_ball():
    from latentdyn.scenes import generate as scenes

    return scenes.load_scene("light_ball")


@pytest.fixture(scope="session")
def scene_file(tmp_path_factory, three_balls):
    """A small three_balls file: 24 sequences of 20 frames, seed 7."""
    from latentdyn.scenes import generate as scenes

    cfg = scenes.load_scene("three_balls", ["scene.length=20"])
    path = tmp_path_factory.mktemp("scenes") / "three.h5"
    scenes.generate(cfg, path, 24, seed=7, splits={"train": 0.75, "test": 0.25}, progress=False)
    return path


@pytest.fixture(scope="session")
def slot_pipeline(tmp_path_factory):
    """A slot VAE (K = 4, D = 3, 1 epoch) on 12 three_balls sequences of 12 frames, 16 x 16, and its latents."""
    from click.testing import CliRunner

    from latentdyn.cli.main import cli
    from latentdyn.scenes import generate as scenes

    d = tmp_path_factory.mktemp("slots")
    scenes.generate(scenes.load_scene("three_balls", ["scene.length=12", "render.width=16", "render.height=16"]),
                    d / "balls.h5", 12, seed=0, splits={"train": 0.5, "val": 0.25, "test": 0.25}, progress=False)
    run = CliRunner().invoke
    r = run(cli, ["train", "vae", "--data", str(d / "balls.h5"), "--out", str(d / "vae"), "--arch", "slots", "--slots", "4",
                  "--slot-dim", "3", "--latent-dim", "12", "--width", "8", "--epochs", "1", "--device", "cpu", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = run(cli, ["encode", "--vae", str(d / "vae"), "--data", str(d / "balls.h5"), "--out", str(d / "lat.h5")])
    assert r.exit_code == 0, r.output
    return d


@pytest.fixture
def rng():
    return np.random.default_rng(0)
