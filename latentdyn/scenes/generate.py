"""Scenes: definitions (TOML), generation and the HDF5 writer pipeline.

A scene definition is a ``SceneConfig``: the box and balls (``physics``), the camera
(``render``) and the sequence length (``kind = "sprites"``: moving dataset sprites, see
``latentdyn.scenes.sprites``). ``generate`` writes N sequences of frames and ground-truth
states to a scene file (format in docs/formats.md), streaming blocks of sequences through
worker processes so memory stays bounded whatever N is. Sequence i depends only on the
definition, the seed and i (see ``latentdyn.core.rng``), never on the block size or N.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import multiprocessing as mp
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
import numpy as np

from latentdyn.core.version import __version__
from latentdyn.scenes import physics
from latentdyn.core.config import apply_overrides, find_toml, from_dict, load_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir
from latentdyn.core.resources import scene_folders
from latentdyn.scenes.config import SceneInfo
from latentdyn.scenes.splits import assign_splits, parse_splits  # noqa: F401 (re-exported)
from latentdyn.scenes.render import PROFILE_POWER, Renderer
from latentdyn.scenes.file import SceneWriter, deflate



@dataclass
class Box:
    width: float = 10.0  # box units; the classic benchmark's box is 10 x 10
    height: float = 10.0


@dataclass
class Physics:
    n_balls: int = 1
    radius: float | list[float] = 1.2  # collision radius in box units, one value or one per ball
    mass: float | list[float] = 1.0  # only ratios matter; equal masses swap normal velocities
    speed: float | list[float] = 0.5  # box units per frame (see speed_mode)
    speed_mode: str = "total"  # "total": sqrt(sum_i |v_i|^2) = speed (classic); "per_ball": |v_i| = speed[i]
    substeps: int = 2  # physics steps per frame; the classic generator uses 2
    ball_collisions: bool = True  # elastic ball-ball collisions
    gravity: list[float] = field(default_factory=lambda: [0.0, 0.0])  # (x, y) box units per frame^2, +y is down
    damping: float = 0.0  # fraction of velocity lost per frame; 0 keeps all momentum


@dataclass
class Render:
    width: int = 28  # pixels
    height: int = 28
    profile: str = "gaussian"  # "gaussian": exp(-d^2/r^2) glow; "disk": exp(-(d^2/r^2)^4) super-Gaussian
    radius: float | list[float] | None = None  # light radius in box units; None: the collision radius
    intensity: float | list[float] = 1.0  # peak brightness in [0, 1], one value or one per ball
    colors: list[list[float]] = field(default_factory=list)  # RGB in [0, 1] per ball; empty: grayscale


@dataclass
class SceneConfig:
    scene: SceneInfo = field(default_factory=SceneInfo)
    box: Box = field(default_factory=Box)
    physics: Physics = field(default_factory=Physics)
    render: Render = field(default_factory=Render)

    # ---- derived per-ball arrays -------------------------------------------------------------
    def per_ball(self, value: float | list[float] | None, key: str) -> np.ndarray:
        n = self.physics.n_balls
        if isinstance(value, list):
            if len(value) != n:
                raise LatentdynError(f"{key} has {len(value)} values but physics.n_balls = {n}; give one value or {n}")
            return np.asarray(value, np.float64)
        return np.full(n, float(value))

    @property
    def radii(self) -> np.ndarray:
        return self.per_ball(self.physics.radius, "physics.radius")

    @property
    def scale(self) -> float:
        """Pixels per box unit."""
        return self.render.width / self.box.width

    @property
    def frame_shape(self) -> tuple[int, ...]:
        h, w = self.render.height, self.render.width
        return (h, w, 3) if self.render.colors else (h, w)

    def validate(self) -> None:
        p, r, b = self.physics, self.render, self.box
        if self.scene.length < 1:
            raise LatentdynError(f"scene.length = {self.scene.length}: must be at least 1")
        if not 1 <= p.n_balls <= physics.MAX_BALLS:
            raise LatentdynError(f"physics.n_balls = {p.n_balls}: must be 1..{physics.MAX_BALLS}")
        if b.width <= 0 or b.height <= 0:
            raise LatentdynError(f"box is {b.width:g} x {b.height:g}: both sides must be positive")
        if r.width < 1 or r.height < 1 or r.width * r.height > 4096 * 4096:
            raise LatentdynError(f"render is {r.width} x {r.height} pixels: each side must be 1..4096")
        if not math.isclose(r.width / r.height, b.width / b.height, rel_tol=1e-6):
            raise LatentdynError(
                f"render {r.width}x{r.height} px and box {b.width:g}x{b.height:g} differ in aspect; pixels must be square"
            )
        radii = self.radii
        if (radii <= 0).any():
            raise LatentdynError(f"physics.radius = {p.radius}: must be positive")
        if 2 * radii.max() >= min(b.width, b.height):
            raise LatentdynError(
                f"physics.radius = {radii.max():g} is too large for the {b.width:g}x{b.height:g} box; "
                f"it must be under {min(b.width, b.height) / 2:g}"
            )
        # no packing of discs covers more than pi / (2 sqrt 3) of the plane (Thue's theorem)
        if np.sum(np.pi * radii**2) > np.pi / (2 * np.sqrt(3)) * b.width * b.height:
            raise LatentdynError(
                f"{p.n_balls} balls of radius {radii.max():g} cannot fit in the {b.width:g}x{b.height:g} box; "
                "use fewer or smaller balls or a larger box"
            )
        if (self.per_ball(p.mass, "physics.mass") <= 0).any():
            raise LatentdynError(f"physics.mass = {p.mass}: must be positive")
        speeds = self.per_ball(p.speed, "physics.speed") if p.speed_mode == "per_ball" else np.atleast_1d(p.speed)
        if p.speed_mode not in ("total", "per_ball"):
            raise LatentdynError(f"physics.speed_mode = {p.speed_mode!r}: use 'total' or 'per_ball'")
        if p.speed_mode == "total" and isinstance(p.speed, list):
            raise LatentdynError("physics.speed is a list but speed_mode = 'total'; give one number or set speed_mode = 'per_ball'")
        if (np.asarray(speeds) < 0).any():
            raise LatentdynError(f"physics.speed = {p.speed}: must not be negative")
        if p.substeps < 1:
            raise LatentdynError(f"physics.substeps = {p.substeps}: must be at least 1")
        if len(p.gravity) != 2:
            raise LatentdynError(f"physics.gravity = {p.gravity}: give [x, y]")
        if not 0.0 <= p.damping < 1.0:
            raise LatentdynError(f"physics.damping = {p.damping}: must be in [0, 1)")
        # fastest possible ball: all kinetic energy in one ball plus what gravity adds over the box
        g = math.hypot(*p.gravity)
        v_max = math.sqrt(float(np.sum(np.asarray(speeds) ** 2)) + 2 * g * max(b.width, b.height)) + g
        room = min(b.width, b.height) - 2 * radii.max()
        if v_max / p.substeps >= room:
            raise LatentdynError(
                f"balls may move {v_max / p.substeps:.3g} box units per sub-step, more than the {room:.3g} "
                f"between walls; raise physics.substeps to {math.ceil(v_max / room) + 1} or lower the speed"
            )
        if r.profile not in PROFILE_POWER:
            raise LatentdynError(f"render.profile = {r.profile!r}: use one of {', '.join(PROFILE_POWER)}")
        light = self.per_ball(r.radius if r.radius is not None else p.radius, "render.radius")
        if (light <= 0).any():
            raise LatentdynError(f"render.radius = {r.radius}: must be positive")
        if 2 * light.max() * self.scale > 2 * max(r.width, r.height):
            raise LatentdynError(f"render.radius = {light.max():g} is larger than the box; make it smaller")
        inten = self.per_ball(r.intensity, "render.intensity")
        if ((inten < 0) | (inten > 1)).any():
            raise LatentdynError(f"render.intensity = {r.intensity}: must be in [0, 1]")
        if r.colors:
            if len(r.colors) != p.n_balls or any(len(c) != 3 for c in r.colors):
                raise LatentdynError(f"render.colors must hold one [r, g, b] per ball ({p.n_balls}), got {r.colors}")
            if any(not 0 <= x <= 1 for c in r.colors for x in c):
                raise LatentdynError(f"render.colors values must be in [0, 1], got {r.colors}")

    def renderer(self) -> Renderer:
        r = self.render
        light = self.per_ball(r.radius if r.radius is not None else self.physics.radius, "render.radius")
        inten = self.per_ball(r.intensity, "render.intensity")
        gains = inten[:, None] * (np.asarray(r.colors, np.float64) if r.colors else np.ones((len(inten), 1)))
        return Renderer(r.height, r.width, light * self.scale, gains, r.profile)


def find_scene(name_or_path: str | Path, scenes_dir: str | Path | None = None) -> Path:
    """Resolve a scene argument: a TOML path, or a NAME looked up in ``scenes_dir``, ./scenes/ and
    the scenes shipped with latentdyn (``latentdyn.core.resources``)."""
    return find_toml(name_or_path, scene_folders(scenes_dir), "scene")


SCENE_KINDS = ("balls", "sprites")


def load_scene(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = (),
               scenes_dir: str | Path | None = None):
    """Read a scene definition, apply ``--set`` overrides and validate it; the top-level ``kind``
    picks a ``SceneConfig`` ("balls", the default) or a ``sprites.SpriteSceneConfig`` ("sprites")."""
    return scene_from_dict(apply_overrides(load_toml(find_scene(name_or_path, scenes_dir)), overrides))


def scene_from_dict(data: dict):
    """A scene definition from plain data (a TOML table, or a file's ``scene`` attribute):
    the top-level ``kind`` picks a ``SceneConfig`` ("balls", the default) or a ``SpriteSceneConfig``."""
    data = dict(data)
    kind = data.get("kind", "balls")
    if kind == "sprites":
        from latentdyn.scenes.sprites import SpriteSceneConfig

        return from_dict(SpriteSceneConfig, data)
    if kind != "balls":
        raise LatentdynError(f"scene kind = {kind!r}: use one of {', '.join(SCENE_KINDS)}")
    data.pop("kind", None)
    return from_dict(SceneConfig, data)


def _is_sprites(config) -> bool:
    return getattr(config, "kind", "balls") == "sprites"


def _kind_parts(config, splits: dict[str, float] | None) -> tuple:
    """(worker renderer, extra datasets, objects per frame, split rule, /sprites attrs) of a kind."""
    if not _is_sprites(config):
        return None, None, config.physics.n_balls, assign_splits, {}
    from latentdyn.scenes import sprites

    bank = sprites.prepare(config, splits)  # the dataset, loaded once (a missing one fails here)
    return bank, sprites.extra_layout(config), config.sprites.n_sprites, sprites.assign_splits, sprites.group_attrs(config, bank)


def simulate_states(config: SceneConfig, seed: int, ids: np.ndarray, length: int | None = None) -> np.ndarray:
    """Ground-truth states (S, T, n, 4) float32 (x, y, vx, vy in pixels) of sequences ``ids``."""
    p, T = config.physics, length or config.scene.length
    radii = config.radii
    speeds = config.per_ball(p.speed, "physics.speed") if p.speed_mode == "per_ball" else np.atleast_1d(float(p.speed))
    box = (config.box.width, config.box.height)
    pos, vel = physics.initial_state(seed, ids, box, radii, speeds, p.speed_mode)
    xs, vs = physics.simulate(
        pos, vel, T, box, radii, config.per_ball(p.mass, "physics.mass"), p.substeps,
        p.ball_collisions, tuple(p.gravity), p.damping,
    )  # (S, T, n, 2) each
    return (np.concatenate([xs, vs], -1) * config.scale).astype(np.float32)  # (S, T, n, 4)


def sample(config: SceneConfig, seed: int, ids: np.ndarray | int, splits: dict[str, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames (S, T, H, W[, C]) uint8 and states (S, T, n, 4) of sequences ``ids`` in memory
    (for a sprite scene, ``splits``, the generator's fractions, pick each sequence's sprite pool)."""
    ids = np.arange(ids) if np.isscalar(ids) else np.asarray(ids)
    if _is_sprites(config):
        from latentdyn.scenes import sprites

        return sprites.sample(config, sprites.prepare(config, splits), seed, ids)[:2]
    states = simulate_states(config, seed, ids)
    S, T = states.shape[:2]
    frames = config.renderer()(states[..., :2].reshape(S * T, -1, 2))  # (S*T, H, W[, C])
    return frames.reshape(S, T, *frames.shape[1:]), states


def _block(config: SceneConfig, renderer: Renderer, seed: int, ids: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """Simulate, render and compress one block of sequences: one zlib chunk per sequence."""
    states = simulate_states(config, seed, ids)  # (S, T, n, 4)
    S, T = states.shape[:2]
    chunks = []
    per = max(1, 1024 // T)  # render a few sequences at a time: bounded float buffers
    for s in range(0, S, per):
        fr = renderer(states[s : s + per, :, :, :2].reshape(-1, states.shape[2], 2))  # (k*T, H, W[, C])
        fr = fr.reshape(-1, T, *fr.shape[1:])  # (k, T, H, W[, C])
        chunks.extend(deflate(seq.tobytes()) for seq in fr)
    return chunks, states


_WORKER: dict[str, Any] = {}  # per-process state of the generator's worker processes


def _init_worker(config: SceneConfig, seed: int, renderer: Any = None) -> None:
    """``renderer``: made once in the parent (a sprite scene's images), else made here."""
    _WORKER.update(config=config, renderer=renderer if renderer is not None else config.renderer(), seed=seed)


def _work(start: int, stop: int) -> tuple[list[bytes], np.ndarray, dict[str, np.ndarray]]:
    config, ids = _WORKER["config"], np.arange(start, stop)
    if _is_sprites(config):
        from latentdyn.scenes import sprites

        return sprites.block(config, _WORKER["renderer"], _WORKER["seed"], ids)
    return (*_block(config, _WORKER["renderer"], _WORKER["seed"], ids), {})


class _Inline(cf.Executor):
    """The executor interface, run in the calling process (one worker: no processes to start)."""

    def __init__(self, config: SceneConfig, seed: int, renderer: Any = None):
        _init_worker(config, seed, renderer)

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # delivered by result(), like a pool would
            fut.set_exception(e)
        return fut


def _executor(workers: int, config: SceneConfig, seed: int, renderer: Any = None) -> cf.Executor:
    """Worker processes (numpy's small calls hold the GIL, so threads would not scale)."""
    if workers == 1:
        return _Inline(config, seed, renderer)
    # Forking a process that has imported torch (whose OpenMP and CUDA state do not survive a
    # fork) is a known source of hangs: fork only while torch is not loaded (the CLI: forked
    # workers share the parent's ``renderer``, e.g. sprite images, without copying it), else
    # forkserver (spawn where there is none), which runs a script's __main__ again in the
    # workers unless it is guarded by `if __name__ == "__main__":`, as for any multiprocessing.
    if "torch" not in sys.modules and "fork" in mp.get_all_start_methods() and sys.platform.startswith("linux"):
        ctx = mp.get_context("fork")
    elif "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        # the server imports this module, not the caller's __main__: a script without an
        # `if __name__ == "__main__"` guard is not run again in it
        ctx.set_forkserver_preload([__name__])
    else:  # pragma: no cover - Windows (spawn imports __main__: guard the script)
        ctx = mp.get_context("spawn")
    return cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config, seed, renderer))


def generate(
    config: SceneConfig,
    out: str | Path,
    n_sequences: int,
    seed: int = 0,
    splits: dict[str, float] | None = None,
    workers: int | None = None,
    block_frames: int = 131072,
    progress: bool | None = None,
    run_config: dict | None = None,
) -> Path:
    """Write ``n_sequences`` sequences of ``config`` to the scene file ``out`` (atomically).

    Blocks of at most ``block_frames`` frames are simulated, rendered and compressed by
    ``workers`` processes while this process writes them, in order, into the file; at most two
    blocks per worker are in flight, so memory does not grow with N. The file's bytes depend
    only on the definition, N and the seed (not on ``workers`` or the block size).

    A sprite scene also writes its sprite records under /sprites/; its splits come from
    ``sprites.assign_splits`` (sequence i's split, hence its sprite pool, does not depend on N).
    """
    from tqdm.auto import tqdm

    if n_sequences < 1:
        raise LatentdynError(f"-n {n_sequences}: the number of sequences must be at least 1")
    if not 0 <= seed < 2**63:
        raise LatentdynError(f"--seed {seed}: must be in [0, 2**63)")
    out = check_writable_dir(out)
    T = config.scene.length
    workers = max(1, min(workers or os.cpu_count() or 1, 8, n_sequences))
    # blocks: large enough to amortise numpy's per-call cost in the physics, small enough for
    # load balance (about 4 per worker) and bounded memory
    per_block = max(1, min(block_frames // T, math.ceil(n_sequences / (4 * workers))))
    states_chunk = max(1, min(n_sequences, 65536 // T))  # fixed: the file must not depend on blocks
    attrs = {"scene": to_dict(config), "seed": int(seed), "generator": f"latentdyn {__version__}"}
    if run_config is not None:
        attrs["config"] = run_config  # the generate stage's settings: `latentdyn generate --config FILE` reruns it
    renderer, extra, n_objects, split_rule, group = _kind_parts(config, splits)
    starts = iter(range(0, n_sequences, per_block))
    pending: collections.deque = collections.deque()

    def submit(pool: cf.Executor) -> None:
        for s in starts:
            pending.append(pool.submit(_work, s, min(s + per_block, n_sequences)))
            if len(pending) >= 2 * workers:
                return

    pool = _executor(workers, config, seed, renderer)
    try:
        submit(pool)  # starts the worker processes before the file and the progress bar exist
        with atomic_path(out) as tmp, SceneWriter(
            tmp, n_sequences, T, config.frame_shape, n_objects, attrs, states_chunk, extra=extra
        ) as w, tqdm(
            total=n_sequences * T, unit="frame", unit_scale=True, desc=f"generate {config.scene.name}",
            disable=None if progress is None else not progress,
        ) as bar:
            done = 0
            while pending:
                try:
                    chunks, states, records = pending.popleft().result()
                except cf.process.BrokenProcessPool:
                    raise LatentdynError("the scene workers could not start; in a script, put its code under "
                                         "`if __name__ == \"__main__\":`, or pass workers=1") from None
                w.write(done, chunks, states, {f"sprites/{k}": v for k, v in records.items()})
                done += len(chunks)
                bar.update(len(chunks) * T)
                submit(pool)
            w.write_splits(split_rule(n_sequences, splits or {}, seed))
            for k, v in group.items():
                w.file["sprites"].attrs[k] = v if isinstance(v, (int, float, str)) else json.dumps(v)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out
