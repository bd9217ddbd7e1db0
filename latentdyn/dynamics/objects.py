"""State-based object metrics: is each true ball in a predicted frame, where, and moving which way.

Where a scene file has ground-truth states, the predicted frames are read *at the true balls*
instead of by finding blobs (which merge when balls pass close and so report vanished balls in
true frames). Definitions (docs/formats.md, "Rollout metrics"):

- **Brightness**: the frames' mean over channels, in [0, 1] (linear in the light, so the light of
  balls adds; equal to the intensity for grayscale frames).
- **Attribution**: pixel p belongs to true ball i with the weight
  ``a_i(p) = softmax_i(log k_i - (|p - c_i|^2 / r_i^2)^q)``, the share of ball i in the light the
  renderer (``latentdyn.scenes.render``: ``k_i exp(-(d^2/r^2)^q)``, q = 1 gaussian, 4 disk, k_i
  the peak brightness) puts at p with all balls at their true centres c_i. It is the soft
  form of assigning each pixel to the nearest centre (Voronoi), weighted by the ball's size; two
  touching or overlapping balls each keep their own light, and a neighbour's light never counts.
- **Disc** of ball i: pixel centres within its render radius r_i (pixels) of c_i. **Window**:
  pixel centres within ``WINDOW`` x r_i of c_i.
- **Presence**: ball i is present in a predicted frame when the prediction's attributed light in
  its disc is at least ``PRESENCE`` (one half) of the true frame's there.
- **Position**: the intensity-weighted centroid (centre of mass) of the prediction's attributed
  light in the window. Error of a present ball: its distance to the same centroid read in the
  true frame, capped at the penalty; so the true frames score exactly 0 and the frame edge's and
  neighbours' pull on the centroid cancels (the true frame's centroid lies within 0.03 px of the
  state on three_balls, 0.2 px for light_ball's glow cut by the frame edge). Error of an absent
  ball: the fixed **penalty** ``max(diagonal / 4, WINDOW x max r)`` (10.6 px at 30 x 30), at
  least the window's radius, and no present ball scores more, so losing a ball always costs
  more than any misplacement the presence rule accepts (up to about one radius: shifted true
  frames lose half their balls at 3.15 px on three_balls, r = 3.6, and 2.65 px on light_ball, r = 2.5).
- **Direction**: the angle between the prediction's centroid displacement from step t-1 to t
  and the true frame's (the true motion, the velocity between bounces, read by the same
  centroid, so the truth against itself scores 0); 180 degrees when the ball is absent at t or
  t-1, 90 degrees (the mean angle of a random direction) when the prediction moves less than
  ``min_motion`` pixels, undefined (NaN, left out) only where the true ball moves less than that.
- **Extra light**: a frame whose prediction has, outside every window, pixels brighter than
  ``threshold`` holding at least half the light of the dimmest true ball's disc (a ghost ball).

Sprite scenes (moving digits and clothes, ``latentdyn.scenes.sprites``) are read the same way:
their states are the sprites' centres in pixels, and each sprite is an object whose disc is the
square sprite's inscribed disc (radius size / 2) with the disk profile (q = 4) for attribution,
so two overlapping sprites split the light by the nearer centre. The truth again reads 100%
present and 0 px; the centroid of a sprite's light lies off its box centre by the garment's or
digit's own shape, which the truth reading reports as the centroid offset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.metrics import nanmean

PRESENCE = 0.5  # present: at least this fraction of the truth's light in the ball's disc
WINDOW = 2.0  # centroid window radius, in render radii
BLOCK_VALUES = 1 << 21  # (frames, n, H, W) values per block: the weights stay about 16 MB each


@dataclass(frozen=True)
class Balls:
    """What the state-based metrics need of a scene: each ball's light radius in pixels (n,), its
    peak brightness (n,) (intensity times the mean of its colour) and the renderer's profile
    power q (1: gaussian, 4: disk; a fitted q for balls estimated from frames, ``shapes``)."""

    radii: np.ndarray
    power: float
    gains: np.ndarray | None = None  # None: all equal (1 for the count)
    name: str = "ball"  # what the objects are, in messages and the report: "ball" or "sprite"
    source: str = "definition"  # where the shape comes from: "definition", "file attributes", "estimated from the true frames"

    @property
    def n(self) -> int:
        return len(self.radii)

    def penalty(self, height: int, width: int) -> float:
        """Position error charged for an absent ball: max(frame diagonal / 4, the window radius)."""
        return float(max(math.hypot(height, width) / 4, WINDOW * float(np.max(self.radii))))


def balls_from_scene(scene: dict | None) -> Balls | None:
    """Ball radii and profile from a scene file's ``scene`` attribute (the resolved definition,
    ``latentdyn.scenes.generate.SceneConfig``): ``render.radius`` (or ``physics.radius``) in box units
    times pixels per box unit, as ``SceneConfig.renderer`` renders them; for a sprite scene, one
    object per sprite of radius size / 2 (module docstring). None without a definition."""
    if not scene:
        return None
    if scene.get("kind") == "sprites":  # moving digits: the states are the sprites' centres
        sp = scene.get("sprites") or {}
        try:
            n, size = int(sp["n_sprites"]), float(sp["size"])
        except (KeyError, TypeError, ValueError):
            raise LatentdynError("the scene attribute of a sprite scene lacks sprites.n_sprites or sprites.size; "
                                 "regenerate the file with latentdyn generate") from None
        return Balls(np.full(n, size / 2.0), 4, None, "sprite")
    from latentdyn.core.config import from_dict
    from latentdyn.scenes.generate import SceneConfig
    from latentdyn.scenes.render import PROFILE_POWER

    cfg = from_dict(SceneConfig, scene)
    r = cfg.render
    radii = cfg.per_ball(r.radius if r.radius is not None else cfg.physics.radius, "render.radius") * cfg.scale  # (n,)
    gains = cfg.per_ball(r.intensity, "render.intensity") * (np.asarray(r.colors).mean(1) if r.colors else 1.0)  # (n,)
    return Balls(radii, PROFILE_POWER[r.profile], gains)


def brightness(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, C) in [0, 1] -> (..., H, W): the mean over channels."""
    return np.asarray(frames, np.float64).mean(-1)


