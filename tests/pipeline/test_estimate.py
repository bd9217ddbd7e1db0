"""The demo's time estimate (latentdyn.pipeline.estimate): from timed steps of its own models, scaled by its step counts."""

import pytest

from latentdyn.pipeline.estimate import estimate
from latentdyn.pipeline.plan import load_experiment, plan


def _estimate(tmp_path, *overrides):
    exp = load_experiment("bouncing_ball", list(overrides), "demo")
    return estimate(exp, plan(exp, tmp_path / "run"))


def test_the_estimate_counts_each_training_stage_by_its_steps(tmp_path):
    base = _estimate(tmp_path)
    assert set(base["parts"]) == {"vae", "dynamics", "other stages"}
    assert all(v > 0 for v in base["parts"].values())
    assert base["seconds"] == pytest.approx(sum(base["parts"].values()))
    longer = _estimate(tmp_path, "vae.epochs=16", "dynamics.epochs=120")  # twice the demo's epochs
    assert 1.3 < longer["parts"]["vae"] / base["parts"]["vae"] < 3.0  # step timings are noisy; the steps double
    assert 1.3 < longer["parts"]["dynamics"] / base["parts"]["dynamics"] < 3.0


def test_nothing_to_size_without_a_generate_stage(tmp_path):
    exp = load_experiment("latent_maps", [], "quick")
    assert estimate(exp, plan(exp, tmp_path / "run")) is None
