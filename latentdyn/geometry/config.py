"""The settings of the geometry stages: latent-map and interpolate (one dataclass each)."""

from __future__ import annotations

from dataclasses import dataclass

from latentdyn.core.options import data_dir_option, device_option, option, seed_option, source_option, vae_option


@dataclass
class LatentMapConfig:
    """``latentdyn latent-map``: a split's latent map, and the manifold grid and magnification for 2-d latents."""

    vae: str = vae_option()
    data: str | None = source_option()
    data_dir: str | None = data_dir_option()
    split: str = option("test", "The split mapped.")
    limit: int = option(5000, "Points plotted (0: all).", minimum=0, why="5000: a readable scatter")
    grid: int = option(20, "Manifold grid side (2-d latents).", minimum=2, maximum=40)
    device: str = device_option()


@dataclass
class InterpolateConfig:
    """``latentdyn interpolate``: geodesic against linear interpolation under the decoder's pull-back metric."""

    vae: str = vae_option()
    data: str | None = source_option()
    data_dir: str | None = data_dir_option()
    pairs: int = option(8, "Pairs of examples joined.", minimum=1, maximum=256)
    classes: str | None = option(None, "Join class A to class B, e.g. 3,8 or Sandal,Sneaker.")
    steps: int = option(10, "Decoded images along each path.", minimum=2, maximum=64)
    points: int = option(32, "Points of the discretised geodesic.", minimum=3, maximum=256)
    split: str = option("test", "The split the pairs come from.")
    variance_aware: bool = option(False, "Add an RBF uncertainty that grows away from the data to the metric "
                                  "(Arvanitidis et al. 2018).", flag="--variance-aware/--plain-metric")
    seed: int = seed_option("the pair choice")
    device: str = device_option()
