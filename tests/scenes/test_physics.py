"""Physics invariants and analytic cases of the bouncing-ball simulator."""

import numpy as np

from latentdyn.scenes import physics
from latentdyn.scenes import generate as scenes


def _run(cfg, n=64, seed=0):
    st = scenes.simulate_states(cfg, seed, np.arange(n))  # (S, T, n, 4) pixels
    return st[..., :2].astype(np.float64), st[..., 2:].astype(np.float64)


def test_speed_conserved_without_gravity_or_damping(light_ball):
    x, v = _run(light_ball)
    speed = np.linalg.norm(v, axis=-1)  # (S, T, 1)
    np.testing.assert_allclose(speed, np.broadcast_to(speed[:, :1], speed.shape), rtol=1e-5)
    np.testing.assert_allclose(speed, 1.5, rtol=1e-5)  # per_ball speed 1.5 px/frame


def test_total_energy_and_speed_rule_with_collisions(three_balls):
    x, v = _run(three_balls, n=128)
    ke = (v**2).sum(axis=(-1, -2))  # (S, T) equal masses
    np.testing.assert_allclose(ke, np.broadcast_to(ke[:, :1], ke.shape), rtol=1e-4)
    # total speed 0.5 box units per frame = 1.5 px per frame at 3 px per unit
    np.testing.assert_allclose(np.sqrt(ke[:, 0]), 0.5 * 3.0, rtol=1e-5)


def test_balls_stay_inside_box(three_balls):
    x, _ = _run(three_balls, n=128)
    r = 1.2 * 3.0
    assert x.min() >= r - 1e-4 and x.max() <= 30 - r + 1e-4


def test_start_positions_do_not_overlap(three_balls):
    x, _ = _run(three_balls, n=256)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        d = np.linalg.norm(x[:, 0, i] - x[:, 0, j], axis=-1)
        assert d.min() >= 2 * 1.2 * 3.0 - 1e-4


def test_trajectories_are_continuous(three_balls):
    x, v = _run(three_balls, n=128)
    step = np.linalg.norm(np.diff(x, axis=1), axis=-1)  # (S, T-1, n)
    fastest = np.linalg.norm(v, axis=-1).max()
    assert step.max() <= fastest + 1e-4  # no teleporting: a frame moves at most |v| * 1


def test_momentum_and_energy_conserved_in_collision_unequal_masses():
    rng = np.random.default_rng(1)
    S = 500
    x = np.zeros((S, 2, 2))
    x[:, 1] = rng.normal(size=(S, 2))
    x[:, 1] *= 1.5 / np.linalg.norm(x[:, 1], axis=-1, keepdims=True)  # touching at distance 1.5 < 2
    v = rng.normal(size=(S, 2, 2))
    m = np.array([3.0, 1.0])
    p0 = (m[None, :, None] * v).sum(1)
    e0 = (m[None, :] * (v**2).sum(-1)).sum(1)
    v1 = v.copy()
    physics.elastic_collide(x, v1, 0, 1, np.array([1.0, 1.0]), m)
    np.testing.assert_allclose((m[None, :, None] * v1).sum(1), p0, atol=1e-12)
    np.testing.assert_allclose((m[None, :] * (v1**2).sum(-1)).sum(1), e0, rtol=1e-12)
    approaching = ((x[:, 0] - x[:, 1]) * (v[:, 0] - v[:, 1])).sum(-1) < 0
    assert approaching.any() and (~approaching).any()
    changed = (v1 != v).any(axis=(1, 2))
    np.testing.assert_array_equal(changed, approaching)  # only approaching pairs bounce


def test_head_on_equal_masses_exchange_velocities():
    x = np.array([[[0.0, 0.0], [1.5, 0.0]]])
    v = np.array([[[1.0, 0.0], [-0.5, 0.0]]])
    physics.elastic_collide(x, v, 0, 1, np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    np.testing.assert_allclose(v, [[[-0.5, 0.0], [1.0, 0.0]]])


def test_wall_reflection_analytic():
    # one ball at x=1 moving -1 per frame toward the wall at r=0.5: after one frame it is at
    # |1 - 1 - 0.5| mirrored: 0.5 + (0.5 - 0) = 1.0 with velocity +1
    xs, vs = physics.simulate(
        np.array([[[1.0, 5.0]]]), np.array([[[-1.0, 0.0]]]), 3, (10.0, 10.0), np.array([0.5]), np.array([1.0]), substeps=1,
    )
    np.testing.assert_allclose(xs[0, :, 0], [[1.0, 5.0], [1.0, 5.0], [2.0, 5.0]])
    np.testing.assert_allclose(vs[0, :, 0, 0], [-1.0, 1.0, 1.0])


def test_gravity_accelerates_and_damping_slows():
    cfg = scenes.load_scene("light_ball", ["physics.gravity=[0.0, 0.1]", "physics.speed=0.0", "scene.length=5"])
    _, v = _run(cfg, n=4)
    np.testing.assert_allclose(v[:, :, 0, 1], np.broadcast_to(np.arange(5) * 0.1, (4, 5)), atol=1e-5)  # v_y = g t
    cfg = scenes.load_scene("light_ball", ["physics.damping=0.1", "scene.length=6"])
    _, v = _run(cfg, n=4)
    speed = np.linalg.norm(v[:, :, 0], axis=-1)
    np.testing.assert_allclose(speed / speed[:, :1], np.broadcast_to(0.9 ** np.arange(6), speed.shape), rtol=1e-5)
