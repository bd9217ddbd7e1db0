"""Bouncing-ball physics, vectorised over sequences.

Positions and velocities are in box units (velocities per frame). Every sub-step moves each ball
by ``v * dt`` (``dt = 1 / substeps``), reflects it off the walls as a mirror (position and
velocity, so its speed is unchanged and its centre stays in ``[r, size - r]``), then resolves
ball-ball contacts pair by pair as elastic collisions of spheres: the velocity components along
the line of centres are exchanged by the 1-D elastic formulas (conserving momentum and kinetic
energy), only for pairs that touch and approach. This is the update of the classic RTRBM/TSBN
bouncing-ball generator (Sutskever, Hinton and Taylor 2009), with mirror wall reflection and the
approach test added so balls neither leak through walls nor stick together.
"""

from __future__ import annotations

import itertools

import numpy as np

from latentdyn.core import rng as rng
from latentdyn.core.errors import LatentdynError

MAX_PLACEMENT_ATTEMPTS = 1000  # redraws of one ball before giving up on a crowded box
MAX_BALLS = 1000  # placement uses rng streams k * 1000 + attempt < 2**20
_VELOCITY_STREAM = 1 << 20  # rng stream of the start velocities


def no_overlap(pos: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(S,) bool: True where no two balls of ``pos`` (S, n, 2) overlap."""
    d2 = ((pos[:, :, None] - pos[:, None, :]) ** 2).sum(-1)  # (S, n, n)
    reach = (radii[:, None] + radii[None, :]) ** 2  # (n, n)
    np.fill_diagonal(reach, 0.0)
    return (d2 >= reach).all(axis=(1, 2))


def initial_state(
    seed: int,
    ids: np.ndarray,
    box: tuple[float, float],
    radii: np.ndarray,
    speeds: np.ndarray,
    speed_mode: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and velocities (S, n, 2) for sequences ``ids``, a pure function of the seed.

    Balls are placed one after another, each uniformly in the box and re-drawn while it overlaps
    one already placed (random sequential adsorption, which fills boxes far more crowded than
    redrawing all balls at once could). Velocity directions are uniform.
    ``speed_mode="total"`` draws Gaussian velocities scaled so that the root of the summed
    squared speeds equals ``speeds[0]`` (the classic generator's rule); ``"per_ball"`` gives ball
    i the speed ``speeds[i]``.
    """
    ids = np.asarray(ids, np.int64)
    S, n = len(ids), len(radii)
    span = np.asarray(box, np.float64) - 2 * radii[:, None]  # (n, 2)
    pos = np.empty((S, n, 2))
    for k in range(n):
        pending = np.arange(S)
        for attempt in range(MAX_PLACEMENT_ATTEMPTS):
            u = rng.uniform(seed, ids[pending], k * MAX_PLACEMENT_ATTEMPTS + attempt, 2)  # (P, 2)
            p = radii[k] + u * span[k]  # (P, 2)
            d2 = ((pos[pending, :k] - p[:, None]) ** 2).sum(-1)  # (P, k)
            ok = (d2 >= (radii[:k] + radii[k]) ** 2).all(-1)  # (P,)
            pos[pending[ok], k] = p[ok]
            pending = pending[~ok]
            if pending.size == 0:
                break
        else:
            raise LatentdynError(
                f"cannot place {n} balls of radius {radii.max():g} without overlap in a "
                f"{box[0]:g}x{box[1]:g} box; use fewer or smaller balls or a larger box"
            )
    if speed_mode == "total":
        v = rng.normal(seed, ids, _VELOCITY_STREAM, 2 * n).reshape(S, n, 2)  # (S, n, 2)
        norm = np.sqrt((v**2).sum(axis=(1, 2), keepdims=True))  # (S, 1, 1)
        v *= speeds[0] / np.maximum(norm, 1e-300)
    else:
        angle = 2 * np.pi * rng.uniform(seed, ids, _VELOCITY_STREAM, n)  # (S, n)
        v = np.stack([np.cos(angle), np.sin(angle)], -1) * speeds[None, :, None]  # (S, n, 2)
    return pos, v


def elastic_collide(
    x: np.ndarray, v: np.ndarray, i: int, j: int, radii: np.ndarray, masses: np.ndarray,
    rows: np.ndarray | None = None,
) -> None:
    """Resolve contacts between balls i and j in place, for every sequence (or ``rows``) at once.

    ``x``, ``v``: (S, n, 2). Balls collide when their centres are closer than r_i + r_j and they
    approach; the normal components follow the 1-D elastic collision of masses m_i, m_j.
    """
    rows = np.arange(x.shape[0]) if rows is None else np.asarray(rows)
    _resolve(x, v, rows, np.full(rows.size, i), np.full(rows.size, j), radii, masses)


def _collide_all(x: np.ndarray, v: np.ndarray, pi: np.ndarray, pj: np.ndarray, radii: np.ndarray, masses: np.ndarray) -> None:
    """All pairs, in order (i, j) lexicographic, as ``elastic_collide`` one pair at a time.

    Contacts are found for all pairs in one vectorised pass. Sequences where one pair touches
    (nearly all contacts) are resolved together in one vectorised call; the rare sequences where
    several pairs touch at once are resolved pair by pair, in order, as the sequential rule says.
    """
    d = x[:, pi] - x[:, pj]  # (S, P, 2)
    touch = (d * d).sum(-1) < (radii[pi] + radii[pj]) ** 2  # (S, P)
    count = touch.sum(1)  # (S,)
    single = np.flatnonzero(count == 1)
    if single.size:
        k = touch[single].argmax(1)  # (R,) the touching pair of each sequence
        _resolve(x, v, single, pi[k], pj[k], radii, masses)
    multi = np.flatnonzero(count > 1)
    for k in np.flatnonzero(touch[multi].any(0)) if multi.size else ():
        rows = multi[touch[multi, k]]
        _resolve(x, v, rows, np.full(rows.size, pi[k]), np.full(rows.size, pj[k]), radii, masses)


def _resolve(x, v, rows, i, j, radii, masses) -> None:
    """Elastic contact of balls i[k], j[k] in sequence rows[k], for every k at once (in place)."""
    d = x[rows, i] - x[rows, j]  # (R, 2)
    dist2 = (d * d).sum(-1)  # (R,)
    approach = (d * (v[rows, i] - v[rows, j])).sum(-1) < 0  # (R,)
    sel = np.flatnonzero((dist2 < (radii[i] + radii[j]) ** 2) & approach & (dist2 > 0))
    if sel.size == 0:
        return
    rows, i, j = rows[sel], i[sel], j[sel]
    w = d[sel] / np.sqrt(dist2[sel])[:, None]  # (H, 2) unit line of centres
    ui = (v[rows, i] * w).sum(-1)  # (H,)
    uj = (v[rows, j] * w).sum(-1)  # (H,)
    mi, mj = masses[i], masses[j]  # (H,)
    ui_new = ((mi - mj) * ui + 2 * mj * uj) / (mi + mj)
    uj_new = ((mj - mi) * uj + 2 * mi * ui) / (mi + mj)
    v[rows, i] += w * (ui_new - ui)[:, None]
    v[rows, j] += w * (uj_new - uj)[:, None]


def simulate(
    pos: np.ndarray,
    vel: np.ndarray,
    length: int,
    box: tuple[float, float],
    radii: np.ndarray,
    masses: np.ndarray,
    substeps: int = 2,
    collisions: bool = True,
    gravity: tuple[float, float] = (0.0, 0.0),
    damping: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``length`` frames from ``pos``/``vel`` (S, n, 2); returns positions and velocities
    (S, T, n, 2) in box units, frame t holding the state before step t (frame 0 = start)."""
    S, n, _ = pos.shape
    x, v = pos.astype(np.float64).copy(), vel.astype(np.float64).copy()
    xs = np.empty((S, length, n, 2))
    vs = np.empty((S, length, n, 2))
    dt = 1.0 / substeps
    lo = np.broadcast_to(radii[:, None], (n, 2)).copy()  # (n, 2)
    hi = np.asarray(box, np.float64)[None, :] - radii[:, None]  # (n, 2)
    lo2, hi2 = 2 * lo, 2 * hi
    g = np.asarray(gravity, np.float64) * dt
    keep = (1.0 - damping) ** dt
    pairs = np.array(list(itertools.combinations(range(n), 2)) if collisions else [], np.intp).reshape(-1, 2)
    pi, pj = pairs[:, 0], pairs[:, 1]
    for t in range(length):
        xs[:, t], vs[:, t] = x, v
        for _ in range(substeps):
            if g.any():
                v += g
            x += v * dt
            below = x < lo  # (S, n, 2) mirror off the low walls
            if below.any():
                np.subtract(lo2, x, out=x, where=below)
                np.absolute(v, out=v, where=below)
            above = x > hi  # mirror off the high walls
            if above.any():
                np.subtract(hi2, x, out=x, where=above)
                np.negative(np.abs(v), out=v, where=above)
            if len(pairs):
                _collide_all(x, v, pi, pj, radii, masses)
            if damping:
                v *= keep
    return xs, vs
