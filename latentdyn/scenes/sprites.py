"""Moving sprites: image-dataset digits (or clothes) bouncing in a canvas, as Moving MNIST.

The protocol is the one of Srivastava, Mansimov and Salakhutdinov (2015, "Unsupervised learning
of video representations using LSTMs") and of the common ``moving_mnist`` generator derived
from their ``BouncingMNISTDataHandler``: each sprite's top-left corner is a position in [0, 1]^2
normalised over the free range ``canvas - size`` of each axis, drawn uniformly; its velocity is
a fixed ``step`` (0.1) of that range per frame in a direction drawn uniformly in [0, 2 pi).
Each frame the sprite first moves one step; a coordinate that reaches 0 or 1 is clamped there
and that velocity component is reversed. Sprites are combined by the pixel maximum. As in that
code, the first frame shows the positions after the first step.

Randomness is counter-based (``latentdyn.core.rng``): sequence i's start, direction, sprites
and split depend only on the seed, the split fractions and i, never on N or on blocks.

Sprite pools (which images a sequence may show) follow its split: ``train`` sequences use the
dataset's official training images except the last ``val_images``; ``val`` sequences use those
last ``val_images`` training images; every other split (``test``, ...) uses the official test
images. Splits are given to sequences by an equidistributed Weyl sequence (below), so the
split of sequence i, and hence its sprites, does not depend on N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from latentdyn.core import rng
from latentdyn.core.errors import LatentdynError
from latentdyn.scenes.file import deflate
from latentdyn.scenes.config import SceneInfo

KIND = "sprites"
SOURCES = ("train", "test")  # official dataset splits; /sprites/source_split stores the position
_STREAM_START = 0x5B717E  # rng streams of sequence i: start state and sprite choice; split
_STREAM_SPLIT = 0x5B1175
_GOLDEN_FRAC = (math.sqrt(5.0) - 1.0) / 2.0  # 1 / phi: the Weyl step with the most even spread
RENDER_SEQUENCES = 64  # sequences rendered at once: (64, T, H, W) uint8 buffers stay small


@dataclass
class Canvas:
    width: int = 64  # pixels; the benchmark's frames are 64 x 64
    height: int = 64


@dataclass
class Sprites:
    dataset: str = "mnist"  # a latentdyn.datasets name: mnist, fashion-mnist, cifar10, cifar10-gray
    n_sprites: int = 2  # sprites per sequence; the benchmark has 2
    size: int = 28  # sprite side in pixels; dataset images of another size are resized (antialiased bilinear)
    step: float = 0.1  # per-frame step as a fraction of the free range (Srivastava et al.'s step_length)
    val_images: int = 10000  # the last images of the official training split, kept for val sequences
    data_dir: str = ""  # folder searched first for the dataset files ('' : the usual search order)
    download: bool = True  # fetch missing dataset files (checksum-verified) instead of failing


@dataclass
class SpriteSceneConfig:
    kind: str = KIND
    scene: SceneInfo = field(default_factory=lambda: SceneInfo(name="moving_sprites", length=20))
    canvas: Canvas = field(default_factory=Canvas)
    sprites: Sprites = field(default_factory=Sprites)

    @property
    def channels(self) -> int:
        from latentdyn.datasets import get_spec

        return get_spec(self.sprites.dataset).shape[2]

    @property
    def frame_shape(self) -> tuple[int, ...]:
        c = self.canvas
        return (c.height, c.width) if self.channels == 1 else (c.height, c.width, self.channels)

    @property
    def free_range(self) -> np.ndarray:
        """Pixels a sprite's corner can travel along (x, y)."""
        return np.array([self.canvas.width - self.sprites.size, self.canvas.height - self.sprites.size], np.float64)

    def validate(self) -> None:
        from latentdyn.datasets import get_spec

        s, c = self.sprites, self.canvas
        if self.kind != KIND:
            raise LatentdynError(f"kind = {self.kind!r}: a sprite scene has kind = {KIND!r}")
        spec = get_spec(s.dataset)
        if self.scene.length < 1:
            raise LatentdynError(f"scene.length = {self.scene.length}: must be at least 1")
        if not 1 <= s.n_sprites <= 64:
            raise LatentdynError(f"sprites.n_sprites = {s.n_sprites}: must be 1..64")
        if c.width < 1 or c.height < 1 or c.width * c.height > 4096 * 4096:
            raise LatentdynError(f"canvas is {c.width} x {c.height} pixels: each side must be 1..4096")
        if not 1 <= s.size <= min(c.width, c.height):
            raise LatentdynError(
                f"sprites.size = {s.size}: must be 1..{min(c.width, c.height)} to fit the {c.width}x{c.height} canvas"
            )
        if not 0.0 <= s.step <= 1.0:
            raise LatentdynError(f"sprites.step = {s.step}: must be in [0, 1] (a fraction of the free range)")
        if not 0 <= s.val_images < spec.sizes["train"]:
            raise LatentdynError(f"sprites.val_images = {s.val_images}: must be 0..{spec.sizes['train'] - 1}")


