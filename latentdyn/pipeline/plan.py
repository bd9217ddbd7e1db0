"""The plan of an experiment file: its stages, their links, their content keys, what to do.

An experiment file has an ``[experiment]`` table (name, description, defaults), one table per
stage under ``[stages.NAME]`` in the order they run, an optional ``[sweep]`` table (one setting
over several values and seeds: the stages it touches are cloned per point, ``pipeline.sweep``)
and optional ``[profiles.NAME]`` tables that overlay stage settings (``--profile demo`` applies
a laptop budget; ``[profiles.NAME.sweep]`` overlays the sweep). A stage's ``kind`` is
one of ``latentdyn.pipeline.stages.KINDS`` (it defaults to the stage's name when that is a
kind). Stages refer to earlier stages by name: ``data = "scenes"`` uses the scene file that the
stage ``scenes`` wrote, ``vae = "vae"`` the VAE it trained. A ``data`` that is not a stage name
is a dataset name or a scene-file path.

A stage's content key hashes its kind, its settings (less those that cannot change a result,
such as ``device``: ``option(in_key=False)``), the keys of the stages it reads (or the sha256 of
an outside file), the latentdyn version and the stage format version. See docs/experiments.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latentdyn import api
from latentdyn.core.version import __version__
from latentdyn.core.config import apply_overrides, find_toml, from_dict, load_toml, to_dict  # noqa: F401 (find_toml: cli)
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import sha256_file
from latentdyn.core.options import closest, key_settings, resumable
from latentdyn.pipeline.runfolder import read_record, stage_dir, outputs_of, trained_epochs
from latentdyn.pipeline.stages import KINDS, STAGE_VERSION, ExperimentInfo
from latentdyn.pipeline.sweep import expand as expand_sweep
from latentdyn.core.resources import experiment_folders


@dataclass
class Stage:
    name: str
    kind: str
    settings: Any  # the kind's config dataclass, input fields holding stage names
    refs: dict[str, list[str]]  # field -> stage names it reads
    key: str = ""
    resume_key: str = ""  # the key less ``epochs``: a training stage with the same resume key can continue
    full_key: str = ""  # the key over every in_key setting, key_if_set ones included (as written before they were)
    unavailable: str | None = None  # why it cannot run here (a missing dataset or scene file, its own or upstream)
    point: dict = dataclasses.field(default_factory=dict)  # a sweep clone's {key: value[, "seed": s]} (pipeline.sweep)

    @property
    def upstream(self) -> list[str]:
        return [n for names in self.refs.values() for n in names]

    @property
    def partial_inputs(self) -> bool:
        """Whether it can run with some of its inputs unfinished: the report, which shows whatever
        earlier stages have finished (so --only and missing datasets do not hold it back)."""
        return KINDS[self.kind].partial_inputs


@dataclass
class Experiment:
    path: Path
    info: ExperimentInfo
    stages: list[Stage]
    resolved: dict  # the file's data after profile and overrides: saved in the run folder
    sweep: dict | None = None  # the [sweep] table after profile and overrides (its clones are in ``stages``)

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        names = [s.name for s in self.stages]
        raise LatentdynError(f"no stage {name!r} in {self.path}{closest(name, names)}; stages: {', '.join(names)}")


def find_experiment(name_or_path: str | Path) -> Path:
    """A .toml path, or a name in ./experiments/ or the experiments shipped with latentdyn."""
    return find_toml(name_or_path, experiment_folders(), "experiment")


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_experiment(path: str | Path, overrides: tuple[str, ...] | list[str] = (), profile: str | None = None) -> Experiment:
    """Read an experiment file, apply a profile and ``--set stage.key=value`` overrides, validate it."""
    path = find_experiment(path)
    data = load_toml(path)
    unknown = sorted(set(data) - {"experiment", "stages", "profiles", "sweep"})
    if unknown:
        raise LatentdynError(f"{path}: unknown table [{unknown[0]}]; use [experiment], [stages.NAME], [sweep] and [profiles.NAME]")
    stages_data = data.get("stages", {})
    if not isinstance(stages_data, dict) or not stages_data:
        raise LatentdynError(f"{path} has no stages; add tables such as [stages.vae] with kind = \"train-vae\"")
    profiles = data.get("profiles", {})
    if profile is not None:
        if profile not in profiles:
            raise LatentdynError(f"--profile {profile}: {path} defines {', '.join(sorted(profiles)) or 'no profiles'}")
        prof = profiles[profile]
        bad = sorted(set(prof) - set(stages_data) - {"experiment", "sweep"})
        if bad:
            raise LatentdynError(f"{path}: profile {profile!r} names stage {bad[0]!r}, which does not exist")
        if "sweep" in prof and "sweep" not in data:
            raise LatentdynError(f"{path}: profile {profile!r} has a [sweep] table but the file has none; add [sweep]")
        stages_data = _merge(stages_data, {k: v for k, v in prof.items() if k not in ("experiment", "sweep")})
        data = {**data, "experiment": _merge(data.get("experiment", {}), prof.get("experiment", {}))}
        if "sweep" in prof:  # a profile's sweep keys replace the file's (values = [0, 4]: fewer points)
            data["sweep"] = _merge(data["sweep"], prof["sweep"])
    # --set NAME.key=value addresses stage NAME (every clone of a swept one), the [experiment] or the [sweep] table
    heads = {"experiment": data.get("experiment", {}), **({"sweep": data["sweep"]} if "sweep" in data else {})}
    if "sweep" in heads and "sweep" in stages_data:
        raise LatentdynError(f"{path}: a stage is named 'sweep', like the [sweep] table; rename the stage")
    tree = {**heads, **stages_data}
    for item in overrides:
        head = item.partition("=")[0].strip().split(".")[0]
        if head not in tree:
            raise LatentdynError(f"--set {item!r}: no stage {head!r}; stages: {', '.join(stages_data)} "
                                 f"(or experiment.KEY{', sweep.KEY' if 'sweep' in heads else ''})")
    tree = apply_overrides(tree, list(overrides))
    info = from_dict(ExperimentInfo, tree.pop("experiment"), "experiment")
    sweep = tree.pop("sweep", None)
    tree, points = expand_sweep(tree, sweep, str(path))
    stages = []
    for name, table in tree.items():
        if not isinstance(table, dict):
            raise LatentdynError(f"{path}: stages.{name} must be a table of settings")
        table = dict(table)
        kind = table.pop("kind", name if name in KINDS else None)
        if kind not in KINDS:
            raise LatentdynError(f"stage {name!r}: kind = {kind!r}; use one of {', '.join(KINDS)}{closest(str(kind), list(KINDS))}")
        fields = {f.name for f in dataclasses.fields(KINDS[kind].config)}
        for key, default in (("device", info.device), ("data_dir", info.data_dir)):  # the experiment's defaults
            if default is not None and key not in table and key in fields:
                table[key] = default
        settings = from_dict(KINDS[kind].config, table, f"stages.{name}")
        stages.append(Stage(name, kind, settings, {}, point=points.get(name, {})))
    _link(stages, path)
    resolved = {"experiment": to_dict(info), "stages": {s.name: {"kind": s.kind, **to_dict(s.settings)} for s in stages}}
    return Experiment(path, info, stages, resolved, sweep)


def _link(stages: list[Stage], path: Path) -> None:
    """Find each stage's references to earlier stages and check their kinds and order."""
    seen: dict[str, Stage] = {}
    for s in stages:
        for fname, kinds in KINDS[s.kind].refs.items():
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
        if KINDS[s.kind].partial_inputs:
            s.refs["stages"] = list(seen)  # the report reads everything before it
        seen[s.name] = s


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

    A stage also gets ``full_key``, the same hash over every ``in_key`` setting with ``key_if_set``
    options at their defaults included (those marked ``True``; options ``"added"`` later never were
    in a key) and its inputs' full keys: what a latentdyn before those options were marked wrote.
    A record with either key is the same computation.
    """
    keys: dict[str, str] = {}
    full: dict[str, str] = {}
    by_name = {s.name: s for s in exp.stages}
    for s in exp.stages:
        settings = key_settings(s.settings)
        s.unavailable = None if s.partial_inputs else \
            next((by_name[n].unavailable for n in s.upstream if by_name[n].unavailable), None)
        inputs = {}
        for fname, names in s.refs.items():
            inputs[fname] = [keys[n] for n in names]
        if s.kind == "generate":  # the scene definition by content: editing its TOML reruns the stage
            try:
                scene = api.scene_definition(s.settings)
                inputs["scene"] = [digest(to_dict(scene))]
            except LatentdynError as e:
                scene, inputs["scene"] = None, ["unavailable:" + s.settings.scene]
                s.unavailable = str(e)
            if (sprites := getattr(scene, "sprites", None)) is not None:  # Moving MNIST and kin read an image dataset
                try:
                    where = sprites.data_dir or s.settings.data_dir or exp.info.data_dir
                    inputs["dataset"] = [_external_fingerprint(sprites.dataset, where or None)]
                except LatentdynError as e:
                    inputs["dataset"] = ["unavailable:" + sprites.dataset]
                    s.unavailable = str(e)
        if s.kind == "file":  # an outside scene file, by content
            path = Path(s.settings.path)
            if s.settings.path and path.is_file():
                inputs["file"] = ["file:" + _file_digest(path)]
            else:
                inputs["file"] = ["unavailable:" + s.settings.path]
                s.unavailable = f"path = {s.settings.path!r}: no such scene file; give an existing .h5 file"
        data = getattr(s.settings, "data", None)
        if data is not None and "data" not in s.refs:
            try:
                inputs["data"] = [_external_fingerprint(data, getattr(s.settings, "data_dir", None) or exp.info.data_dir)]
            except LatentdynError as e:
                inputs["data"] = ["unavailable:" + data]
                s.unavailable = str(e)
        payload = {"kind": s.kind, "settings": settings, "inputs": inputs, "latentdyn": __version__,
                   "stage_version": STAGE_VERSION}  # a new version of the code recomputes, never reuses
        s.key = digest(payload)
        full_inputs = {f: [full[n] for n in names] if f in s.refs else v for f, v in inputs.items()}
        s.full_key = digest({**payload, "settings": key_settings(s.settings, every=True), "inputs": full_inputs})
        full[s.name] = s.full_key
        if KINDS[s.kind].training:
            may_change = resumable(type(s.settings))  # epochs: more of them continue the run
            s.resume_key = digest({**payload, "settings": {k: v for k, v in settings.items() if k not in may_change}})
        else:
            s.resume_key = s.key
        keys[s.name] = s.key


def digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def plan(exp: Experiment, run_dir: Path, only: list[str] | None = None) -> list[tuple[Stage, str]]:
    """What running would do to each stage: "skip", "resume", "run" (or, outside --only, "keep" a
    finished stage or leave a "missing" one). A stage that would run or resume but cannot here
    (``Stage.unavailable``) is refused by the runner before any work."""
    compute_keys(exp)
    actions = []
    status: dict[str, str] = {}
    for s in exp.stages:
        if s.partial_inputs:  # its key also says which inputs it lacks, so it reruns when they finish
            lacking = [n for n in s.upstream if status[n] == "missing"]
            if lacking:
                s.key = digest({"key": s.key, "lacking": lacking})
                s.full_key = digest({"key": s.full_key, "lacking": lacking})
        rec = read_record(run_dir, s.name)
        done = rec is not None and rec.get("status") == "done" and rec.get("key") in (s.key, s.full_key) and \
            all(p.exists() for p in outputs_of(run_dir, s.name, s.kind).values())
        if only is not None and s.name not in only:
            actions.append((s, "keep" if done else "missing"))
        elif done:
            actions.append((s, "skip"))
        elif rec is not None and rec.get("resume_key") == s.resume_key and KINDS[s.kind].training and \
                (stage_dir(run_dir, s.name) / "last.pt").exists() and \
                trained_epochs(stage_dir(run_dir, s.name)) <= s.settings.epochs:
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
