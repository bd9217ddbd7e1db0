"""The Python API: one function per pipeline stage, each taking its stage config.

Each function takes the stage's config dataclass, or keyword overrides of its defaults (or
both: ``train_vae(cfg, epochs=3)``), runs the stage into ``out`` and returns a :class:`Result`
(the output path, the summary numbers, the files written). Nothing is printed unless asked
(``progress=True`` shows bars, ``verbose=True`` the per-epoch lines). The ``latentdyn``
commands and the experiment runner call exactly these functions. ``run_experiment`` lives in
``latentdyn.pipeline.runner`` and is re-exported by the package.

    import latentdyn as ld
    ld.generate(scene="light_ball", sequences=200, out="ball.h5")
    ld.train_vae(data="ball.h5", arch="mlp", latent_dim=4, epochs=5, out="runs/vae")
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latentdyn.analysis.config import AnalyzeConfig, SteerConfig
from latentdyn.core.config import dumps_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, check_writable_dir, make_folder
from latentdyn.core.options import check, closest
from latentdyn.dynamics.config import RolloutConfig, TrainConvLSTMConfig, TrainDynamicsConfig
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig
from latentdyn.latents.config import EncodeStatesConfig
from latentdyn.scenes.config import GenerateConfig, ImportVideoConfig
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, SampleConfig, TrainVAEConfig

__all__ = ["Result", "generate", "import_video", "train_vae", "evaluate", "encode", "encode_states", "sample", "train_dynamics", "train_convlstm", "rollout",
           "latent_map", "interpolate", "analyze", "steer", "configure"]


@dataclass
class Result:
    """What a stage left: its output (a file or run folder), summary numbers, and the files written."""

    stage: str
    out: Path
    metrics: dict = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)
    config: Any = None


def _threads() -> None:
    """CPU threads for a stage outside the training loop: the free cores now (``latentdyn.engine.threads``)."""
    from latentdyn.engine.threads import configure as choose

    choose()


def configure(cls: type, config: Any = None, **overrides) -> Any:
    """A config of ``cls``: ``config`` (or the defaults) with ``overrides`` applied and checked."""
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise LatentdynError(f"expected a {cls.__name__}, got a {type(config).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for k in overrides:
        if k not in names:
            raise LatentdynError(f"{cls.__name__} has no option {k!r}{closest(k, names)}")
    overrides = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in overrides.items()}  # paths as strings
    config = dataclasses.replace(config, **overrides)
    check(config)
    return config


def save_config(folder: Path, config: Any) -> Path:
    """``folder/config.toml``: the resolved stage config (``latentdyn ... --config FOLDER`` reruns it)."""
    make_folder(folder)
    with atomic_path(folder / "config.toml") as tmp:
        tmp.write_text(dumps_toml(to_dict(config)))
    return folder / "config.toml"


def training_data(vae_run: str | Path) -> str:
    """The data a VAE run was trained on (from its config.toml)."""
    from latentdyn.core.config import load_toml

    path = Path(vae_run) / "config.toml"
    if not path.is_file():
        raise LatentdynError(f"{vae_run} is not a VAE run folder (no config.toml); train one with `latentdyn train vae`")
    return str(load_toml(path)["data"])


def scene_definition(cfg: GenerateConfig):
    """The scene definition a generate config names, with its ``set`` and ``length`` applied."""
    from latentdyn.scenes import generate as scenes

    overrides = list(cfg.set) + ([f"scene.length={cfg.length}"] if cfg.length is not None else [])
    return scenes.load_scene(cfg.scene, overrides, cfg.scenes_dir)


def _with_data_dir(scene, data_dir: str | None):
    """A sprite scene reading its dataset from ``data_dir`` (--data-dir) unless its own sprites.data_dir says where."""
    import dataclasses

    sprites = getattr(scene, "sprites", None)
    if sprites is None or not data_dir or sprites.data_dir:
        return scene
    return dataclasses.replace(scene, sprites=dataclasses.replace(sprites, data_dir=str(data_dir)))


def generate(config: GenerateConfig | None = None, *, out: str | Path, video: str | Path | list | None = None,
             progress: bool = False, **overrides) -> Result:
    """Generate scene sequences into the scene file ``out`` (and videos of the first sequences)."""
    from latentdyn.scenes import generate as scenes
    from latentdyn.viz.video import VIDEO_SUFFIXES, scene_video

    cfg = configure(GenerateConfig, config, **overrides)
    videos = [Path(v) for v in ([] if video is None else video if isinstance(video, list) else [video])]
    for v in videos:
        if v.suffix.lower() not in VIDEO_SUFFIXES:
            raise LatentdynError(f"--video {v}: use a .mp4 or .gif file name")
        check_writable_dir(v)  # before the generation, not after it
    scene = _with_data_dir(scene_definition(cfg), cfg.data_dir)
    path = scenes.generate(scene, out, cfg.sequences, seed=cfg.seed, splits=scenes.parse_splits(cfg.split),
                           workers=cfg.workers, progress=progress, run_config=to_dict(cfg))
    shown = list(range(min(cfg.video_sequences, cfg.sequences)))
    paths = {"scenes": Path(path), **{f"video{v.suffix}": Path(scene_video(path, v, shown)) for v in videos if shown}}
    return Result("generate", Path(path), {"sequences": cfg.sequences, "frames": cfg.sequences * scene.scene.length,
                                           "frame_shape": list(scene.frame_shape)}, paths, cfg)


def import_video(config: ImportVideoConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """Cut ``config.source`` (a video or a folder of PNG frames) into clips in the scene file ``out``."""
    from latentdyn.scenes.file import open_scenes
    from latentdyn.scenes.video_import import import_video as run, parse_size

    cfg = configure(ImportVideoConfig, config, **overrides)
    if not cfg.source:
        raise LatentdynError("import-video needs a source: a video file or a folder of PNG frames")
    path = run(cfg.source, out, parse_size(cfg.size), cfg.grey, cfg.clip_length, cfg.stride, cfg.split, cfg.seed, cfg.fps,
               cfg.split_mode)
    with open_scenes(path) as sf:
        metrics = {"clips": sf.n_sequences, "length": sf.length, "frame_shape": list(sf.frame_shape),
                   "source_frames": int(sf.file.attrs["source_frames"]),
                   "fps": float(sf.file.attrs["fps"]) if sf.file.attrs.get("fps") else None,
                   "splits": json.loads(sf.file.attrs["splits_summary"])}  # clips per split, and any left out
    return Result("import-video", Path(path), metrics, {"scenes": Path(path)}, cfg)


def train_vae(config: TrainVAEConfig | None = None, *, out: str | Path, resume: bool = False, progress: bool = False,
              verbose: bool = False, **overrides) -> Result:
    """Train (or ``resume``) a beta-VAE into the run folder ``out``; metrics: the last epoch's row."""
    from latentdyn.vae.train import train_vae as train

    cfg = configure(TrainVAEConfig, config, **overrides)
    row = train(cfg, out, resume=resume, progress=progress, verbose=verbose)
    out = Path(out)
    return Result("train-vae", out, row, {"best": out / "best.pt", "last": out / "last.pt", "config": out / "config.toml",
                                          "metrics": out / "metrics.jsonl"}, cfg)


