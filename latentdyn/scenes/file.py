"""The HDF5 scene format (documented in docs/formats.md), its writer and its validating reader.

Layout (format "latentdyn-scenes", version 1)::

    /                 attrs: format, format_version, scene (JSON), seed, generator
    /frames           uint8 (N, T, H, W) or (N, T, H, W, C), one chunk per sequence, gzip
    /states           float32 (N, T, n_balls, 4): x, y, vx, vy in pixels (optional)
    /splits/<name>    int64 sorted sequence indices (optional; e.g. train, val, test)
    /sprites/...      sprite scenes only (optional): index, label (N, n) and source_split (N,)
    /clip_start       imported videos only (optional): int64 (N,) first source frame of each clip
    attrs radii, profile, gains (optional; on /states or the root): the balls' shape, for files
                      with states but no scene definition (``latentdyn.dynamics.shapes``)
                      (and the root attribute splits_summary: clips per split, and any left out)

Any file with this layout is accepted by every stage, whoever wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import format_found

FORMAT = "latentdyn-scenes"
FORMAT_VERSION = 1
BALL_ATTRS = ("radii", "profile", "gains")  # optional shape of the balls of /states (docs/formats.md)

try:  # ISA-L deflate writes the same zlib streams as zlib, 2-3x faster
    from isal import isal_zlib as _isal

    def deflate(data: bytes) -> bytes:
        """zlib-wrapped deflate stream, as HDF5's gzip filter stores it."""
        return _isal.compress(data, 1)

except ImportError:  # pragma: no cover - isal is a declared dependency
    import zlib

    def deflate(data: bytes) -> bytes:
        """zlib-wrapped deflate stream (run-length strategy: fast on dark, sparse frames)."""
        c = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
        return c.compress(data) + c.flush()


