"""Rollout metrics on real rendered scenes: the truth reads perfectly, failures score worse.

Frames come from the scene generator and renderer (``latentdyn.scenes``), states from its physics
or written by hand (two balls touching and overlapping, which the region detector merges).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from latentdyn.core.config import to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics import metrics as M
from latentdyn.dynamics import objects as O
from latentdyn.dynamics import rollout as R
from latentdyn.scenes import generate as G


@pytest.fixture(scope="module")
def three():
    """Real three_balls sequences: frames (S, T, 30, 30, 1) in [0, 1], states, ball geometry, config."""
    cfg = G.load_scene("three_balls", ["scene.length=24"])
    fr, st = G.sample(cfg, 0, np.arange(12))
    return fr[:, 10:, ..., None] / 255.0, st[:, 10:].astype(np.float64), O.balls_from_scene(to_dict(cfg)), cfg


def _render(cfg, xy):
    """Frames (S, T, H, W, 1) in [0, 1] of ball centres xy (S, T, n, 2)."""
    S, T, n, _ = xy.shape
    f = cfg.renderer()(np.asarray(xy, np.float32).reshape(S * T, n, 2)) / 255.0
    return f.reshape(S, T, *f.shape[1:], 1)


def _touching(cfg, gap):
    """Hand-made states (1, 6, 3, 4): balls 0 and 1 ``gap`` px apart (2 r = 7.2 px: touching), moving
    together; ball 2 apart. Velocities are the displacements per frame."""
    t = np.arange(6.0)
    st = np.zeros((1, 6, 3, 4))
    st[0, :, 0, :2] = np.stack([9 + 0.5 * t, 15 + 0 * t], -1)
    st[0, :, 1, :2] = np.stack([9 + gap + 0.5 * t, 15 + 0.2 * t], -1)
    st[0, :, 2, :2] = np.stack([22 - 0.4 * t, 6 + 0.3 * t], -1)
    st[..., 2:] = np.gradient(st[..., :2], axis=1)
    return st


def test_ball_geometry_comes_from_the_scene_definition():
    b = O.balls_from_scene(to_dict(G.load_scene("three_balls")))
    np.testing.assert_allclose(b.radii, [3.6] * 3)  # radius 1.2 box units x 3 px per unit
    assert b.power == 4 and b.penalty(30, 30) == pytest.approx(np.hypot(30, 30) / 4)
    light = O.balls_from_scene(to_dict(G.load_scene("light_ball")))
    np.testing.assert_allclose(light.radii, [2.5])  # render.radius, not the collision radius 3
    assert light.power == 1
    assert O.balls_from_scene(None) is None


def test_true_frames_score_perfectly(three):
    truth, st, balls, cfg = three
    r = R.score(truth, truth, st, 0.3, balls)
    assert r["all_present"] == [1.0] * truth.shape[1] and r["vanished_frames"] == 0 and r["split_frames"] == 0
    assert max(r["position_error_px"]) < 0.05
    assert np.isnan(r["direction_error_deg"][0]) and np.nanmax(r["direction_error_deg"]) < 0.05
    assert np.isinf(r["psnr"]).all() and np.allclose(r["ssim"], 1.0, atol=1e-5) and max(r["se_per_frame"]) == 0
    assert max(r["ae_per_frame"]) == 0 and R._summary(r)["ae_per_frame"] == 0 == R._summary(r)["se_per_frame"]
    cal = O.truth_reading(truth, st, balls)  # the centroid reads the state within 0.05 px
    assert cal["all_present"] == 1.0 and cal["max_centroid_offset_px"] < 0.05


@pytest.mark.parametrize("gap", [7.2, 5.0])
def test_touching_balls_are_present_where_regions_merge(three, gap):
    _, _, balls, cfg = three
    st = _touching(cfg, gap)
    truth = _render(cfg, st[..., :2])
    r = R.score(truth, truth, st, 0.3, balls)
    assert r["all_present"] == [1.0] * 6 and max(r["position_error_px"]) < 0.05
    assert O.truth_reading(truth, st, balls)["max_centroid_offset_px"] < (0.05 if gap >= 7.2 else 0.3)
    # the region detector merges the pair: its reading of the true frames loses a ball in every frame
    reg = R.score(truth, truth, st, 0.3)
    assert reg["all_present"] == [0.0] * 6 and min(reg["position_error_px"]) > 3.0
    desc = R.describe_objects(truth, st, 0.3)
    assert desc["protocol"] == "regions" and desc["truth_reading"]["vanished_frames"] == 6
    # erasing one of the touching pair is seen: its neighbour's light does not count for it
    xy = st[..., :2].copy()
    xy[:, :, 1] = -50.0  # off screen
    gone = R.score(_render(cfg, xy), truth, st, 0.3, balls)
    assert gone["all_present"] == [0.0] * 6 and np.allclose(gone["present_fraction"], 2 / 3)


def test_erased_ball_scores_worse_than_a_1px_shift(three):
    truth, st, balls, cfg = three
    shifted = st[..., :2] + np.array([1.0, 0.0])
    erased = st[..., :2].copy()
    erased[:, :, 0] = -50.0
    s, e = R.score(_render(cfg, shifted), truth, st, 0.3, balls), R.score(_render(cfg, erased), truth, st, 0.3, balls)
    assert s["all_present"] == [1.0] * truth.shape[1] and 0.85 < np.mean(s["position_error_px"]) < 1.05
    assert e["all_present"] == [0.0] * truth.shape[1] and np.allclose(e["present_fraction"], 2 / 3)
    assert e["vanished_frames"] == e["frames"] == truth.shape[0] * truth.shape[1]
    # a lost ball costs the penalty, so the frame's mean is at least a third of it
    assert min(e["position_error_px"]) >= balls.penalty(30, 30) / 3 > 3 * max(s["position_error_px"])
    # a black prediction loses every ball: the penalty everywhere, not a NaN left out of the mean
    black = R.score(np.zeros_like(truth), truth, st, 0.3, balls)
    assert np.allclose(black["position_error_px"], balls.penalty(30, 30)) and black["all_present"] == [0.0] * truth.shape[1]
    assert np.allclose(black["direction_error_deg"][1:], 180.0)
    assert R._summary(e)["position_error_px"] > R._summary(s)["position_error_px"]


def test_blur_lowers_psnr_and_ssim(three):
    truth = three[0]
    scores = []
    for sigma in (0.5, 1.0, 2.0):
        blurred = ndimage.gaussian_filter(truth, (0, 0, sigma, sigma, 0))
        scores.append((np.mean(M.psnr(blurred, truth)), np.mean(M.ssim(blurred, truth))))
    (p1, s1), (p2, s2), (p3, s3) = scores
    assert np.isfinite(p1) and p1 > p2 > p3 and 1.0 > s1 > s2 > s3
    # PSNR by its definition: a uniform 0.1 offset has MSE 0.01, 20 dB
    np.testing.assert_allclose(M.psnr(np.clip(truth, 0, 0.9) + 0.1, np.clip(truth, 0, 0.9)), 20.0, rtol=1e-6)
    assert M.psnr(truth, truth).shape == truth.shape[:2] and M.ssim(truth, truth).shape == truth.shape[:2]
    with pytest.raises(LatentdynError, match="must both be frames"):
        M.ssim(truth[0], truth)


def test_pixel_errors_are_openstl_mse_and_mae():
    """A known perturbation on 64 x 64 frames: OpenSTL's MSE and MAE (Tan et al. 2023,
    ``openstl/core/metrics.py``: mean over sequences and frames of the sum over pixels)."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, (3, 10, 64, 64, 1))  # (S, H, h, w, C)
    pred = truth.copy()
    pred[:, :, :8, :8] += 0.1  # 64 pixels off by 0.1 in every frame
    pred[1, 4] = 1.0 - pred[1, 4]  # one frame inverted on top: errors differ by frame and sequence
    r = R.score(pred, truth, None, 0.3)
    d = pred - truth
    openstl_mse = np.mean(d ** 2, axis=(0, 1)).sum()  # OpenSTL's MSE(pred, true), spatial_norm=False
    openstl_mae = np.mean(np.abs(d), axis=(0, 1)).sum()
    s = R._summary(r)
    assert s["se_per_frame"] == pytest.approx(openstl_mse, rel=1e-12) and s["ae_per_frame"] == pytest.approx(openstl_mae, rel=1e-12)
    # the unperturbed steps: 64 pixels x 0.1^2 and x 0.1 exactly
    np.testing.assert_allclose(np.delete(r["se_per_frame"], 4), 64 * 0.01, rtol=1e-9)
    np.testing.assert_allclose(np.delete(r["ae_per_frame"], 4), 64 * 0.1, rtol=1e-9)
    np.testing.assert_allclose(M.absolute_error(pred, truth), np.abs(d).sum((-3, -2, -1)))