def evaluate(config: EvaluateConfig | None = None, *, out: str | Path | None = None, progress: bool = False,
             **overrides) -> Result:
    """ELBO, IWAE log p(x), active units and KL per dimension of ``config.vae`` (JSON at ``out``,
    default the run folder's ``eval_<split>.json``)."""
    from latentdyn.vae.evaluate import evaluate_run

    cfg = configure(EvaluateConfig, config, **overrides)
    _threads()
    res = evaluate_run(cfg.vae, cfg.data, cfg.split, cfg.iw_samples, cfg.data_dir, cfg.device, cfg.limit,
                       which=cfg.checkpoint, progress=progress, out=out, config=to_dict(cfg),
                       max_memory_mb=cfg.max_memory_mb)
    path = Path(out) if out is not None else Path(cfg.vae) / f"eval_{cfg.split}.json"
    return Result("evaluate", path, res, {"eval": path}, cfg)


def encode(config: EncodeConfig | None = None, *, out: str | Path, progress: bool = False, **overrides) -> Result:
    """Posterior means and log-variances of ``config.data`` (default: the VAE's training data) in HDF5."""
    from latentdyn.vae.encode import encode as run

    cfg = configure(EncodeConfig, config, **overrides)
    if cfg.states:
        if not cfg.data:
            raise LatentdynError("--states needs --data SCENES, the scene file whose states to write")
        return encode_states(EncodeStatesConfig(data=cfg.data), out=out)
    _threads()
    cfg = dataclasses.replace(cfg, data=cfg.data or training_data(cfg.vae))
    path = run(cfg.vae, cfg.data, out, cfg.split, cfg.device, cfg.data_dir, progress=progress, config=to_dict(cfg),
               precision=cfg.precision)
    return Result("encode", Path(path), {}, {"latents": Path(path)}, cfg)


