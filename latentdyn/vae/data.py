"""Frames for the VAE: a split of a dataset or a scene file as uint8 on the device, in batches.

The data sit on the training device as one uint8 tensor (N, C, H, W) and batches are indexed
straight out of it (no per-item DataLoader); scene files too large for ``max_memory_mb`` stream
from HDF5 in blocks (``latentdyn.scenes.stream``). Batches become floats on the device, binarised
as configured (``batch_floats``).
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError


class MemoryFrames:
    """A split held as one uint8 tensor (N, C, H, W) on the device; batches are indexed out of it."""

    def __init__(self, x_u8):
        self.x = x_u8

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int, generator=None):
        import torch

        if generator is None:
            for s in range(0, len(self.x), batch_size):
                yield self.x[s : s + batch_size]
            return
        perm = torch.randperm(len(self.x), generator=generator).to(self.x.device)
        for s in range(0, len(self.x), batch_size):
            yield self.x[perm[s : s + batch_size]]

    def head(self, n: int):
        return self.x[:n]


def scene_splits(source: str) -> list[str]:
    from latentdyn.scenes.file import open_scenes

    with open_scenes(source) as sf:
        return list(sf.splits)


def val_split_of(cfg) -> str | None:
    """The split that selects the model: ``cfg.val_split``, else ``val`` (datasets: carved from the
    official training set; scene files: their ``val`` split). Never ``test``: a scene file without a
    ``val`` split is selected on its training loss."""
    from latentdyn import datasets

    if cfg.val_split is not None:
        return cfg.val_split or None
    if not datasets.is_scene_source(cfg.data):
        return "val" if cfg.val_size > 0 else None
    return "val" if "val" in scene_splits(cfg.data) else None


def open_frames(cfg, split: str | None, device, limit: int = 0, dist=None):
    """A split of ``cfg.data`` as a frame set (in memory, or streamed for big scene files).

    Returns (frames, (H, W, C)). A scene file without splits trains on every sequence. With
    ``dist`` (a :class:`latentdyn.engine.distributed.Dist`) only this rank's shard is kept:
    images rank, rank + N, ... of a dataset, or those sequences of a scene file (read by index).
    """
    from latentdyn import datasets

    if not datasets.is_scene_source(cfg.data):
        data = datasets.load_source(cfg.data, split, cfg.data_dir, val_size=cfg.val_size)
        images = data.images[:limit] if limit else data.images
        if dist is not None and dist.active:
            images = images[dist.shard(len(images))]
        return MemoryFrames(to_device_uint8(images, device)), tuple(data.shape)
    from latentdyn.scenes.file import open_scenes
    from latentdyn.scenes.stream import SceneStream

    with open_scenes(cfg.data) as sf:
        if split == cfg.train_split and not sf.splits:
            split = None
        ids = np.sort(sf.split_indices(split))
        T, shape = sf.length, sf.frame_shape
    shape = shape if len(shape) == 3 else (*shape, 1)
    if limit:
        ids = ids[: -(-limit // T)]
    if dist is not None and dist.active:
        ids = ids[dist.shard(len(ids))]
    n_bytes = len(ids) * T * int(np.prod(shape))
    if n_bytes > cfg.max_memory_mb * 2**20:
        block = max(1, (64 * 2**20) // (T * int(np.prod(shape))))  # about 64 MiB per block
        return SceneStream(cfg.data, ids, device, block), shape
    with open_scenes(cfg.data) as sf:
        frames = sf.read_frames(ids) if len(ids) else np.zeros((0, T, *sf.frame_shape), np.uint8)
    images = frames.reshape(-1, *shape)
    return MemoryFrames(to_device_uint8(images[:limit] if limit else images, device)), shape


def to_device_uint8(images, device):
    """(N, H, W, C) uint8 frames (numpy or a torch tensor) -> (N, C, H, W) uint8 tensor on ``device``,
    with standard strides: a size-1 channel axis left with stride 1 (numpy's transpose and torch's
    permute both leave it so) makes torch read grey frames as channels-last and convolve them on
    that slower path (measured: encoding 2.9x slower at width 8)."""
    import torch

    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    x = images.permute(0, 3, 1, 2)  # (N, C, H, W)
    return x.reshape(-1).view(x.shape).to(device)  # copied where the permute needs it, then standard strides


def batch_floats(x_u8, binarize: str, generator=None):
    """uint8 (B, C, H, W) -> float32 in [0, 1], binarised as configured."""
    import torch

    if binarize == "static":
        return (x_u8 > 127).float()  # pixel / 255 > 0.5, as the TF tutorial's np.where(x > .5, 1, 0)
    x = x_u8.float().div_(255.0)  # (B, C, H, W)
    if binarize == "dynamic":
        x = torch.bernoulli(x, generator=generator)
    return x


def is_colour(source: str) -> bool:
    """Whether a dataset or scene file has RGB images."""
    from latentdyn import datasets as ds

    if ds.is_scene_source(source):
        from latentdyn.scenes.file import open_scenes

        with open_scenes(source) as sf:
            return len(sf.frame_shape) == 3 and sf.frame_shape[-1] == 3
    return ds.get_spec(source).shape[-1] == 3


def resolve_likelihood(source: str, likelihood: str = "auto", binarize: str = "none") -> str:
    """``auto``: Bernoulli for binarised data, the discretised logistic over the 256 levels for
    8-bit images, grey or colour (``latentdyn.vae.likelihoods.default_likelihood``)."""
    if likelihood != "auto":
        return likelihood
    from latentdyn.vae.likelihoods import default_likelihood

    return default_likelihood(binarize, is_colour(source))


def check_shape(source, shape, model_shape, run) -> None:
    """Refuse data whose images (H, W, C) differ from what the model in ``run`` takes."""
    if tuple(shape) != tuple(model_shape):
        raise LatentdynError(f"{source} has images {tuple(shape)} but the model in {run} takes {tuple(model_shape)}; "
                             "use matching data")