def test_wrong_direction_scores_larger_direction_error(three):
    _, _, balls, cfg = three
    st = _touching(cfg, 12.0)  # three separate balls, each moving a little per frame
    truth = _render(cfg, st[..., :2])
    back = st[..., :2].copy()
    back = 2 * back[:, :1] - back  # the same moves backwards from the same start
    good = R.score(truth, truth, st, 0.3, balls)
    wrong = R.score(_render(cfg, back), truth, st, 0.3, balls)
    assert wrong["all_present"][:3] == [1.0] * 3  # still present (within 1.3 px) for the first steps
    assert np.nanmin(wrong["direction_error_deg"][1:3]) > 170 and np.nanmax(good["direction_error_deg"]) < 1.0


def test_direction_rule_analytic():
    pos = np.zeros((1, 3, 1, 2))
    pos[0, :, 0, 0] = [0.0, 1.0, 2.0]  # predicted: +x
    true = pos.copy()
    true[0, :, 0] = [[0, 0], [0, 1], [0, 2]]  # truth: +y
    present = np.ones((1, 3, 1), bool)
    np.testing.assert_allclose(O.direction_errors(pos, present, true)[0, :, 0], [90.0, 90.0])
    np.testing.assert_allclose(O.direction_errors(pos, present, -pos)[0, :, 0], [180.0, 180.0])
    present[0, 2] = False  # lost at step 2: 180 for the move into it
    np.testing.assert_allclose(O.direction_errors(pos, present, pos)[0, :, 0], [0.0, 180.0])
    frozen = np.zeros_like(pos)  # a prediction that stops: 90, not left out
    np.testing.assert_allclose(O.direction_errors(frozen, np.ones((1, 3, 1), bool), pos)[0, :, 0], [90.0, 90.0])
    assert np.isnan(O.direction_errors(pos, np.ones((1, 3, 1), bool), frozen)).all()  # truth at rest: undefined