def encode_states(config: EncodeStatesConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """The true states of the scene file ``config.data`` as a latents file (the state oracle's input)."""
    from latentdyn.latents.states import write_states

    cfg = configure(EncodeStatesConfig, config, **overrides)
    path = write_states(cfg.data, out, config=to_dict(cfg))
    return Result("encode-states", Path(path), {}, {"latents": Path(path)}, cfg)


def sample(config: SampleConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """A PNG grid of ``config.n`` images decoded from the prior of ``config.vae`` (its flow included),
    at ``config.temperature``; the same seed gives the same bytes."""
    from latentdyn.vae.sample import sample as run

    cfg = configure(SampleConfig, config, **overrides)
    res = run(cfg.vae, out, cfg.n, cfg.temperature, cfg.seed, cfg.checkpoint, cfg.device)
    return Result("sample", Path(out), res, {"grid": Path(out)}, cfg)


def train_dynamics(config: TrainDynamicsConfig | None = None, *, out: str | Path, resume: bool = False,
                   progress: bool = False, verbose: bool = False, **overrides) -> Result:
    """Train (or ``resume``) the GRU predictor into the run folder ``out``."""
    from latentdyn.dynamics.train import train_dynamics as train

    cfg = configure(TrainDynamicsConfig, config, **overrides)
    row = train(cfg, out, resume=resume, progress=progress, verbose=verbose)
    out = Path(out)
    return Result("train-dynamics", out, row, {"best": out / "best.pt", "last": out / "last.pt",
                                               "config": out / "config.toml", "metrics": out / "metrics.jsonl"}, cfg)


def train_convlstm(config: TrainConvLSTMConfig | None = None, *, out: str | Path, resume: bool = False,
                   progress: bool = False, verbose: bool = False, **overrides) -> Result:
    """Train (or ``resume``) the pixel-space ConvLSTM yardstick on a scene file into the run folder ``out``,
    within its wall-time budget (``latentdyn.dynamics.convlstm_train``); metrics: the last epoch's row."""
    from latentdyn.dynamics.convlstm_train import train_convlstm as train

    cfg = configure(TrainConvLSTMConfig, config, **overrides)
    row = train(cfg, out, resume=resume, progress=progress, verbose=verbose)
    out = Path(out)
    return Result("train-convlstm", out, row, {"best": out / "best.pt", "last": out / "last.pt", "config": out / "config.toml",
                                               "metrics": out / "metrics.jsonl", "budget": out / "budget.json"}, cfg)


def rollout(config: RolloutConfig | None = None, *, out: str | Path, progress: bool = False, **overrides) -> Result:
    """Open-loop rollouts of ``config.dynamics`` decoded by ``config.vae`` on ``config.data``, scored
    and filmed into the folder ``out`` (metrics.json, error_vs_horizon.png, rollout.mp4/.gif)."""
    from latentdyn.dynamics.rollout import run_rollout

    cfg = configure(RolloutConfig, config, **overrides)
    _threads()
    out = Path(out)
    res = run_rollout(cfg.vae, cfg.dynamics, cfg.data, out, cfg, progress=progress)
    save_config(out, cfg)
    return Result("rollout", out, res, {"metrics": out / "metrics.json", "plot": out / "error_vs_horizon.png",
                                        "video": out / "rollout.mp4"}, cfg)


def latent_map(config: LatentMapConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """The latent map of a split into the folder ``out`` (manifold grid and magnification for 2-d latents)."""
    from latentdyn.geometry.latent_map import latent_map as run

    cfg = configure(LatentMapConfig, config, **overrides)
    _threads()
    out = Path(out)
    res = run(cfg.vae, cfg.data, out, cfg.split, cfg.data_dir, cfg.device, cfg.limit, cfg.grid)
    save_config(out, cfg)
    return Result("latent-map", out, {"latent_dim": res["latent_dim"]},
                  {Path(p).stem: Path(p) for p in res["figures"]} | {"arrays": Path(res["arrays"])}, cfg)


def interpolate(config: InterpolateConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """Geodesic against linear interpolation between pairs, into the folder ``out``."""
    from latentdyn.geometry.interpolate import interpolate as run

    cfg = configure(InterpolateConfig, config, **overrides)
    _threads()
    out = Path(out)
    res = run(cfg.vae, cfg.data, out, cfg.pairs, cfg.classes, cfg.steps, cfg.split, cfg.points, cfg.data_dir, cfg.device,
              cfg.seed, variance_aware=cfg.variance_aware)
    save_config(out, cfg)
    return Result("interpolate", out, res, {"result": out / "interpolation.json"}, cfg)


def analyze(config: AnalyzeConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """Disentanglement scores (MIG, SAP, DCI, probes, active units), the factor-by-latent MI heat map,
    traversals and prior samples of ``config.vae`` against the data's ground truth, into the folder ``out``."""
    from latentdyn.analysis.run import analyze as run

    cfg = configure(AnalyzeConfig, config, **overrides)
    out = Path(out)
    res = run(cfg.vae, cfg.data, out, cfg.split, cfg.data_dir, cfg.device, cfg.limit, cfg.seed, cfg.train_split, cfg.order,
              cfg.bins, cfg.dci_method, cfg.dci_estimators, traversal_codes=cfg.traversal_codes, steps=cfg.steps,
              span=cfg.span, traversal_scale=cfg.traversal_scale, fps=cfg.fps)
    save_config(out, cfg)
    return Result("analyze", out, res, {p.stem: p for p in sorted(out.glob("*.png"))} | {"analysis": out / "analysis.json"},
                  cfg)


def steer(config: SteerConfig | None = None, *, out: str | Path, **overrides) -> Result:
    """Edit codes along the fitted direction of ``config.factor`` by ``config.by``; the achieved change,
    its error and the leakage into the other factors, read from the decoded output, into ``out``."""
    from latentdyn.analysis.run import steer as run

    cfg = configure(SteerConfig, config, **overrides)
    out = Path(out)
    res = run(cfg.vae, cfg.data, out, cfg.factor, cfg.by, tuple(cfg.condition), cfg.split, cfg.data_dir, cfg.device,
              cfg.limit, cfg.seed, cfg.n, cfg.train_split, cfg.order)
    save_config(out, cfg)
    return Result("steer", out, res, {"steer": out / "steer.json", "figure": out / "steer.png"}, cfg)


def write_json(path: Path, data: dict) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    return path
