"""Latents in HDF5 (``latentdyn encode``): posterior means and log-variances with provenance.

Layout (format "latentdyn-latents", version 1; docs/formats.md)::

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
from pathlib import Path

import h5py
import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir, sha256_file

FORMAT = "latentdyn-latents"
FORMAT_VERSION = 1


def encode_frames(model, frames_u8, device, batch: int = 1024, binarize: str = "none", precision: str = "float32",
                  as_numpy: bool = True):
    """Posterior means and log-variances (N, d) of uint8 frames (N, H, W, C) (numpy or a torch tensor),
    batched on the device with no autograd (``torch.inference_mode``): the fast path the encode stage,
    rollouts and fresh-data training share (frames/s in ``benchmarks/bench_encode.py``).

    ``precision``: float32, bfloat16 or auto (bfloat16 where the device runs it natively,
    ``latentdyn.engine.devices.fast_bf16``). Under bfloat16 the encoder's trunk runs in bf16 and its
    output layer, hence mu and logvar, in float32 (``BetaVAE.posterior``); the means then differ from
    float32's by a small fraction of the posterior's own standard deviation (measured in
    docs/results.md). Returns numpy arrays (one host copy per call), or device tensors with
    ``as_numpy=False``."""
    import torch

    from latentdyn.engine.devices import autocast_for
    from latentdyn.vae.data import batch_floats, to_device_uint8

    mus, lvs = [], []
    with torch.inference_mode(), autocast_for(device, precision):
        for s in range(0, len(frames_u8), batch):
            block = frames_u8[s : s + batch]
            x_u8 = to_device_uint8(block, device) if isinstance(block, np.ndarray) else block.permute(0, 3, 1, 2).to(device)
            x = batch_floats(x_u8, "static" if binarize == "static" else "none")  # (B, C, H, W)
            mu, logvar = model.encode(x)  # (B, d) each
            mus.append(mu.float())
            lvs.append(logvar.float())
    if not mus:
        d = model.latent_dim
        mus, lvs = [torch.zeros(0, d)], [torch.zeros(0, d)]
    mu, lv = torch.cat(mus), torch.cat(lvs)  # (N, d)
    return (mu.cpu().numpy(), lv.cpu().numpy()) if as_numpy else (mu, lv)


def encode(vae_run: str | Path, source: str | Path, out: str | Path, split: str | None = None,
           device: str = "auto", data_dir: str | None = None, block_frames: int = 8192,
           progress: bool | None = None, config: dict | None = None, precision: str = "float32") -> Path:
    """Encode a scene file (all sequences, splits copied) or a dataset split into a latents file
    (``precision``: see :func:`encode_frames`)."""
    from tqdm.auto import tqdm

    from latentdyn import datasets
    from latentdyn.engine.devices import pick_device
    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.train import load_vae, model_hwc

    dev = pick_device(device)
    model, cfg, ck = load_vae(vae_run, "best", dev)
    ck_path = Path(vae_run) / "best.pt"
    want = model_hwc(model)
    out = check_writable_dir(out)
    d = model.latent_dim
    attrs = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "latent_dim": d,
        "latent_shape": json.dumps(list(model.latent_shape)),
        "vae_run": str(Path(vae_run).resolve()), "vae_checkpoint": "best.pt", "vae_sha256": sha256_file(ck_path),
        "vae_config": json.dumps(ck["config"]), "config": json.dumps(config or {}), "source": str(Path(source).resolve()) if Path(source).exists() else str(source),
    }
    if datasets.is_scene_source(source):
        with open_scenes(source) as sf, atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
            shape = sf.frame_shape if len(sf.frame_shape) == 3 else (*sf.frame_shape, 1)
            if tuple(shape) != want:
                raise LatentdynError(f"{source} has frames {tuple(shape)} but the VAE in {vae_run} takes {want}; encode matching data")
            N, T = sf.n_sequences, sf.length
            f.attrs.update(attrs)
            f.attrs.update({"kind": "sequences", "source_format": "latentdyn-scenes",
                            "source_splits": json.dumps(sorted(sf.splits)), "scene": json.dumps(sf.scene or {})})
            per = max(1, block_frames // T)
            chunks = (max(1, min(N, per)), T, d)
            mu_ds = f.create_dataset("mu", (N, T, d), np.float32, chunks=chunks)
            lv_ds = f.create_dataset("logvar", (N, T, d), np.float32, chunks=chunks)
            st = sf.states
            if st is not None:
                f.create_dataset("states", data=st[...] if st.size * 4 < 2**30 else None, shape=st.shape, dtype=np.float32)
            with tqdm(total=N * T, unit="frame", unit_scale=True, desc="encode", disable=None if progress is None else not progress) as bar:
                for s in range(0, N, per):
                    fr = sf.read_frames(slice(s, min(N, s + per)))  # (k, T, H, W[, C])
                    k = len(fr)
                    mu, lv = encode_frames(model, fr.reshape(k * T, *shape), dev, binarize=cfg.binarize, precision=precision)
                    mu_ds[s : s + k] = mu.reshape(k, T, d)
                    lv_ds[s : s + k] = lv.reshape(k, T, d)
                    if st is not None and st.size * 4 >= 2**30:
                        f["states"][s : s + k] = st[s : s + k]
                    bar.update(k * T)
            g = f.create_group("splits")
            for name, idx in sf.splits.items():
                g.create_dataset(name, data=idx)
        return out
    data = datasets.load_source(str(source), split or "test", data_dir or cfg.data_dir, val_size=cfg.val_size)
    if tuple(data.shape) != want:
        raise LatentdynError(f"{source} has images {tuple(data.shape)} but the VAE in {vae_run} takes {want}; encode matching data")
    mu, lv = encode_frames(model, data.images, dev, binarize=cfg.binarize, precision=precision)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(attrs)
        f.attrs.update({"kind": "images", "source_format": "dataset", "source_splits": json.dumps([data.split]),
                        "class_names": json.dumps(data.class_names)})
        f["mu"], f["logvar"], f["labels"] = mu, lv, data.labels
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
            self.file.close()
            raise LatentdynError(f"{self.path} is not a latents file (format {a.get('format')!r}); make one with `latentdyn encode`")
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