def test_region_protocol_without_states_reads_the_truth(three):
    truth, st, balls, cfg = three
    n = st.shape[2]
    desc = R.describe_objects(truth, None, 0.3, n_balls=n)
    reg = R.score(truth, truth, None, 0.3, n_balls=n)
    # truth against its own regions: no error but the penalty for each ball the detector merged away
    merged = 1 - np.asarray(reg["all_present"])  # (H,) fraction of frames with fewer regions than balls
    pen = np.hypot(30, 30) / 4
    assert desc["protocol"] == "regions" and desc["truth_reading"]["vanished_frames"] == reg["vanished_frames"] > 0
    assert np.all(np.asarray(reg["position_error_px"]) >= merged * pen / n - 1e-9)
    assert np.allclose(np.asarray(reg["position_error_px"])[merged == 0], 0.0)
    assert R.describe_objects(truth, None, 0.3)["protocol"] is None and "position_error_px" not in R.score(truth, truth, None, 0.3)
    assert R.describe_objects(truth, st, 0.3, balls)["protocol"] == "states"


@pytest.mark.parametrize("scene, sets, n", [("three_balls", ["physics.n_balls=5"], 5), ("gravity_balls", [], 2)])
def test_other_ball_scenes_read_perfectly_and_count_a_lost_ball(scene, sets, n):
    """experiments/ball_scenes.toml's two scenes: five crowded balls (they touch often) and two RGB
    balls of unequal radii under gravity. The truth reads 100% present at 0 px; a prediction with
    one ball moved out of the frame loses it in every frame and pays the penalty."""
    cfg = G.load_scene(scene, [*sets, "scene.length=30"])
    fr, st = G.sample(cfg, 3, np.arange(10))
    truth = fr[:, 10:] / 255.0
    truth = truth[..., None] if truth.ndim == 4 else truth  # (S, T, H, W, C)
    st = st[:, 10:].astype(np.float64)
    balls = O.balls_from_scene(to_dict(cfg))
    assert balls.n == n == st.shape[2]
    r = R.score(truth, truth, st, 0.3, balls)
    assert r["all_present"] == [1.0] * truth.shape[1] and max(r["position_error_px"]) < 0.05
    S, T, h, w, C = truth.shape
    xy = st[..., :2].copy()
    xy[:, :, 0] = -50.0  # ball 0 gone
    lost = cfg.renderer()(np.asarray(xy, np.float32).reshape(S * T, n, 2)).reshape(S, T, h, w, C) / 255.0
    e = R.score(lost, truth, st, 0.3, balls)
    assert e["all_present"] == [0.0] * T and np.allclose(e["present_fraction"], (n - 1) / n)
    assert min(e["position_error_px"]) >= balls.penalty(h, w) / n - 1e-9


