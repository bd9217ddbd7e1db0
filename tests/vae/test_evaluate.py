"""``evaluate_run`` names its protocol and reports a bound as a log-probability only when it is one."""

from __future__ import annotations

import json
import math

import pytest

from latentdyn.vae.evaluate import evaluate_run
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.train import train_vae


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory):
    from latentdyn.scenes import generate as scenes

    cfg = scenes.load_scene("light_ball", ["scene.length=8"])
    p = tmp_path_factory.mktemp("eval") / "ball.h5"
    scenes.generate(cfg, p, 20, seed=0, splits={"train": 0.75, "val": 0.25}, progress=False)
    return p


def _train(scene, out, likelihood, binarize):
    cfg = TrainVAEConfig(data=str(scene), arch="mlp", latent_dim=2, likelihood=likelihood, binarize=binarize, epochs=1,
                         batch_size=32, device="cpu")
    train_vae(cfg, out, progress=False, verbose=False)
    return evaluate_run(out, split="val", iw_samples=8, progress=False)


def test_8bit_discretized_logistic_reports_bounds_and_bits_per_dim(tiny_scene, tmp_path):
    res = _train(tiny_scene, tmp_path / "run", "discretized-logistic", "none")
    assert res["protocol"] == {"likelihood": "discretized-logistic", "data": "8bit", "is_log_probability": True}
    assert res["n_dims"] == 28 * 28 and res["n"] == 5 * 8
    assert res["elbo"] < 0 and res["log_px_iw"] >= res["elbo"] - 1.0  # log-probabilities of discrete data
    assert math.isclose(res["elbo_bits_per_dim"], -res["elbo"] / (784 * math.log(2)), rel_tol=1e-12)
    assert math.isclose(res["iwae_bits_per_dim"], -res["log_px_iw"] / (784 * math.log(2)), rel_tol=1e-12)
    assert 0 < res["iwae_bits_per_dim"] < 8.0  # better than uniform over the 256 levels
    assert json.loads((tmp_path / "run" / "eval_val.json").read_text()) == res


def test_bernoulli_on_grey_values_is_reported_as_a_training_loss_only(tiny_scene, tmp_path):
    res = _train(tiny_scene, tmp_path / "run", "bernoulli", "none")
    assert res["protocol"] == {"likelihood": "bernoulli", "data": "8bit", "is_log_probability": False}
    for k in ("elbo", "rec", "log_px_iw", "elbo_bits_per_dim", "iwae_bits_per_dim"):
        assert k not in res, k
    assert res["bernoulli_ce"] > 0 and math.isclose(res["training_loss"], res["bernoulli_ce"] + res["kl"], rel_tol=1e-12)
    assert res["iw_samples"] == 0 and "no log-probability" in res["note"]


def test_static_binarisation_bernoulli_is_a_log_probability_without_bits_per_dim(tiny_scene, tmp_path):
    res = _train(tiny_scene, tmp_path / "run", "bernoulli", "static")
    assert res["protocol"] == {"likelihood": "bernoulli", "data": "binary-static", "is_log_probability": True}
    assert res["log_px_iw"] >= res["elbo"] - 1.0 and "bernoulli_ce" not in res
    assert "elbo_bits_per_dim" not in res  # bits/dim are reported for the 8-bit protocol
