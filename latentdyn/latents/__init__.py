"""The latents file, the interface between stages (``latentdyn.latents.file``): its reader
(``open_latents``, ``LatentFile``) and its writers (``write_sequences``, ``write_images``).

``from latentdyn.latents import open_latents``; names are imported on first use (no h5py at import).
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {"latentdyn.latents.file": ["FORMAT", "FORMAT_VERSION", "LatentFile", "check_vae_hash", "open_latents",
                                       "write_images", "write_sequences"]}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["FORMAT", "FORMAT_VERSION", "LatentFile", "check_vae_hash", "open_latents", "write_images", "write_sequences"]
