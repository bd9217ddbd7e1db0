"""Latent geometry: the decoder's pull-back metric, geodesics, interpolation and latent maps."""
