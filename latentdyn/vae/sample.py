"""Sampling from a trained VAE (``latentdyn sample``): a grid of decoded prior samples as PNG.

z = g(T u), u ~ N(0, I) from a seeded CPU generator (the same draws on every device), g the
flow prior (``priors.py``; the identity for N(0, I)), T the temperature; each image is the
decoder's mean E[x|z] (the likelihood's mean, ``BetaVAE.decode``), rounded to 8 bits. For a
scene model the images are sampled start frames. The grid is ``columns = ceil(sqrt(n))`` images
wide and ``ceil(n / columns)`` high, with no gaps (unused cells are black), so the PNG is
(rows * H) x (columns * W) pixels, and the same run, n, T and seed give the same bytes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir


def tile(images: np.ndarray, columns: int | None = None) -> np.ndarray:
    """(n, H, W, C) uint8 -> one (rows * H, columns * W, C) image, row by row; empty cells black."""
    n, H, W, C = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.zeros((rows * cols, H, W, C), np.uint8)
    out[:n] = images
    return out.reshape(rows, cols, H, W, C).transpose(0, 2, 1, 3, 4).reshape(rows * H, cols * W, C)


def sample_images(model, n: int, temperature: float = 1.0, seed: int = 0, batch: int = 512) -> np.ndarray:
    """n decoded prior samples, uint8 (n, H, W, C)."""
    import torch

    from latentdyn.vae.priors import sample_prior

    z = sample_prior(model, n, temperature, seed)  # (n, d) on the model's device
    parts = []
    with torch.no_grad():
        for s in range(0, n, batch):
            x = model.decode(z[s : s + batch]).float().clamp(0, 1)  # (b, C, H, W)
            parts.append((x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(parts)


def sample(vae_run: str | Path, out: str | Path, n: int = 64, temperature: float = 1.0, seed: int = 0,
           which: str = "best", device: str = "auto") -> dict:
    """Write the PNG grid of ``n`` samples of the VAE in ``vae_run`` to ``out``; returns its summary."""
    from PIL import Image

    from latentdyn.engine.devices import pick_device
    from latentdyn.vae.train import load_vae

    out = Path(out)
    if out.suffix.lower() != ".png":
        raise LatentdynError(f"--out {out}: use a .png file name")
    check_writable_dir(out)
    model, cfg, ck = load_vae(vae_run, which, pick_device(device))
    imgs = sample_images(model, n, temperature, seed)  # (n, H, W, C)
    grid = tile(imgs)
    pil = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    with atomic_path(out) as tmp:
        pil.save(tmp, format="PNG")
    return {"n": n, "temperature": temperature, "seed": seed, "checkpoint": which, "epoch": ck["epoch"],
            "prior": cfg.prior, "image_shape": list(imgs.shape[1:]), "grid_shape": list(grid.shape[:2])}