# ---- splits --------------------------------------------------------------------------------


def split_of(seed: int, ids: np.ndarray, fractions: dict[str, float]) -> np.ndarray:
    """Position in ``fractions`` of each sequence's split, (S,) int64; all 0 without splits.

    Sequence i falls where ``frac(u + i / phi)`` lies among the cumulative fractions, u a seeded
    uniform offset: a Weyl sequence, whose first N points give every split its share up to
    O(log N) sequences (the three-distance theorem; Weyl 1916), whatever N.
    """
    ids = np.asarray(ids, np.int64)
    if not fractions:
        return np.zeros(len(ids), np.int64)
    u = rng.uniform(seed, np.array([0]), _STREAM_SPLIT, 1)[0, 0]
    v = np.mod(u + ids.astype(np.float64) * _GOLDEN_FRAC, 1.0)  # (S,) in [0, 1)
    cum = np.cumsum(list(fractions.values()))
    return np.minimum(np.searchsorted(cum, v, side="right"), len(cum) - 1).astype(np.int64)


def assign_splits(n: int, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Sorted sequence indices of each named split (see ``split_of``); {} without splits."""
    if not fractions:
        return {}
    part = split_of(seed, np.arange(n), fractions)
    return {name: np.flatnonzero(part == k).astype(np.int64) for k, name in enumerate(fractions)}


# ---- the sprite images ---------------------------------------------------------------------


@dataclass
class SpriteBank:
    """Sprite images (already at ``size``) and labels of the dataset splits in use, and the pools.

    ``pools[k]`` = (source split, first index, count) for the k-th split of ``fractions``.
    """

    images: dict[str, np.ndarray]  # source split -> uint8 (M, size, size, C)
    labels: dict[str, np.ndarray]  # source split -> int64 (M,)
    pools: list[tuple[str, int, int]]
    fractions: dict[str, float]
    sources: dict[str, str]  # source split -> file it was read from


def pool_of(name: str, n_train: int, n_test: int, val_images: int) -> tuple[str, int, int]:
    """(source split, first index, count) of the images a split named ``name`` draws from."""
    if name == "train":
        return "train", 0, n_train - val_images
    if name == "val":
        return "train", n_train - val_images, val_images
    return "test", 0, n_test


def prepare(config: SpriteSceneConfig, splits: dict[str, float] | None) -> SpriteBank:
    """Load (and resize) the images that the splits' pools need; one-line error if missing."""
    from latentdyn import datasets

    s = config.sprites
    spec = datasets.get_spec(s.dataset)
    fractions = dict(splits or {})
    names = list(fractions) or ["train"]
    if "val" in names and s.val_images == 0:
        raise LatentdynError("--split has a val part but sprites.val_images = 0; hold out images for it (e.g. 10000)")
    pools = [pool_of(n, spec.sizes["train"], spec.sizes["test"], s.val_images) for n in names]
    images, labels, sources = {}, {}, {}
    for src in sorted({p[0] for p in pools}):
        data = datasets.load(s.dataset, src, s.data_dir or None, download=s.download)
        resized = data.images.shape[1:3] != (s.size, s.size)  # resizing imports torch: only when needed
        images[src] = datasets.prepare(data, size=(s.size, s.size)).images if resized else data.images  # (M, s, s, C)
        labels[src], sources[src] = data.labels.astype(np.int64), data.source
    return SpriteBank(images, labels, pools, fractions, sources)


# ---- motion and rendering ------------------------------------------------------------------


def simulate(config: SpriteSceneConfig, seed: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States (S, T, n, 4) float32 (sprite centre x, y and velocity in pixels) and the (S, n) draws
    in [0, 1) that pick each sprite from its pool."""
    ids = np.asarray(ids, np.int64)
    n, T, step = config.sprites.n_sprites, config.scene.length, config.sprites.step
    u = rng.uniform(seed, ids, _STREAM_START, 4 * n)  # (S, 4n): x0, y0, direction, sprite
    pos = np.stack([u[:, :n], u[:, n : 2 * n]], -1)  # (S, n, 2) corner in [0, 1]^2 of the free range
    theta = 2.0 * np.pi * u[:, 2 * n : 3 * n]  # (S, n)
    vel = step * np.stack([np.cos(theta), np.sin(theta)], -1)  # (S, n, 2) range units per frame
    xs = np.empty((len(ids), T, n, 2))
    vs = np.empty_like(xs)
    for t in range(T):  # Srivastava et al.: move, then clamp at an edge and reverse that component
        pos = pos + vel
        hit = (pos <= 0.0) | (pos >= 1.0)  # (S, n, 2)
        pos = np.clip(pos, 0.0, 1.0)
        vel = np.where(hit, -vel, vel)
        xs[:, t], vs[:, t] = pos, vel
    rng_px = config.free_range  # (2,)
    half = config.sprites.size / 2.0
    states = np.concatenate([xs * rng_px + half, vs * rng_px], -1)  # (S, T, n, 4) pixels
    return states.astype(np.float32), u[:, 3 * n :]


def corners(states: np.ndarray, size: int, height: int, width: int) -> np.ndarray:
    """Top-left pixel (col, row) of each sprite, (..., n, 2) intp: floor(centre - size / 2).

    Computed from the stored float32 states, so a reader re-renders exactly what was written.
    """
    c = np.floor(np.asarray(states[..., :2], np.float64) - size / 2.0).astype(np.intp)
    return np.clip(c, 0, np.array([width - size, height - size], np.intp))


def render(states: np.ndarray, images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Frames (S, T, H, W[, C]) uint8: each sprite pasted at its state, combined by pixel maximum.

    ``states`` (S, T, n, >=2) pixels; ``images`` (S, n, s, s, C) uint8, the sprites of each sequence.
    """
    S, T, n = states.shape[:3]
    s, C = images.shape[2], images.shape[4]
    corner = corners(states, s, height, width)  # (S, T, n, 2)
    out = np.zeros((S, T, C, height, width), np.uint8)
    win = sliding_window_view(out, (s, s), axis=(3, 4), writeable=True)  # (S, T, C, H-s+1, W-s+1, s, s)
    spr = images.transpose(0, 1, 4, 2, 3)  # (S, n, C, s, s)
    si, ti = np.arange(S)[:, None, None], np.arange(T)[None, :, None]
    ci = np.arange(C)[None, None, :]
    for k in range(n):  # one placement per frame and sprite: no index repeats within an assignment
        idx = (si, ti, ci, corner[:, :, k, 1, None], corner[:, :, k, 0, None])
        win[idx] = np.maximum(win[idx], spr[:, None, k])  # (S, T, C, s, s)
    if C == 1:
        return out[:, :, 0]  # (S, T, H, W), contiguous
    return np.ascontiguousarray(out.transpose(0, 1, 3, 4, 2))  # (S, T, H, W, C)


def sample(
    config: SpriteSceneConfig, bank: SpriteBank, seed: int, ids: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Frames (S, T, H, W[, C]) uint8, states (S, T, n, 4) and the sprite records of sequences ``ids``.

    Records: ``index`` (S, n) int64 into the official ``source_split`` of the dataset, ``label``
    (S, n) int64, ``source_split`` (S,) uint8 (position in ``SOURCES``).
    """
    ids = np.arange(ids) if np.isscalar(ids) else np.asarray(ids, np.int64)
    states, pick = simulate(config, seed, ids)
    part = split_of(seed, ids, bank.fractions)  # (S,)
    index = np.empty(pick.shape, np.int64)  # (S, n)
    source = np.empty(len(ids), np.uint8)
    label = np.empty(pick.shape, np.int64)
    sprites = np.empty((len(ids), pick.shape[1], *next(iter(bank.images.values())).shape[1:]), np.uint8)
    for k, (src, first, count) in enumerate(bank.pools):
        rows = part == k
        if not rows.any():
            continue
        if count == 0:
            raise LatentdynError(f"split {list(bank.fractions)[k]!r} has no sprite images to draw from")
        index[rows] = first + np.minimum((pick[rows] * count).astype(np.int64), count - 1)
        source[rows] = SOURCES.index(src)
        label[rows] = bank.labels[src][index[rows]]
        sprites[rows] = bank.images[src][index[rows]]  # (s, n, size, size, C)
    c = config.canvas
    frames = render(states, sprites, c.height, c.width)
    return frames, states, {"index": index, "label": label, "source_split": source}


def block(config: SpriteSceneConfig, bank: SpriteBank, seed: int, ids: np.ndarray) -> tuple[list[bytes], np.ndarray, dict]:
    """One block of sequences for the generator: a zlib chunk per sequence, states, records."""
    chunks: list[bytes] = []
    states, records = [], []
    for s in range(0, len(ids), RENDER_SEQUENCES):
        fr, st, rec = sample(config, bank, seed, ids[s : s + RENDER_SEQUENCES])
        chunks.extend(deflate(seq.tobytes()) for seq in fr)
        states.append(st)
        records.append(rec)
    merged = {k: np.concatenate([r[k] for r in records]) for k in records[0]}
    return chunks, np.concatenate(states), merged


def extra_layout(config: SpriteSceneConfig) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Datasets the generator adds to the scene file: path -> (shape after N, dtype)."""
    n = config.sprites.n_sprites
    return {"sprites/index": ((n,), np.int64), "sprites/label": ((n,), np.int64), "sprites/source_split": ((), np.uint8)}


def group_attrs(config: SpriteSceneConfig, bank: SpriteBank) -> dict[str, Any]:
    """Attributes of the file's /sprites group: what the indices point into."""
    from latentdyn.datasets import get_spec

    return {
        "dataset": config.sprites.dataset,
        "size": int(config.sprites.size),
        "source_split_names": ",".join(SOURCES),
        "sources": {k: str(v) for k, v in bank.sources.items()},
        "class_names": list(get_spec(config.sprites.dataset).class_names),
        "pools": {name: {"source_split": p[0], "first": p[1], "count": p[2]}
                  for name, p in zip(list(bank.fractions) or ["all"], bank.pools)},
    }
