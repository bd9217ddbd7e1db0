"""Per-slot analysis of object-slot VAEs: slots matched to balls and reordered (analytic case), the
per-slot scores perfect on codes that are the true states and worse on worse codes, and the
analyze and latent-map commands on a slot VAE end to end."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from latentdyn.analysis.factors import factor_names
from latentdyn.analysis.run import _mi_heatmap
from latentdyn.analysis.slots import analyze_slots, slot_column_names
from latentdyn.cli.main import cli
from latentdyn.vae.slot_match import codes_by_object


def test_codes_by_object_reorders_slots_to_the_balls():
    K, D = 3, 2
    codes = np.array([[10, 11, 20, 21, 30, 31],  # frame 0: slot 0 at (0, 0), slot 1 at (9, 9), slot 2 at (5, 0)
                      [40, 41, 50, 51, 60, 61]], float)
    pos = np.array([[[0, 0], [9, 9], [5, 0]],
                    [[5, 5], [0, 1], [8, 8]]], float)
    xy = np.array([[[9, 8], [0, 0]],  # frame 0: ball 0 near slot 1, ball 1 at slot 0
                   [[0, 0], [8, 8]]], float)  # frame 1: ball 0 near slot 1 (1 px), ball 1 at slot 2
    by = codes_by_object(codes, pos, xy, (K, D))
    np.testing.assert_array_equal(by["slot"], [[1, 0], [1, 2]])
    np.testing.assert_array_equal(by["order"], [[1, 0, 2], [1, 2, 0]])  # balls' slots, then the spare
    np.testing.assert_allclose(by["distance"], [[1, 0], [1, 0]])
    np.testing.assert_array_equal(by["objects"], [[[20, 21], [10, 11]], [[50, 51], [60, 61]]])
    np.testing.assert_array_equal(by["flat"], [[20, 21, 10, 11, 30, 31], [50, 51, 60, 61, 40, 41]])
    assert slot_column_names(K, D, 2) == ["b0.z1", "b0.z2", "b1.z1", "b1.z2", "spare1.z1", "spare1.z2"]


class StateSlots(torch.nn.Module):
    """Slots whose first two numbers are their position in pixels (the slot VAE's slot_positions)."""

    latent_shape = (3, 4)

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def slot_positions(self, z):
        return z.view(len(z), 3, 4)[..., :2]


def _split(seed: int, n_frames: int = 600, noisy_velocity: bool = False) -> dict:
    """Two balls' states as factors, and codes made of them: ball b's x, y, vx, vy in a slot picked at
    random per frame, the third slot spare (far away); ``noisy_velocity``: noise in place of vx, vy."""
    rng = np.random.default_rng(seed)
    st = np.concatenate([rng.uniform(3, 27, (n_frames, 2, 2)), rng.uniform(-1, 1, (n_frames, 2, 2))], -1)  # (N, 2, 4)
    slots = np.concatenate([st, np.full((n_frames, 1, 4), -100.0)], 1)  # (N, 3, 4)
    if noisy_velocity:
        slots[:, :2, 2:] = rng.normal(size=(n_frames, 2, 2))
    perm = np.argsort(rng.random((n_frames, 3)), axis=1)
    codes = np.take_along_axis(slots, perm[..., None], axis=1).reshape(n_frames, 12)
    return {"mu": codes, "logvar": np.full_like(codes, -2.0), "xy": st[..., :2], "factors": st.reshape(n_frames, 8),
            "names": factor_names(2), "continuous": np.ones(8, bool)}


def _scores(tmp_path, noisy: bool) -> dict:
    vae = type("Handle", (), {})()
    vae.latent_shape, vae.model = (3, 4), StateSlots()
    vae.decode = lambda z: np.broadcast_to(np.tanh(np.asarray(z)[:, :1, None, None] / 30), (len(z), 6, 6, 1))
    out = tmp_path / ("noisy" if noisy else "truth")
    out.mkdir()
    return analyze_slots(vae, _split(1, noisy_velocity=noisy), _split(2, noisy_velocity=noisy), out, 20, "lasso", 10, 0,
                         2, 3, 1.0, 4.0, "test", _mi_heatmap), out


def test_per_slot_scores_are_perfect_on_the_states_and_worse_on_worse_codes(tmp_path):
    good, out = _scores(tmp_path, noisy=False)
    bad, _ = _scores(tmp_path, noisy=True)
    assert good["matched_distance_px"]["test"] < 1e-5  # float32 positions
    po = good["per_object"]["test"]
    assert po["mig"] > 0.85 and min(po["mig_per_factor"].values()) > 0.85  # each of a slot's numbers is one factor
    mi = np.array(po["mi_normalized"])
    assert mi.shape == (4, 4) and np.all(np.diag(mi) > 0.95)
    dci = good["per_object"]["fit train, score test"]["dci"]
    assert dci["disentanglement"] > 0.9 and dci["informativeness_test"] > 0.99
    flat = np.array(good["matched"]["test"]["mi_normalized"])  # (8 factors, 12 columns): ball b in columns 4b..4b+3
    assert flat.shape == (8, 12) and np.all(flat[np.arange(8), np.arange(8)] > 0.95) and flat[:, 8:].max() < 0.05
    assert good["matched"]["test"]["mig"] > 0.85
    bpo = bad["per_object"]["test"]
    assert bpo["mig_per_factor"]["vx"] < 0.1 and bpo["mig_per_factor"]["vy"] < 0.1 and bpo["mig"] < po["mig"] - 0.3
    assert bad["per_object"]["fit train, score test"]["dci"]["informativeness_test"] < 0.6
    assert good["columns"][:4] == ["b0.z1", "b0.z2", "b0.z3", "b0.z4"] and good["latent_shape"] == [3, 4]
    for f in ("mi_heatmap_slots.png", "mi_heatmap_per_slot.png", "traversals_slots.png", "traversals_slots.mp4"):
        assert (out / f).stat().st_size > 1000, f


def test_analyze_and_latent_map_of_a_slot_vae(slot_pipeline, tmp_path):
    d = slot_pipeline
    run = CliRunner().invoke
    r = run(cli, ["analyze", "--vae", str(d / "vae"), "--out", str(tmp_path / "an"), "--limit", "0", "--dci-estimators", "5",
                  "--traversal-codes", "2", "--steps", "3", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "slots matched to balls (" in r.output and "traversals_slots.png" in r.output
    res = json.loads((tmp_path / "an" / "analysis.json").read_text())
    s = res["slots"]
    assert s["latent_shape"] == [4, 3] and s["balls"] == 3 and len(s["columns"]) == 12 and s["columns"][-1] == "spare1.z3"
    assert np.array(s["matched"]["test"]["mi_normalized"]).shape == (12, 12)
    assert np.array(s["per_object"]["test"]["mi_normalized"]).shape == (4, 3)
    assert s["per_object"]["samples"] == {"train": 6 * 12 * 3, "test": 3 * 12 * 3}
    assert s["matched_distance_px"]["test"] >= 0 and 0 <= s["per_object"]["test"]["mig"] <= 1
    for f in ("mi_heatmap_slots.png", "mi_heatmap_per_slot.png", "traversals_slots.png", "traversals_slots.gif"):
        assert (tmp_path / "an" / f).stat().st_size > 1000 and f in str(res["figures"])
    r = run(cli, ["latent-map", "--vae", str(d / "vae"), "--out", str(tmp_path / "map"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "map" / "slot_map.png").stat().st_size > 1000
    from latentdyn.pipeline.report.html import Page
    from latentdyn.pipeline.report.sections import _section_analyze, _section_latent_map

    html = _section_analyze(Page(tmp_path), tmp_path / "an", "analysis")
    assert "Object slots, matched to the balls" in html and "traversals_slots.png" in html
    assert "slot_map.png" in _section_latent_map(Page(tmp_path), tmp_path / "map", "latent_map")
    arrays = np.load(tmp_path / "map" / "latent_map.npz")
    assert arrays["slot_codes"].shape == (3 * 12 * 3, 3) and arrays["slot_distance"].shape == (3 * 12, 3)
