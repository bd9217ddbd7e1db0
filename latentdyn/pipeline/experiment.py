"""Scripted experiments: a TOML file of stages run in order into one run folder.

An experiment file has an ``[experiment]`` table (name, description, defaults), one table per
stage under ``[stages.NAME]`` in the order they run, and optional ``[profiles.NAME]`` tables
that overlay stage settings (``--profile demo`` applies a laptop budget). A stage's ``kind`` is
one of :data:`KINDS` (it defaults to the stage's name when that is a kind). Stages refer to
earlier stages by name: ``data = "scenes"`` uses the scene file that the stage ``scenes``
wrote, ``vae = "vae"`` the VAE it trained. A ``data`` that is not a stage name is a dataset name
or a scene-file path.

Each stage runs in ``RUN/NAME/`` and leaves ``RUN/NAME/stage.json``: its kind, resolved
settings, inputs, a content key and its status. The key hashes the kind, the settings (less
those that cannot change a result, such as ``device``) and the keys of the stages it reads
(or the sha256 of an outside file). A stage whose key is unchanged and that finished is
skipped, so running the same command again after a crash or Ctrl-C continues where it
stopped; training stages interrupted mid-way resume from their last checkpoint, and raising
``epochs`` of a finished training stage continues it instead of starting over. Changing a
setting reruns that stage and everything downstream of it, nothing else. See
docs/experiments.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from latentdyn import __version__
from latentdyn.core.config import apply_overrides, dumps_toml, find_toml, from_dict, load_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, sha256_file

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"  # the repository's experiments/
STAGE_FORMAT = "latentdyn-stage"
STAGE_VERSION = 1
NOT_IN_KEY = {"device", "workers", "fps", "compile"}  # settings that cannot change what a stage computes


# --------------------------------------------------------------------------------------------
# Stage settings (one dataclass per kind; every field is a TOML key of the stage's table)
# --------------------------------------------------------------------------------------------


@dataclass
class GenerateStage:
    """Synthetic scenes: writes ``scenes.h5`` and ``scenes.mp4`` (first sequences)."""

    scene: str = "light_ball"  # a name in scenes/ or a .toml path
    sequences: int = 1000
    length: int | None = None  # frames per sequence (default: the scene's)
    seed: int = 0
    split: str = "train=0.8,val=0.1,test=0.1"
    set: list[str] = field(default_factory=list)  # scene overrides, e.g. ["render.radius=2.0"]
    video_sequences: int = 4
    workers: int | None = None


@dataclass
class TrainVAEStage:
    """A beta-VAE run folder (see ``latentdyn train vae``)."""

    data: str = "fashion-mnist"  # a generate stage, a dataset name or a scene file
    latent_dim: int = 2
    beta: float = 1.0
    arch: str = "resnet"
    likelihood: str = "auto"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    binarize: str = "none"
    warmup_epochs: int = 0
    limit: int = 0
    seed: int = 0
    device: str = "auto"
    compile: bool = False


@dataclass
class EvaluateStage:
    """ELBO, IWAE log p(x), active units of a trained VAE: ``eval.json``."""

    vae: str = "vae"
    data: str | None = None  # default: the VAE's training data
    split: str = "test"
    iw_samples: int = 64
    limit: int = 0
    device: str = "auto"


@dataclass
class EncodeStage:
    """Posterior means and log-variances: ``latents.h5``."""

    vae: str = "vae"
    data: str | None = None  # default: the VAE's training data
    split: str | None = None  # datasets: train or test; scene files: every sequence
    device: str = "auto"


@dataclass
class TrainDynamicsStage:
    """A GRU predictor run folder (see ``latentdyn train dynamics``)."""

    latents: str = "encode"
    hidden: int = 128
    layers: int = 1
    use_logvar: bool = True
    residual: bool = True
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    context: int = 5
    horizon: int = 20
    open_loop_weight: float = 1.0
    windows: int = 4
    seed: int = 0
    device: str = "auto"
    compile: bool = False


@dataclass
class RolloutStage:
    """Open-loop rollouts scored against the truth and baselines, with videos."""

    vae: str = "vae"
    dynamics: str = "dynamics"
    data: str = "scenes"
    split: str = "test"
    context: int = 10
    horizon: int = 20
    sequences: int = 64
    samples: int = 0
    video_sequences: int = 4
    seed: int = 0
    fps: float = 8.0
    reference: dict[str, float] = field(default_factory=dict)  # published one-step errors shown beside ours
    reference_source: str = ""  # where the reference figures come from
    device: str = "auto"


@dataclass
class LatentMapStage:
    """Latent map (and manifold grid for 2-d latents) of a split."""

    vae: str = "vae"
    data: str | None = None
    split: str = "test"
    limit: int = 5000
    grid: int = 20
    device: str = "auto"


@dataclass
class InterpolateStage:
    """Geodesic against linear interpolation under the decoder's pull-back metric."""

    vae: str = "vae"
    data: str | None = None
    pairs: int = 8
    classes: str | None = None
    steps: int = 10
    points: int = 32
    split: str = "test"
    variance_aware: bool = False
    seed: int = 0
    device: str = "auto"


