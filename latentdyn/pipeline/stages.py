"""The stage kinds of an experiment file: each kind's config, inputs, outputs and runner.

A stage's table in an experiment file holds the keys of its kind's config dataclass (the same
dataclass the CLI command and the Python API take, see ``latentdyn.core.options``), plus
``kind``. Input fields (``data``, ``vae``, ``dynamics``, ``latents``, ``init``, ``maps``, ``budget_from``) name
earlier stages; before the stage runs they are replaced by those stages' outputs (a list field by
a list of them), so the runner calls the Python API (``latentdyn.api``) with a config that holds
plain paths, and saves it as the stage folder's ``config.toml``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from latentdyn import api
from latentdyn.analysis.config import AnalyzeConfig, SteerConfig
from latentdyn.core.options import option
from latentdyn.dynamics.config import RolloutConfig, TrainConvLSTMConfig, TrainDynamicsConfig
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig
from latentdyn.latents.config import EncodeStatesConfig
from latentdyn.scenes.config import GenerateConfig
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, TrainVAEConfig

STAGE_VERSION = 2  # the stage folder's format; part of every cache key (2: flat stage configs)


@dataclass
class SceneFileConfig:
    """An existing scene file as an experiment's scenes, instead of generating them (``kind = "file"``)."""

    path: str = option("", "A scene file in the documented layout (docs/formats.md), e.g. one made by another generator "
                       "or by `latentdyn import-video`.", metavar="FILE")


@dataclass
class CompareMapsConfig:
    """One figure across datasets: last prediction matrix, latent map, manifold grid; and the training flows."""

    maps: list[str] = option([], "latent-map stages, one row each.")
    title: str = option("", "Figure title (default: the experiment's description).")
    fps: float = option(2.0, "Frames per second of the stacked training flows.", minimum=0.1, in_key=False)


@dataclass
class SweepSummaryConfig:
    """A sweep gathered: disentanglement, reconstruction and rollout error of every clone (``kind = "sweep-summary"``)."""

    analyze: list[str] = option([], "analyze stages of the sweep (a swept name reads every clone), one run each.")
    rollout: list[str] = option([], "rollout stages of the sweep, matched to the analyze stages by the VAE they read.")
    x: str = option("beta", "The swept setting on the x axis (a sweep point's key, else the VAE's setting).")
    metrics: list[str] = option(["mig", "dci_disentanglement", "probe_r2"],
                                "Scores drawn, one row of panels each: mig, sap, dci_disentanglement, dci_completeness, "
                                "dci_informativeness, probe_r2.")
    title: str = option("", "Figure title (default: the stage's name).")


@dataclass
class ReportConfig:
    """The HTML report of the run folder (``report.html``)."""

    title: str = option("", "Page title (default: the experiment's name).")


@dataclass
class ExperimentInfo:
    """The ``[experiment]`` table."""

    name: str = option("experiment", "Name of the study; the default run folder is runs/NAME.")
    description: str = option("", "One line for people.")
    device: str | None = option(None, "Default device of every stage (a stage's own setting wins).", in_key=False)
    data_dir: str | None = option(None, "Where the dataset files are (see docs/datasets.md).", in_key=False)


@dataclass(frozen=True)
class Kind:
    """A stage kind: its config, what its input fields may name, what it leaves, how it runs."""

    config: type
    outputs: dict[str, str]  # output name -> path inside the stage folder ("" is the folder itself)
    refs: dict[str, tuple[str, ...]]  # input field -> the kinds of stage it may name
    run: Callable[..., dict]  # (config with paths, stage folder, resume, progress, verbose) -> summary
    training: bool = False
    partial_inputs: bool = False  # runs with some inputs unfinished (the report shows what has finished)


def _pick(d: dict, keys: tuple[str, ...]) -> dict:
    return {k: d[k] for k in keys if isinstance(d.get(k), (int, float, str))}


