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

Spatial latent (``TrainVAEConfig.latent_channels`` = c > 0, resnet only): the encoder goes on from
1/4 to 1/8 of the input's resolution (a stride-2 convolution and a residual block) and a 1x1
convolution gives mu and logvar as maps (c, ceil(H/8), ceil(W/8)); the decoder starts from that
map with a 1x1 convolution and a residual block, then upsamples like the flat one. With
``latent_stride = 4`` the map stays at 1/4 (a second residual block there instead of the third
stage, on both sides). The networks are built in ``latentdyn.vae.nets``. Everything
outside the model sees the latent flattened to d = c * ceil(H/8) * ceil(W/8) (channel-major, as
``torch.flatten`` orders it): latents files, KL, flows, maps and analysis are unchanged, and
``latent_shape`` gives the map's shape to the convolutional GRU (``latentdyn.dynamics.model``).

Likelihoods (``TrainVAEConfig.likelihood``, ``latentdyn.vae.likelihoods``): ``bernoulli`` (logits;
a log-probability of binarised data only), ``discretized-logistic`` and ``discretized-gaussian``
(8-bit data x = u8 / 255: a location and a log-scale per pixel, the probability of the integer
level), ``gaussian`` (continuous density with one learned or fixed sigma per channel: a training
loss on 8-bit data). The decoder outputs ``n_params`` maps per image channel (the Gaussian's
sigma is a parameter of the model, not a decoder output).

Flows (``TrainVAEConfig.prior`` / ``posterior``; ``priors.py``, ``posteriors.py``, docs/flows.md):
a flow prior p(z) learned with the model and an inverse autoregressive flow on q(z|x). Whenever
either is a flow, the KL term is the one-sample Monte-Carlo estimate log q(z|x) - log p(z) at
the z the reconstruction term uses (as Kingma et al. 2016 train the IAF), so the ELBO stays an
unbiased estimate of the bound; with both Gaussian the closed form above is used, exactly as before.

Precision: the reparameterisation (mu, logvar, eps, z), the KL and the log-likelihood sums are
computed in float32 with autocast switched off, whatever precision the encoder and decoder run
in: under bfloat16 (8 bits of mantissa) mu + sigma * eps would drop posterior noise smaller
than about mu / 256. The flows run in float32 with autocast off too.
"""

from __future__ import annotations

import math
import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError
from latentdyn.vae import likelihoods as lik
from latentdyn.vae.arch import auto_width, channels_last_pays, resolve_width  # noqa: F401  (re-exported)
from latentdyn.vae.nets import (  # noqa: F401  (re-exported)
    STRIDES, ResBlock, _crop, _last_parametrised, build, decoder_maps, latent_shape, latent_stride,
)
from latentdyn.vae.posteriors import IAF_CONTEXT, make_posterior_flow
from latentdyn.vae.priors import make_prior

ARCHS = ("tutorial", "mlp", "resnet", "slots")
LIKELIHOODS = lik.NAMES  # bernoulli, gaussian, discretized-logistic, discretized-gaussian
LOG_2PI = math.log(2 * math.pi)


def check_input(cfg, shape: tuple[int, int, int]) -> None:
    """Refuse an input (C, H, W) too small for ``cfg.arch``, a likelihood not resolved from "auto",
    or a spatial latent whose size disagrees with ``latent_dim``."""
    C, H, W = shape
    if cfg.likelihood not in LIKELIHOODS:
        raise LatentdynError(f"likelihood {cfg.likelihood!r}: use one of {', '.join(LIKELIHOODS)}")
    if getattr(cfg, "latent_channels", 0):
        if cfg.arch != "resnet":
            raise LatentdynError(f"latent_channels {cfg.latent_channels}: a spatial latent needs --arch resnet, not {cfg.arch}")
        if cfg.posterior == "iaf":
            raise LatentdynError("latent_channels: a spatial latent takes the gaussian posterior; set posterior = gaussian")
        if latent_stride(cfg) not in STRIDES:
            raise LatentdynError(f"latent_stride {cfg.latent_stride}: use 8 (a map at 1/8 of the input's size) or 4 (1/4)")
        ls = latent_shape(cfg, shape)
        n = ls[0] * ls[1] * ls[2]
        if n != cfg.latent_dim:
            raise LatentdynError(f"latent_dim {cfg.latent_dim} with latent_channels {cfg.latent_channels} on {H}x{W} input: "
                                 f"a {ls[0]} x {ls[1]} x {ls[2]} map has {n} dimensions; set latent_dim = {n}")
    from latentdyn.vae.config import check_slots

    check_slots(cfg)
    small = {"tutorial": 7, "resnet": 4, "mlp": 1, "slots": 1}[cfg.arch]
    if min(H, W) < small:
        raise LatentdynError(f"input {H}x{W} is too small for --arch {cfg.arch} (needs at least {small}x{small})")


def _fp32(t: torch.Tensor):
    """A block with autocast off on ``t``'s device: float32 arithmetic stays float32."""
    return torch.autocast(t.device.type, enabled=False)


