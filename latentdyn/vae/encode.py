"""``latentdyn encode``: a VAE's posterior means and log-variances of a scene file or a dataset split,
written as a latents file (``latentdyn.latents.file``, the format every later stage reads), and
``encode_frames``, the batched no-grad encoder the encode stage, rollouts and analyses share
(``encode_sequences``: the same for sequences, in order where a slot model carries its slots).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import check_writable_dir, sha256_file
from latentdyn.latents.file import (  # noqa: F401  (the reader's names, here since latentdyn 0.2)
    FORMAT, FORMAT_VERSION, LatentFile, check_vae_hash, open_latents, write_images, write_sequences,
)


def encode_frames(model, frames_u8, device, batch: int = 1024, binarize: str = "none", precision: str = "float32",
                  as_numpy: bool = True):
    """Posterior means and log-variances (N, d) of uint8 frames (N, H, W, C) (numpy or a torch tensor),
    batched on the device with no autograd (``torch.inference_mode``): the fast path the encode stage,
    rollouts and fresh-data training share (frames/s in ``benchmarks/bench_speed.py``).

    ``precision``: float32, bfloat16 or auto (bfloat16 where the device runs it natively,
    ``latentdyn.engine.devices.fast_bf16``). Under bfloat16 the encoder's trunk runs in bf16 and its
    output layer, hence mu and logvar, in float32 (``BetaVAE.posterior``); the means then differ from
    float32's by a small fraction of the posterior's own standard deviation (measured in
    docs/results.md). Returns numpy arrays (one host copy per call), or device tensors with
    ``as_numpy=False``."""
    import torch

    from latentdyn.engine.devices import autocast_for
    from latentdyn.vae.data import batch_floats, to_device_uint8

    if frames_u8.dtype not in (np.uint8, torch.uint8):
        raise LatentdynError(f"encode_frames takes uint8 frames (N, H, W, C), not {frames_u8.dtype}; pass the frames as stored")
    mus, lvs = [], []
    with torch.inference_mode(), autocast_for(device, precision):
        for s in range(0, len(frames_u8), batch):
            x_u8 = to_device_uint8(frames_u8[s : s + batch], device)  # (B, C, H, W)
            x = batch_floats(x_u8, "static" if binarize == "static" else "none")  # (B, C, H, W)
            mu, logvar = model.encode(x)  # (B, d) each
            mus.append(mu.float())
            lvs.append(logvar.float())
    if not mus:
        d = model.latent_dim
        mus, lvs = [torch.zeros(0, d)], [torch.zeros(0, d)]
    mu, lv = torch.cat(mus), torch.cat(lvs)  # (N, d)
    return (mu.cpu().numpy(), lv.cpu().numpy()) if as_numpy else (mu, lv)


def encode_sequences(model, frames_u8, device, batch: int = 1024, binarize: str = "none", precision: str = "float32"):
    """Posterior means and log-variances (N, T, d) of uint8 sequences (N, T, H, W, C): for a model that
    carries slots from frame to frame (``latentdyn.vae.slots``, ``carries_slots``) each sequence is
    encoded in order, frame t's slots started from frame t-1's means, batched over sequences; for
    any other model every frame is encoded alone (``encode_frames``)."""
    import torch

    from latentdyn.engine.devices import autocast_for
    from latentdyn.vae.data import batch_floats, to_device_uint8

    N, T = frames_u8.shape[:2]
    if not getattr(model, "carries_slots", False):
        mu, lv = encode_frames(model, frames_u8.reshape(N * T, *frames_u8.shape[2:]), device, batch, binarize, precision)
        return mu.reshape(N, T, -1), lv.reshape(N, T, -1)
    if frames_u8.dtype not in (np.uint8, torch.uint8):
        raise LatentdynError(f"encode_sequences takes uint8 frames (N, T, H, W, C), not {frames_u8.dtype}")
    d = model.latent_dim
    mu, lv = np.zeros((N, T, d), np.float32), np.zeros((N, T, d), np.float32)
    with torch.inference_mode(), autocast_for(device, precision):
        for s in range(0, N, batch):
            prev = None
            for t in range(T):
                x = batch_floats(to_device_uint8(frames_u8[s : s + batch, t], device),
                                 "static" if binarize == "static" else "none")  # (B, C, H, W)
                m, v = model.encode(x, prev)  # (B, d) each, slots started from the previous frame's
                prev = m
                mu[s : s + batch, t], lv[s : s + batch, t] = m.float().cpu().numpy(), v.float().cpu().numpy()
    return mu, lv


_WORKER: dict = {}


def _init_worker(vae_run: str, precision: str, threads: int) -> None:
    import torch

    from latentdyn.vae.train import load_vae

    torch.set_num_threads(threads)
    model, cfg, _ = load_vae(vae_run, "best", "cpu")
    _WORKER.update(model=model, binarize=cfg.binarize, precision=precision)


def _encode_in_worker(frames_u8: np.ndarray):
    w = _WORKER
    return encode_frames(w["model"], frames_u8, "cpu", binarize=w["binarize"], precision=w["precision"])


class EncoderWorker:
    """``encode_frames`` in a process of its own: the VAE of ``vae_run`` (best.pt) loaded once there,
    on the CPU with ``threads`` threads, so a trainer can have fresh frames encoded while it steps.
    ``submit(frames_u8)`` returns a ``concurrent.futures.Future`` of (mu, logvar), the same arrays
    ``encode_frames`` gives in this process; use it as a context manager (the process ends on exit)."""

    def __init__(self, vae_run: str | Path, precision: str = "float32", threads: int = 1):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if not (Path(vae_run) / "best.pt").is_file():
            raise LatentdynError(f"{vae_run} has no best.pt; give a VAE run folder (latentdyn train vae)")

        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                        initargs=(str(vae_run), precision, threads))

    def submit(self, frames_u8: np.ndarray):
        return self.pool.submit(_encode_in_worker, frames_u8)

    def close(self) -> None:
        self.pool.shutdown()

    def __enter__(self) -> "EncoderWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

    check_writable_dir(out)  # before any work
    dev = pick_device(device)
    model, cfg, ck = load_vae(vae_run, "best", dev)
    ck_path = Path(vae_run) / "best.pt"
    want = model_hwc(model)
    d = model.latent_dim
    attrs = {
        "latent_shape": json.dumps(list(model.latent_shape)),
        "vae_run": str(Path(vae_run).resolve()), "vae_checkpoint": "best.pt", "vae_sha256": sha256_file(ck_path),
        "vae_config": json.dumps(ck["config"]), "config": json.dumps(config or {}),
        "source": str(Path(source).resolve()) if Path(source).exists() else str(source),
    }
    if not datasets.is_scene_source(source):
        data = datasets.load_source(str(source), split or "test", data_dir or cfg.data_dir, val_size=cfg.val_size)
        if tuple(data.shape) != want:
            raise LatentdynError(f"{source} has images {tuple(data.shape)} but the VAE in {vae_run} takes {want}; "
                                 "encode matching data")
        mu, lv = encode_frames(model, data.images, dev, binarize=cfg.binarize, precision=precision)
        attrs.update({"source_format": "dataset", "source_splits": json.dumps([data.split]),
                      "class_names": json.dumps(data.class_names)})
        return write_images(out, attrs, mu, lv, data.labels)
    with open_scenes(source) as sf:
        shape = sf.frame_shape if len(sf.frame_shape) == 3 else (*sf.frame_shape, 1)
        if tuple(shape) != want:
            raise LatentdynError(f"{source} has frames {tuple(shape)} but the VAE in {vae_run} takes {want}; encode matching data")
        N, T = sf.n_sequences, sf.length
        attrs.update({"source_format": "latentdyn-scenes", "source_splits": json.dumps(sorted(sf.splits)),
                      "scene": json.dumps(sf.scene or {})})
        per = max(1, block_frames // T)
        with write_sequences(out, attrs, N, T, d, sf.states, sf.splits, block_frames) as f, \
                tqdm(total=N * T, unit="frame", unit_scale=True, desc="encode",
                     disable=None if progress is None else not progress) as bar:
            for s in range(0, N, per):
                fr = sf.read_frames(slice(s, min(N, s + per)))  # (k, T, H, W[, C])
                k = len(fr)
                mu, lv = encode_sequences(model, fr.reshape(k, T, *shape), dev, binarize=cfg.binarize, precision=precision)
                f["mu"][s : s + k] = mu  # (k, T, d)
                f["logvar"][s : s + k] = lv
                bar.update(k * T)
    return Path(out)
