"""Preprocessing used by the VAE studies: scaling, binarization, grayscale, resizing.

Static binarization thresholds at 0.5 once, as the TensorFlow CVAE tutorial does; dynamic
binarization draws a fresh Bernoulli sample of every pixel each epoch (Salakhutdinov and Murray
2008, "On the quantitative analysis of deep belief networks"), seeded so runs repeat.
"""

from __future__ import annotations

import numpy as np

# ITU-R BT.601-2 luma weights, in the 16-bit fixed point that PIL's convert("L") uses
_LUMA_FIXED = np.array([19595, 38470, 7471], np.uint32)  # 0.299, 0.587, 0.114 times 65536


def to_gray(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, H, W, 1) uint8 by L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2)."""
    if images.shape[-1] == 1:
        return images
    acc = images.astype(np.uint32) @ _LUMA_FIXED  # (N, H, W)
    return ((acc + 0x8000) >> 16).astype(np.uint8)[..., None]


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return images.astype(np.float32) / 255.0


def binarize_static(x, threshold: float = 0.5):
    """1 where x > threshold else 0 (numpy arrays or torch tensors in [0, 1])."""
    return (x > threshold).astype(x.dtype) if isinstance(x, np.ndarray) else (x > threshold).to(x.dtype)


def binarize_dynamic(x, seed: int, epoch: int):
    """A Bernoulli(x) sample, fresh per epoch and the same for the same (seed, epoch).

    Works on torch tensors (on their device, with a torch.Generator) and on numpy arrays.
    """
    if isinstance(x, np.ndarray):
        rng = np.random.default_rng([seed, epoch, 0xB1])
        return (rng.random(x.shape, dtype=np.float32) < x).astype(x.dtype)
    import torch

    state = np.random.SeedSequence([seed, epoch, 0xB1]).generate_state(1, np.uint64)[0]
    g = torch.Generator(device=x.device).manual_seed(int(state) & (2**63 - 1))
    return torch.bernoulli(x, generator=g)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize (N, H, W, C) uint8 to (N, h, w, C) with antialiased bilinear filtering."""
    import torch
    import torch.nn.functional as F

    if images.shape[1:3] == tuple(size):
        return images
    out = []
    for s in range(0, len(images), 4096):  # bounded float memory
        x = torch.from_numpy(images[s : s + 4096]).permute(0, 3, 1, 2).float()  # (B, C, H, W)
        y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())  # (B, h, w, C)
    return np.concatenate(out)
