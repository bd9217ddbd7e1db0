"""The decoder trained on predictions (``TrainDynamicsConfig.decoder_finetune``).

A frozen decoder has only seen the encoder's posteriors of real frames; a predictor's open-loop
latents drift off them, and the decoder then draws blurred or melted objects. With
``decoder_finetune`` a copy of the VAE (encoder frozen, decoder trained at ``decoder_lr``) is
trained jointly with the predictor on the true frames of each training window:

    frame term  = mean_j sum_pixels (D(m_{K+j}) - x_{K+j})^2      (the open-loop predictions m)
    recon term  = mean_j sum_pixels (D(mu_{K+j}) - x_{K+j})^2     (the true posterior means mu)

both weighted by ``frame_loss_weight``; the second keeps the decoder faithful to real latents.
This is the joint training of the decoder on predicted states of STOVE (Kossen et al. 2020),
SRVP (Franceschi et al. 2020) and SlotFormer (Wu et al. 2023, which fine-tunes its decoder on
rolled-out slots). The tuned VAE is saved with the predictor (``tuned_vae.*`` in its weights, its
config in the checkpoint's ``data``), and the rollout decodes the model's predictions with it,
beside the same predictions through the frozen decoder (``model_frozen_decoder``).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from latentdyn.core.errors import LatentdynError

EXTRA_TERM = "recon_frame_se"  # the reconstruction term, logged beside open_loop_frame_se


def trainable_copy(vae):
    """A copy of the frozen VAE with its decoder trainable and its encoder frozen (train mode)."""
    tuned = copy.deepcopy(vae).train().requires_grad_(False)
    decoder_params = [p for n, p in tuned.named_parameters() if n.startswith("decoder.")]
    if not decoder_params:
        raise LatentdynError("this VAE has no decoder module; decoder_finetune cannot tell its decoder apart")
    for p in decoder_params:
        p.requires_grad_(True)
    return tuned


def vae_record(vae_ck: dict) -> dict:
    """What ``attach`` needs to rebuild the tuned VAE from a predictor checkpoint alone."""
    return {"config": vae_ck["config"], "shape": list(vae_ck["data"]["shape"])}


def attach(model, record: dict | None = None, vae=None):
    """Register the tuned VAE as ``model.tuned_vae`` (built from a checkpoint's ``record``, or ``vae``)."""
    if vae is None:
        from latentdyn.core.config import from_dict
        from latentdyn.vae.config import TrainVAEConfig
        from latentdyn.vae.factory import make_vae

        vae = make_vae(from_dict(TrainVAEConfig, record["config"]), tuple(record["shape"]))
    model.add_module("tuned_vae", vae)
    return model


def read_frames(latents: str | Path, split: str | None, device) -> torch.Tensor:
    """The frames (N, T, C, H, W) uint8 of a split of the scene file the latents were encoded from,
    in the order ``read_latents`` reads the latents (sorted indices), on ``device``."""
    from latentdyn.latents.file import open_latents
    from latentdyn.scenes.file import open_scenes

    with open_latents(latents) as lf:
        source = Path(str(lf.file.attrs.get("source", "")))
        ids = np.sort(lf.split_indices(split))
    if not source.is_file():
        raise LatentdynError(f"decoder_finetune needs the frames the latents were encoded from, and {source} is gone; "
                             "re-encode, or turn decoder_finetune off")
    with open_scenes(source) as sf:
        fr = sf.read_frames(ids)  # (N, T, H, W[, C])
    if fr.ndim == 4:
        fr = fr[..., None]
    return torch.from_numpy(np.ascontiguousarray(fr.transpose(0, 1, 4, 2, 3))).to(device)  # (N, T, C, H, W)


def frame_terms(vae, z, target_mu, frames) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window (B,): the frame term of predicted latents z (B, H, d) and the reconstruction term
    of the true latents target_mu (B, H, d), both against frames (B, H, C, h, w) uint8, gradients
    into z and the decoder (module docstring)."""
    B, H, d = z.shape
    x = frames.reshape(B * H, *frames.shape[2:]).float() / 255.0  # (B*H, C, h, w)
    pred = vae.decode(z.reshape(B * H, d)).float()  # (B*H, C, h, w)
    rec = vae.decode(target_mu.reshape(B * H, d)).float()
    return (((pred - x) ** 2).flatten(1).sum(1).view(B, H).mean(1),  # (B,)
            ((rec - x) ** 2).flatten(1).sum(1).view(B, H).mean(1))
