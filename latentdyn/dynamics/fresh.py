"""Fresh training sequences: new sequences of a latents file's scene, drawn anew every epoch.

``TrainDynamicsConfig.fresh_sequences = n > 0`` replaces the latents file's fixed training
sequences, in training only, by n new sequences per epoch: simulated from the scene definition
the file records, rendered and encoded by the VAE that made the file (checked by its sha256),
or, for state latents (``latentdyn encode --states``), the simulated states themselves. Worker
processes make them in blocks while the trainer steps, at most ``ahead`` blocks in flight, so
memory holds a few blocks whatever n and the number of epochs. The validation split, the scales
the predictor standardises with (``fit_scales``) and the test split stay the file's.

Randomness (``latentdyn.core.rng``). Sequence i of a scene depends only on (definition, seed, i);
epoch e's fresh sequences are sequences 0..n-1 under the seed
``SeedSequence([generator seed, predictor seed, e, FRESH_STREAM])``, a seed the scene file's own
generator seed is not (the file's sequences are those of the generator seed): the same
configuration gives the same bytes, epochs differ, and no fresh sequence is one of the file's.
A sprite scene draws its fresh sprites from the training pool only (the dataset's official
training images less the ``val_images`` held out for val, ``latentdyn.scenes.sprites``).
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import multiprocessing as mp
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from latentdyn.core.errors import LatentdynError

FRESH_STREAM = 0xF2E5   # the seed-sequence word that sets fresh sequences apart from the generator's
BLOCK_FRAMES = 8192     # frames per block: a block of 100-frame 30 x 30 sequences is 7.4 MB of uint8 frames
RENDER_FRAMES = 1024    # frames rendered at once (bounded float buffers, as the scene generator does)


@dataclass(frozen=True)
class FreshSource:
    """What a worker needs to make sequences like a latents file's (plain, picklable data)."""

    latents: str             # the latents file, for messages
    scene: dict              # the scene definition the file records (its ``scene`` attribute)
    length: int              # T, frames per sequence
    latent_dim: int          # d
    states: bool             # state latents: the simulated states, no rendering or encoding
    vae_run: str             # VAE latents: the run folder of the VAE that made the file
    precision: str           # VAE latents: the encode stage's precision (``encode_frames``)
    generator_seed: int      # the seed of the scene file the latents were made from


def fresh_source(latents: str | Path) -> FreshSource:
    """Read and check what fresh sequences of ``latents`` need; a one-line error naming the fix
    when the file has no scene definition, its scene file is gone or its VAE changed."""
    from latentdyn.latents.file import open_latents
    from latentdyn.scenes.file import open_scenes

    fix = "or train on its fixed sequences (fresh_sequences = 0)"
    with open_latents(latents) as lf:
        a = lf.file.attrs
        scene = json.loads(a.get("scene", "{}") or "{}")
        if lf.kind != "sequences" or not scene or scene.get("kind", "balls") not in ("balls", "sprites"):
            what = "an imported video" if scene.get("kind") == "video" else "data without a scene definition"
            raise LatentdynError(f"{latents} holds latents of {what}, so fresh_sequences cannot draw new sequences; "
                                 f"encode a scene file from `latentdyn generate` {fix}")
        states, source = str(a.get("latents", "vae")) == "states", str(a.get("source", ""))
        T, d, vae_run = lf.file["mu"].shape[1], lf.latent_dim, str(a.get("vae_run", ""))
        if not states:
            try:
                lf.check_vae(vae_run)  # fresh frames must be encoded by the VAE that made the file
            except LatentdynError as e:
                raise LatentdynError(f"fresh_sequences: {e}") from None
        precision = json.loads(a.get("config", "{}") or "{}").get("precision", "float32")
    try:
        with open_scenes(source) as sf:
            seed = int(sf.file.attrs["seed"])
    except (LatentdynError, KeyError):
        raise LatentdynError(f"fresh_sequences needs the generator seed of {latents}'s scene file {source!r}, which is "
                             f"gone or has none; regenerate it there {fix}") from None
    return FreshSource(str(latents), scene, int(T), int(d), states, vae_run, precision, seed)


def fresh_seed(generator_seed: int, seed: int, epoch: int) -> int:
    """The 63-bit scene seed of epoch ``epoch``'s fresh sequences (a pure function of its arguments)."""
    words = np.random.SeedSequence([generator_seed, seed, epoch, FRESH_STREAM]).generate_state(1, np.uint64)
    return int(words[0]) & (2**63 - 1)


