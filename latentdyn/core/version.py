"""The version of latentdyn: in every file, checkpoint and cache key it writes."""

__version__ = "0.2.0"
