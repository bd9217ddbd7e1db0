"""Steering directions on synthetic codes and decoders where the truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from latentdyn.analysis import conditional_edit, edit, fit_direction, orthogonalize
from latentdyn.analysis.directions import edit_to, pixel_probe, score_class_edit, score_position_edit
from latentdyn.core.errors import LatentdynError

K = 6


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3000, K))
    a = rng.standard_normal(K)
    a /= np.linalg.norm(a)
    r = rng.standard_normal(K)
    r -= (r @ a) * a
    b = 0.6 * a + 0.8 * r / np.linalg.norm(r)  # a second factor's direction, cos(a, b) = 0.6
    f1 = 2.5 * z @ a + 1.0 + 0.05 * rng.standard_normal(len(z))
    f2 = 1.5 * z @ b - 2.0 + 0.05 * rng.standard_normal(len(z))
    return z, a, b, f1, f2


def test_fitted_direction_recovers_the_planted_one(planted):
    z, a, _, f1, _ = planted
    d = fit_direction(z, f1, name="f1")
    assert d.normal @ a > 0.999 and abs(np.linalg.norm(d.normal) - 1) < 1e-12
    assert d.slope == pytest.approx(2.5, rel=0.01)
    y = (z @ a + 0.1 * np.random.default_rng(1).standard_normal(len(z)) > 0).astype(np.int64)
    lab = fit_direction(z, y, continuous=False, name="side")
    assert lab.kind == "label" and lab.normal @ a > 0.99  # the hyperplane's normal (InterFaceGAN)
    moved = edit(z[:50], lab, 4.0)
    np.testing.assert_allclose(lab.predict(moved) - lab.predict(z[:50]), 4.0, atol=1e-9)  # by logits


def test_edit_moves_the_factor_by_the_asked_amount(planted):
    z, a, _, f1, _ = planted
    d = fit_direction(z, f1)
    z2 = edit(z[:200], d, 3.0)
    change = 2.5 * (z2 - z[:200]) @ a  # the true factor's change
    assert np.all(np.abs(change - 3.0) < 0.05)
    np.testing.assert_allclose(d.predict(z2) - d.predict(z[:200]), 3.0, atol=1e-9)


def test_conditional_edit_holds_the_correlated_factor(planted):
    z, a, b, f1, f2 = planted
    d1, d2 = fit_direction(z, f1, name="f1"), fit_direction(z, f2, name="f2")
    plain = edit(z[:200], d1, 3.0)
    cond = conditional_edit(z[:200], d1, [d2], 3.0)
    true1 = lambda x: 2.5 * x @ a  # noqa: E731
    true2 = lambda x: 1.5 * x @ b  # noqa: E731
    leak_plain = np.mean(true2(plain) - true2(z[:200]))
    assert leak_plain == pytest.approx(3.0 * 1.5 / 2.5 * 0.6, abs=0.05)  # the unconditional edit drags f2 along
    assert np.all(np.abs(true2(cond) - true2(z[:200])) < 0.05)  # the conditional one does not
    assert np.all(np.abs(true1(cond) - true1(z[:200]) - 3.0) < 0.1)  # and still moves f1 by 3
    u = orthogonalize(d1, [d2])
    assert abs(u.normal @ d2.normal) < 1e-12 and u.normal @ d1.normal == pytest.approx(0.8, abs=0.01)
    with pytest.raises(LatentdynError, match="span"):
        orthogonalize(d1, [d1])


def _ball_decoder(A, c):
    """A known 'decoder': a Gaussian ball rendered at (x, y) = A z + c."""
    from latentdyn.scenes.render import Renderer

    r = Renderer(28, 28, np.array([2.5]), np.array([[1.0]]))

    def decode(z):
        xy = np.asarray(z) @ A.T + c  # (n, 2)
        return (r(xy[:, None, :]).astype(np.float32) / 255.0)[..., None]  # (n, H, W, 1)

    return decode


def test_position_edit_scored_by_the_reader():
    rng = np.random.default_rng(2)
    A = np.array([[3.0, 1.0, 0.0, 0.0], [0.0, 0.5, 3.0, 0.0]])  # x and y share z1: a correlated pair
    z = rng.uniform(-1, 1, size=(800, 4))
    xy = z @ A.T + 14.0
    decode = _ball_decoder(A, 14.0)
    dx, dy = fit_direction(z, xy[:, 0], name="x0"), fit_direction(z, xy[:, 1], name="y0")
    pick = np.flatnonzero((xy[:, 0] < 17) & (xy[:, 0] > 8))[:20]
    res, before, after = score_position_edit(decode, z[pick], xy[pick, None, :], 0, 0, 3.0, dx)
    assert res["achieved_mean"] == pytest.approx(3.0, abs=0.1) and res["abs_error_mean"] < 0.15
    assert res["leakage_per_coordinate"]["y0"] == pytest.approx(np.abs(3.0 * (dx.normal @ A[1]) / dx.slope), abs=0.1)
    assert res["reconstruction_read_error_px"] < 0.1 and res["n_read"] == 20
    assert before.shape == after.shape == (20, 28, 28, 1)
    cond, _, _ = score_position_edit(decode, z[pick], xy[pick, None, :], 0, 0, 3.0, orthogonalize(dx, [dy]))
    assert cond["leakage_mean_abs"] < 0.1 and cond["achieved_mean"] == pytest.approx(3.0, abs=0.1)


def test_class_edit_scored_by_a_pixel_probe():
    rng = np.random.default_rng(3)
    a = np.array([1.0, -1.0, 0.5]) / 1.5

    def decode(z):  # class 1 lights the left half, class 0 the right; blended by the side of a.z
        p = 1 / (1 + np.exp(-8 * (np.asarray(z) @ a)))  # (n,)
        img = np.zeros((len(p), 8, 8, 1), np.float32)
        img[:, :, :4] = p[:, None, None, None]
        img[:, :, 4:] = 1 - p[:, None, None, None]
        return img

    z = rng.standard_normal((1000, 3))
    y = (z @ a > 0).astype(np.int64)
    probe = pixel_probe((decode(z) * 255).astype(np.uint8), y)
    d = fit_direction(z, y, continuous=False, positive=1)
    src = z[y == 0][:40]
    res, _, _ = score_class_edit(decode, src, d, 3.0, probe, 0, 1)
    assert res["target_rate_before"] < 0.1 and res["source_rate_before"] > 0.9 and res["success_rate"] > 0.95
    stay, _, _ = score_class_edit(decode, src, d, -3.0, probe, 0, 1)
    assert stay["success_rate"] < 0.05  # to the source's side of the boundary: still class 0
    np.testing.assert_allclose(d.predict(edit_to(src, d, 3.0)), 3.0, atol=1e-9)


def test_two_ball_edit_names_the_balls_by_the_reference():
    from latentdyn.scenes.render import Renderer

    r = Renderer(28, 28, np.array([2.0, 2.0]), np.array([[1.0], [1.0]]))
    rng = np.random.default_rng(4)
    z = rng.uniform(-1, 1, size=(400, 4))
    xy = np.stack([np.c_[7 + 2 * z[:, 0], 7 + 2 * z[:, 1]], np.c_[19 + 2 * z[:, 2], 19 + 2 * z[:, 3]]], 1)  # (n, 2, 2)

    def decode(c):
        c = np.asarray(c)
        p = np.stack([np.c_[7 + 2 * c[:, 0], 7 + 2 * c[:, 1]], np.c_[19 + 2 * c[:, 2], 19 + 2 * c[:, 3]]], 1)
        return (r(p).astype(np.float32) / 255.0)[..., None]

    d = fit_direction(z, xy[:, 1, 0], name="x1")
    res, _, _ = score_position_edit(decode, z[:20], xy[:20], 1, 0, 2.5, d)
    assert res["achieved_mean"] == pytest.approx(2.5, abs=0.1) and res["n_read"] == 20
    assert max(res["leakage_per_coordinate"].values()) < 0.1  # ball 0 and y1 stay
    assert set(res["leakage_per_coordinate"]) == {"x0", "y0", "y1"}
