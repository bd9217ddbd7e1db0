"""The VAE's networks: encoders and decoders sized from the input (``build``), their blocks, and the
latent's shape (flat, a spatial map at 1/8 or 1/4 of the input's resolution, or object slots).
The objective that uses them is ``latentdyn.vae.model``; the architectures are described there."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError
from latentdyn.vae import likelihoods as lik
from latentdyn.vae.arch import resolve_width

STRIDES = (8, 4)  # the spatial latent's map: 1/8 of the input's resolution (the default) or 1/4


def latent_stride(cfg) -> int:
    """How many input pixels one cell of a spatial latent's map spans (8, or 4 when ``cfg.latent_stride`` = 4)."""
    return int(getattr(cfg, "latent_stride", 8) or 8)


def latent_shape(cfg, shape: tuple[int, int, int]) -> tuple[int, ...]:
    """The latent's shape for input (C, H, W): (d,) for a flat latent, (c, ceil(H/s), ceil(W/s))
    for a spatial one (``cfg.latent_channels`` = c, s = ``latent_stride``, 8 or 4), (K, D) for object
    slots (``arch`` = slots)."""
    if getattr(cfg, "arch", "") == "slots":
        return (int(cfg.slots), int(cfg.slot_dim))
    c = int(getattr(cfg, "latent_channels", 0) or 0)
    if not c:
        return (int(cfg.latent_dim),)
    s = latent_stride(cfg)
    return (c, math.ceil(shape[1] / s), math.ceil(shape[2] / s))


def _crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Centre-crop (B, C, H', W') to (B, C, h, w)."""
    dh, dw = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[..., dh : dh + h, dw : dw + w]


class ResBlock(nn.Module):
    """x + conv(silu(norm(conv(silu(norm(x)))))) (pre-activation, He et al. 2016)."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(min(8, ch), ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
            nn.GroupNorm(min(8, ch), ch), nn.SiLU(), nn.Conv2d(ch, ch, 3, padding=1),
        )

    def forward(self, x):
        return x + self.body(x)


class _SplitFlatten(nn.Module):
    """(B, 2c, h, w) maps -> (B, 2 * c * h * w): the c mu maps flattened, then the c logvar maps."""

    def __init__(self, c: int):
        super().__init__()
        self.c = c

    def forward(self, x):
        return torch.cat([x[:, : self.c].flatten(1), x[:, self.c :].flatten(1)], 1)


class _Crop(nn.Module):
    """Centre-crop (B, C, H', W') to (B, C, h, w)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x):
        return _crop(x, self.h, self.w)


def _last_parametrised(seq: nn.Sequential) -> int:
    """Index of the last module of ``seq`` with parameters: from there on, the network's output layer."""
    return max(i for i, m in enumerate(seq) if any(True for _ in m.parameters()))


def decoder_maps(likelihood: str) -> int:
    """Decoder output maps per image channel: the likelihood's parameters, less the continuous
    Gaussian's sigma (a model parameter)."""
    return 1 if likelihood == "gaussian" else lik.get(likelihood).n_params


