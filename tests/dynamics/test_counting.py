"""The count of ball-shaped objects per frame (``counting``): the truth reads its count, melted balls do not.

Frames come from the scene generator and renderer (``latentdyn.scenes``); the count reads them
without their states, knowing only the balls' shape (``objects.Balls``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from latentdyn.core.config import to_dict
from latentdyn.dynamics import counting as C
from latentdyn.dynamics import objects as O
from latentdyn.dynamics import rollout as R
from latentdyn.scenes import generate as G
from latentdyn.scenes.render import Renderer

SCENES = {  # label -> scene, overrides
    "three_balls": ("three_balls", []),
    "light_ball": ("light_ball", []),
    "gravity_balls": ("gravity_balls", []),  # two RGB balls of unequal radii and brightness
    "five_glows": ("three_balls", ["physics.n_balls=5", "render.profile=gaussian"]),  # crowded gaussian glows
}


def _scene(label, sequences=10, length=30):
    """True frames (S, T, H, W, C) in [0, 1], states (S, T, n, 4), the balls and the config."""
    scene, sets = SCENES[label]
    cfg = G.load_scene(scene, [*sets, f"scene.length={length}"])
    fr, st = G.sample(cfg, 3, np.arange(sequences))
    fr = (fr if fr.ndim == 5 else fr[..., None]) / 255.0
    return fr, st.astype(np.float64), O.balls_from_scene(to_dict(cfg)), cfg


def _render(cfg, xy):
    """Frames (S, T, H, W, C) in [0, 1] of ball centres xy (S, T, n, 2)."""
    S, T, n, _ = xy.shape
    f = cfg.renderer()(np.asarray(xy, np.float32).reshape(S * T, n, 2)) / 255.0
    return f.reshape(S, T, *f.shape[1:3], -1)


@pytest.mark.parametrize("label", list(SCENES))
def test_the_truth_reads_its_count_and_blurred_balls_read_fewer(label):
    truth, st, balls, _ = _scene(label)
    n = st.shape[2]
    assert C.truth_count(truth, n, balls) >= 0.99
    assert R.describe_objects(truth, st, 0.3, balls)["truth_reading"]["count_exact"] >= 0.99
    r = float(balls.radii.min())
    melted = ndimage.gaussian_filter(truth, (0, 0, r, r, 0))  # sigma = one radius: dim, wide blobs
    c = C.count_balls(O.brightness(melted).reshape(-1, *truth.shape[2:4]), balls)
    assert np.mean(c < n) >= 0.95


@pytest.mark.parametrize("label", ["three_balls", "five_glows"])
def test_touching_balls_count_two_and_merged_balls_one(label):
    """Hand-made states: balls 0 and 1 touching (2 r apart) in six directions, ball 2 apart; then
    balls 0 and 1 drawn at one place (a merged blob)."""
    _, _, balls, cfg = _scene(label, 1, 2)
    r = float(balls.radii[0])
    a = np.linspace(0, np.pi, 6, endpoint=False)
    xy = np.zeros((1, 6, balls.n, 2))
    xy[0, :, 0] = [11.2, 11.7]
    xy[0, :, 1] = xy[0, :, 0] + 2 * r * np.stack([np.cos(a), np.sin(a)], -1)
    xy[0, :, 2:] = [[6.3, 24.2], [24.0, 6.0], [24.0, 24.0]][: balls.n - 2]
    c = C.count_balls(O.brightness(_render(cfg, xy))[0], balls)
    np.testing.assert_array_equal(c, balls.n)
    xy[0, :, 1] = xy[0, :, 0]
    c = C.count_balls(O.brightness(_render(cfg, xy))[0], balls)
    np.testing.assert_array_equal(c, balls.n - 1)


def test_sharp_balls_on_wrong_paths_count_better_than_melted_ones():
    truth, st, balls, cfg = _scene("three_balls")
    drift = np.linspace(0, 2.0, truth.shape[1])[None, :, None, None] * np.array([1.0, 0.6])  # up to 2.3 px off
    xy = st[..., :2] + drift
    xy = np.clip(xy, 3.6, 26.4)  # the paths stay inside the box
    sharp = R._summary(R.score(_render(cfg, xy), truth, st, 0.3, balls))
    melted = R._summary(R.score(ndimage.gaussian_filter(truth, (0, 0, 3.6, 3.6, 0)), truth, st, 0.3, balls))
    half = R._summary(R.score(ndimage.gaussian_filter(truth, (0, 0, 1.8, 1.8, 0)), truth, st, 0.3, balls))
    assert sharp["count_exact"] >= 0.99 and sharp["count_mean"] == pytest.approx(3.0, abs=0.02)
    assert melted["count_exact"] == 0.0 and melted["count_mean"] < 1.0
    assert half["count_exact"] < 0.2 < sharp["count_exact"]
    assert sharp["position_error_px"] > 0.5  # the sharp rollout is off its paths: accuracy and plausibility differ


def _disks(xy, gain=1.0):
    """Brightness frames (F, 30, 30) of three_balls' disks (r = 3.6 px) at centres xy (F, k, 2), any k."""
    xy = np.asarray(xy, np.float32)
    return Renderer(30, 30, [3.6] * xy.shape[1], [[gain]] * xy.shape[1], "disk")(xy) / 255.0


