"""The VAE a config names: the one place that chooses between the beta-VAE (``latentdyn.vae.model``)
and the object-slot VAE (``latentdyn.vae.slots``, itself a beta-VAE), so neither imports the other's
choice."""

from __future__ import annotations

from latentdyn.vae.model import BetaVAE


def make_vae(cfg, shape: tuple[int, int, int]) -> BetaVAE:
    """The VAE ``cfg.arch`` names for input (C, H, W): the object-slot VAE (``latentdyn.vae.slots``) for
    ``slots``, else a :class:`BetaVAE`."""
    if cfg.arch == "slots":
        from latentdyn.vae.slots import SlotVAE

        return SlotVAE(cfg, shape)
    return BetaVAE(cfg, shape)