def test_sprites_read_perfectly_and_count_a_lost_sprite():
    """Moving digits (experiments/moving_fashion.toml): each sprite is an object at its true centre
    (its inscribed disc, radius size / 2). Real sprite motion from the scene's simulator, sprites
    drawn by hand (a ring and a bar, so no dataset is needed) and pasted by the scene's renderer.
    The truth reads 100% present at 0 px; a blurred prediction keeps both sprites at a small error;
    a prediction without sprite 1 loses it in every frame and pays the penalty."""
    from latentdyn.scenes import sprites as SP

    cfg = G.load_scene("moving_fashion")
    scene = to_dict(cfg)
    balls = O.balls_from_scene(scene)
    assert balls.name == "sprite" and balls.n == 2 and np.allclose(balls.radii, 14.0) and balls.penalty(64, 64) == 28.0
    st, _ = SP.simulate(cfg, 5, np.arange(6))  # (6, 20, 2, 4): centres in pixels
    yy, xx = np.mgrid[:28, :28] - 13.5
    ring = ((np.hypot(yy, xx) > 7) & (np.hypot(yy, xx) < 12)) * 220
    bar = ((np.abs(xx) < 4) & (np.abs(yy) < 12)) * 250
    imgs = np.broadcast_to(np.stack([ring, bar])[None, :, :, :, None], (6, 2, 28, 28, 1)).astype(np.uint8)
    truth = SP.render(st, imgs, 64, 64)[..., None] / 255.0  # (6, 20, 64, 64, 1)
    st = st.astype(np.float64)
    r = R.score(truth, truth, st, 0.3, balls)
    assert r["all_present"] == [1.0] * 20 and max(r["position_error_px"]) < 1e-9
    assert "count_exact" not in r  # sprites have no ball shape to count
    desc = R.describe_objects(truth, st, 0.3, balls)
    assert desc["objects"] == "sprite" and "true sprite's disc" in desc["presence"] and "count" not in desc
    assert desc["truth_reading"]["all_present"] == 1.0
    blurred = ndimage.gaussian_filter(truth, (0, 0, 1.5, 1.5, 0))
    b = R.score(blurred, truth, st, 0.3, balls)
    assert b["all_present"] == [1.0] * 20 and 0 < np.mean(b["position_error_px"]) < 1.0
    lost = SP.render(st[:, :, :1], imgs[:, :1], 64, 64)[..., None] / 255.0  # sprite 1 never drawn
    e = R.score(lost, truth, st, 0.3, balls)
    assert np.mean(e["all_present"]) < 0.2 and np.mean(e["position_error_px"]) > 10 * np.mean(b["position_error_px"])
    # where the discs do not overlap the lost sprite is absent in every frame, at the penalty; where
    # they overlap, the light both sprites share may still read it present (here in 9% of the frames,
    # though the discs overlap in 84%)
    loc = O.locate(O.brightness(lost).reshape(-1, 64, 64), O.brightness(truth).reshape(-1, 64, 64),
                   st[..., :2].reshape(-1, 2, 2), balls)
    apart = np.linalg.norm(st[:, :, 0, :2] - st[:, :, 1, :2], axis=-1).reshape(-1) >= 28.0
    assert apart.sum() > 10 and loc["present"][apart, 0].all() and not loc["present"][apart, 1].any()
    assert (O.position_errors(loc, 28.0)[apart, 1] == 28.0).all()
