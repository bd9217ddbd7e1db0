"""Scene files from elsewhere: states but no scene definition still get the state protocol and the count.

A small independent generator (the classic bouncing balls of Sutskever, Hinton and Taylor 2009:
a 10 x 10 box, 3 balls of radius 1.2, 30 x 30 frames) with its own physics and its own render
(anti-aliased hard disks of brightness 0.9, not our super-Gaussian) writes a scene file with h5py
from docs/formats.md, without a ``scene`` attribute. The balls' shape is then read from the file's
attributes or estimated from its true frames (``latentdyn.dynamics.shapes``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from latentdyn.core.config import to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics import objects as O
from latentdyn.dynamics import rollout as R
from latentdyn.dynamics import shapes
from latentdyn.scenes import generate as G
from latentdyn.scenes.file import open_scenes


def classic_bouncing_balls(S, T, seed, n=3, r=1.2, size=10.0, speed=0.5, substeps=10):
    """Centres (S, T, n, 2) in box units: walls and equal-mass balls bounce elastically, checked
    every substep, so touching balls' centres stay within 0.1 box units of 2 r."""
    rng = np.random.default_rng(seed)
    x = np.empty((S, n, 2))
    todo = np.ones(S, bool)
    while todo.any():  # start positions without overlaps
        x[todo] = r + rng.random((int(todo.sum()), n, 2)) * (size - 2 * r)
        d = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1) + np.eye(n) * size
        todo = d.min((1, 2)) <= 2 * r
    v = rng.standard_normal((S, n, 2))
    v *= speed / np.linalg.norm(v, axis=(1, 2), keepdims=True)  # the classic rule: total speed 0.5
    out = np.empty((S, T, n, 2))
    for t in range(T):
        out[:, t] = x
        for _ in range(substeps):
            x = x + v / substeps
            v = np.where(x < r, np.abs(v), np.where(x > size - r, -np.abs(v), v))
            for i in range(n):
                for j in range(i):
                    w = x[:, i] - x[:, j]
                    dist = np.linalg.norm(w, axis=-1, keepdims=True)
                    rel = ((v[:, i] - v[:, j]) * w / dist).sum(-1, keepdims=True)
                    dv = np.where((dist < 2 * r) & (rel < 0), rel * w / dist, 0.0)  # approaching: swap normal parts
                    v[:, i] -= dv
                    v[:, j] += dv
    return out


def disks(xy, res=30, r=3.6, gain=0.9, ss=4):
    """uint8 frames (F, res, res): each pixel lit by the fraction of its ss x ss sub-samples inside
    each disk of radius r (pixels) around the centres xy (F, n, 2), times gain, summed, clipped."""
    sub = (np.arange(res * ss, dtype=np.float32) + 0.5) / ss
    light = np.zeros((len(xy), res, res), np.float32)
    for i in range(xy.shape[1]):
        inside = ((sub[None, None, :] - xy[:, i, 0, None, None]) ** 2
                  + (sub[None, :, None] - xy[:, i, 1, None, None]) ** 2) <= r**2  # (F, res ss, res ss)
        light += gain * inside.reshape(-1, res, ss, res, ss).mean((2, 4))
    return np.floor(np.minimum(light, 1.0) * 255 + 0.5).astype(np.uint8)


def write_foreign(path, S=16, T=50, seed=0, attrs=None, root_attrs=None, scale=3.0):
    """A scene file as another program writes it from docs/formats.md: frames, states in pixels
    (``scale`` pixels per box unit), splits, and no scene definition."""
    xy = classic_bouncing_balls(S, T, seed) * 3.0  # (S, T, 3, 2) pixels
    frames = disks(xy.reshape(S * T, 3, 2)).reshape(S, T, 30, 30)
    xy = xy * scale / 3.0
    states = np.concatenate([xy, np.gradient(xy, axis=1)], -1).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "latentdyn-scenes"
        f.attrs["format_version"] = 1
        f.attrs.update(root_attrs or {})
        f.create_dataset("frames", data=frames, chunks=(1, T, 30, 30), compression="gzip")
        f["states"] = states
        f["states"].attrs.update(attrs or {})
        f["splits/test"] = np.arange(S)
    return path


def _read(path):
    with open_scenes(path) as sf:
        assert sf.scene is None
        return sf.read_frames(slice(None))[..., None] / 255.0, sf.states[...].astype(np.float64)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    path = write_foreign(tmp_path_factory.mktemp("foreign") / "classic.h5")
    return (path, *_read(path))


