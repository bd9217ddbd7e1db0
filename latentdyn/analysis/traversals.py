"""Latent traversals and prior samples of a trained VAE (Higgins et al. 2017, Fig. 1 and 7).

Recipe. Dimensions are ranked by their mean KL over a batch of test codes,
KL_u = mean_x 0.5 (mu_u^2 + sigma_u^2 - 1 - log sigma_u^2) (Kingma and Welling 2014, App. B):
an informative dimension carries KL, a collapsed one about 0. For each of several test codes
(posterior means mu(x)) and each ranked dimension u, mu_u is swept over
mu_u + t * s_u for ``steps`` values of t in [-span, span] (default +-3), all other coordinates
kept, and the points decoded to mean images. The step s_u is, with ``scale``:

- ``"posterior"`` (default; the issue's recipe): that code's posterior standard deviation
  exp(logvar_u / 2). A collapsed dimension has s_u ~ 1 (the prior), an informative one a sharp
  posterior, so its row moves only as far as the encoder is unsure;
- ``"data"``: the standard deviation of mu_u over the batch (the aggregate posterior), which
  sweeps each dimension over the range the data use;
- ``"prior"``: 1.

Outputs: a grid PNG (one block per test code; rows: dimensions by decreasing KL, columns: the
steps), a video (MP4 and GIF) that sweeps t back and forth with every (dimension, code) tile
moving at once, and a grid of decodes of prior samples z ~ N(0, I) (seeded).
Decoders are passed as a function z (N, d) -> images (N, H, W, C) in [0, 1], so this module
needs no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from latentdyn.core.errors import LatentdynError

SCALES = ("posterior", "data", "prior")
Decoder = Callable[[np.ndarray], np.ndarray]


def kl_per_dim(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """Mean KL(q(z_u|x) || N(0, 1)) over the rows (d,), nats (Kingma and Welling 2014, App. B)."""
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    return (0.5 * (mu**2 + np.exp(logvar) - 1.0 - logvar)).mean(0)


def traverse(decode: Decoder, mu: np.ndarray, logvar: np.ndarray, dims, steps: int = 9, span: float = 3.0,
             scale: str = "posterior") -> tuple[np.ndarray, np.ndarray]:
    """Decoded traversals (len(dims), n, steps, H, W, C) of codes mu (n, d) and the offsets t (steps,).

    ``scale``: see the module docstring; ``data`` needs at least two codes in ``mu``.
    """
    if scale not in SCALES:
        raise LatentdynError(f"traversal scale {scale!r}: use one of {', '.join(SCALES)}")
    if steps < 2:
        raise LatentdynError(f"--steps {steps}: a traversal needs at least 2 steps")
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    n, d = mu.shape
    dims = [int(u) for u in dims]
    if any(not 0 <= u < d for u in dims):
        raise LatentdynError(f"traversal dimensions {dims} must be in 0..{d - 1}")
    t = np.linspace(-span, span, steps)  # (steps,)
    if scale == "posterior":
        s = np.exp(0.5 * logvar)  # (n, d)
    elif scale == "data":
        s = np.broadcast_to(mu.std(0) if n > 1 else np.ones(d), (n, d))
    else:
        s = np.ones((n, d))
    z = np.repeat(mu[None, :, None, :], len(dims), 0).repeat(steps, 2)  # (D, n, steps, d)
    for a, u in enumerate(dims):
        z[a, :, :, u] = mu[:, u, None] + t[None, :] * s[:, u, None]
    imgs = decode(z.reshape(-1, d))  # (D*n*steps, H, W, C)
    return np.asarray(imgs).reshape(len(dims), n, steps, *np.asarray(imgs).shape[1:]), t


def montage(images: np.ndarray, gap: int = 1, value: float = 0.15) -> np.ndarray:
    """Tile images (R, S, H, W, C) into one (R*H + (R-1)*gap, S*W + (S-1)*gap, C) image."""
    R, S, H, W, C = images.shape
    out = np.full((R * H + (R - 1) * gap, S * W + (S - 1) * gap, C), value, np.float32)
    for r in range(R):
        for c in range(S):
            out[r * (H + gap) : r * (H + gap) + H, c * (W + gap) : c * (W + gap) + W] = images[r, c]
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def _show(ax, img: np.ndarray) -> None:
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")


def traversal_figure(images: np.ndarray, t: np.ndarray, dims, kl: np.ndarray, path: str | Path, title: str = "",
                     labels: list[str] | None = None) -> Path:
    """PNG of traversals (D, n, steps, H, W, C): n blocks side by side, rows = dims (labelled with KL;
    ``labels``: a name per latent dimension in place of z1, z2, ...)."""
    from latentdyn.viz.figures import _plt, save_figure

    plt = _plt()
    D, n, S, H, W, C = images.shape
    gap = 1
    blocks = [montage(images[:, i], gap) for i in range(n)]  # each (D*H.., S*W.., C)
    sep = np.full((blocks[0].shape[0], 3 * W // 4 + 1, C), 1.0, np.float32)
    img = np.concatenate([b for i, blk in enumerate(blocks) for b in ((sep, blk) if i else (blk,))], axis=1)
    scale = max(0.22, 0.55 * H / 28)
    fig = plt.figure(figsize=(max(4.0, img.shape[1] / H * scale + 1.5), img.shape[0] / H * scale + 0.9))
    ax = fig.add_subplot(111)
    _show(ax, img)
    ax.set_yticks([(r + 0.5) * H + r * gap for r in range(D)])
    ax.set_yticklabels([f"{labels[u] if labels else f'z{u + 1}'}  KL {kl[u]:.2f}" for u in dims], fontsize=7)
    ax.set_xticks([(c + 0.5) * W + c * gap for c in range(S)])
    ax.set_xticklabels([f"{v:+.1f}" for v in t], fontsize=6)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xlabel("offset (standard deviations); one block per test code", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path)


def traversal_video(images: np.ndarray, t: np.ndarray, dims, out_stem: str | Path, fps: float = 6.0,
                    labels: list[str] | None = None) -> list[Path]:
    """MP4 and GIF sweeping t back and forth: a tile per (dimension, code), rows = dimensions
    (``labels``: a name per latent dimension in place of z1, z2, ...)."""
    from latentdyn.viz.video import auto_scale, grid, write_video

    D, n, S = images.shape[:3]
    path = list(range(S)) + list(range(S - 2, 0, -1))  # ping-pong, each end once
    u8 = to_uint8(images)
    panels = [u8[a, i, path] for a in range(D) for i in range(n)]  # each (T, H, W, C)
    tiles = [(labels[dims[a]] if labels else f"z{dims[a] + 1}") + (f" code {i}" if n > 1 else "")
             for a in range(D) for i in range(n)]
    frames = grid(panels, labels=tiles, columns=n, scale=auto_scale(images.shape[3], 56),
                  title=[f"offset {t[k]:+.2f} sd" for k in path])
    stem = Path(out_stem)
    return [write_video(frames, stem.with_suffix(".mp4"), fps), write_video(frames, stem.with_suffix(".gif"), fps)]


def prior_grid(decode: Decoder, latent_dim: int, path: str | Path, n: int = 8, seed: int = 0) -> tuple[Path, np.ndarray]:
    """PNG of decodes of n x n prior samples z ~ N(0, I) (seeded); returns the path and the images."""
    from latentdyn.viz.figures import _plt, save_figure

    z = np.random.default_rng(seed).standard_normal((n * n, latent_dim))  # (n*n, d)
    imgs = np.asarray(decode(z))  # (n*n, H, W, C)
    mont = montage(imgs.reshape(n, n, *imgs.shape[1:]))
    plt = _plt()
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(111)
    _show(ax, mont)
    ax.set_axis_off()
    ax.set_title(f"decoded prior samples z ~ N(0, I), {n}x{n}, seed {seed}", fontsize=9)
    return save_figure(fig, path), imgs


def write_traversals(decode: Decoder, mu: np.ndarray, logvar: np.ndarray, out: str | Path, n_codes: int = 4,
                     steps: int = 9, span: float = 3.0, scale: str = "posterior", max_dims: int = 10,
                     seed: int = 0, fps: float = 6.0, title: str = "") -> dict:
    """Rank dimensions by KL over (mu, logvar) (n, d), traverse ``n_codes`` of the codes (seeded
    pick) over the ``max_dims`` dimensions of most KL; write traversals.png/.mp4/.gif into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(mu) == 0:
        raise LatentdynError("no codes to traverse; the split is empty")
    kl = kl_per_dim(mu, logvar)
    dims = [int(u) for u in np.argsort(-kl, kind="stable")[:max_dims]]
    pick = np.sort(np.random.default_rng(seed).choice(len(mu), min(n_codes, len(mu)), replace=False))
    lv, asked = logvar[pick], scale
    if scale == "data":  # the aggregate posterior's spread over the whole batch, not just the picked codes
        lv = np.broadcast_to(np.log(np.maximum(np.asarray(mu).var(0), 1e-12)), lv.shape)
        scale = "posterior"
    images, t = traverse(decode, mu[pick], lv, dims, steps, span, scale)
    png = traversal_figure(images, t, dims, kl, out / "traversals.png", title)
    videos = traversal_video(images, t, dims, out / "traversals", fps)
    return {"png": str(png), "videos": [str(v) for v in videos], "dims": dims, "codes": pick.tolist(),
            "kl_per_dim": kl.tolist(), "offsets": t.tolist(), "scale": asked, "images": images}
