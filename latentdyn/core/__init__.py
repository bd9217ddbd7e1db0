"""Foundations every stage uses: errors, TOML configs, atomic files, counter-based random numbers.

``from latentdyn.core import LatentdynError, option, atomic_path``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.core`` loads no torch.
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.core.config": ["dumps_toml", "from_dict", "load_toml", "to_dict"],
    "latentdyn.core.errors": ["LatentdynError"],
    "latentdyn.core.fileio": ["atomic_path", "check_writable_dir", "format_found", "make_folder", "sha256_file"],
    "latentdyn.core.lazy": ["lazy_exports"],
    "latentdyn.core.options": ["option"],
    "latentdyn.core.rng": ["epoch_seed", "torch_generator"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "LatentdynError", "atomic_path", "check_writable_dir", "dumps_toml", "epoch_seed", "format_found",
    "from_dict", "lazy_exports", "load_toml", "make_folder", "option", "sha256_file", "to_dict", "torch_generator",
]
