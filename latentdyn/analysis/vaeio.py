"""The one place this subpackage touches a trained VAE's config: load, encode, decode.

Everything else in ``latentdyn.analysis`` sees a VAE only through ``VAEHandle`` (its facts and
two numpy functions), so a change of the run config's field names is fixed in ``load`` alone.
The model is used only through ``model.encode(x) -> (mu, logvar)`` on float (B, C, H, W) in
[0, 1] and ``model.decode(z) -> (B, C, H, W)`` mean images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class VAEHandle:
    model: Any
    device: Any
    run: str
    latent_dim: int
    shape: tuple[int, int, int]  # (H, W, C) of the images the model takes
    binarize: str  # "none" | "static" | "dynamic": how training saw the pixels
    source: str  # what it was trained on (a dataset name or a scene file)
    data_dir: str | None
    epoch: int | None
    val_size: int = 5000  # datasets: the training images held out as val when it was trained
    latent_shape: tuple[int, int] | None = None  # (K slots, D each) of an object-slot VAE, else None

    def encode(self, images_u8: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """Posterior means and log-variances (N, d) float32 of uint8 images (N, H, W, C)."""
        from latentdyn.vae.encode import encode_frames

        return encode_frames(self.model, images_u8, self.device, batch=batch, binarize=self.binarize)

    def decode(self, z: np.ndarray, batch: int = 1024) -> np.ndarray:
        """Mean images (N, H, W, C) float32 in [0, 1] of latent points z (N, d)."""
        import torch

        z = np.asarray(z, np.float32).reshape(-1, self.latent_dim)
        out = []
        with torch.no_grad():
            for s in range(0, len(z), batch):
                x = self.model.decode(torch.from_numpy(z[s : s + batch]).to(self.device)).float()  # (B, C, H, W)
                out.append(x.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())  # (B, H, W, C)
        return np.concatenate(out) if out else np.zeros((0, *self.shape), np.float32)


def load(vae_run: str | Path, device: str = "auto", which: str = "best") -> VAEHandle:
    """The trained VAE of a run folder and the facts the analysis needs (all config reads are here)."""
    from latentdyn.engine.devices import pick_device
    from latentdyn.vae.train import load_vae

    dev = pick_device(device)
    model, cfg, ck = load_vae(vae_run, which, dev)
    return VAEHandle(
        model=model, device=dev, run=str(vae_run), latent_dim=int(model.latent_dim),
        shape=(int(model.shape[1]), int(model.shape[2]), int(model.shape[0])),
        binarize=str(cfg.binarize), source=str(cfg.data), data_dir=cfg.data_dir,
        epoch=ck.get("epoch"), val_size=int(cfg.val_size),
        latent_shape=tuple(int(v) for v in model.latent_shape) if getattr(model, "carries_slots", False) else None,
    )
