"""``interpolate`` end to end on a tiny scene file: the numbers it reports and where its RBF centres come from."""

import json

import numpy as np
import pytest

from latentdyn.core.errors import LatentdynError


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory):
    from latentdyn.scenes import generate as scenes
    from latentdyn.vae.config import TrainVAEConfig
    from latentdyn.vae.train import train_vae

    d = tmp_path_factory.mktemp("interp")
    scenes.generate(scenes.load_scene("light_ball", ["scene.length=8"]), d / "ball.h5", 10, seed=0,
                    splits={"train": 0.7, "test": 0.3}, progress=False)
    cfg = TrainVAEConfig(data=str(d / "ball.h5"), arch="mlp", latent_dim=2, epochs=1, device="cpu")
    train_vae(cfg, d / "vae", progress=False, verbose=False)
    return d


def test_interpolate_reports_both_curves_measured_alike_and_training_centres(tiny_vae, tmp_path):
    from latentdyn.geometry.interpolate import interpolate
    from latentdyn.scenes.file import open_scenes

    with open_scenes(tiny_vae / "ball.h5") as sf:
        n_train = len(sf.split_indices("train")) * 8  # frames of the training split
        n_test = len(sf.split_indices("test")) * 8
    assert n_train != n_test
    res = interpolate(tiny_vae / "vae", None, tmp_path / "a", pairs=2, steps=3, n_points=8, device="cpu", variance_aware=True)
    assert res["centres"] == {"split": "train", "from": n_train}  # not the test split the pairs come from
    saved = json.loads((tmp_path / "a" / "interpolation.json").read_text())
    assert saved["centres"] == res["centres"] and saved["split"] == "test"
    for p in saved["pairs"]:
        assert p["length_ratio"] == pytest.approx(p["geodesic_length"] / p["line_length"])
        assert p["energy_ratio"] == pytest.approx(p["length_ratio"] ** 2)  # both energies at constant speed: L^2 / 2
        assert p["line_energy"] == pytest.approx(p["line_length"] ** 2 / 2)
        assert p["fallback"] == (p["length_ratio"] == 1.0)
    given = interpolate(tiny_vae / "vae", None, tmp_path / "b", pairs=1, steps=2, n_points=8, device="cpu",
                        variance_aware=True, centres=np.zeros((5, 2), np.float32))
    assert given["centres"] == {"split": "given", "from": 5}
    with pytest.raises(LatentdynError, match="centres: give latent means \\(N, 2\\)"):
        interpolate(tiny_vae / "vae", None, tmp_path / "c", pairs=2, steps=3, n_points=8, device="cpu",
                    variance_aware=True, centres=np.zeros((5, 3)))
