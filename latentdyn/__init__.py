"""latentdyn: learn and predict dynamics in the latent space of a beta-VAE.

The package is a library first; ``latentdyn.cli.main`` is a thin click layer over it. Pipeline stages
live in modules named after them: ``scenes`` (bouncing-ball generator), ``scenefile`` (its HDF5
format), ``video`` (MP4/GIF grids), ``datasets`` (MNIST, Fashion-MNIST, CIFAR-10).
"""

__version__ = "0.1.0"

from latentdyn.core.errors import LatentdynError  # noqa: E402,F401