@dataclass
class CompareMapsStage:
    """One figure across datasets: final prediction matrix, latent map, manifold grid; and the
    training-flow animations side by side."""

    maps: list[str] = field(default_factory=list)  # latent-map stages, one row each
    title: str = ""
    fps: float = 2.0


@dataclass
class ReportStage:
    """The HTML report of the run folder (``report.html``)."""

    title: str = ""


KINDS: dict[str, type] = {
    "generate": GenerateStage, "train-vae": TrainVAEStage, "evaluate": EvaluateStage, "encode": EncodeStage,
    "train-dynamics": TrainDynamicsStage, "rollout": RolloutStage, "latent-map": LatentMapStage,
    "interpolate": InterpolateStage, "compare-maps": CompareMapsStage, "report": ReportStage,
}
# reference fields: the kinds of stage each may name
REFS: dict[str, tuple[str, ...]] = {
    "data": ("generate",), "vae": ("train-vae",), "dynamics": ("train-dynamics",), "latents": ("encode",),
    "maps": ("latent-map",),
}
TRAINING = {"train-vae", "train-dynamics"}


@dataclass
class ExperimentInfo:
    name: str = "experiment"
    description: str = ""
    device: str | None = None  # default device of every stage (a stage's own setting wins)
    data_dir: str | None = None  # where dataset files are (see docs/datasets.md)


@dataclass
class Stage:
    name: str
    kind: str
    settings: Any  # the kind's dataclass
    refs: dict[str, list[str]]  # field -> stage names it reads
    key: str = ""
    resume_key: str = ""  # the key less ``epochs``: a training stage with the same resume key can continue
    unavailable: str | None = None  # why it cannot run here (a missing dataset or scene file, its own or upstream)

    @property
    def upstream(self) -> list[str]:
        return [n for names in self.refs.values() for n in names]

    @property
    def partial_inputs(self) -> bool:
        """Whether it can run with some of its inputs unfinished: the report, which shows whatever
        earlier stages have finished (so --only and missing datasets do not hold it back)."""
        return self.kind == "report"