def _run(seq: nn.Sequential, x: torch.Tensor, head: int) -> torch.Tensor:
    """``seq(x)`` with the output layer (modules ``head``... on) in float32 with autocast off: under
    bfloat16 the trunk runs in bf16 while the latent's mean and log-variance, and the likelihood's
    location and scale maps, keep float32's 24 bits of mantissa (bf16's 8 would round a pixel
    location in [0, 1] by up to 1/256, one 8-bit level)."""
    modules = list(seq)
    for m in modules[:head]:
        x = m(x)
    with _fp32(x):
        x = x.float()
        for m in modules[head:]:
            x = m(x)
    return x


class BetaVAE(nn.Module):
    """q(z|x) = N(mu(x), diag exp(logvar(x))) (or an IAF on it), p(z) = N(0, I) (or a flow),
    p(x|z) one of ``LIKELIHOODS``."""

    def __init__(self, cfg, shape: tuple[int, int, int]):
        """``cfg``: a :class:`latentdyn.vae.config.TrainVAEConfig` (arch, latent_dim, beta,
        likelihood, sigma, width, prior, posterior and the flow settings); ``shape``: the input (C, H, W)."""
        super().__init__()
        check_input(cfg, shape)
        self.cfg = cfg
        self.shape = tuple(int(s) for s in shape)  # (C, H, W)
        self.latent_dim = cfg.latent_dim
        self.latent_shape = latent_shape(cfg, self.shape)  # (d,) or (c, h/8, w/8)
        self.lik = lik.get(cfg.likelihood)
        self.encoder, self.decoder = self.build_networks(cfg, self.shape, IAF_CONTEXT if cfg.posterior == "iaf" else 0)
        self._enc_head = _last_parametrised(self.encoder)  # from here on float32 under autocast
        self._dec_head = _last_parametrised(self.decoder)
        if cfg.likelihood == "gaussian":
            init = math.log(cfg.sigma) if cfg.sigma is not None else math.log(0.1)
            self.log_sigma = nn.Parameter(torch.full((self.shape[0], 1, 1), init), requires_grad=cfg.sigma is None)
        self.prior = make_prior(cfg)  # GaussianPrior holds no tensors: a Gaussian model's state dict is unchanged
        self.iaf = make_posterior_flow(cfg)  # None for the Gaussian posterior

    def build_networks(self, cfg, shape: tuple[int, int, int], context: int) -> tuple[nn.Module, nn.Module]:
        """Encoder and decoder (``build``); a subclass with other halves overrides this."""
        return build(cfg, shape, context)

    @property
    def has_flow(self) -> bool:
        """Whether the prior or the posterior is a flow (then the KL is a one-sample estimate)."""
        return self.prior.is_flow or self.iaf is not None

    # ---- the two halves ---------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) in [0, 1] -> the base Gaussian's mean and log-variance, each (B, d), and the
        IAF's context h (B, IAF_CONTEXT) or None (in the encoder's dtype)."""
        h = _run(self.encoder, x, self._enc_head)  # (B, 2d [+ context]) float32
        d = self.latent_dim
        mu, logvar = h[..., :d], h[..., d : 2 * d]  # (B, d) each
        return mu, logvar.clamp(-30.0, 20.0), (h[..., 2 * d :] if self.iaf is not None else None)

    def summarize(self, mu: torch.Tensor, logvar: torch.Tensor, ctx: torch.Tensor | None):
        """Posterior summary in the decoder's space: (mu, logvar) of the Gaussian posterior as they are;
        for an IAF, the flow's image of the base mean and the linearised log-variances (``posteriors.py``)."""
        if self.iaf is None:
            return mu, logvar
        with _fp32(mu):
            return self.iaf.summary(mu.float(), logvar.float(), ctx.float())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> posterior mean and log-variance, each (B, d), in the decoder's
        latent space (in the encoder's dtype; float32 for an IAF posterior, see ``summarize``)."""
        return self.summarize(*self.posterior(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> the decoder's output map (B, P * C, H, W): Bernoulli logits, Gaussian
        pre-sigmoid means (P = 1), or the discretised models' location and raw log-scale maps (P = 2)."""
        out = _run(self.decoder, z, self._dec_head)  # float32
        return _crop(out, self.shape[1], self.shape[2])

    def likelihood_params(self, out: torch.Tensor) -> torch.Tensor:
        """Decoder output map -> the likelihood's ``params`` (float32): for the continuous Gaussian
        the learned (or fixed) log-sigma per channel is appended as a second map."""
        out = out.float()
        if self.cfg.likelihood == "gaussian":
            out = torch.cat([out, self.log_sigma.float().expand_as(out)], dim=1)  # (B, 2C, H, W)
        return out

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, d) -> the decoder's mean image (B, C, H, W) in [0, 1]; differentiable."""
        out = self.decode_logits(z)
        if self.cfg.likelihood == "bernoulli":
            return torch.sigmoid(out)  # in the decoder's dtype, as before
        with _fp32(out):
            return self.lik.mean(self.likelihood_params(out))

    # ---- densities ----------------------------------------------------------------------------
    def log_px_z(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per example (B,), summed over pixels, in float32; ``logits`` is the decoder's
        output map (``decode_logits``)."""
        with _fp32(logits):
            return self.lik.log_prob(x.float(), self.likelihood_params(logits))

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (..., d) -> (...), float32 with autocast off (N(0, I) or the flow prior)."""
        with _fp32(z):
            return self.prior.log_prob(z.float())

    @staticmethod
    def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension (B, d), in float32: Kingma and Welling 2014, App. B."""
        with _fp32(mu):
            mu, logvar = mu.float(), logvar.float()
            return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I), in float32 with autocast off (Kingma and
        Welling 2014, Sec. 2.4). mu, logvar (B, d) -> (z, eps), each (B, d), or (k, B, d) with ``k``."""
        with _fp32(mu):
            mu, logvar = mu.float(), logvar.float()
            shape = mu.shape if k is None else (k, *mu.shape)
            eps = torch.randn(shape, generator=generator, device=mu.device, dtype=torch.float32)
            return mu + torch.exp(0.5 * logvar) * eps, eps

    def sample_posterior(self, mu: torch.Tensor, logvar: torch.Tensor, ctx: torch.Tensor | None,
                         generator: torch.Generator | None = None, k: int | None = None):
        """z ~ q(z|x) and log q(z|x) of that z, float32 with autocast off: (z (B, d), log_q (B,)), or
        (k, B, d) and (k, B) with ``k``. log q = log N(z0; mu, sigma^2) - log |det dz/dz0| for an IAF."""
        z, eps = self.reparameterize(mu, logvar, generator, k)  # (.., B, d)
        with _fp32(z):
            log_q = (-0.5 * (eps.pow(2) + LOG_2PI) - 0.5 * logvar.float()).sum(-1)  # (.., B)
            if self.iaf is not None:
                z, ladj = self.iaf(z, ctx.float())  # (.., B, d), (.., B)
                log_q = log_q - ladj
        return z, log_q

    def forward(self, x: torch.Tensor, beta: float | None = None, generator: torch.Generator | None = None) -> dict:
        """One-sample ELBO terms per example: {'loss', 'elbo', 'rec', 'kl'} each (B,), float32."""
        mu, logvar, ctx = self.posterior(x)  # (B, d)
        if self.has_flow:
            z, log_q = self.sample_posterior(mu, logvar, ctx, generator)  # (B, d), (B,) float32
        else:
            z, _ = self.reparameterize(mu, logvar, generator)  # (B, d) float32
        logits = self.decode_logits(z)  # (B, P * C, H, W), under the caller's autocast
        rec = self.log_px_z(x, logits)  # (B,)
        if self.has_flow:
            kl = log_q - self.log_prior(z)  # (B,): the one-sample estimate, same z as rec
        else:
            kl = self.kl_per_dim(mu, logvar).sum(1)  # (B,): closed form
        b = self.cfg.beta if beta is None else beta
        return {"loss": -(rec - b * kl), "elbo": rec - kl, "rec": rec, "kl": kl}

    @torch.no_grad()
    def log_px_iw(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None, chunk: int = 64) -> torch.Tensor:
        """Importance-weighted estimate of log p(x) with k samples (Burda et al. 2016, Eq. 8), (B,), float32:
        log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x), with the model's prior and posterior."""
        mu, logvar, ctx = self.posterior(x)  # (B, d)
        B, d = mu.shape
        terms = []
        for s in range(0, k, chunk):
            kk = min(chunk, k - s)
            z, lqz = self.sample_posterior(mu, logvar, ctx, generator, k=kk)  # (kk, B, d), (kk, B) float32
            logits = self.decode_logits(z.reshape(kk * B, d))  # (kk*B, P * C, H, W)
            xr = x.unsqueeze(0).expand(kk, *x.shape).reshape(kk * B, *x.shape[1:])
            lpx = self.log_px_z(xr, logits).view(kk, B)  # (kk, B)
            terms.append(lpx + self.log_prior(z) - lqz)  # (kk, B)
        w = torch.cat(terms)  # (k, B)
        return torch.logsumexp(w, 0) - math.log(k)


def flow_mismatch(model: BetaVAE, state: dict) -> str | None:
    """What a state dict lacks or adds in flows against ``model`` (None when they agree):
    for the one-line error of a checkpoint whose weights and config disagree."""
    has = {"prior": any(k.startswith("prior.") for k in state), "iaf": any(k.startswith("iaf.") for k in state)}
    want = {"prior": model.prior.is_flow, "iaf": model.iaf is not None}
    name = {"prior": "a flow prior (prior = flow)", "iaf": "an IAF posterior (posterior = iaf)"}
    for part in ("prior", "iaf"):
        if has[part] and not want[part]:
            return f"its weights hold {name[part]} but the model built from its config has none"
        if want[part] and not has[part]:
            return f"the model built from its config has {name[part]} but its weights have none"
    return None
