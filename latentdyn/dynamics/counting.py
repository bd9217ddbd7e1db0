"""How many ball-shaped objects a frame shows, read from the image alone: plausibility beside accuracy.

The state-based measures (``objects``) ask whether each true ball is where the truth has it; a
rollout that keeps three sharp balls on slightly wrong paths and one that melts them into a haze
can both lose them there. The count tells them apart: it reads each frame without its true
states, knowing only the balls' shape (``objects.Balls``: render radius r, profile power q, peak
brightness k), and is calibrated so that the true frames read the true number of balls.

Rule (docs/formats.md, "Rollout metrics"), on the brightness (the mean over channels):

1. **Template match.** Each distinct radius r (at most ``MAX_TEMPLATES``) gives the template
   ``T(d) = exp(-(d^2/r^2)^q)`` (the renderer's ball, ``latentdyn.scenes.render``) on the window
   ``d <= MARGIN r``: the ball and a dark ring around it. At every pixel, over the window: the
   least-squares amplitude ``a = <y, T> / <T, T>`` of ``a T`` fitted to the light y; the normalised
   cross-correlation ``ncc = <y, T> / (|T| |y|)`` (the cosine between the light and the template,
   dark ring included); and the Pearson correlation of y and T (the ncc after removing the
   window's mean: Lewis 1995, "Fast normalized cross-correlation"). All by FFT (``scipy.fft``);
   the frame is padded with its edge pixels, so the frame's edge does not pass for a dark ring.
2. **Ball-like light.** A pixel matches where ``a`` lies within ``GAIN_BAND`` times the peak
   brightness of the balls of that radius (a blob much dimmer than a ball, such as a blurred,
   melted ball or a haze, fails), ``ncc >= MIN_MATCH`` (light spilling over the dark ring, a
   streak, fails) and the Pearson correlation is at least ``MIN_PEARSON`` (flat light fails).
3. **One peak per ball.** Matching pixels that hold the largest ncc within ``floor(min r)``
   pixels (a square window; non-maximum suppression) are the balls. Colliding balls' centres stay
   at least two collision radii apart, so two touching balls give two peaks.

Calibration (docs/results.md, "Counting balls"): the true frames of three_balls, light_ball,
gravity_balls and five-ball scenes (disks and gaussian glows) read the right count in at least
99.99% of 5000 to 10000 frames each; the same frames blurred by a Gaussian of sigma = r read
fewer balls in more than 99.9% of frames. Sprite scenes (digits, clothes) have no ball shape: no count.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from latentdyn.dynamics.objects import Balls, brightness

MARGIN = 1.25  # window radius in render radii: the ball and a dark ring (a gaussian's light there: 0.21)
# calibrated on true frames (docs/results.md, "Counting balls"), read at the pixel holding each true centre:
MIN_MATCH = 0.8  # least ncc of a ball; the truth's lowest 0.86 (gravity_balls' balls touching)
MIN_PEARSON = 0.4  # least correlation after removing the window's mean: flat light has none; the truth's lowest 0.59
GAIN_BAND = (0.7, 1.6)  # amplitude / peak brightness: the truth 0.91 to 1.34 (glows overlapping); disks
#                         blurred by sigma = r/2 0.68 (median), by sigma = r 0.40 to 0.62 (medians)
MAX_TEMPLATES = 4  # distinct radii matched; more radii are represented by quantiles
BLOCK_FRAMES = 1024  # frames per FFT block: the maps stay about 30 MB


def templates(balls: Balls) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The radii (J,) matched and, for each, the amplitude band (lo (J,), hi (J,)): ``GAIN_BAND`` times
    the least and largest peak brightness of the balls nearest that radius (gains None: 1)."""
    radii = np.asarray(balls.radii, np.float64)
    gains = np.ones_like(radii) if balls.gains is None else np.asarray(balls.gains, np.float64)
    rs = np.unique(np.round(radii, 2))
    if len(rs) > MAX_TEMPLATES:
        rs = np.unique(np.round(np.quantile(radii, np.linspace(0, 1, MAX_TEMPLATES)), 2))
    nearest = np.abs(radii[:, None] - rs[None]).argmin(1)  # (n,) template of each ball
    lo = np.array([gains[nearest == j].min() for j in range(len(rs))]) * GAIN_BAND[0]
    hi = np.array([gains[nearest == j].max() for j in range(len(rs))]) * GAIN_BAND[1]
    return rs, lo, hi


