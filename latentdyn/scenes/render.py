"""Render balls of light to uint8 frames, vectorised over frames.

Ball i at centre c (pixels) lights pixel p with ``k_i * exp(-(|p - c|^2 / r_i^2)^q)``: q = 1 is a
Gaussian glow, q = 4 the hard-edged "super-Gaussian" disk of the classic bouncing-ball benchmark
(Sutskever, Hinton and Taylor 2009). Intensities of all balls add, clip at 1, and are stored as
``floor(255 * value + 0.5)``. Pixel (row, col) has its centre at (col + 0.5, row + 0.5).

Each ball only touches the pixels inside its cut-off radius, where its light is at least
``0.05 / (255 n)``: beyond it all balls together add less than 0.05 of a grey level, so the
result equals dense rendering (tested against a float64 dense oracle). Work per ball is a
(P, P) patch instead of the whole frame; the patches are added into a padded float buffer
through a strided window view, in blocks of frames small enough to stay in cache.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

PROFILE_POWER = {"gaussian": 1, "disk": 4}
BLOCK_FRAMES = 256  # frames rendered per block: the float buffers stay in the L2 cache


class Renderer:
    """Renders ball centres (F, n, 2) in pixels to uint8 frames (F, H, W), or (F, H, W, C) for C > 1.

    ``gains`` (n, C) is each ball's peak brightness per channel in [0, 1] (intensity times
    colour); C = 1 gives grayscale frames (F, H, W).
    """

    def __init__(self, height: int, width: int, radii: np.ndarray, gains: np.ndarray, profile: str = "gaussian"):
        self.height, self.width = int(height), int(width)
        self.radii = np.asarray(radii, np.float64)  # (n,)
        self.gains = np.asarray(gains, np.float64).reshape(len(self.radii), -1)  # (n, C)
        self.power = PROFILE_POWER[profile]
        n = len(self.radii)
        top = max(float(self.gains.max()), 1e-12)
        u_cut = max(math.log(5100.0 * n * top), 1e-3)  # exp(-u) * 255 * top < 0.05 / n beyond it
        cut = float(self.radii.max()) * u_cut ** (1.0 / (2 * self.power))
        # pixel j is lit if |j + 0.5 - c| <= cut, i.e. frac(c) - cut - 0.5 <= j - floor(c) <= frac(c) + cut - 0.5
        # with frac(c) in [0, 1): |j - floor(c)| <= floor(cut + 0.5) covers it
        self.half = int(math.floor(cut + 0.5))  # patch rows/cols each side of floor(centre)
        self.patch = 2 * self.half + 1
        h = self.half
        self.offsets = (np.arange(self.patch, dtype=np.float32) - h + 0.5)  # (P,) pixel centres - floor(c)
        C = self.gains.shape[1]
        # log(255 * gain) per ball and channel; -inf where the ball is dark in that channel
        with np.errstate(divide="ignore"):
            self.log_gain = np.log(255.0 * self.gains).astype(np.float32)  # (n, C)
        self.channels = C
        hp, wp = self.height + 2 * h + 1, self.width + 2 * h + 1
        self._cap = np.full((C, BLOCK_FRAMES, hp, wp), 255.5, np.float32)  # clip level; read-only, so thread safe
        self.inv_radii = (1.0 / self.radii).astype(np.float32)  # (n,)

    def __call__(self, centers: np.ndarray) -> np.ndarray:
        centers = np.asarray(centers, np.float32)
        F = centers.shape[0]
        shape = (F, self.height, self.width) + ((self.channels,) if self.channels > 1 else ())
        out = np.empty(shape, np.uint8)
        for s in range(0, F, BLOCK_FRAMES):
            out[s : s + BLOCK_FRAMES] = self._block(centers[s : s + BLOCK_FRAMES])
        return out

    def _block(self, c: np.ndarray) -> np.ndarray:
        F, n, _ = c.shape
        H, W, C, P, h = self.height, self.width, self.channels, self.patch, self.half
        Hp, Wp = H + 2 * h + 1, W + 2 * h + 1  # padding: every patch fits, even at the border
        buf = np.empty((C, F, Hp, Wp), np.float32)
        buf.fill(0.5)  # + 0.5 then truncation = round half up
        # window origin in the padded buffer: pixel col j sits at padded col j + h, and the patch
        # spans cols floor(c) - h .. floor(c) + h, so it starts at padded col floor(c)
        fl = np.floor(c)
        start = np.clip(fl.astype(np.intp), 0, np.array([W, H], np.intp))  # (F, n, 2) centres lie in the frame
        d = self.offsets - (c - fl)[..., None]  # (F, n, 2, P) pixel-centre offsets from the centre
        d *= self.inv_radii[None, :, None, None]
        d *= d  # (F, n, 2, P) squared, in radii
        fi = np.arange(F)
        wins = [sliding_window_view(buf[ch], (P, P), axis=(1, 2), writeable=True) for ch in range(C)]  # (F, Hp-P+1, Wp-P+1, P, P)
        for i in range(n):
            s = d[:, i, 1, :, None] + d[:, i, 0, None, :]  # (F, P, P) (d / r)^2
            for _ in range(self.power.bit_length() - 1):  # ((d / r)^2)^power, power in {1, 2, 4}
                s *= s
            lit = [ch for ch in range(C) if np.isfinite(self.log_gain[i, ch])]
            if len(lit) == 1:
                np.subtract(self.log_gain[i, lit[0]], s, out=s)
                np.exp(s, out=s)  # (F, P, P) 255 * gain * exp(-(d^2/r^2)^power)
                wins[lit[0]][fi, start[:, i, 1], start[:, i, 0]] += s
            elif lit:
                np.negative(s, out=s)
                np.exp(s, out=s)
                for ch in lit:
                    wins[ch][fi, start[:, i, 1], start[:, i, 0]] += s * np.float32(255.0 * self.gains[i, ch])
        np.minimum(buf, self._cap[:, :F], out=buf)
        core = buf[:, :, h : h + H, h : h + W]  # (C, F, H, W)
        if C == 1:
            return core[0].astype(np.uint8)  # (F, H, W)
        return core.transpose(1, 2, 3, 0).astype(np.uint8)  # (F, H, W, C)
