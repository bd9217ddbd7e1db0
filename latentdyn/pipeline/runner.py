"""Running an experiment: each stage in file order, skipped, resumed or rerun by its key.

A stage whose key is unchanged and that finished is skipped, so running the same command again
after a crash or Ctrl-C continues where it stopped; training stages interrupted mid-way resume
from their last checkpoint, and raising ``epochs`` of a finished training stage continues it
instead of starting over. Changing a setting reruns that stage and everything downstream of it,
nothing else (the superseded folder is moved aside, see ``runfolder``). See docs/experiments.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from latentdyn.core.config import dumps_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.engine.progress import Progress, duration
from latentdyn.pipeline.plan import Experiment, Stage, load_experiment, plan
from latentdyn.pipeline.runfolder import RunLog, last_seconds, lock, move_aside, outputs_of, stage_dir, write_record
from latentdyn.pipeline.stages import KINDS, OUTPUT_OF_KIND, with_inputs


def resolved_config(exp: Experiment, s: Stage, run_dir: Path):
    """The stage's config with every input field naming a stage replaced by that stage's output."""
    paths = {}
    for fname, names in s.refs.items():
        if fname in ("stages", "maps"):
            continue
        outs = [str(outputs_of(run_dir, n, exp.stage(n).kind)[OUTPUT_OF_KIND[exp.stage(n).kind]]) for n in names]
        paths[fname] = outs if isinstance(getattr(s.settings, fname), list) else outs[0]  # budget_from: a list
    return with_inputs(s.settings, paths)


def check_runnable(actions: list[tuple[Stage, str]]) -> None:
    """Fail before any work if a stage that would run needs a dataset or file that is not here."""
    for s, action in actions:
        if action in ("run", "resume") and s.unavailable is not None:
            raise LatentdynError(f"stage {s.name!r}: {s.unavailable}")


def estimate_experiment(path: str | Path, out: str | Path | None = None, overrides: tuple[str, ...] | list[str] = (),
                        profile: str | None = None) -> dict | None:
    """The estimated seconds of what ``run_experiment`` would run (``latentdyn.pipeline.estimate``),
    or None when it cannot be sized; timing the first steps takes a few seconds."""
    from latentdyn.engine.threads import configure
    from latentdyn.pipeline.estimate import estimate

    exp = load_experiment(path, overrides, profile)
    run_dir = Path(out) if out is not None else Path("runs") / exp.info.name
    configure()
    return estimate(exp, plan(exp, run_dir))


def run_experiment(path: str | Path, out: str | Path | None = None, overrides: tuple[str, ...] | list[str] = (),
                   only: list[str] | None = None, profile: str | None = None, progress: bool | None = None,
                   echo: Callable[[str], None] | None = print, fetch: bool = False) -> dict:
    """Run (or continue) an experiment into ``out``; returns {"run_dir", "actions", "report"}.

    ``echo`` receives the stage lines (None: silent, the run.log still has them).
    """
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
    with lock(run_dir):
        actions = plan(exp, run_dir, only)
        check_runnable(actions)
        with atomic_path(run_dir / "experiment.toml") as tmp:
            tmp.write_text(f"# resolved from {exp.path}" + (f", profile {profile}" if profile else "")
                           + "".join(f"\n# --set {o}" for o in overrides)
                           + (f"\n# [sweep] {exp.sweep}: its clones are the stages below" if exp.sweep else "")
                           + "\n" + dumps_toml(exp.resolved))
        log = RunLog(run_dir / "run.log", echo)
        todo = [s for s, a in actions if a in ("run", "resume")]
        before = {s.name: last_seconds(run_dir, s.name) for s in todo}  # read before old folders move aside
        clock = Progress(len(todo))
        log(f"experiment {exp.info.name} ({exp.path}) -> {run_dir}: {len(todo)} of {len(actions)} stages to run"
            + (f", about {duration(sum(before.values()))} by earlier runs" if todo and all(before.values()) else ""))
        for i, (s, action) in enumerate(actions, 1):
            head = f"[{i}/{len(actions)}] {s.name} ({s.kind})"
            if action in ("skip", "keep", "missing"):
                if action == "skip":
                    log(f"{head}: unchanged, skipped")
                continue
            if action == "run" and (moved := move_aside(run_dir, s.name)) is not None:
                log(f"{head}: settings, inputs or latentdyn changed; the old results are kept in {moved}")
            d = stage_dir(run_dir, s.name)
            d.mkdir(parents=True, exist_ok=True)
            took = f" (took {duration(before[s.name])} last time)" if before[s.name] else ""
            log(f"{head}: {'resuming' if action == 'resume' else 'running'}{took}")
            t0 = time.perf_counter()
            write_record(run_dir, s, "running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
            try:
                summary = _run_stage(exp, s, run_dir, action == "resume", progress, echo is not None)
            except LatentdynError as e:
                log(f"{head}: failed: {e}")
                raise LatentdynError(f"stage {s.name!r}: {e}") from None
            seconds = time.perf_counter() - t0
            write_record(run_dir, s, "done", seconds=seconds, summary=summary, finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
            log(f"{head}: done in {seconds:.1f} s" + (f"; {_fmt_summary(summary)}" if summary else "")
                + f"; {_time_left(clock, todo, s, before)}")
    report = run_dir / "report.html"
    current = any(s.kind == "report" and a in ("run", "resume", "skip") for s, a in actions)  # not one left out by --only
    return {"run_dir": run_dir, "actions": [(s.name, a) for s, a in actions],
            "report": report if current and report.exists() else None}


def _time_left(clock: Progress, todo: list[Stage], s: Stage, before: dict[str, float | None]) -> str:
    """'run 1 min 10 s so far, 2 stages left (about 40 s by earlier runs)': an estimate only where
    every stage still to run has a recorded duration; stages differ too much for a mean."""
    rest = todo[todo.index(s) + 1 :]
    line = f"run {duration(clock.elapsed())} so far"
    if not rest:
        return line
    known = [before[r.name] for r in rest]
    return line + f", {len(rest)} stage{'s' * (len(rest) > 1)} left" + (
        f" (about {duration(sum(known))} by earlier runs)" if all(known) else "")


def _run_stage(exp: Experiment, s: Stage, run_dir: Path, resume: bool, progress, verbose: bool) -> dict:
    d = stage_dir(run_dir, s.name)
    if s.kind == "compare-maps":
        return _compare_maps(exp, s, run_dir)
    if s.kind == "sweep-summary":
        return _sweep_summary(exp, s, run_dir)
    if s.kind == "report":
        from latentdyn.pipeline.report.page import write_report

        return {"report": str(write_report(run_dir, title=s.settings.title or None))}
    cfg = resolved_config(exp, s, run_dir)
    if not KINDS[s.kind].training:  # trainers write their own (resolved further: likelihood, val split)
        with atomic_path(d / "config.toml") as tmp:
            tmp.write_text(dumps_toml(to_dict(cfg)))
    return KINDS[s.kind].run(cfg, d, resume, progress, verbose)


def _compare_maps(exp: Experiment, s: Stage, run_dir: Path) -> dict:
    from latentdyn.pipeline.report.compare import compare_maps

    c = s.settings
    sources = [exp.stage(exp.stage(n).settings.vae).settings.data for n in c.maps]
    rows = []
    for name in c.maps:
        vae_stage = exp.stage(exp.stage(name).settings.vae)
        data = vae_stage.settings.data
        label = data if sources.count(data) == 1 else f"{data} ({vae_stage.name})"  # tell apart runs on one dataset
        rows.append({"label": label, "vae": stage_dir(run_dir, vae_stage.name), "map": stage_dir(run_dir, name)})
    paths = compare_maps(rows, stage_dir(run_dir, s.name), c.title or exp.info.description, c.fps)
    return {"rows": len(rows), "files": len(paths)}


def _sweep_summary(exp: Experiment, s: Stage, run_dir: Path) -> dict:
    """Every analyze clone with its VAE and the rollout that reads the same VAE, gathered."""
    from latentdyn.pipeline.sweep_summary import read_run, write_summary

    c = s.settings
    runs = []
    for name in c.analyze:
        an = exp.stage(name)
        vae = exp.stage(an.refs["vae"][0])
        rollouts = [r for r in c.rollout if exp.stage(r).refs.get("vae") == [vae.name]]
        x = an.point.get(c.x, getattr(vae.settings, c.x, None))
        if x is None:
            raise LatentdynError(f"x = {c.x!r}: stage {name!r} is at no sweep point of {c.x!r} and its VAE has no such "
                                 "setting; give the sweep's key")
        seed = an.point.get("seed", getattr(vae.settings, "seed", None))
        runs.append(read_run(x, seed, stage_dir(run_dir, vae.name), stage_dir(run_dir, name),
                             stage_dir(run_dir, rollouts[0]) if rollouts else None))
    summary = write_summary(runs, stage_dir(run_dir, s.name), c.x, c.metrics, c.title or s.name)
    rank = summary["spearman"]
    out = {"runs": summary["n_runs"]}
    for key, (m, vs) in {"rho_x_mig": ("mig", "vs_x"), "rho_mig_position_error": ("mig", "vs_position_error_px")}.items():
        if rank["mig"].get(vs, {}).get("rho") is not None:
            out[key] = rank["mig"][vs]["rho"]
    return out


def _fmt_summary(summary: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())


def dataset_of(s: Stage) -> str | None:
    """The dataset name a stage reads directly (not a stage's output, not a scene file), if any."""
    from latentdyn import datasets as ds

    if s.kind == "generate":  # a sprite scene (Moving MNIST) draws its sprites from a dataset
        from latentdyn import api

        try:
            sprites = getattr(api.scene_definition(s.settings), "sprites", None)
        except LatentdynError:
            return None
        return sprites.dataset if sprites is not None else None
    data = getattr(s.settings, "data", None)
    return None if data is None or "data" in s.refs or ds.is_scene_source(data) else data


def _fetch_missing(exp: Experiment, progress) -> None:
    from latentdyn import datasets as ds

    for s in exp.stages:
        if (name := dataset_of(s)) is not None and ds.source_files(name, exp.info.data_dir) is None:
            ds.fetch(name, exp.info.data_dir, progress)
