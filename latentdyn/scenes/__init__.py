"""Bouncing-ball scenes: physics, rendering, the generator and the HDF5 scene-file format."""
