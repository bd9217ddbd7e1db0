"""Three splits: training selects on val and never reads test."""

from __future__ import annotations

import numpy as np
import pytest

from latentdyn.core.errors import LatentdynError
from latentdyn.datasets.splits import val_indices
from latentdyn.vae.train import train_vae

from tests.helpers import need_fashion_mnist, vae_config


def test_val_is_a_seeded_disjoint_part_of_the_training_set():
    tr, va = val_indices(60000, 5000, seed=0)
    assert len(tr) == 55000 and len(va) == 5000 and not np.intersect1d(tr, va).size
    assert np.array_equal(np.union1d(tr, va), np.arange(60000))
    tr2, va2 = val_indices(60000, 5000, seed=0)
    assert np.array_equal(va, va2) and not np.array_equal(va, val_indices(60000, 5000, seed=1)[1])
    with pytest.raises(LatentdynError, match="val_size 60000"):
        val_indices(60000, 60000)


def _forbid_test(monkeypatch):
    """Make every way of reading a test split raise."""
    from latentdyn import datasets
    from latentdyn.scenes.file import SceneFile

    real_load, real_split = datasets.load, SceneFile.split_indices

    def load(name, split="train", *a, **k):
        if split == "test":
            raise AssertionError("training read the test split of a dataset")
        return real_load(name, split, *a, **k)

    def split_indices(self, split):
        if split == "test":
            raise AssertionError("training read the test split of a scene file")
        return real_split(self, split)

    monkeypatch.setattr(datasets, "load", load)
    monkeypatch.setattr(SceneFile, "split_indices", split_indices)


def test_training_on_a_scene_file_never_reads_test(tmp_path, monkeypatch):
    import latentdyn

    data = tmp_path / "ball.h5"
    latentdyn.generate(scene="light_ball", length=6, sequences=20, out=data)  # train/val/test by default
    _forbid_test(monkeypatch)
    row = train_vae(vae_config(data, epochs=2), tmp_path / "vae", progress=False, verbose=False)
    assert "val_elbo" in row
    lat = latentdyn.encode(vae=tmp_path / "vae", data=data, out=tmp_path / "lat.h5")  # encoding reads every sequence
    monkeypatch.undo()
    _forbid_test(monkeypatch)
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.dynamics.train import train_dynamics

    row = train_dynamics(TrainDynamicsConfig(latents=str(lat.out), epochs=1, context=2, horizon=3, device="cpu"),
                         tmp_path / "dyn", progress=False, verbose=False)
    assert "val_loss" in row
    from latentdyn.core.config import load_toml

    assert load_toml(tmp_path / "vae" / "config.toml")["val_split"] == "val"
    assert load_toml(tmp_path / "dyn" / "config.toml")["val_split"] == "val"


def test_a_scene_file_without_val_is_selected_on_its_training_loss_not_test(tmp_path, monkeypatch):
    import latentdyn

    data = tmp_path / "ball.h5"
    latentdyn.generate(scene="light_ball", length=6, sequences=12, split="train=0.5,test=0.5", out=data)
    _forbid_test(monkeypatch)
    row = train_vae(vae_config(data, epochs=1), tmp_path / "vae", progress=False, verbose=False)
    assert "val_elbo" not in row and "train_elbo" in row


def test_training_on_fashion_mnist_never_reads_test(tmp_path, monkeypatch):
    need_fashion_mnist()
    _forbid_test(monkeypatch)
    row = train_vae(vae_config("fashion-mnist", epochs=1, limit=2000, val_size=1000), tmp_path / "vae", progress=False,
                    verbose=False)
    assert "val_elbo" in row
    import json

    ck = json.loads(json.dumps(__import__("latentdyn.engine.checkpoint", fromlist=["x"]).load_checkpoint(
        tmp_path / "vae" / "best.pt")["data"]))
    assert ck["val_split"] == "val" and ck["n_train"] == 2000
