"""Priors p(z) of the beta-VAE: the standard Gaussian, or a normalising flow learned jointly.

``TrainVAEConfig.prior``:

- ``gaussian`` (default): p(z) = N(0, I). No parameters, so a Gaussian model's state dict is
  exactly what it was before flows existed.
- ``flow``: p(z) = the push-forward of N(0, I) through an invertible map g, learned with the
  VAE (the autoregressive-flow prior of Chen et al. 2017, "Variational Lossy Autoencoder",
  Sec. 3.2): log p(z) = log N(f(z); 0, I) + log |det df/dz|, f = g^-1.
  The flow is zuko's (``TrainVAEConfig.prior_flow``): ``maf`` (default), the masked
  autoregressive flow of Papamakarios et al. (2017), affine steps, or ``nsf``, the neural spline
  flow of Durkan et al. (2019), monotonic rational-quadratic splines on [-5, 5] (identity
  outside); both autoregressive (MADE masks, Germain et al. 2015). Both evaluate log p(z) in one pass, which is what
  training needs; sampling inverts the autoregressive steps in d passes (``from_base``).

Initialisation: the output layer of every hypernetwork is zero, so every step starts as the
identity (Kingma and Dhariwal 2018, Sec. 3.3) and a flow model begins as the Gaussian one.

Temperature (``sample_prior``): the base noise is u ~ N(0, T^2 I) and z = g(u); T = 1 samples the
prior, T < 1 concentrates the samples on its typical set (Kingma and Dhariwal 2018, Sec. 5).

Everything here runs in float32 with autocast off (the caller's ``_fp32`` block, ``model.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

LOG_2PI = math.log(2 * math.pi)


def zero_last_layers(module: nn.Module) -> None:
    """Zero the output layer of every zuko hypernetwork in ``module`` (and the free parameters of
    context-free element-wise steps, d = 1), so every flow step starts as the identity."""
    from zuko.flows.gaussianization import ElementWiseTransform
    from zuko.nn import MLP, MaskedMLP

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (MLP, MaskedMLP)):
                last = [layer for layer in m if hasattr(layer, "weight")][-1]  # torch's or zuko's Linear
                last.weight.zero_()
                if last.bias is not None:
                    last.bias.zero_()
            elif isinstance(m, ElementWiseTransform) and hasattr(m, "phi"):
                for p in m.phi:
                    p.zero_()


class GaussianPrior(nn.Module):
    """p(z) = N(0, I): no parameters; ``from_base`` is the identity."""

    is_flow = False

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) summed over the last axis: (..., d) -> (...)."""
        return (-0.5 * (z.pow(2) + LOG_2PI)).sum(-1)

    def from_base(self, u: torch.Tensor) -> torch.Tensor:
        """Base noise u (..., d) -> z (..., d): the identity."""
        return u


class FlowPrior(nn.Module):
    """p(z): zuko's MAF or NSF (no context) over the d latent dimensions, base N(0, I)."""

    is_flow = True

    def __init__(self, latent_dim: int, kind: str = "maf", transforms: int = 3, hidden: int = 64):
        super().__init__()
        import zuko

        self.latent_dim = latent_dim
        make = {"nsf": zuko.flows.NSF, "maf": zuko.flows.MAF}[kind]
        self.flow = make(latent_dim, 0, transforms=transforms, hidden_features=(hidden, hidden))
        zero_last_layers(self)  # p(z) starts as N(0, I) exactly (every step the identity)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) (change of variables, one pass through the flow): (..., d) -> (...)."""
        return self.flow().log_prob(z)

    def from_base(self, u: torch.Tensor) -> torch.Tensor:
        """Base noise u (..., d) -> z = g(u) (..., d), g the inverse of the density direction (d passes)."""
        return self.flow().transform.inv(u)


def make_prior(cfg) -> nn.Module:
    """The prior a :class:`~latentdyn.vae.config.TrainVAEConfig` asks for."""
    if cfg.prior == "flow":
        return FlowPrior(cfg.latent_dim, cfg.prior_flow, cfg.flow_transforms, cfg.flow_hidden)
    return GaussianPrior(cfg.latent_dim)


def base_noise(n: int, d: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """u ~ N(0, T^2 I), (n, d) float32 on the CPU from a seeded generator: the same on every device."""
    g = torch.Generator().manual_seed(int(seed))
    return temperature * torch.randn((n, d), generator=g)


def sample_prior(model, n: int, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """n latents z = g(u), u ~ N(0, T^2 I), from ``model``'s prior, (n, d) float32 on its device."""
    device = next(model.decoder.parameters()).device
    u = base_noise(n, model.latent_dim, temperature, seed).to(device)  # (n, d)
    with torch.no_grad(), torch.autocast(device.type, enabled=False):
        return model.prior.from_base(u)