def test_degenerate_and_analytic_frames():
    _, _, balls, _ = _scene("three_balls", 1, 2)
    np.testing.assert_array_equal(C.count_balls(np.zeros((2, 30, 30)), balls), 0)
    for level in (0.3, 0.8, 1.0):  # flat light: no ball shape
        np.testing.assert_array_equal(C.count_balls(np.full((2, 30, 30), level), balls), 0)
    one = _disks([[[15.5, 15.5]]])
    assert C.count_balls(one, balls).tolist() == [1]
    # a ball centred on a pixel centre: the template fits it exactly there (amplitude 1, ncc 1)
    amp, ncc, pearson = C.match_maps(one, np.array([3.6]), 4)
    assert amp[0, 0, 15, 15] == pytest.approx(1.0, abs=0.01) and amp[0, 0, 15, 15] == amp[0, 0].max()
    assert ncc[0, 0, 15, 15] == pytest.approx(1.0, abs=1e-3) and pearson[0, 0, 15, 15] == pytest.approx(1.0, abs=1e-3)
    # a fourth ball where the scene has three reads high; balls at half brightness are not the scene's balls
    four = _disks([[[6, 6], [24, 6], [6, 24], [24, 24]]])
    assert C.count_balls(four, balls).tolist() == [4]
    assert C.count_balls(_disks([[[6, 6], [24, 6], [6, 24]]], 0.5), balls).tolist() == [0]
    # balls on exact pixel boundaries, symmetric about them, still give one peak each
    assert C.count_balls(_disks([[[10.0, 10.0], [20.0, 20.0], [10.0, 20.0]]]), balls).tolist() == [3]


def test_templates_and_bands_follow_the_balls():
    b = O.Balls(np.array([3.0, 2.0, 3.0]), 4, np.array([0.55, 0.6, 0.8]))
    rs, lo, hi = C.templates(b)
    np.testing.assert_allclose(rs, [2.0, 3.0])
    np.testing.assert_allclose(lo, np.array([0.6, 0.55]) * C.GAIN_BAND[0])
    np.testing.assert_allclose(hi, np.array([0.6, 0.8]) * C.GAIN_BAND[1])
    many = O.Balls(np.linspace(2, 4, 9), 1)  # at most MAX_TEMPLATES radii; no gains: 1
    rs, lo, hi = C.templates(many)
    assert len(rs) == C.MAX_TEMPLATES and rs[0] == 2.0 and rs[-1] == 4.0 and np.all(hi == C.GAIN_BAND[1])