@dataclass
class Experiment:
    path: Path
    info: ExperimentInfo
    stages: list[Stage]
    resolved: dict  # the file's data after profile and overrides: saved in the run folder

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise LatentdynError(f"no stage {name!r} in {self.path}; stages: {', '.join(s.name for s in self.stages)}")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def find_experiment(name_or_path: str | Path) -> Path:
    """A .toml path, or a name in ./experiments/ or the repository's experiments/."""
    return find_toml(name_or_path, (Path.cwd() / "experiments", EXPERIMENTS_DIR), "experiment")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_experiment(path: str | Path, overrides: tuple[str, ...] | list[str] = (), profile: str | None = None) -> Experiment:
    """Read an experiment file, apply a profile and ``--set stage.key=value`` overrides, validate it."""
    path = find_experiment(path)
    data = load_toml(path)
    unknown = sorted(set(data) - {"experiment", "stages", "profiles"})
    if unknown:
        raise LatentdynError(f"{path}: unknown table [{unknown[0]}]; use [experiment], [stages.NAME] and [profiles.NAME]")
    stages_data = data.get("stages", {})
    if not isinstance(stages_data, dict) or not stages_data:
        raise LatentdynError(f"{path} has no stages; add tables such as [stages.vae] with kind = \"train-vae\"")
    profiles = data.get("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise LatentdynError(f"--profile {profile}: {path} defines {', '.join(sorted(profiles)) or 'no profiles'}")
        prof = profiles[profile]
        bad = sorted(set(prof) - set(stages_data) - {"experiment"})
        if bad:
            raise LatentdynError(f"{path}: profile {profile!r} names stage {bad[0]!r}, which does not exist")
        stages_data = _merge(stages_data, {k: v for k, v in prof.items() if k != "experiment"})
        data = {**data, "experiment": _merge(data.get("experiment", {}), prof.get("experiment", {}))}
    # --set NAME.key=value addresses stage NAME (or the [experiment] table)
    tree = {"experiment": data.get("experiment", {}), **stages_data}
    for item in overrides:
        head = item.partition("=")[0].strip().split(".")[0]
        if head not in tree:
            raise LatentdynError(f"--set {item!r}: no stage {head!r}; stages: {', '.join(stages_data)} (or experiment.KEY)")
    tree = apply_overrides(tree, list(overrides))
    info = from_dict(ExperimentInfo, tree.pop("experiment"), "experiment")
    stages = []
    for name, table in tree.items():
        if not isinstance(table, dict):
            raise LatentdynError(f"{path}: stages.{name} must be a table of settings")
        table = dict(table)
        kind = table.pop("kind", name if name in KINDS else None)
        if kind not in KINDS:
            raise LatentdynError(f"stage {name!r}: kind = {kind!r}; use one of {', '.join(KINDS)}")
        if info.device is not None and "device" not in table and "device" in {f.name for f in dataclasses.fields(KINDS[kind])}:
            table["device"] = info.device
        settings = from_dict(KINDS[kind], table, f"stages.{name}")
        stages.append(Stage(name, kind, settings, {}))
    _link(stages, path)
    resolved = {"experiment": to_dict(info), "stages": {s.name: {"kind": s.kind, **to_dict(s.settings)} for s in stages}}
    return Experiment(path, info, stages, resolved)


def _link(stages: list[Stage], path: Path) -> None:
    """Find each stage's references to earlier stages and check their kinds and order."""
    seen: dict[str, Stage] = {}
    for s in stages:
        for fname, kinds in REFS.items():
            if not hasattr(s.settings, fname):
                continue
            value = getattr(s.settings, fname)
            names = value if isinstance(value, list) else [value]
            refs = []
            for v in names:
                if v is None:
                    continue
                if v in seen:
                    if seen[v].kind not in kinds:
                        raise LatentdynError(f"stage {s.name!r}: {fname} = {v!r} is a {seen[v].kind} stage; it must be {' or '.join(kinds)}")
                    refs.append(v)
                elif any(o.name == v for o in stages):
                    raise LatentdynError(f"stage {s.name!r} reads stage {v!r}, which comes after it in {path}; move it earlier")
                elif fname != "data":
                    raise LatentdynError(f"stage {s.name!r}: {fname} = {v!r} names no earlier stage; "
                                         f"stages so far: {', '.join(seen) or 'none'}")
            if refs:
                s.refs[fname] = refs
        if s.kind == "report":
            s.refs["stages"] = list(seen)  # the report reads everything before it
        seen[s.name] = s


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------


def _external_fingerprint(value: str, data_dir: str | None) -> str:
    """What an outside input is, by content: a dataset's files or a scene file's sha256."""
    from latentdyn import datasets as ds

    if not ds.is_scene_source(value):
        files = ds.require(value, data_dir)  # unknown or missing datasets: one-line errors
        return "dataset:" + value + ":" + ",".join(_file_digest(f) for f in files)
    if not Path(value).is_file():
        raise LatentdynError(f"scene file {value} does not exist; generate it first or name a generate stage")
    return "file:" + _file_digest(Path(value))


_DIGESTS: dict[tuple, str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _DIGESTS:
        _DIGESTS[k] = sha256_file(path)
    return _DIGESTS[k]


def compute_keys(exp: Experiment) -> None:
    """Fill every stage's content key from its settings and its inputs' keys or fingerprints.

    A stage whose outside input is missing (a dataset not downloaded, a scene file not there), or
    that reads such a stage, gets ``unavailable`` set to the reason: the other stages of the file
    still plan and run (``--only``), and running it fails with that reason before any work.
    """
    keys: dict[str, str] = {}
    by_name = {s.name: s for s in exp.stages}
    for s in exp.stages:
        settings = {k: v for k, v in to_dict(s.settings).items() if k not in NOT_IN_KEY}
        s.unavailable = None if s.partial_inputs else \
            next((by_name[n].unavailable for n in s.upstream if by_name[n].unavailable), None)
        inputs = {}
        for fname, names in s.refs.items():
            inputs[fname] = [keys[n] for n in names]
        data = getattr(s.settings, "data", None)
        if data is not None and "data" not in s.refs:
            try:
                inputs["data"] = [_external_fingerprint(data, exp.info.data_dir)]
            except LatentdynError as e:
                inputs["data"] = ["unavailable:" + data]
                s.unavailable = str(e)
        payload = {"kind": s.kind, "settings": settings, "inputs": inputs, "data_dir": exp.info.data_dir}
        s.key = _digest(payload)
        if s.kind in TRAINING:
            s.resume_key = _digest({**payload, "settings": {k: v for k, v in settings.items() if k != "epochs"}})
        else:
            s.resume_key = s.key
        keys[s.name] = s.key


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def stage_dir(run_dir: Path, name: str) -> Path:
    return run_dir / name


def read_record(run_dir: Path, name: str) -> dict | None:
    p = stage_dir(run_dir, name) / "stage.json"
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None  # a damaged record means: redo the stage
    return rec if isinstance(rec, dict) and rec.get("format") == STAGE_FORMAT else None


def _write_record(run_dir: Path, stage: Stage, status: str, **extra) -> dict:
    rec = {"format": STAGE_FORMAT, "format_version": STAGE_VERSION, "name": stage.name, "kind": stage.kind,
           "status": status, "key": stage.key, "resume_key": stage.resume_key, "settings": to_dict(stage.settings),
           "reads": stage.refs, "latentdyn": __version__, **extra}
    with atomic_path(stage_dir(run_dir, stage.name) / "stage.json") as tmp:
        tmp.write_text(json.dumps(rec, indent=2, allow_nan=False) + "\n")
    return rec


def outputs_of(run_dir: Path, stage: Stage) -> dict[str, Path]:
    """The paths a finished stage leaves (what downstream stages read)."""
    d = stage_dir(run_dir, stage.name)
    return {
        "generate": {"scenes": d / "scenes.h5"},
        "train-vae": {"run": d, "checkpoint": d / "best.pt"},
        "evaluate": {"eval": d / "eval.json"},
        "encode": {"latents": d / "latents.h5"},
        "train-dynamics": {"run": d, "checkpoint": d / "best.pt"},
        "rollout": {"metrics": d / "metrics.json"},
        "latent-map": {"arrays": d / "latent_map.npz"},
        "interpolate": {"result": d / "interpolation.json"},
        "compare-maps": {"figure": d / "compare.png"},
        "report": {"report": run_dir / "report.html"},
    }[stage.kind]


def plan(exp: Experiment, run_dir: Path, only: list[str] | None = None) -> list[tuple[Stage, str]]:
    """What running would do to each stage: "skip", "resume", "run" (or, outside --only, "keep" a
    finished stage or leave a "missing" one). A stage that would run or resume but cannot here
    (``Stage.unavailable``) is refused by :func:`run_experiment` before any work."""
    compute_keys(exp)
    actions = []
    status: dict[str, str] = {}
    for s in exp.stages:
        if s.partial_inputs:  # its key also says which inputs it lacks, so it reruns when they finish
            lacking = [n for n in s.upstream if status[n] == "missing"]
            if lacking:
                s.key = _digest({"key": s.key, "lacking": lacking})
        rec = read_record(run_dir, s.name)
        done = rec is not None and rec.get("status") == "done" and rec.get("key") == s.key and \
            all(p.exists() for p in outputs_of(run_dir, s).values())
        if only is not None and s.name not in only:
            actions.append((s, "keep" if done else "missing"))
        elif done:
            actions.append((s, "skip"))
        elif rec is not None and rec.get("resume_key") == s.resume_key and s.kind in TRAINING and \
                (stage_dir(run_dir, s.name) / "last.pt").exists() and \
                _trained_epochs(stage_dir(run_dir, s.name)) <= s.settings.epochs:
            actions.append((s, "resume"))  # cut short, or more epochs asked of a finished run
        else:
            actions.append((s, "run"))
        status[s.name] = actions[-1][1]
    if only is not None:
        for s, a in actions:
            if s.name in only and not s.partial_inputs:
                for up in s.upstream:
                    if status[up] == "missing":
                        raise LatentdynError(f"--only {s.name}: it reads stage {up!r}, which has not finished with these "
                                             f"settings in {run_dir}; run without --only first (or add --only {up})")
    return actions


def _trained_epochs(d: Path) -> int:
    """The last epoch logged in a training stage's metrics.jsonl (0 if none)."""
    try:
        lines = (d / "metrics.jsonl").read_text().splitlines()
        return int(json.loads(lines[-1])["epoch"]) if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def _dataset_of(s: Stage) -> str | None:
    """The dataset name a stage reads directly (not a stage's output, not a scene file), if any."""
    from latentdyn import datasets as ds

    data = getattr(s.settings, "data", None)
    return None if data is None or "data" in s.refs or ds.is_scene_source(data) else data


def check_runnable(actions: list[tuple[Stage, str]]) -> None:
    """Fail before any work if a stage that would run needs a dataset or file that is not here."""
    for s, action in actions:
        if action in ("run", "resume") and s.unavailable is not None:
            raise LatentdynError(f"stage {s.name!r}: {s.unavailable}")


@contextlib.contextmanager
def _lock(run_dir: Path):
    """One ``latentdyn run`` per run folder at a time."""
    import fcntl

    f = open(run_dir / ".lock", "a")  # "a": never truncates, so the mtime of a finished run stays
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LatentdynError(f"another `latentdyn run` is using {run_dir}; wait for it or choose another --out") from None
        yield
    finally:
        f.close()


class RunLog:
    """Stage lines to the terminal and to RUN/run.log."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        with open(self.path, "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        if self.echo:
            self.echo(msg)


def run_experiment(path: str | Path, out: str | Path | None = None, overrides: tuple[str, ...] | list[str] = (),
                   only: list[str] | None = None, profile: str | None = None, progress: bool | None = None,
                   echo: Callable[[str], None] | None = print, fetch: bool = False) -> dict:
    """Run (or continue) an experiment into ``out``; returns {"run_dir", "actions", "report"}."""
    exp = load_experiment(path, overrides, profile)
    if only is not None:
        for name in only:
            exp.stage(name)  # unknown names: one-line error
    run_dir = Path(out) if out is not None else Path("runs") / exp.info.name
    if run_dir.exists() and not run_dir.is_dir():
        raise LatentdynError(f"--out {run_dir} is a file; give a folder")
    if fetch:
        _fetch_missing(exp, progress)
    check_runnable(plan(exp, run_dir, only))  # refuse a missing input or an impossible --only before creating anything
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentdynError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    with _lock(run_dir):
        actions = plan(exp, run_dir, only)
        check_runnable(actions)
        with atomic_path(run_dir / "experiment.toml") as tmp:
            tmp.write_text(f"# resolved from {exp.path}" + (f", profile {profile}" if profile else "")
                           + "".join(f"\n# --set {o}" for o in overrides) + "\n" + dumps_toml(exp.resolved))
        log = RunLog(run_dir / "run.log", echo)
        todo = [s for s, a in actions if a in ("run", "resume")]
        log(f"experiment {exp.info.name} ({exp.path}) -> {run_dir}: {len(todo)} of {len(actions)} stages to run")
        for i, (s, action) in enumerate(actions, 1):
            head = f"[{i}/{len(actions)}] {s.name} ({s.kind})"
            if action in ("skip", "keep", "missing"):
                if action == "skip":
                    log(f"{head}: unchanged, skipped")
                continue
            d = stage_dir(run_dir, s.name)
            if action == "run" and d.exists():
                shutil.rmtree(d)  # settings or inputs changed (or a non-resumable stage was cut short)
            d.mkdir(parents=True, exist_ok=True)
            log(f"{head}: {'resuming' if action == 'resume' else 'running'}")
            t0 = time.perf_counter()
            _write_record(run_dir, s, "running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
            try:
                summary = RUNNERS[s.kind](exp, s, run_dir, action == "resume", progress)
            except LatentdynError as e:
                log(f"{head}: failed: {e}")
                raise LatentdynError(f"stage {s.name!r}: {e}") from None
            seconds = time.perf_counter() - t0
            _write_record(run_dir, s, "done", seconds=seconds, summary=summary,
                          finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
            log(f"{head}: done in {seconds:.1f} s" + (f"; {_fmt_summary(summary)}" if summary else ""))
    report = run_dir / "report.html"
    current = any(s.kind == "report" and a in ("run", "resume", "skip") for s, a in actions)  # not one left out by --only
    return {"run_dir": run_dir, "actions": [(s.name, a) for s, a in actions],
            "report": report if current and report.exists() else None}


def _fmt_summary(summary: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())


def _fetch_missing(exp: Experiment, progress) -> None:
    from latentdyn import datasets as ds

    for s in exp.stages:
        if (name := _dataset_of(s)) is not None and ds.source_files(name, exp.info.data_dir) is None:
            ds.fetch(name, exp.info.data_dir, progress)


# --------------------------------------------------------------------------------------------
# One runner per kind: (experiment, stage, run dir, resume, progress) -> summary dict
# --------------------------------------------------------------------------------------------


def _ref_path(exp: Experiment, run_dir: Path, stage: Stage, fname: str, what: str) -> str | None:
    """The path that field ``fname`` refers to: an earlier stage's output, or the value itself."""
    value = getattr(stage.settings, fname)
    if fname in stage.refs:
        return str(outputs_of(run_dir, exp.stage(value))[what])
    return value


def _run_generate(exp, s, run_dir, resume, progress):
    from latentdyn.scenes import generate as scenes
    from latentdyn.viz.video import scene_video

    c: GenerateStage = s.settings
    overrides = list(c.set) + ([f"scene.length={c.length}"] if c.length is not None else [])
    config = scenes.load_scene(c.scene, overrides)
    out = outputs_of(run_dir, s)["scenes"]
    scenes.generate(config, out, c.sequences, seed=c.seed, splits=scenes.parse_splits(c.split), workers=c.workers,
                    progress=progress)
    if c.video_sequences:
        shown = list(range(min(c.video_sequences, c.sequences)))
        for suffix in (".mp4", ".gif"):
            scene_video(out, out.with_suffix(suffix), shown)
    return {"sequences": c.sequences, "frames": c.sequences * config.scene.length}


def _run_train_vae(exp, s, run_dir, resume, progress):
    from latentdyn.vae.model import VAEConfig
    from latentdyn.vae.train import DataConfig, OptimConfig, VAERunConfig, resolve_likelihood, train_vae

    c: TrainVAEStage = s.settings
    source = _ref_path(exp, run_dir, s, "data", "scenes")
    cfg = VAERunConfig(
        model=VAEConfig(arch=c.arch, latent_dim=c.latent_dim, beta=c.beta, likelihood=resolve_likelihood(source, c.likelihood)),
        data=DataConfig(source=source, data_dir=exp.info.data_dir, binarize=c.binarize, limit=c.limit),
        train=OptimConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, warmup_epochs=c.warmup_epochs, seed=c.seed,
                          device=c.device, compile=c.compile),
    )
    row = train_vae(cfg, stage_dir(run_dir, s.name), resume=resume, progress=progress)
    return {k: row[k] for k in ("epoch", "train_elbo", "val_elbo") if k in row}


def _vae_source(exp, s, run_dir) -> str:
    """What a stage that reads a VAE works on: its own ``data``, else the VAE's training data."""
    if s.settings.data is None:
        return _ref_path(exp, run_dir, exp.stage(s.settings.vae), "data", "scenes")
    return _ref_path(exp, run_dir, s, "data", "scenes")


def _run_evaluate(exp, s, run_dir, resume, progress):
    from latentdyn.vae.evaluate import evaluate_run

    c: EvaluateStage = s.settings
    vae = str(outputs_of(run_dir, exp.stage(c.vae))["run"])
    res = evaluate_run(vae, _vae_source(exp, s, run_dir), c.split, c.iw_samples, exp.info.data_dir, c.device, c.limit,
                       progress=progress, out=outputs_of(run_dir, s)["eval"])  # not into the VAE stage's folder
    return {k: res[k] for k in ("elbo", "log_px_iw", "active_units") if isinstance(res.get(k), (int, float))}


def _run_encode(exp, s, run_dir, resume, progress):
    from latentdyn.vae.encode import encode

    c: EncodeStage = s.settings
    vae = outputs_of(run_dir, exp.stage(c.vae))["run"]
    encode(vae, _vae_source(exp, s, run_dir), outputs_of(run_dir, s)["latents"], c.split, c.device, exp.info.data_dir, progress=progress)
    return {}


def _run_train_dynamics(exp, s, run_dir, resume, progress):
    from latentdyn.dynamics.model import DynamicsConfig
    from latentdyn.dynamics.train import DynamicsData, DynamicsRunConfig, DynamicsTrain, train_dynamics

    c: TrainDynamicsStage = s.settings
    cfg = DynamicsRunConfig(
        model=DynamicsConfig(hidden=c.hidden, layers=c.layers, use_logvar=c.use_logvar, residual=c.residual),
        data=DynamicsData(latents=_ref_path(exp, run_dir, s, "latents", "latents")),
        train=DynamicsTrain(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, context=c.context, horizon=c.horizon,
                            open_loop_weight=c.open_loop_weight, windows_per_sequence=c.windows, seed=c.seed, device=c.device,
                            compile=c.compile),
    )
    row = train_dynamics(cfg, stage_dir(run_dir, s.name), resume=resume, progress=progress)
    return {k: row[k] for k in ("epoch", "train_loss", "val_loss") if k in row}


def _run_rollout(exp, s, run_dir, resume, progress):
    from latentdyn.dynamics.rollout import RolloutConfig, run_rollout

    c: RolloutStage = s.settings
    cfg = RolloutConfig(split=c.split, context=c.context, horizon=c.horizon, sequences=c.sequences, samples=c.samples,
                        video_sequences=c.video_sequences, seed=c.seed, device=c.device, fps=c.fps)
    res = run_rollout(outputs_of(run_dir, exp.stage(c.vae))["run"], outputs_of(run_dir, exp.stage(c.dynamics))["run"],
                      _ref_path(exp, run_dir, s, "data", "scenes"), stage_dir(run_dir, s.name), cfg)
    summary = {f"one_step_{k}": v for k, v in res["one_step_se_per_frame"].items() if k in ("model", "linear_pixels", "copy_last")}
    pos = res["open_loop"]["model"]["summary"].get("position_error_px")
    if pos is not None:
        summary["position_error_px"] = pos
    return summary


def _run_latent_map(exp, s, run_dir, resume, progress):
    from latentdyn.geometry.latent_map import latent_map

    c: LatentMapStage = s.settings
    res = latent_map(outputs_of(run_dir, exp.stage(c.vae))["run"], _vae_source(exp, s, run_dir), stage_dir(run_dir, s.name),
                     c.split, exp.info.data_dir, c.device, c.limit, c.grid)
    return {"latent_dim": res["latent_dim"]}


def _run_interpolate(exp, s, run_dir, resume, progress):
    from latentdyn.geometry.interpolate import interpolate

    c: InterpolateStage = s.settings
    res = interpolate(outputs_of(run_dir, exp.stage(c.vae))["run"], _vae_source(exp, s, run_dir), stage_dir(run_dir, s.name),
                      c.pairs, c.classes, c.steps, c.split, c.points, exp.info.data_dir, c.device, c.seed,
                      variance_aware=c.variance_aware)
    return {"median_length_ratio": res["length_ratio"]["median"], "seconds": res["seconds"]}


def _run_compare_maps(exp, s, run_dir, resume, progress):
    from latentdyn.pipeline.report import compare_maps

    c: CompareMapsStage = s.settings
    rows = []
    sources = [exp.stage(exp.stage(n).settings.vae).settings.data for n in c.maps]
    for name in c.maps:
        m = exp.stage(name)
        vae_stage = exp.stage(m.settings.vae)
        data = vae_stage.settings.data
        label = data if sources.count(data) == 1 else f"{data} ({vae_stage.name})"  # tell apart runs on one dataset
        rows.append({"label": label, "vae": stage_dir(run_dir, vae_stage.name),
                     "map": stage_dir(run_dir, name)})
    paths = compare_maps(rows, stage_dir(run_dir, s.name), c.title or exp.info.description, c.fps)
    return {"rows": len(rows), "files": len(paths)}


def _run_report(exp, s, run_dir, resume, progress):
    from latentdyn.pipeline.report import write_report

    path = write_report(run_dir, title=s.settings.title or None)
    return {"report": str(path)}


RUNNERS: dict[str, Callable] = {
    "generate": _run_generate, "train-vae": _run_train_vae, "evaluate": _run_evaluate, "encode": _run_encode,
    "train-dynamics": _run_train_dynamics, "rollout": _run_rollout, "latent-map": _run_latent_map,
    "interpolate": _run_interpolate, "compare-maps": _run_compare_maps, "report": _run_report,
}


def run_summary(run_dir: str | Path) -> list[dict]:
    """The stage records of a run folder, in the order of its experiment.toml (for reports)."""
    run_dir = Path(run_dir)
    cfg = run_dir / "experiment.toml"
    if not cfg.is_file():
        return []
    names = list(load_toml(cfg).get("stages", {}))
    return [r for n in names if (r := read_record(run_dir, n)) is not None]
