"""Posteriors q(z|x) of the beta-VAE: the diagonal Gaussian, or an inverse autoregressive flow on it.

``TrainVAEConfig.posterior``:

- ``gaussian`` (default): q(z|x) = N(mu(x), diag exp(logvar(x))).
- ``iaf``: the inverse autoregressive flow of Kingma et al. (2016, "Improved Variational
  Inference with Inverse Autoregressive Flow", Algorithm 1). The encoder outputs mu,
  logvar and a context vector h(x) (``IAF_CONTEXT`` features); a base sample
  z_0 = mu + sigma * eps is moved by T autoregressive affine steps
  z_t = exp(a_t(z_{t-1}, h)) * z_{t-1} + b_t(z_{t-1}, h), where (a_t, b_t)_i depend on
  z_{t-1, <i} only (MADE masks, Germain et al. 2015; the order reverses between steps). These
  are zuko's ``MaskedAutoregressiveTransform`` run in their *forward* (one-pass) direction on
  the base sample, which is exactly the IAF direction: sampling z and its density are one pass,
  log q(z_T|x) = log N(z_0; mu, sigma^2) - sum_t log |det dz_t/dz_{t-1}|,
  and the Jacobian of each step is triangular, its log-determinant the sum of the a_t. (The
  density of an arbitrary z would need the d-pass inverse; the ELBO and the IWAE bound only
  ever score the posterior's own samples, so it is never needed.)

Initialisation: the last layer of every hypernetwork is zero, so each step starts as the
identity (the zero initialisation of Kingma and Dhariwal 2018, Sec. 3.3): an IAF model begins as
the Gaussian one and learns its way from there. The flow prior (``priors.py``) starts the same way.

What ``BetaVAE.encode`` (and so ``latentdyn encode``, the latent map, geodesics and the GRU)
sees for an IAF posterior: latents in the decoder's space. ``summary`` gives
mu = T(mu_0; h), the flow's image of the base mean (deterministic; what the decoder turns into
the reconstruction), and logvar = log diag(J diag(sigma_0^2) J^T), J = dT/dz_0 at mu_0: the
variances of the linearised posterior (the delta method). The base Gaussian's own (mu_0,
logvar_0) live in the flow's input space, which the decoder never sees, so decoding them would
not give the reconstruction.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from latentdyn.vae.priors import zero_last_layers

IAF_CONTEXT = 32  # features of h(x); Kingma et al. 2016 feed the encoder's hidden state h into every step


class IAFPosterior(nn.Module):
    """T autoregressive affine steps (zuko ``MaskedAutoregressiveTransform``) conditioned on h(x)."""

    def __init__(self, latent_dim: int, transforms: int = 3, hidden: int = 64, context: int = IAF_CONTEXT):
        super().__init__()
        from zuko.flows.autoregressive import MaskedAutoregressiveTransform
        from zuko.lazy import LazyComposedTransform

        d = latent_dim
        orders = [torch.arange(d), torch.arange(d).flip(0)]
        self.latent_dim, self.context = d, context
        self.transform = LazyComposedTransform(*[
            MaskedAutoregressiveTransform(d, context, order=orders[t % 2], hidden_features=(hidden, hidden))
            for t in range(transforms)
        ])
        zero_last_layers(self)

    def forward(self, z0: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base samples z0 (..., B, d) and contexts h (B, c) -> z (..., B, d) and
        log |det dz/dz0| (..., B), one pass."""
        return self.transform(h).call_and_ladj(z0)

    def summary(self, mu0: torch.Tensor, logvar0: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) in the decoder's space, each (B, d): T(mu0; h) and the log-variances of the
        posterior linearised at mu0 (delta method; J from forward-mode AD, d columns)."""
        from torch.func import jacfwd, vmap

        def step(z0, c):  # one example: (d,), (c,) -> (d,)
            return self.transform(c)(z0)

        mu = self.transform(h)(mu0)  # (B, d)
        J = vmap(jacfwd(step))(mu0, h)  # (B, d, d): dz_i / dz0_j
        var = (J.pow(2) * logvar0.exp().unsqueeze(-2)).sum(-1)  # (B, d): diag(J Sigma0 J^T)
        return mu, var.clamp_min(1e-30).log()


def make_posterior_flow(cfg) -> IAFPosterior | None:
    """The IAF of a :class:`~latentdyn.vae.config.TrainVAEConfig` with ``posterior="iaf"``, else None."""
    if cfg.posterior == "iaf":
        return IAFPosterior(cfg.latent_dim, cfg.flow_transforms, cfg.flow_hidden)
    return None
