"""The demo's time estimate (latentdyn.pipeline.estimate): from timed steps of its own models, scaled by its step counts."""

import pytest

from latentdyn.pipeline.estimate import estimate
from latentdyn.pipeline.plan import load_experiment, plan


def _estimate(tmp_path, *overrides):
    exp = load_experiment("bouncing_ball", list(overrides), "demo")
    return estimate(exp, plan(exp, tmp_path / "run"))


def test_the_estimate_counts_each_training_stage_by_its_steps(tmp_path, monkeypatch):
    from latentdyn.pipeline import estimate as E

    real = _estimate(tmp_path)  # timed on this machine's steps
    assert set(real["parts"]) == {"vae", "dynamics", "other stages"} and all(v > 0 for v in real["parts"].values())
    monkeypatch.setattr(E, "_time_steps", lambda step, n=12: 0.01)  # a fixed step time: the counting alone
    base = _estimate(tmp_path)
    # the demo: 800 training sequences of 40 frames; VAE batch 128, 8 epochs; GRU 8 windows per sequence, batch 512,
    # 50 epochs of context 5 and horizon 20, the horizon growing 1, 1, 1, 2, ... over the first 25 (horizon_at)
    assert base["parts"]["vae"] == pytest.approx(0.01 * 8 * 250 * (1 + E.VALIDATION))
    steps = sum(5 + min(20, 1 + 19 * (e - 1) // 25) for e in range(1, 51)) / 25  # full-horizon epochs
    assert 30 < steps < 40
    assert base["parts"]["dynamics"] == pytest.approx(0.01 * steps * 13 * (1 + E.VALIDATION))
    assert base["seconds"] == pytest.approx(sum(base["parts"].values()))
    flat = _estimate(tmp_path, "dynamics.horizon_curriculum=0")  # no curriculum: every epoch at the full horizon
    assert flat["parts"]["dynamics"] == pytest.approx(0.01 * 50 * 13 * (1 + E.VALIDATION))
    longer = _estimate(tmp_path, "vae.epochs=16", "dynamics.epochs=100", "dynamics.horizon_curriculum=0")
    assert longer["parts"]["vae"] == pytest.approx(2 * base["parts"]["vae"])
    assert longer["parts"]["dynamics"] == pytest.approx(2 * flat["parts"]["dynamics"])


def test_nothing_to_size_without_a_generate_stage(tmp_path):
    exp = load_experiment("latent_maps", [], "quick")
    assert estimate(exp, plan(exp, tmp_path / "run")) is None
