"""Prediction metrics: pixel error, PSNR, SSIM, and balls found as bright regions.

- Squared error per frame: sum over pixels of (prediction - truth)^2 with intensities in [0, 1],
  the measure of the RTRBM and TSBN bouncing-ball papers (Sutskever et al. 2009; Gan et al. 2015),
  and its mean per pixel. Averaged over predicted frames and sequences this is exactly OpenSTL's
  ``MSE`` (Tan et al. 2023, ``openstl/core/metrics.py``: the mean over batch and time of the
  per-frame sum over channels and pixels).
- Absolute error per frame: sum over pixels of |prediction - truth| on [0, 1], OpenSTL's ``MAE``
  by the same reduction.
- PSNR per frame, ``10 log10(1 / MSE)`` for data range 1, and SSIM per frame (Wang, Bovik, Sheikh
  and Simoncelli 2004, "Image quality assessment: from error visibility to structural
  similarity"), both from torchmetrics, not written here.
- The **region detector**, for frames without ground-truth states (with states, use the
  state-based readings of ``latentdyn.dynamics.objects``): connected bright regions
  (``scipy.ndimage.label`` above a threshold) and their intensity-weighted centres of mass,
  matched to reference positions by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``)
  on Euclidean distance. It merges balls that pass within a few pixels (on true three_balls frames
  it finds fewer regions than balls in about a fifth of the frames), so each of its figures
  should be read beside its reading of the true frames (``region_scores`` of the truth against
  itself).
All pure functions of arrays; shapes are commented.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from latentdyn.core.errors import LatentdynError

SSIM_KERNEL = {"gaussian_kernel": True, "sigma": 1.5, "kernel_size": 11, "k1": 0.01, "k2": 0.03}  # Wang et al. 2004


def squared_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Sum of squared differences per frame (Sutskever et al. 2009's measure): (..., H, W, C) -> (...)."""
    diff = (np.asarray(pred, np.float64) - np.asarray(truth, np.float64)) ** 2
    return diff.sum(axis=(-3, -2, -1))


def absolute_error(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Sum of absolute differences per frame (OpenSTL's MAE before its mean over frames and
    sequences; Tan et al. 2023): (..., H, W, C) -> (...)."""
    diff = np.abs(np.asarray(pred, np.float64) - np.asarray(truth, np.float64))
    return diff.sum(axis=(-3, -2, -1))


def _as_images(pred: np.ndarray, truth: np.ndarray, dtype=np.float64):
    """(..., H, W, C) arrays -> tensors (N, C, H, W) of ``dtype`` and the leading shape."""
    import torch

    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim < 3:
        raise LatentdynError(f"prediction {pred.shape} and truth {truth.shape} must both be frames (..., H, W, C)")
    lead = pred.shape[:-3]
    to = lambda x: torch.from_numpy(np.ascontiguousarray(x, dtype).reshape(-1, *x.shape[-3:])).permute(0, 3, 1, 2)
    return to(pred), to(truth), lead


def psnr(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB per frame, ``10 log10(1 / MSE)`` with data range 1
    (``torchmetrics.functional.image.peak_signal_noise_ratio``); inf for identical frames.
    (..., H, W, C) in [0, 1] -> (...)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t, lead = _as_images(pred, truth)
    if len(p) == 0:
        return np.zeros(lead)
    out = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3))  # (N,)
    return out.numpy().reshape(lead)


def ssim(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Structural similarity per frame (Wang et al. 2004) with data range 1 and their settings
    (``SSIM_KERNEL``: 11 x 11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03): the mean over
    pixels and channels of the SSIM map of
    ``torchmetrics.functional.image.structural_similarity_index_measure``, which pads the frame by
    reflection (5 px, which 28 x 28 and 30 x 30 frames allow) so the map covers every pixel (the
    full map is averaged here, as torchmetrics does itself since its pull request #2721 of 2024;
    older versions dropped a 5 px border, more than half of a 30 x 30 frame). 1 for identical frames, to float32 rounding
    (computed in float32, whose convolutions run 5-20x faster on CPUs). (..., H, W, C) in [0, 1] -> (...)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t, lead = _as_images(pred, truth, np.float32)
    if len(p) == 0:
        return np.zeros(lead)
    _, full = structural_similarity_index_measure(p, t, data_range=1.0, reduction="none", return_full_image=True,
                                                  **SSIM_KERNEL)  # (N, C, H, W) SSIM map
    return full.double().mean((1, 2, 3)).numpy().reshape(lead)


# ---- the region detector (data without states) ------------------------------------------------------

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


def regions(frames: np.ndarray, threshold: float = 0.3) -> np.ndarray:
    """Centres of the bright regions (``find_balls``) of frames (F, H, W): (F, m, 2), m the most
    regions of any frame, NaN-padded."""
    centres, frame = find_balls(frames, threshold)
    F = len(frames)
    count = np.bincount(frame, minlength=F)
    out = np.full((F, int(count.max()) if F else 0, 2), np.nan)
    order = np.argsort(frame, kind="stable")
    rank = np.arange(len(frame)) - np.concatenate([[0], np.cumsum(count)])[frame[order]]
    out[frame[order], rank] = centres[order]
    return out


def match_positions(true_xy: np.ndarray, frames: np.ndarray, threshold: float = 0.3) -> dict:
    """Detect balls in frames (F, H, W) and match them to the reference positions (F, n, 2)
    (NaN rows: no reference) by the Hungarian algorithm on distance.

    Returns 'pos' (F, n, 2) detected position of each reference (NaN if unmatched), 'error'
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
        ref = np.flatnonzero(np.isfinite(true_xy[f, :, 0]))
        cost = np.linalg.norm(true_xy[f, ref][:, None] - found[None], axis=-1)  # (n', k)
        rows, cols = linear_sum_assignment(cost)
        pos[f, ref[rows]] = found[cols]
    error = np.linalg.norm(pos - true_xy, axis=-1)  # (F, n), NaN where unmatched
    return {"pos": pos, "error": error, "count": count}


def region_scores(frames: np.ndarray, reference: np.ndarray, penalty: float, n_balls: int | None = None,
                  threshold: float = 0.3) -> dict:
    """Failure-counting region-detector scores of frames (F, H, W) against reference positions
    (F, m, 2), NaN-padded: the states' positions, or ``regions`` of the true frames.

    A frame expects ``n_ref`` = max(``n_balls``, its finite references) balls. 'error' (F,): the
    mean over them of the matched distance capped at ``penalty``, and ``penalty`` for each ball
    not matched (a reference with no region, or a ball the reference itself lacks); 'present'
    (F,) every expected ball matched; 'split' (F,) more regions than expected; 'count' (F,).
    Scoring the true frames against their own regions gives the detector's reading of the truth.
    """
    reference = np.asarray(reference, np.float64)
    m = match_positions(reference, frames, threshold)
    n_ref = np.maximum(np.isfinite(reference[..., 0]).sum(1), n_balls or 0)  # (F,)
    matched = np.isfinite(m["error"])  # (F, m)
    total = np.where(matched, np.minimum(m["error"], penalty), 0.0).sum(1) + penalty * (n_ref - matched.sum(1))  # (F,)
    return {"error": total / np.maximum(n_ref, 1), "present": matched.sum(1) >= n_ref, "split": m["count"] > n_ref,
            "count": m["count"]}


def nanmean(x, axis=None):
    """Mean ignoring NaNs; NaN (not a warning) where everything is NaN."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore"):
        cnt = np.sum(np.isfinite(x), axis=axis)
        tot = np.nansum(x, axis=axis)
        return np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