class SceneDrawer:
    """States and frames of sequences ``ids`` of a latents file's scene under a scene seed, as the
    scene generator draws them, except that a sprite scene takes every sprite from its training pool."""

    def __init__(self, source: FreshSource, frames: bool = True):
        from latentdyn.scenes.generate import scene_from_dict

        config = scene_from_dict(source.scene)
        self.config = replace(config, scene=replace(config.scene, length=source.length))
        self.sprites = getattr(self.config, "kind", "balls") == "sprites"
        if frames and self.sprites:
            from latentdyn.scenes import sprites

            self.bank = sprites.prepare(self.config, {"train": 1.0})  # the training pool, and only it
        elif frames:
            self.renderer = self.config.renderer()

    def states(self, seed: int, ids: np.ndarray) -> np.ndarray:
        """True states (S, T, n, 4) float32 in pixels."""
        from latentdyn.scenes import generate, sprites

        if self.sprites:
            return sprites.simulate(self.config, seed, ids)[0]
        return generate.simulate_states(self.config, seed, ids)

    def frames(self, seed: int, ids: np.ndarray) -> tuple[np.ndarray, dict]:
        """Frames (S, T, H, W, C) uint8 and, for sprites, their records (``sprites.sample``)."""
        from latentdyn.scenes import sprites

        records: dict = {}
        if self.sprites:
            fr, _, records = sprites.sample(self.config, self.bank, seed, ids)  # (S, T, H, W[, C])
        else:
            st = self.states(seed, ids)[..., :2]  # (S, T, n, 2)
            S, T, n = st.shape[:3]
            flat = st.reshape(S * T, n, 2)
            fr = np.concatenate([self.renderer(flat[s : s + RENDER_FRAMES]) for s in range(0, S * T, RENDER_FRAMES)])
            fr = fr.reshape(S, T, *fr.shape[1:])  # (S, T, H, W[, C])
        return (fr if fr.ndim == 5 else fr[..., None]), records