def test_foreign_file_gets_the_state_protocol_and_the_count(foreign):
    path, truth, st = foreign
    balls, n = R._scene_balls(None, st, truth, path)
    assert n == 3 and balls.source == "estimated from the true frames"
    # the anti-aliased disk of radius 3.6 px is best fitted by a steep profile a little wider
    np.testing.assert_allclose(balls.radii, 3.7, atol=0.06)
    np.testing.assert_allclose(balls.gains, 0.9, atol=0.03)
    assert 4 < balls.power <= shapes.POWER_BOUNDS[1]
    desc = R.describe_objects(truth, st, 0.3, balls)
    assert desc["protocol"] == "states" and desc["shape_from"] == "estimated from the true frames"
    assert desc["truth_reading"]["all_present"] >= 0.995 and desc["truth_reading"]["count_exact"] >= 0.99
    assert desc["truth_reading"]["max_centroid_offset_px"] < 0.1
    # the region detector, which such files got before, merges touching balls in many true frames
    assert R.describe_objects(truth, st, 0.3)["truth_reading"]["all_present"] < 0.9
    # the estimated shape judges predictions: balls 2 px off stay present and counted, 4 px off are lost
    for dx, present in ((2.0, 1.0), (4.5, 0.0)):
        xy = st[..., :2] + np.array([dx, 0.0])
        pred = disks(xy.reshape(-1, 3, 2)).reshape(truth.shape) / 255.0
        s = R._summary(R.score(pred, truth, st, 0.3, balls))
        assert s["all_present"] == pytest.approx(present, abs=0.05), dx
    assert s["count_exact"] > 0.5  # lost where the truth has them, still three balls mostly


def test_shape_from_file_attributes(tmp_path):
    path = write_foreign(tmp_path / "attrs.h5", S=4, T=20, attrs={"radii": 3.6, "profile": "disk", "gains": [0.9, 0.9, 0.9]})
    truth, st = _read(path)
    balls, _ = R._scene_balls(None, st, truth, path)
    assert balls.source == "file attributes" and balls.power == 4.0
    np.testing.assert_array_equal(balls.radii, [3.6] * 3)
    np.testing.assert_array_equal(balls.gains, [0.9] * 3)
    assert R.describe_objects(truth, st, 0.3, balls)["truth_reading"]["count_exact"] >= 0.99
    # attributes on the root count too; what they leave out is estimated
    path = write_foreign(tmp_path / "some.h5", S=4, T=20, root_attrs={"radii": [3.6, 3.6, 3.6]})
    truth, st = _read(path)
    balls, _ = R._scene_balls(None, st, truth, path)
    assert balls.source == "file attributes (radii); estimated from the true frames (profile, gains)"
    np.testing.assert_array_equal(balls.radii, [3.6] * 3)
    np.testing.assert_allclose(balls.gains, 0.9, atol=0.05)  # a steeper profile at the disk's own radius


@pytest.mark.parametrize("attrs, message", [
    ({"radii": [1.0, 2.0]}, "'radii' attribute .* is not one number or 3 numbers"),
    ({"gains": -1.0}, "'gains' attribute .* must be positive"),
    ({"profile": "square"}, "'profile' attribute 'square' is not 'gaussian', 'disk' or a number"),
])
def test_bad_shape_attributes_are_refused(attrs, message):
    st = np.zeros((1, 2, 3, 4))
    with pytest.raises(LatentdynError, match=message):
        shapes.balls_for_file(attrs, np.zeros((1, 2, 30, 30, 1)), st)


def test_states_that_do_not_match_the_frames_are_refused(tmp_path):
    path = write_foreign(tmp_path / "units.h5", S=4, T=20, scale=1.0)  # states in box units, frames in pixels
    truth, st = _read(path)
    with pytest.raises(LatentdynError, match="states do not match the frames.*pixels"):
        R._scene_balls(None, st, truth, path)
    with pytest.raises(LatentdynError, match="true frames are black"):
        shapes.balls_from_frames(np.zeros_like(truth), st)


@pytest.mark.parametrize("scene, sets", [("three_balls", []), ("gravity_balls", []), ("light_ball", [])])
def test_fit_recovers_our_renderers_balls(scene, sets):
    """Oracle: frames of our renderer give back its radii, peak brightness and profile power."""
    cfg = G.load_scene(scene, [*sets, "scene.length=20"])
    fr, st = G.sample(cfg, 1, np.arange(6))
    fr = (fr if fr.ndim == 5 else fr[..., None]) / 255.0
    ref = O.balls_from_scene(to_dict(cfg))
    est = shapes.balls_from_frames(fr, st)
    np.testing.assert_allclose(est.radii, ref.radii, atol=0.01)
    np.testing.assert_allclose(est.gains, ref.gains, atol=0.01)
    assert est.power == pytest.approx(ref.power, rel=0.02)
    assert np.array_equal(shapes.balls_from_frames(fr, st).radii, est.radii)  # a fixed sample: the same result