def _generate(cfg: GenerateConfig, d: Path, resume, progress, verbose) -> dict:
    videos = [d / "scenes.mp4", d / "scenes.gif"] if cfg.video_sequences else None
    res = api.generate(cfg, out=d / "scenes.h5", video=videos, progress=progress)
    return _pick(res.metrics, ("sequences", "frames"))


def _scene_file(cfg: SceneFileConfig, d: Path, resume, progress, verbose) -> dict:
    """Check the file and link it as the stage's scenes.h5 (the stage's key is the file's sha256)."""
    import os

    from latentdyn.core.errors import LatentdynError
    from latentdyn.scenes.file import open_scenes

    src = Path(cfg.path).resolve()
    if not cfg.path or not src.is_file():
        raise LatentdynError(f"path = {cfg.path!r}: no such scene file; give an existing .h5 file")
    with open_scenes(src) as sf:  # a file in another layout: one-line error naming what is wrong
        summary = {"sequences": sf.n_sequences, "frames": sf.n_sequences * sf.length, "splits": ",".join(sf.splits)}
    link = d / "scenes.h5"
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(src, link)
    return summary


def _train_vae(cfg: TrainVAEConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.train_vae(cfg, out=d, resume=resume, progress=progress, verbose=verbose)
    return _pick(res.metrics, ("epoch", "train_elbo", "val_elbo"))


def _evaluate(cfg: EvaluateConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.evaluate(cfg, out=d / "eval.json", progress=progress)
    return _pick(res.metrics, ("elbo", "log_px_iw", "active_units"))


def _encode(cfg: EncodeConfig, d: Path, resume, progress, verbose) -> dict:
    api.encode(cfg, out=d / "latents.h5", progress=progress)
    return {}


def _encode_states(cfg: EncodeStatesConfig, d: Path, resume, progress, verbose) -> dict:
    api.encode_states(cfg, out=d / "latents.h5")
    return {}


def _train_dynamics(cfg: TrainDynamicsConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.train_dynamics(cfg, out=d, resume=resume, progress=progress, verbose=verbose)
    return _pick(res.metrics, ("epoch", "train_loss", "val_loss"))


def _train_convlstm(cfg: TrainConvLSTMConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.train_convlstm(cfg, out=d, resume=resume, progress=progress, verbose=verbose)
    return _pick({**res.metrics, **json.loads((d / "budget.json").read_text())},
                 ("epoch", "val_se_per_frame", "trained_seconds", "budget_seconds"))


def _rollout(cfg: RolloutConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.rollout(cfg, out=d, progress=progress)
    summary = {f"one_step_{k}": v for k, v in res.metrics["one_step_se_per_frame"].items()
               if k in ("model", "linear_pixels", "copy_last")}
    model = res.metrics["open_loop"]["model"]["summary"]
    summary.update({f"open_loop_{k}": model[k] for k in ("se_per_frame", "ae_per_frame") if k in model})
    if "convlstm" in res.metrics["open_loop"]:  # the same-budget pixel-space yardstick
        summary["open_loop_se_per_frame_convlstm"] = res.metrics["open_loop"]["convlstm"]["summary"]["se_per_frame"]
    pos = model.get("position_error_px")
    if pos is not None:
        summary["position_error_px"] = pos
    return summary


def _latent_map(cfg: LatentMapConfig, d: Path, resume, progress, verbose) -> dict:
    return api.latent_map(cfg, out=d).metrics


def _interpolate(cfg: InterpolateConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.interpolate(cfg, out=d)
    return {"median_length_ratio": res.metrics["length_ratio"]["median"], "seconds": res.metrics["seconds"]}


def _analyze(cfg: AnalyzeConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.analyze(cfg, out=d).metrics
    fit = res["fit train, score test"]
    out = {"mig": res["test"]["mig"], "dci_completeness": fit["dci"]["completeness"],
           "active_units": res["test"]["active_units"]}
    if fit["dci"].get("disentanglement") is not None:
        out["dci_disentanglement"] = fit["dci"]["disentanglement"]
    return out


def _steer(cfg: SteerConfig, d: Path, resume, progress, verbose) -> dict:
    res = api.steer(cfg, out=d).metrics
    block = res.get("conditional") or res.get("unconditional", {})  # the edit asked for: conditional when given
    numeric = [k for k, v in block.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    wanted = [k for k in ("asked", "achieved_mean", "abs_error_mean", "leakage_mean_abs") if k in numeric]
    out = _pick(block, tuple(wanted or numeric[:3]))
    if res.get("conditional"):
        out["conditional"] = True
    return out


KINDS: dict[str, Kind] = {
    "generate": Kind(GenerateConfig, {"scenes": "scenes.h5"}, {}, _generate),
    "file": Kind(SceneFileConfig, {"scenes": "scenes.h5"}, {}, _scene_file),
    "train-vae": Kind(TrainVAEConfig, {"run": "", "checkpoint": "best.pt"}, {"data": ("generate", "file")}, _train_vae,
                      training=True),
    "evaluate": Kind(EvaluateConfig, {"eval": "eval.json"}, {"data": ("generate", "file"), "vae": ("train-vae",)}, _evaluate),
    "encode": Kind(EncodeConfig, {"latents": "latents.h5"}, {"data": ("generate", "file"), "vae": ("train-vae",)}, _encode),
    "encode-states": Kind(EncodeStatesConfig, {"latents": "latents.h5"}, {"data": ("generate", "file")}, _encode_states),
    "train-dynamics": Kind(TrainDynamicsConfig, {"run": "", "checkpoint": "best.pt"},
                           {"latents": ("encode", "encode-states"), "vae": ("train-vae",), "init": ("train-dynamics",)},
                           _train_dynamics, training=True),
    "train-convlstm": Kind(TrainConvLSTMConfig, {"run": "", "checkpoint": "best.pt"},
                           {"data": ("generate", "file"), "budget_from": ("train-vae", "train-dynamics")}, _train_convlstm,
                           training=True),
    "rollout": Kind(RolloutConfig, {"metrics": "metrics.json"},
                    {"data": ("generate", "file"), "vae": ("train-vae",), "dynamics": ("train-dynamics",),
                     "oracle": ("train-dynamics",), "pixel_baseline": ("train-convlstm",)}, _rollout),
    "latent-map": Kind(LatentMapConfig, {"arrays": "latent_map.npz"}, {"data": ("generate", "file"), "vae": ("train-vae",)},
                       _latent_map),
    "interpolate": Kind(InterpolateConfig, {"result": "interpolation.json"},
                        {"data": ("generate", "file"), "vae": ("train-vae",)}, _interpolate),
    "analyze": Kind(AnalyzeConfig, {"analysis": "analysis.json"}, {"data": ("generate", "file"), "vae": ("train-vae",)},
                    _analyze),
    "steer": Kind(SteerConfig, {"steer": "steer.json"}, {"data": ("generate", "file"), "vae": ("train-vae",)}, _steer),
    "compare-maps": Kind(CompareMapsConfig, {"figure": "compare.png"}, {"maps": ("latent-map",)}, None),  # type: ignore[arg-type]
    "sweep-summary": Kind(SweepSummaryConfig, {"summary": "summary.json", "figure": "sweep.png"},
                          {"analyze": ("analyze",), "rollout": ("rollout",)}, None),  # type: ignore[arg-type]
    "report": Kind(ReportConfig, {"report": "../report.html"}, {}, None, partial_inputs=True),  # type: ignore[arg-type]
}
OUTPUT_OF_KIND = {"generate": "scenes", "file": "scenes", "train-vae": "run", "train-dynamics": "run", "encode": "latents",
                  "encode-states": "latents", "train-convlstm": "run"}  # what an input field that names a stage of this kind receives


def with_inputs(cfg: Any, paths: dict[str, Any]) -> Any:
    """A copy of a stage config whose input fields hold paths instead of stage names."""
    return dataclasses.replace(cfg, **paths)
