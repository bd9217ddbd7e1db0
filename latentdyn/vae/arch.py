"""Sizing rules of the VAE's architectures: the resnet's width from the frame size, and where a
channels-last memory layout pays (both measured, docs/results.md "Studies in minutes on a CPU")."""

from __future__ import annotations

import torch


def auto_width(shape: tuple[int, int, int]) -> int:
    """The resnet's first-stage width for input (C, H, W) when ``width`` = 0 (auto): 8 for frames up
    to 32 px on their longer side, 16 up to 64 px, 32 above. Measured on three_balls (30 x 30,
    docs/results.md, "A small-frame VAE"): width 8 keeps every ball at 0.14 px in about a third of
    width 32's time to that quality; larger frames hold more detail per object."""
    side = max(shape[1], shape[2])
    return 8 if side <= 32 else 16 if side <= 64 else 32


def resolve_width(cfg, shape: tuple[int, int, int]) -> int:
    """``cfg.width``, or :func:`auto_width` when it is 0."""
    return int(cfg.width) if getattr(cfg, "width", 0) else auto_width(shape)


def channels_last_pays(model, device) -> bool:
    """Whether to keep ``model``'s convolutions channels-last on ``device``: always on CUDA; on the CPU
    for the tutorial architecture and a resnet of width >= 16, not for the narrow small-frame resnet
    (measured in benchmarks/bench_speed.py's setting: width 8 trained 4-6% and encoded 34% slower
    channels-last, the tutorial trained 13-19% faster; docs/results.md), never for the mlp, the slot model or on MPS."""
    kind = torch.device(device).type
    if model.cfg.arch == "slots":
        return False  # its convolutions are a small part of its work, and it reads clips (B, L, C, H, W)
    if kind == "cuda":
        return model.cfg.arch != "mlp"
    if kind != "cpu":
        return False
    return model.cfg.arch == "tutorial" or (model.cfg.arch == "resnet" and resolve_width(model.cfg, model.shape) >= 16)