def _window_sums(bright: np.ndarray, radii: np.ndarray, power: float):
    """For each template radius r: (c, s1, s2), each (F, H, W), the window sums <y, T>, sum y and
    sum y^2 of brightness frames (F, H, W) around every pixel, and the template's (t1, t2, m): sum T,
    sum T^2 and the window's pixels. By FFT, the frames padded by their edge pixels."""
    y = np.asarray(bright, np.float32)
    F, H, W = y.shape
    R = int(np.ceil(MARGIN * float(np.max(radii))))
    p = np.pad(y, ((0, 0), (R, R), (R, R)), mode="edge")  # (F, H + 2R, W + 2R): the light goes on past the edge
    shape = (sfft.next_fast_len(H + 2 * R, real=True), sfft.next_fast_len(W + 2 * R, real=True))
    crop = (slice(None), slice(2 * R, 2 * R + H), slice(2 * R, 2 * R + W))  # outputs centred on the frame's pixels
    off = np.arange(-R, R + 1, dtype=np.float64)
    d2 = off[:, None] ** 2 + off[None, :] ** 2  # (2R+1, 2R+1)
    Y, Y2 = sfft.rfft2(p, s=shape), sfft.rfft2(p * p, s=shape)  # spectra of the light and its square
    for r in radii:
        win = d2 <= (MARGIN * r) ** 2
        T = np.exp(-((d2 / r**2) ** power)) * win  # symmetric, so correlation = convolution
        K = sfft.rfft2(win.astype(np.float32), s=shape)
        c = sfft.irfft2(Y * sfft.rfft2(T.astype(np.float32), s=shape), s=shape)[crop]  # (F, H, W) <y, T>
        s1 = sfft.irfft2(Y * K, s=shape)[crop]  # (F, H, W) the window's light
        s2 = sfft.irfft2(Y2 * K, s=shape)[crop]  # (F, H, W) |y|^2 in the window
        yield (c, s1, s2), (float(T.sum()), float((T**2).sum()), float(win.sum()))


def _fit(c, s1, s2, t1: float, t2: float, m: float):
    """Window sums (any shape) -> the amplitude <y, T> / <T, T>, the ncc <y, T> / (|T| |y|) and the
    Pearson correlation of y and T over the window."""
    vy = np.maximum(s2 - s1 * s1 / m, 0.0)  # the window's variance, times m
    pearson = (c - s1 * t1 / m) / np.sqrt(np.maximum((t2 - t1 * t1 / m) * vy, 1e-12))
    return c / t2, c / np.sqrt(np.maximum(t2 * s2, 1e-12)), pearson


def match_maps(bright: np.ndarray, radii: np.ndarray, power: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Amplitude, ncc and Pearson maps, each (F, J, H, W), of brightness frames (F, H, W) against
    the templates of ``radii`` (J,) (rule 1 of the module docstring)."""
    maps = [_fit(*sums, *stats) for sums, stats in _window_sums(bright, radii, power)]  # J x 3 x (F, H, W)
    return tuple(np.stack([m[k] for m in maps], 1) for k in range(3))


def count_balls(bright: np.ndarray, balls: Balls) -> np.ndarray:
    """(F,) int: the ball-shaped objects in each brightness frame (F, H, W), by the module's rule."""
    bright = np.asarray(bright, np.float32)
    F, H, W = bright.shape
    rs, lo, hi = templates(balls)
    rho = max(1, int(np.floor(float(np.min(balls.radii)))))
    k = 2 * rho + 1  # unique within every k x k window: breaks exact ties between neighbours, moves nothing else
    tilt = (np.float32(2.0**-22) * (k * (np.arange(H) % k)[:, None] + np.arange(W) % k)).astype(np.float32)  # (H, W)
    out = np.zeros(F, np.int64)
    for s in range(0, F, BLOCK_FRAMES):
        score = np.zeros((min(BLOCK_FRAMES, F - s), H, W), np.float32)  # (f, H, W) best match, 0 where none
        for j, ((c, s1, s2), stats) in enumerate(_window_sums(bright[s : s + BLOCK_FRAMES], rs, balls.power)):
            amp = c / stats[1]
            cand = (amp >= lo[j]) & (amp <= hi[j])  # ball-like light: few pixels, where the rest is judged
            _, ncc, pearson = _fit(c[cand], s1[cand], s2[cand], *stats)
            score[cand] = np.maximum(score[cand], np.where((ncc >= MIN_MATCH) & (pearson >= MIN_PEARSON), ncc, 0.0))
        valid = score > 0
        score += tilt
        out[s : s + BLOCK_FRAMES] = ((score == _max_filter(score, rho)) & valid).sum((1, 2))
    return out


def _max_filter(x: np.ndarray, rho: int) -> np.ndarray:
    """(F, H, W) >= 0 -> the maximum over the (2 rho + 1)^2 square around each pixel (outside: 0),
    as two passes of shifted maxima (``scipy.ndimage.maximum_filter``'s result, twice as fast here)."""
    F, H, W = x.shape
    p = np.pad(x, ((0, 0), (rho, rho), (rho, rho)))  # (F, H + 2 rho, W + 2 rho)
    rows = p[:, :, : W].copy()
    for d in range(1, 2 * rho + 1):
        np.maximum(rows, p[:, :, d : d + W], out=rows)  # (F, H + 2 rho, W) max along x
    out = rows[:, :H].copy()
    for d in range(1, 2 * rho + 1):
        np.maximum(out, rows[:, d : d + H], out=out)  # (F, H, W) then along y
    return out


def count_scores(pred: np.ndarray, n: int, balls: Balls) -> dict:
    """Per step (lists of H) of predictions (S, H, h, w, C) in [0, 1]: 'count_exact' (fraction of
    sequences whose frame shows exactly n balls) and 'count_mean' (the mean count)."""
    S, H, h, w = pred.shape[:4]
    c = count_balls(brightness(pred).reshape(S * H, h, w), balls).reshape(S, H)
    return {"count_exact": (c == n).mean(0).tolist(), "count_mean": c.mean(0).tolist()}


def truth_count(truth: np.ndarray, n: int, balls: Balls) -> float:
    """The fraction of true frames (S, T, h, w, C) read with the right count n: the count's calibration."""
    S, T, h, w = truth.shape[:4]
    return float(np.mean(count_balls(brightness(truth).reshape(S * T, h, w), balls) == n))
