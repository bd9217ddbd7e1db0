"""The beta-VAE: convolutional encoders and decoders sized from the input, and its objective.

Objective (per example, in nats): the evidence lower bound of Kingma and Welling (2014), with
the KL term weighted by beta as in the beta-VAE of Higgins et al. (2017, Eq. 4):

    L(x) = E_q(z|x)[log p(x|z)] - beta * KL(q(z|x) || N(0, I))

with one reparameterised sample for the expectation and the KL in closed form (Kingma and
Welling 2014, Appendix B). The reported ELBO always uses beta = 1. ``log_px_iw`` is the
importance-weighted bound of Burda et al. (2016, Eq. 8), which tightens towards log p(x) as the
number of samples K grows.

Architectures (``TrainVAEConfig.arch``):

- ``tutorial``: the convolutional VAE of the TensorFlow CVAE tutorial, layer for layer: two
  stride-2 3x3 convolutions (32, 64 filters, valid padding, ReLU), a dense layer to 2d outputs;
  the decoder a dense layer to 7x7x32 (for 28x28), two stride-2 3x3 transposed convolutions
  (64, 32 filters, same padding, ReLU) and a 3x3 transposed convolution to the logits.
- ``mlp``: two fully connected layers of 512 and 256 units each side (ReLU), as in the classic
  bouncing-ball latent study.
- ``resnet`` (default): residual blocks with group normalisation and SiLU at 1/2 and 1/4 of the
  input resolution, a thin full-resolution output stage; about the tutorial's cost per image.
Other input sizes: decoders produce 4 * ceil(H / 4) pixels and are cropped to H (and W).
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn
import torch.nn.functional as F

from latentdyn.core.errors import LatentdynError

ARCHS = ("tutorial", "mlp", "resnet")
LIKELIHOODS = ("bernoulli", "gaussian")
LOG_2PI = math.log(2 * math.pi)


def check_input(cfg, shape: tuple[int, int, int]) -> None:
    """Refuse an input (C, H, W) too small for ``cfg.arch``, or a likelihood not resolved from "auto"."""
    C, H, W = shape
    if cfg.likelihood not in LIKELIHOODS:
        raise LatentdynError(f"likelihood {cfg.likelihood!r}: use one of {', '.join(LIKELIHOODS)}")
    small = {"tutorial": 7, "resnet": 4, "mlp": 1}[cfg.arch]
    if min(H, W) < small:
        raise LatentdynError(f"input {H}x{W} is too small for --arch {cfg.arch} (needs at least {small}x{small})")


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


def build(cfg, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    """Encoder (x -> 2d) and decoder (z -> output map of the input's shape (C, H, W))."""
    (C, H, W), d = shape, cfg.latent_dim
    h4, w4 = math.ceil(H / 4), math.ceil(W / 4)
    if cfg.arch == "tutorial":
        enc_conv = nn.Sequential(nn.Conv2d(C, 32, 3, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n_flat = enc_conv(torch.zeros(1, C, H, W)).shape[1]
        enc = nn.Sequential(enc_conv, nn.Linear(n_flat, 2 * d))
        dec = nn.Sequential(
            nn.Linear(d, 32 * h4 * w4), nn.ReLU(), nn.Unflatten(1, (32, h4, w4)),
            nn.ConvTranspose2d(32, 64, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, C, 3, 1, padding=1),
        )
    elif cfg.arch == "mlp":
        D = C * H * W
        enc = nn.Sequential(nn.Flatten(), nn.Linear(D, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 2 * d))
        dec = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, D),
                            nn.Unflatten(1, (C, H, W)))
    else:
        a, b = cfg.width, 2 * cfg.width
        enc_conv = nn.Sequential(
            nn.Conv2d(C, a, 3, 2, padding=1), ResBlock(a), nn.Conv2d(a, b, 3, 2, padding=1), ResBlock(b),
            nn.GroupNorm(min(8, b), b), nn.SiLU(), nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = enc_conv(torch.zeros(1, C, H, W)).shape[1]
        enc = nn.Sequential(enc_conv, nn.Linear(n_flat, 2 * d))
        dec = nn.Sequential(
            nn.Linear(d, b * h4 * w4), nn.Unflatten(1, (b, h4, w4)), ResBlock(b),
            nn.ConvTranspose2d(b, a, 4, 2, padding=1), ResBlock(a),
            nn.ConvTranspose2d(a, a, 4, 2, padding=1), nn.GroupNorm(min(8, a), a), nn.SiLU(),
            nn.Conv2d(a, C, 3, padding=1),
        )
    return enc, dec


class BetaVAE(nn.Module):
    """q(z|x) = N(mu(x), diag exp(logvar(x))), p(z) = N(0, I), p(x|z) Bernoulli or Gaussian."""

    def __init__(self, cfg, shape: tuple[int, int, int]):
        """``cfg``: a :class:`latentdyn.vae.config.TrainVAEConfig` (arch, latent_dim, beta,
        likelihood, sigma, width); ``shape``: the input (C, H, W)."""
        super().__init__()
        check_input(cfg, shape)
        self.cfg = cfg
        self.shape = tuple(int(s) for s in shape)  # (C, H, W)
        self.latent_dim = cfg.latent_dim
        self.encoder, self.decoder = build(cfg, self.shape)
        if cfg.likelihood == "gaussian":
            init = math.log(cfg.sigma) if cfg.sigma is not None else math.log(0.1)
            self.log_sigma = nn.Parameter(torch.full((self.shape[0], 1, 1), init), requires_grad=cfg.sigma is None)

    # ---- the two halves ---------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> mean and log-variance, each (B, d)."""
        h = self.encoder(x)  # (B, 2d)
        mu, logvar = h.chunk(2, dim=-1)  # (B, d) each
        return mu, logvar.clamp(-30.0, 20.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> output map (B, C, H, W): Bernoulli logits or Gaussian pre-sigmoid means."""
        out = self.decoder(z)
        return _crop(out, self.shape[1], self.shape[2])

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> the decoder's mean image (B, C, H, W) in [0, 1]; differentiable."""
        return torch.sigmoid(self.decode_logits(z))

    # ---- densities ----------------------------------------------------------------------------
    def log_px_z(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example (B,), summed over pixels."""
        if self.cfg.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        mean = torch.sigmoid(logits)
        ls = self.log_sigma.expand_as(x)
        return -0.5 * (((x - mean) / ls.exp()) ** 2 + 2 * ls + LOG_2PI).flatten(1).sum(1)

    @staticmethod
    def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension (B, d): Kingma and Welling 2014, App. B."""
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    def forward(self, x: torch.Tensor, beta: float | None = None, generator: torch.Generator | None = None) -> dict:
        """One-sample ELBO terms per example: {'loss', 'elbo', 'rec', 'kl'} each (B,)."""
        mu, logvar = self.encode(x)  # (B, d)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps  # (B, d) reparameterisation
        logits = self.decode_logits(z).float()  # (B, C, H, W)
        rec = self.log_px_z(x.float(), logits)  # (B,)
        kl = self.kl_per_dim(mu.float(), logvar.float()).sum(1)  # (B,)
        b = self.cfg.beta if beta is None else beta
        return {"loss": -(rec - b * kl), "elbo": rec - kl, "rec": rec, "kl": kl}

    @torch.no_grad()
    def log_px_iw(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k samples (Burda et al. 2016), (B,)."""
        mu, logvar = self.encode(x)  # (B, d)
        std = (0.5 * logvar).exp()
        B, d = mu.shape
        terms = []
        for s in range(0, k, chunk):
            kk = min(chunk, k - s)
            eps = torch.randn((kk, B, d), generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + std * eps  # (kk, B, d)
            logits = self.decode_logits(z.reshape(kk * B, d)).float()  # (kk*B, C, H, W)
            xr = x.float().unsqueeze(0).expand(kk, *x.shape).reshape(kk * B, *x.shape[1:])
            lpx = self.log_px_z(xr, logits).view(kk, B)  # (kk, B)
            lpz = (-0.5 * (z.pow(2) + LOG_2PI)).sum(-1)  # (kk, B)
            lqz = (-0.5 * (eps.pow(2) + LOG_2PI) - 0.5 * logvar).sum(-1)  # (kk, B)
            terms.append(lpx + lpz - lqz)
        w = torch.cat(terms)  # (k, B)
        return torch.logsumexp(w, 0) - math.log(k)
