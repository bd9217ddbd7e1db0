"""Prediction metrics: pixel error, ball positions found in frames, motion direction.

- Squared error per frame: sum over pixels of (prediction - truth)^2 with intensities in [0, 1],
  the measure of the RTRBM and TSBN bouncing-ball papers (Sutskever et al. 2009; Gan et al. 2015),
  and its mean per pixel.
- Ball centres: connected bright regions (``scipy.ndimage.label`` above a threshold) and their
  intensity-weighted centres of mass, matched to the true balls by the Hungarian algorithm
  (``scipy.optimize.linear_sum_assignment``) on Euclidean distance. A frame with fewer regions
  than balls has a ball that vanished; one with more has a ball that split.
- Direction error: the angle between the predicted and the true motion of each matched ball.
All pure functions of arrays; shapes are commented.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment


def squared_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Sum of squared differences per frame: (..., H, W, C) -> (...)."""
    diff = (np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2
    return diff.sum(axis=(-3, -2, -1))


def find_balls(frames: np.ndarray, threshold: float = 0.3, relative: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Bright regions of frames (F, H, W) in [0, 1]: their centres (K, 2) as (x, y) in pixels
    (pixel centres at +0.5) and the frame of each (K,). One 3-D labelling, no loop over frames.

    A pixel is bright above max(``threshold`` * 0.5, ``relative`` * the frame's maximum) and at
    least ``threshold`` * 0.5: dim, blurred predictions still show their ball, and a frame whose
    light has faded below half the threshold shows none (a vanished ball).
    """
    frames = np.asarray(frames, np.float64)
    structure = np.zeros((3, 3, 3), bool)
    structure[1] = ndimage.generate_binary_structure(2, 1)  # 4-connectivity within a frame, none across
    level = np.minimum(threshold, np.maximum(0.5 * threshold, relative * frames.max(axis=(1, 2))))  # (F,)
    labels, n = ndimage.label(frames > level[:, None, None], structure=structure)  # (F, H, W)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, np.int64)
    com = np.asarray(ndimage.center_of_mass(frames, labels, np.arange(1, n + 1)))  # (K, 3): frame, row, col
    frame = np.rint(com[:, 0]).astype(np.int64)
    return np.stack([com[:, 2] + 0.5, com[:, 1] + 0.5], -1), frame


def match_positions(true_xy: np.ndarray, frames: np.ndarray, threshold: float = 0.3) -> dict:
    """Detect balls in frames (F, H, W) and match them to the true positions (F, n, 2).

    Returns 'pos' (F, n, 2) detected position of each true ball (NaN if unmatched), 'error'
    (F, n) distance in pixels (NaN if unmatched), 'count' (F,) regions found.
    """
    F, n, _ = true_xy.shape
    centres, frame = find_balls(frames, threshold)
    count = np.bincount(frame, minlength=F)
    pos = np.full((F, n, 2), np.nan)
    starts = np.concatenate([[0], np.cumsum(count)])
    order = np.argsort(frame, kind="stable")
    centres = centres[order]
    for f in np.flatnonzero(count):
        found = centres[starts[f] : starts[f + 1]]  # (k, 2)
        cost = np.linalg.norm(true_xy[f][:, None] - found[None], axis=-1)  # (n, k)
        rows, cols = linear_sum_assignment(cost)
        pos[f, rows] = found[cols]
    error = np.linalg.norm(pos - true_xy, axis=-1)  # (F, n), NaN where unmatched
    return {"pos": pos, "error": error, "count": count}


def direction_error(pred_pos: np.ndarray, true_vel: np.ndarray, min_motion: float = 0.05) -> np.ndarray:
    """Angle in degrees between predicted motion (steps of pred_pos (S, T, n, 2)) and the true
    velocity (S, T, n, 2) at the same step; (S, T-1, n), NaN where either barely moves or is missing."""
    motion = np.diff(pred_pos, axis=1)  # (S, T-1, n, 2): from step t-1 to t
    true = true_vel[:, :-1]  # velocity at t-1 takes the ball to t
    norm_p, norm_t = np.linalg.norm(motion, axis=-1), np.linalg.norm(true, axis=-1)
    cos = (motion * true).sum(-1) / np.maximum(norm_p * norm_t, 1e-12)
    angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    angle[(norm_p < min_motion) | (norm_t < min_motion) | ~np.isfinite(angle)] = np.nan
    return angle


def nanmean(x, axis=None):
    """Mean ignoring NaNs; NaN (not a warning) where everything is NaN."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        cnt = np.sum(np.isfinite(x), axis=axis)
        tot = np.nansum(x, axis=axis)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