def _geometry(centres: np.ndarray, balls: Balls, height: int, width: int):
    """Attribution weights, disc and window masks of true centres (F, n, 2): each (F, n, H, W)."""
    ys = np.arange(height) + 0.5  # pixel centres (docs/formats.md)
    xs = np.arange(width) + 0.5
    r = balls.radii[None, :, None, None]  # (1, n, 1, 1)
    dx = xs[None, None, None, :] - centres[..., 0, None, None]  # (F, n, 1, W)
    dy = ys[None, None, :, None] - centres[..., 1, None, None]  # (F, n, H, 1)
    d2 = dx**2 + dy**2  # (F, n, H, W)
    logit = -((d2 / r**2) ** balls.power)  # (F, n, H, W) log of each ball's profile
    if balls.gains is not None:
        logit += np.log(np.maximum(balls.gains, 1e-12))[None, :, None, None]
    logit -= logit.max(1, keepdims=True)
    a = np.exp(logit)
    a /= a.sum(1, keepdims=True)  # (F, n, H, W) softmax over balls
    return a, d2 <= r**2, d2 <= (WINDOW * r) ** 2


def locate(pred: np.ndarray, truth: np.ndarray, centres: np.ndarray, balls: Balls) -> dict:
    """Read the true balls (centres (F, n, 2), pixels) in brightness frames pred and truth (F, H, W).

    Returns 'present' (F, n) bool (the presence rule above); 'light' (F, n) the prediction's light
    in each disc over the truth's; 'pos' and 'true_pos' (F, n, 2) the centroids of the prediction
    and of the true frame in each window (NaN where the window holds no light); 'true_light'
    (F, n) the true frame's light in each disc; 'outside' (F, H, W) the pixels outside every window."""
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    centres = np.asarray(centres, np.float64)
    F, H, W = pred.shape
    if truth.shape != pred.shape or centres.shape[:2] != (F, balls.n):
        raise LatentdynError(f"frames {pred.shape} / {truth.shape} and centres {centres.shape} do not match {balls.n} balls")
    out = {"present": np.zeros((F, balls.n), bool), "light": np.zeros((F, balls.n)),
           "pos": np.full((F, balls.n, 2), np.nan), "true_pos": np.full((F, balls.n, 2), np.nan),
           "outside": np.zeros((F, H, W), bool), "true_light": np.zeros((F, balls.n))}
    xs, ys = np.arange(W) + 0.5, np.arange(H) + 0.5
    block = max(1, BLOCK_VALUES // (balls.n * H * W))
    for s in range(0, F, block):
        b = slice(s, s + block)
        a, disc, win = _geometry(centres[b], balls, H, W)  # (f, n, H, W) each
        lit = {}
        for key, x in (("pos", pred[b]), ("true_pos", truth[b])):
            p = a * x[:, None]  # (f, n, H, W) light attributed to each ball
            lit[key] = (p * disc).sum((2, 3))  # (f, n) light in the disc
            pw = p * win
            mass = pw.sum((2, 3))  # (f, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[key][b, :, 0] = (pw.sum(2) * xs).sum(-1) / mass  # (f, n)
                out[key][b, :, 1] = (pw.sum(3) * ys).sum(-1) / mass
        with np.errstate(invalid="ignore", divide="ignore"):
            out["light"][b] = lit["pos"] / lit["true_pos"]
        out["present"][b] = lit["pos"] >= PRESENCE * lit["true_pos"]
        out["true_light"][b] = lit["true_pos"]
        out["outside"][b] = ~win.any(1)
    return out


def position_errors(loc: dict, penalty: float) -> np.ndarray:
    """(F, n) distance in pixels between each present ball's centroid in the prediction and in the
    true frame (``locate``); ``penalty`` for an absent ball (or one whose window holds no light)."""
    err = np.linalg.norm(loc["pos"] - loc["true_pos"], axis=-1)  # (F, n)
    return np.where(loc["present"] & np.isfinite(err), err, penalty)


def direction_errors(pos: np.ndarray, present: np.ndarray, true_xy: np.ndarray, min_motion: float = 0.05) -> np.ndarray:
    """Angles in degrees (S, T-1, n) between the predicted displacement of each ball's centroid
    (pos (S, T, n, 2)) from step t-1 to t and the true one (true_xy (S, T, n, 2), the true
    frames' centroids or the states' positions); 180 where the
    ball is absent (present (S, T, n)) at either step, 90 where the prediction barely moves, NaN
    where the true ball barely moves (see the module docstring)."""
    motion = np.diff(pos, axis=1)  # (S, T-1, n, 2)
    true = np.diff(true_xy, axis=1)  # (S, T-1, n, 2)
    norm_p, norm_t = np.linalg.norm(motion, axis=-1), np.linalg.norm(true, axis=-1)  # (S, T-1, n)
    with np.errstate(invalid="ignore"):
        cos = (motion * true).sum(-1) / np.maximum(norm_p * norm_t, 1e-12)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    angle = np.where(norm_p < min_motion, 90.0, angle)
    lost = ~(present[:, 1:] & present[:, :-1]) | ~np.isfinite(angle)
    angle = np.where(lost, 180.0, angle)
    return np.where(norm_t < min_motion, np.nan, angle)


def extra_light(pred: np.ndarray, loc: dict, threshold: float = 0.3) -> np.ndarray:
    """(F,) bool: the prediction (F, H, W) has, outside every window, pixels brighter than
    ``threshold`` holding at least half the light of the dimmest true ball in its disc (a ghost)."""
    pred = np.asarray(pred, np.float64)
    ghost = (pred * ((pred > threshold) & loc["outside"])).sum((1, 2))  # (F,)
    return ghost >= 0.5 * loc["true_light"].min(1)


def score_states(pred: np.ndarray, truth: np.ndarray, states: np.ndarray, balls: Balls, threshold: float = 0.3,
                 min_motion: float = 0.05) -> dict:
    """Per-step object measures of predictions against the truth, both (S, H, h, w, C) in [0, 1],
    at the true states (S, H, n, 4) (x, y in pixels first), by the rules of the module docstring.

    Per step (lists of H): 'all_present' (fraction of sequences with every ball present),
    'present_fraction' (of balls), 'position_error_px' (mean over balls and sequences, the penalty
    for absent balls), 'direction_error_deg' (NaN at step 1, which has no previous prediction);
    counts over all frames: 'vanished_frames' (a ball absent), 'split_frames' (extra light), 'frames'.
    """
    S, H = pred.shape[:2]
    n, h, w = balls.n, pred.shape[2], pred.shape[3]
    centres = np.asarray(states[..., :2], np.float64).reshape(S * H, n, 2)
    bp = brightness(pred).reshape(S * H, h, w)
    loc = locate(bp, brightness(truth).reshape(S * H, h, w), centres, balls)
    err = position_errors(loc, balls.penalty(h, w)).reshape(S, H, n)
    present = loc["present"].reshape(S, H, n)
    ang = direction_errors(loc["pos"].reshape(S, H, n, 2), present, loc["true_pos"].reshape(S, H, n, 2), min_motion)
    direction = nanmean(ang, axis=(0, 2))  # (H-1,)
    return {
        "all_present": present.all(-1).mean(0).tolist(),
        "present_fraction": present.mean((0, 2)).tolist(),
        "position_error_px": err.mean((0, 2)).tolist(),
        "direction_error_deg": [float("nan")] + direction.tolist(),
        "vanished_frames": int((~present.all(-1)).sum()),
        "split_frames": int(extra_light(bp, loc, threshold).sum()),
        "frames": int(S * H),
    }


def truth_reading(truth: np.ndarray, states: np.ndarray, balls: Balls) -> dict:
    """How the readings above see the true frames (S, T, h, w, C) themselves: the fraction of
    frames with every ball present (1 by construction) and how far the true frame's centroid lies
    from the state's position (pixels; mean and max): the instrument's calibration."""
    S, T, h, w = truth.shape[:4]
    centres = np.asarray(states[..., :2], np.float64).reshape(S * T, balls.n, 2)
    bt = brightness(truth).reshape(S * T, h, w)
    loc = locate(bt, bt, centres, balls)
    off = np.linalg.norm(loc["true_pos"] - centres, axis=-1)  # (F, n)
    return {"all_present": float(loc["present"].all(-1).mean()), "centroid_offset_px": float(np.mean(off)),
            "max_centroid_offset_px": float(np.max(off)) if off.size else 0.0}