class SceneWriter:
    """Creates a scene file and fills it sequence block by sequence block.

    ``write(start, chunks, states)`` takes one zlib-compressed chunk per sequence (see
    ``deflate``), so compression can run in worker threads while this object, on
    one thread, only copies bytes into the file.
    """

    def __init__(
        self,
        path: str | Path,
        n_sequences: int,
        length: int,
        frame_shape: tuple[int, ...],
        n_balls: int | None,
        attrs: Mapping[str, Any],
        states_chunk: int = 256,
        extra: Mapping[str, tuple[tuple[int, ...], Any]] | None = None,
        resizable: bool = False,
    ):
        """``extra``: more per-sequence datasets, path -> (shape after N, dtype), filled by
        ``write(..., extra=)``; ``resizable``: N may grow or shrink later (``resize``), for
        writers that do not know N in advance (no states then)."""
        self.file = h5py.File(path, "w", track_order=True)
        self.file.attrs["format"] = FORMAT
        self.file.attrs["format_version"] = FORMAT_VERSION
        for k, v in attrs.items():
            self.file.attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
        shape = (n_sequences, length, *frame_shape)
        self.frames = self.file.create_dataset(
            "frames", shape=shape, dtype=np.uint8, chunks=(1, *shape[1:]),
            compression="gzip", compression_opts=1, track_times=False,
            maxshape=(None, *shape[1:]) if resizable else None,
        )
        self.frames.attrs["dims"] = "sequence,time,height,width" + (",channel" if len(frame_shape) == 3 else "")
        self.states = None
        if n_balls is not None:
            # allocated up front, so its place in the file does not depend on the write pattern
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            self.states = self.file.create_dataset(
                "states", shape=(n_sequences, length, n_balls, 4), dtype=np.float32,
                chunks=(max(1, min(states_chunk, n_sequences)), length, n_balls, 4), track_times=False, dcpl=dcpl,
            )
            self.states.attrs["columns"] = "x,y,vx,vy"
            self.states.attrs["units"] = "pixels; pixels per frame; origin at the top-left corner, y down"
        self.extra = {}
        for name, (tail, dtype) in (extra or {}).items():
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)  # placed at creation, like the states
            self.extra[name] = self.file.create_dataset(
                name, shape=(n_sequences, *tail), dtype=dtype, track_times=False, dcpl=dcpl,
                maxshape=(None, *tail) if resizable else None, chunks=(1024, *tail) if resizable else None,
            )

    def write(
        self, start: int, chunks: list[bytes], states: np.ndarray | None = None,
        extra: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Sequences start, start+1, ...: one ``deflate``d chunk each, their states and extras."""
        zeros = (0,) * (self.frames.ndim - 1)
        for k, chunk in enumerate(chunks):
            self.frames.id.write_direct_chunk((start + k, *zeros), chunk)
        if states is not None and self.states is not None:
            self.states[start : start + len(chunks)] = states
        for name, values in (extra or {}).items():
            self.extra[name][start : start + len(chunks)] = values

    def resize(self, n_sequences: int) -> None:
        """Set N of a ``resizable`` file (frames and extras)."""
        self.frames.resize(n_sequences, axis=0)
        for d in self.extra.values():
            d.resize(n_sequences, axis=0)

    def write_splits(self, splits: Mapping[str, np.ndarray]) -> None:
        g = self.file.create_group("splits", track_order=True)
        for name, idx in splits.items():
            g.create_dataset(name, data=np.asarray(idx, np.int64), track_times=False)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "SceneWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SceneFile:
    """A validated, read-only scene file. Use as a context manager or call ``close``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise LatentdynError(f"scene file {self.path} does not exist; make one with `latentdyn generate`")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise LatentdynError(f"{self.path} is not a readable HDF5 file (corrupt or another format)") from None
        try:
            self._validate()
        except BaseException:
            self.file.close()
            raise

    def _validate(self) -> None:
        attrs, p = self.file.attrs, self.path
        if attrs.get("format") != FORMAT:
            raise LatentdynError(f"{p} is not a scene file ({format_found(self.file)}); see docs/formats.md or run "
                                 "`latentdyn generate`")
        version = attrs.get("format_version")
        if version is None:
            raise LatentdynError(f"{p} has format {FORMAT!r} but no 'format_version' attribute; it is damaged or was not "
                                 "written by latentdyn")
        if int(version) > FORMAT_VERSION or int(version) < 1:
            raise LatentdynError(
                f"{p} has scene format version {version}; this latentdyn reads versions 1..{FORMAT_VERSION}: upgrade latentdyn"
            )
        if "frames" not in self.file or not isinstance(self.file["frames"], h5py.Dataset):
            raise LatentdynError(f"{p} has no 'frames' dataset; see docs/formats.md")
        fr = self.file["frames"]
        if fr.dtype != np.uint8 or fr.ndim not in (4, 5) or (fr.ndim == 5 and fr.shape[-1] not in (1, 3)):
            raise LatentdynError(
                f"{p}: 'frames' must be uint8 (N, T, H, W) or (N, T, H, W, 1|3), got {fr.dtype} {fr.shape}"
            )
        if "states" in self.file:
            st = self.file["states"]
            if st.ndim != 4 or st.shape[:2] != fr.shape[:2] or st.shape[3] != 4:
                raise LatentdynError(f"{p}: 'states' must be (N, T, n_balls, 4) matching frames {fr.shape[:2]}, got {st.shape}")
        for name, d in self.sprites.items():
            if d.shape[0] != fr.shape[0] or (d.ndim == 2 and self.states is not None and d.shape[1] != self.states.shape[2]):
                raise LatentdynError(f"{p}: 'sprites/{name}' has shape {d.shape}, not ({fr.shape[0]}[, n]) matching frames and states")
        for name, idx in self.splits.items():
            if idx.size and (idx.min() < 0 or idx.max() >= fr.shape[0]):
                raise LatentdynError(f"{p}: split {name!r} has indices outside 0..{fr.shape[0] - 1}")

    @property
    def frames(self) -> h5py.Dataset:
        return self.file["frames"]

    @property
    def states(self) -> h5py.Dataset | None:
        return self.file["states"] if "states" in self.file else None

    @property
    def sprites(self) -> dict[str, h5py.Dataset]:
        """Sprite scenes' records (``index``, ``label``, ``source_split``); {} for other files."""
        g = self.file.get("sprites")
        return {k: v for k, v in g.items() if isinstance(v, h5py.Dataset)} if isinstance(g, h5py.Group) else {}

    @property
    def n_sequences(self) -> int:
        return self.frames.shape[0]

    @property
    def length(self) -> int:
        return self.frames.shape[1]

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """(H, W) or (H, W, C) of one frame."""
        return tuple(self.frames.shape[2:])

    @property
    def splits(self) -> dict[str, np.ndarray]:
        g = self.file.get("splits")
        return {k: np.asarray(v[...], np.int64) for k, v in g.items()} if g is not None else {}

    def split_indices(self, split: str | None) -> np.ndarray:
        """Sequence indices of a named split (all sequences for None or 'all')."""
        if split in (None, "all"):
            return np.arange(self.n_sequences)
        splits = self.splits
        if split not in splits:
            have = ", ".join(splits) or "none"
            raise LatentdynError(f"{self.path} has no split {split!r} (it has: {have}); pass --split with one of them")
        return splits[split]

    @property
    def scene(self) -> dict[str, Any] | None:
        raw = self.file.attrs.get("scene")
        return json.loads(raw) if raw is not None else None

    @property
    def ball_shape(self) -> dict[str, Any]:
        """The optional attributes ``radii``, ``profile`` and ``gains`` that describe the balls of
        ``/states`` (read on ``/states``, else on the root; checked by ``dynamics.shapes``); {} without."""
        out = {}
        for key in BALL_ATTRS:
            for obj in (self.states, self.file):
                if obj is not None and key in obj.attrs:
                    v = obj.attrs[key]
                    out[key] = v.decode() if isinstance(v, bytes) else v
                    break
        return out

    def read_frames(self, index: int | slice | np.ndarray) -> np.ndarray:
        """Frames of the given sequences; fancy indices must be increasing (h5py's rule)."""
        return self.frames[index]

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "SceneFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_scenes(path: str | Path) -> SceneFile:
    """Open and validate a scene file; bad files raise a one-line LatentdynError."""
    return SceneFile(path)