def build(cfg, shape: tuple[int, int, int], context: int = 0) -> tuple[nn.Module, nn.Module]:
    """Encoder (x -> 2d + ``context``: mu, logvar and the IAF's context h(x)) and decoder (z -> output
    map (P * C, H, W) of the input's shape (C, H, W), P = ``decoder_maps``)."""
    (C, H, W), d = shape, cfg.latent_dim
    n_out = 2 * d + context
    P = decoder_maps(cfg.likelihood)
    h4, w4 = math.ceil(H / 4), math.ceil(W / 4)
    if cfg.arch == "slots":
        raise LatentdynError("arch slots is the object-slot VAE: build it with latentdyn.vae.factory.make_vae")
    if cfg.arch == "tutorial":
        enc_conv = nn.Sequential(nn.Conv2d(C, 32, 3, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n_flat = enc_conv(torch.zeros(1, C, H, W)).shape[1]
        enc = nn.Sequential(enc_conv, nn.Linear(n_flat, n_out))
        dec = nn.Sequential(
            nn.Linear(d, 32 * h4 * w4), nn.ReLU(), nn.Unflatten(1, (32, h4, w4)),
            nn.ConvTranspose2d(32, 64, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, P * C, 3, 1, padding=1),
        )
    elif cfg.arch == "mlp":
        D = C * H * W
        enc = nn.Sequential(nn.Flatten(), nn.Linear(D, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, n_out))
        dec = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, P * D),
                            nn.Unflatten(1, (P * C, H, W)))
    elif getattr(cfg, "latent_channels", 0):
        w = resolve_width(cfg, shape)
        a, b, c = w, 2 * w, cfg.latent_channels
        hl, wl = latent_shape(cfg, shape)[1:]
        if context:
            raise LatentdynError("a spatial latent has no IAF context; set posterior = gaussian")
        if latent_stride(cfg) == 4:  # (B, C, H, W) -> (B, 2c, h4, w4): two stride-2 stages, two residual blocks at 1/4
            enc = nn.Sequential(
                nn.Conv2d(C, a, 3, 2, padding=1), ResBlock(a), nn.Conv2d(a, b, 3, 2, padding=1), ResBlock(b), ResBlock(b),
                nn.GroupNorm(min(8, b), b), nn.SiLU(), nn.Conv2d(b, 2 * c, 1), _SplitFlatten(c),
            )
            dec = nn.Sequential(
                nn.Unflatten(1, (c, hl, wl)), nn.Conv2d(c, b, 1), ResBlock(b), ResBlock(b),
                nn.ConvTranspose2d(b, a, 4, 2, padding=1), ResBlock(a),
                nn.ConvTranspose2d(a, a, 4, 2, padding=1), nn.GroupNorm(min(8, a), a), nn.SiLU(),
                nn.Conv2d(a, P * C, 3, padding=1),
            )
            return enc, dec
        # (B, C, H, W) -> (B, 2c, h8, w8) -> (B, 2d): mu maps then logvar maps, each flattened channel-major
        enc = nn.Sequential(
            nn.Conv2d(C, a, 3, 2, padding=1), ResBlock(a), nn.Conv2d(a, b, 3, 2, padding=1), ResBlock(b),
            nn.Conv2d(b, b, 3, 2, padding=1), ResBlock(b), nn.GroupNorm(min(8, b), b), nn.SiLU(),  # 1/8: ceil(ceil(H/4)/2)
            nn.Conv2d(b, 2 * c, 1), _SplitFlatten(c),
        )
        dec = nn.Sequential(
            nn.Unflatten(1, (c, hl, wl)), nn.Conv2d(c, b, 1), ResBlock(b),
            nn.ConvTranspose2d(b, b, 4, 2, padding=1), ResBlock(b),  # (B, b, 2 h8, 2 w8), cropped to h4 x w4 below
            _Crop(h4, w4),
            nn.ConvTranspose2d(b, a, 4, 2, padding=1), ResBlock(a),
            nn.ConvTranspose2d(a, a, 4, 2, padding=1), nn.GroupNorm(min(8, a), a), nn.SiLU(),
            nn.Conv2d(a, P * C, 3, padding=1),
        )
    else:
        a = resolve_width(cfg, shape)
        b = 2 * a
        enc_conv = nn.Sequential(
            nn.Conv2d(C, a, 3, 2, padding=1), ResBlock(a), nn.Conv2d(a, b, 3, 2, padding=1), ResBlock(b),
            nn.GroupNorm(min(8, b), b), nn.SiLU(), nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = enc_conv(torch.zeros(1, C, H, W)).shape[1]
        enc = nn.Sequential(enc_conv, nn.Linear(n_flat, n_out))
        dec = nn.Sequential(
            nn.Linear(d, b * h4 * w4), nn.Unflatten(1, (b, h4, w4)), ResBlock(b),
            nn.ConvTranspose2d(b, a, 4, 2, padding=1), ResBlock(a),
            nn.ConvTranspose2d(a, a, 4, 2, padding=1), nn.GroupNorm(min(8, a), a), nn.SiLU(),
            nn.Conv2d(a, P * C, 3, padding=1),
        )
    return enc, dec
