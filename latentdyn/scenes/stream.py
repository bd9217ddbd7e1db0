"""Frames of a scene file streamed from HDF5 in blocks, for data that do not fit in memory.

Each epoch the split's sequences are shuffled (seeded by the caller's generator) and cut into
blocks of ``block_sequences``; a block is read in one h5py call (indices sorted, as h5py wants),
moved to the device (from pinned memory, without blocking, on CUDA), and its frames are
shuffled within the block before being served as batches. Memory holds one block at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from latentdyn.scenes.file import open_scenes


class SceneStream:
    """uint8 frame batches (B, C, H, W) on ``device`` from the sequences ``indices`` of a scene file."""

    def __init__(self, path: str | Path, indices: np.ndarray, device, block_sequences: int = 256):
        self.path = Path(path)
        self.indices = np.sort(np.asarray(indices, np.int64))
        self.device = device
        self.block = max(1, int(block_sequences))
        with open_scenes(path) as sf:
            self.length = sf.length
            shape = sf.frame_shape
        self.shape = shape if len(shape) == 3 else (*shape, 1)  # (H, W, C)

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.indices) * self.length

    def _read(self, sf, ids: np.ndarray):
        import torch

        frames = sf.read_frames(np.sort(ids))  # (k, T, H, W[, C]) uint8
        frames = frames.reshape(-1, *self.shape)  # (k*T, H, W, C)
        t = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))  # (k*T, C, H, W)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def batches(self, batch_size: int, generator=None) -> Iterator:
        """Shuffled batches when a torch.Generator is given (an epoch), else in file order."""
        import torch

        order = self.indices
        if generator is not None:
            order = order[torch.randperm(len(order), generator=generator).numpy()]
        with open_scenes(self.path) as sf:
            for s in range(0, len(order), self.block):
                block = self._read(sf, order[s : s + self.block])  # (k*T, C, H, W) on the device
                if generator is not None:
                    block = block[torch.randperm(len(block), generator=generator).to(block.device)]
                for b in range(0, len(block), batch_size):
                    yield block[b : b + batch_size]

    def head(self, n: int):
        """The first n frames (file order), for fixed figure inputs."""
        with open_scenes(self.path) as sf:
            k = max(1, -(-n // self.length))
            return self._read(sf, self.indices[:k])[:n]
