"""Ground-truth factors of scene frames, invariant to the order of the balls, and a ball reader.

Factors of a frame: per ball x, y (pixels, origin top-left, y down) and vx, vy (pixels per frame),
from a scene file's states (S, T, n_balls, 4), flattened to (S*T, 4 n) with names
``x0, y0, vx0, vy0, x1, ...``. Which ball is "ball 0" is a choice (``order``):

- ``"stored"``: the order of the states array. Right when the balls look different (colours,
  sizes, brightness: gravity_balls), since then an image does tell them apart; a frame encoder
  can represent "the orange ball's x".
- ``"sort-x"``: at every frame, the balls sorted by x (ties by y). Invariant to the stored
  order and a function of the image alone, so the right choice for identical-looking balls
  (three_balls) scored by a per-frame encoder. Caveat: when two balls pass each other in x they
  swap names, so ``y0`` and the velocities of ball 0 jump there; x0 <= x1 <= ... always.
- ``"match"``: the balls sorted by x at the first frame of each sequence, identities kept over
  the sequence (the physics keeps them: row i of the states is the same ball at every frame).
  Invariant to the stored order and continuous in time, the natural choice for whole sequences
  (latent dynamics). Caveat: for identical balls it is not a function of one frame (which ball
  was leftmost at t = 0 cannot be seen at t = 50), so a per-frame score of it is capped.

``auto_order`` picks ``stored`` for one ball or distinguishable balls and ``sort-x`` otherwise.
Dataset labels are one discrete factor, ``label`` (int64).

The reader finds the balls in (decoded) frames without the VAE: for one ball the intensity
centroid of the light above a fifth of the frame's maximum (background haze of a blurry decode
left out); for several, ``latentdyn.dynamics.metrics.match_positions`` (bright regions' centres of
mass, assigned to reference positions by the Hungarian algorithm on distance).
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError

ORDERS = ("sort-x", "match", "stored")
COLUMNS = ("x", "y", "vx", "vy")


def ball_permutation(states: np.ndarray, order: str = "sort-x") -> np.ndarray:
    """(S, T, n) int: at each frame, the stored index of the ball named 0, 1, ... under ``order``."""
    states = np.asarray(states)
    if states.ndim != 4 or states.shape[-1] != 4:
        raise LatentdynError(f"states must be (sequences, frames, balls, 4), got shape {states.shape}")
    S, T, n, _ = states.shape
    if order == "stored":
        return np.broadcast_to(np.arange(n), (S, T, n)).copy()
    if order == "sort-x":
        return np.lexsort((states[..., 1], states[..., 0]), axis=-1)  # (S, T, n): by x, ties by y
    if order == "match":
        first = np.lexsort((states[:, 0, :, 1], states[:, 0, :, 0]), axis=-1)  # (S, n)
        return np.broadcast_to(first[:, None, :], (S, T, n)).copy()
    raise LatentdynError(f"ball order {order!r}: use one of {', '.join(ORDERS)}")


def factor_names(n_balls: int) -> list[str]:
    return [f"{c}{b}" for b in range(n_balls) for c in COLUMNS]


def scene_factors(states: np.ndarray, order: str = "sort-x") -> tuple[np.ndarray, list[str]]:
    """Factors (S*T, 4 n) float64 of every frame of states (S, T, n, 4), and their names."""
    perm = ball_permutation(states, order)  # (S, T, n)
    S, T, n, _ = states.shape
    named = np.take_along_axis(np.asarray(states, np.float64), perm[..., None], axis=2)  # (S, T, n, 4)
    return named.reshape(S * T, n * 4), factor_names(n)


def distinguishable(scene: dict | None, n_balls: int) -> bool:
    """True if a scene definition (a scene file's ``scene`` attribute) gives the balls different looks."""
    if n_balls <= 1 or not scene:
        return False
    phys, rend = scene.get("physics", {}), scene.get("render", {})

    def varies(v) -> bool:
        return isinstance(v, list) and len({repr(x) for x in v}) > 1

    return any(varies(v) for v in (phys.get("radius"), rend.get("radius"), rend.get("intensity"), rend.get("colors")))


def auto_order(scene: dict | None, n_balls: int) -> str:
    return "stored" if n_balls <= 1 or distinguishable(scene, n_balls) else "sort-x"


def parse_factor(name: str, names: list[str]) -> int:
    if name not in names:
        raise LatentdynError(f"factor {name!r} is not one of {', '.join(names)}")
    return names.index(name)


def centroid(frames: np.ndarray, floor: float = 0.2) -> np.ndarray:
    """(x, y) (F, 2) in pixels of the light in frames (F, H, W[, C]) above ``floor`` x each frame's max."""
    x = np.asarray(frames, np.float64)
    if x.ndim == 4:
        x = x.sum(-1)  # (F, H, W): all channels' light
    w = np.clip(x - floor * x.max(axis=(1, 2), keepdims=True), 0, None)  # (F, H, W)
    tot = w.sum(axis=(1, 2))
    H, W = x.shape[1:]
    cols, rows = np.arange(W) + 0.5, np.arange(H) + 0.5  # pixel centres
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = (w.sum(1) * cols).sum(1) / tot
        cy = (w.sum(2) * rows).sum(1) / tot
    return np.stack([cx, cy], -1)  # NaN for a black frame


def read_positions(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Ball positions (F, n, 2) read from frames (F, H, W[, C]) in [0, 1], named as ``reference``
    (F, n, 2) (one ball: the centroid; several: regions matched to the reference); NaN if unseen."""
    reference = np.asarray(reference, np.float64)
    if reference.shape[1] == 1:
        return centroid(frames)[:, None, :]
    from latentdyn.dynamics.metrics import match_positions

    x = np.asarray(frames, np.float64)
    return match_positions(reference, x.max(-1) if x.ndim == 4 else x)["pos"]