class SequenceMaker:
    """Makes (mu, logvar) float32 (S, T, d) of sequences ``ids`` under a scene seed, and with
    ``frames`` their frames (S, T, C, H, W) uint8 too (the decoder trained on predictions reads
    them): the scene, its renderer or training sprites and the VAE loaded once (in a worker
    process, or here)."""

    def __init__(self, source: FreshSource, threads: int = 1, frames: bool = False):
        if frames and source.states:
            raise LatentdynError("fresh frames need a VAE's latents file; a file of true states has no frames to draw")
        self.frames = frames
        self.source, self.draw = source, SceneDrawer(source, frames=not source.states)
        if source.states:
            return
        import torch

        from latentdyn.vae.train import load_vae

        torch.set_num_threads(threads)
        self.vae, vae_cfg, _ = load_vae(source.vae_run, "best", "cpu")
        self.binarize = vae_cfg.binarize

    def __call__(self, seed: int, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        T, d = self.source.length, self.source.latent_dim
        if self.source.states:
            mu = self.draw.states(seed, ids)[..., :4].reshape(len(ids), T, -1)  # (S, T, n*4), object-major
            return mu, np.zeros_like(mu)
        from latentdyn.vae.encode import encode_frames

        fr = self.draw.frames(seed, ids)[0]  # (S, T, H, W, C)
        mu, lv = encode_frames(self.vae, fr.reshape(-1, *fr.shape[2:]), "cpu", binarize=self.binarize,
                               precision=self.source.precision)  # (S*T, d) each
        out = (mu.reshape(len(ids), T, d), lv.reshape(len(ids), T, d))
        return out + (np.ascontiguousarray(fr.transpose(0, 1, 4, 2, 3)),) if self.frames else out  # (S, T, C, H, W)


_MAKER: dict = {}  # the worker process's SequenceMaker


def _init_worker(source: FreshSource, threads: int, frames: bool) -> None:
    _MAKER["make"] = SequenceMaker(source, threads, frames)


def _make(seed: int, ids: np.ndarray):
    return _MAKER["make"](seed, ids)


class _Inline(cf.Executor):
    """The executor interface in this process (``workers = 0``: no overlap with training)."""

    def __init__(self, source: FreshSource, threads: int, frames: bool):
        self.make = SequenceMaker(source, threads, frames)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(self.make(*args))
        except Exception as e:  # delivered by result(), as a pool would
            fut.set_exception(e)
        return fut


class FreshStream:
    """Blocks of fresh sequences, epoch after epoch, made ahead by ``workers`` processes.

    Epoch e's sequences are ``ids`` (default 0..n-1; a torchrun rank passes its shard) under
    ``fresh_seed(generator seed, seed, e)``, cut into blocks of ``block`` sequences. At most
    ``ahead`` blocks (default two per worker) are being made or waiting; when an epoch's last
    block is taken the next epoch's first ones are already under way. ``peak`` counts the most
    blocks held at once (waiting, plus the one being consumed): the memory bound. With ``frames``
    each block also carries the sequences' frames (``SequenceMaker``).
    """

    def __init__(self, source: FreshSource, n: int, seed: int, workers: int = 1, block: int | None = None,
                 ahead: int | None = None, ids: np.ndarray | None = None, threads: int = 1, frames: bool = False):
        self.source, self.seed = source, seed
        self.ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        self.block = max(1, block or BLOCK_FRAMES // source.length)
        self.n_blocks = -(-len(self.ids) // self.block)
        self.ahead = max(1, ahead or 2 * max(1, workers))
        self.pending: collections.deque = collections.deque()  # (epoch, block, future)
        self.cursor: tuple[int, int] | None = None  # (epoch, block) to submit next
        self.peak = 0
        if workers == 0:
            self.pool: cf.Executor = _Inline(source, threads, frames)
        else:  # spawn: the trainer has imported torch, whose state does not survive a fork
            self.pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                               initargs=(source, threads, frames))

    def ids_of(self, epoch: int, b: int) -> tuple[int, np.ndarray]:
        """(scene seed, sequence ids) of block ``b`` of epoch ``epoch``."""
        return fresh_seed(self.source.generator_seed, self.seed, epoch), self.ids[b * self.block : (b + 1) * self.block]

    def start(self, epoch: int) -> None:
        """Begin making epoch ``epoch``'s blocks (anything made ahead for another epoch is dropped)."""
        for *_, fut in self.pending:
            fut.cancel()
        self.pending.clear()
        self.cursor = (epoch, 0)
        self._fill()

    def _fill(self) -> None:
        while len(self.pending) < self.ahead:
            e, b = self.cursor
            self.pending.append((e, b, self.pool.submit(_make, *self.ids_of(e, b))))
            self.cursor = (e, b + 1) if b + 1 < self.n_blocks else (e + 1, 0)

    def blocks(self, epoch: int) -> Iterator[tuple[np.ndarray, ...]]:
        """(mu, logvar) float32 (k, T, d) numpy blocks of epoch ``epoch``, in order [, frames (k, T, C, H, W)]."""
        if not self.pending or self.pending[0][:2] != (epoch, 0):
            self.start(epoch)
        for b in range(self.n_blocks):
            e, bb, fut = self.pending.popleft()
            assert (e, bb) == (epoch, b), "fresh blocks out of order"
            try:
                out = fut.result()
            except cf.process.BrokenProcessPool:
                raise LatentdynError("the fresh-sequence workers could not start; in a script, put its code under "
                                     "`if __name__ == \"__main__\":`, or set fresh_workers = 0") from None
            self._fill()  # the workers go on while this block trains
            self.peak = max(self.peak, len(self.pending) + 1)
            yield out

    def batches(self, epoch: int, length: int, per_seq: int, batch: int, generator, device):
        """Training windows (B, length, d) of mu and logvar on ``device`` [, with ``frames`` the windows'
        frames (B, length, C, H, W) uint8]: ``per_seq`` random windows of each fresh sequence
        (``generator``: torch, CPU), shuffled within each block, served in batches of ``batch`` (a
        block's last windows join the next block's; the epoch's last batch may be short)."""
        import torch

        from latentdyn.dynamics.windows import gather_windows, sample_windows

        carry = None
        for block in self.blocks(epoch):
            parts = [torch.from_numpy(a).to(device) for a in block]  # mu, lv (k, T, d) [, frames (k, T, C, H, W)]
            seq, start = sample_windows(len(parts[0]), parts[0].shape[1], length, per_seq, generator)
            seq, start = seq.to(device), start.to(device)
            win = [gather_windows(a, seq, start, length) for a in parts]  # (k*per_seq, L, ...) each
            if carry is not None:
                win = [torch.cat([c, w]) for c, w in zip(carry, win)]
            full = len(win[0]) - len(win[0]) % batch
            for s in range(0, full, batch):
                yield tuple(w[s : s + batch] for w in win)
            carry = [w[full:] for w in win]
        if carry is not None and len(carry[0]):
            yield tuple(carry)

    def close(self) -> None:
        for *_, fut in self.pending:
            fut.cancel()
        self.pending.clear()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "FreshStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
