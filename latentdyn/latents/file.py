"""The latents file: the interface between stages (format "latentdyn-latents", version 1).

Written by ``latentdyn encode`` (a VAE's posterior means and log-variances, ``latentdyn.vae.encode``)
and read by the predictor's trainer, the rollout and the report. Layout (docs/formats.md)::

    /            attrs: format, format_version, kind ("sequences" | "images"), latent_dim,
                        latent_shape (JSON: [d], or [c, h, w] for a spatial latent),
                        vae_run, vae_checkpoint, vae_sha256, vae_config (JSON),
                        source, source_format, source_splits (JSON), scene (JSON, if any)
    /mu          float32 (N, T, d) for scene files, (N, d) for image datasets
    /logvar      float32, same shape
    /states      float32 (N, T, n_balls, 4), copied from the scene file when it has them
    /labels      int64 (N,), image datasets only
    /splits/<n>  int64 indices, copied from the scene file

The VAE checkpoint's sha256 lets every later stage refuse latents made by another VAE.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir, format_found, sha256_file

FORMAT = "latentdyn-latents"
FORMAT_VERSION = 1


@contextmanager
def write_sequences(out: str | Path, attrs: dict, n: int, length: int, latent_dim: int, states=None,
                    splits: dict | None = None, block: int = 8192):
    """Write a ``sequences`` latents file atomically: yields the file (h5py, open for writing) with
    ``mu`` and ``logvar`` (n, length, latent_dim) float32 datasets chunked about ``block`` frames,
    ``states`` (an array or h5py dataset, copied in blocks of a GiB) and ``splits`` written; the
    caller fills ``mu`` and ``logvar``. Nothing appears at ``out`` unless the block completes."""
    out = check_writable_dir(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "sequences", "latent_dim": latent_dim,
                        **attrs})
        per = max(1, min(n, block // max(1, length)))
        for name in ("mu", "logvar"):
            f.create_dataset(name, (n, length, latent_dim), np.float32, chunks=(per, length, latent_dim))
        if states is not None:
            ds = f.create_dataset("states", shape=states.shape, dtype=np.float32)
            step = max(1, 2**28 // max(1, int(np.prod(states.shape[1:]))))
            for s in range(0, n, step):
                ds[s : s + step] = states[s : s + step]
        g = f.create_group("splits")
        for name, idx in (splits or {}).items():
            g.create_dataset(name, data=np.asarray(idx, np.int64))
        yield f


def write_images(out: str | Path, attrs: dict, mu: np.ndarray, logvar: np.ndarray, labels: np.ndarray) -> Path:
    """Write an ``images`` latents file (a dataset split's means, log-variances and labels) atomically."""
    out = check_writable_dir(out)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "images",
                        "latent_dim": int(mu.shape[-1]), **attrs})
        f["mu"], f["logvar"], f["labels"] = mu, logvar, labels
    return out


def check_vae_hash(sha256: str, vae_run: str | Path, what: str) -> None:
    """Refuse ``what`` (made from the VAE whose best.pt hashes to ``sha256``) for another VAE run."""
    ck = Path(vae_run) / "best.pt"
    if not ck.exists():
        raise LatentdynError(f"{vae_run} has no best.pt; give the VAE run folder {what} was made with")
    if sha256 and sha256_file(ck) != sha256:
        raise LatentdynError(f"{what} was made by another VAE (sha256 {sha256[:12]}..., not {vae_run}'s); "
                             "use the matching VAE run or re-encode with `latentdyn encode`")


class LatentFile:
    """A validated, read-only latents file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise LatentdynError(f"latents file {self.path} does not exist; make one with `latentdyn encode`")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError:
            raise LatentdynError(f"{self.path} is not a readable HDF5 file (corrupt or another format)") from None
        a = self.file.attrs
        if a.get("format") != FORMAT:
            found = format_found(self.file)
            self.file.close()
            raise LatentdynError(f"{self.path} is not a latents file ({found}); make one with `latentdyn encode`")
        if int(a.get("format_version", 0)) > FORMAT_VERSION:
            self.file.close()
            raise LatentdynError(f"{self.path} has latents format version {a.get('format_version')}; upgrade latentdyn")
        for k in ("mu", "logvar"):
            if k not in self.file:
                self.file.close()
                raise LatentdynError(f"{self.path} has no '{k}' dataset; it is incomplete")

    @property
    def kind(self) -> str:
        return str(self.file.attrs["kind"])

    @property
    def latent_dim(self) -> int:
        return int(self.file.attrs["latent_dim"])

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """(d,) for a flat latent, (c, h, w) for a spatial one (files without the attribute: flat)."""
        raw = self.file.attrs.get("latent_shape")
        return tuple(int(v) for v in json.loads(raw)) if raw is not None else (self.latent_dim,)

    @property
    def vae_sha256(self) -> str:
        return str(self.file.attrs["vae_sha256"])

    @property
    def splits(self) -> dict[str, np.ndarray]:
        g = self.file.get("splits")
        return {k: np.asarray(v[...], np.int64) for k, v in g.items()} if g is not None else {}

    def split_indices(self, split: str | None) -> np.ndarray:
        n = self.file["mu"].shape[0]
        if split in (None, "all"):
            return np.arange(n)
        splits = self.splits
        if split not in splits:
            raise LatentdynError(f"{self.path} has no split {split!r} (it has: {', '.join(splits) or 'none'})")
        return splits[split]

    def check_vae(self, vae_run: str | Path) -> None:
        """Refuse when these latents were not made by the VAE checkpoint in ``vae_run``."""
        check_vae_hash(self.vae_sha256, vae_run, str(self.path))

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "LatentFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_latents(path: str | Path) -> LatentFile:
    return LatentFile(path)
