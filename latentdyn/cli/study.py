"""Commands that study trained models and run whole experiments: rollouts, latent geometry,
``run``, ``demo`` and ``report``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from latentdyn.cli.derive import build_config, config_options
from latentdyn.cli.options import data_dir_option, out_option, progress_option
from latentdyn.analysis.config import AnalyzeConfig, SteerConfig
from latentdyn.dynamics.config import RolloutConfig
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig


@click.command()
@out_option("Folder for metrics.json, the plot and the videos.", folder=True)
@config_options(RolloutConfig)
@progress_option
def rollout(out, config_file, sets, progress, **params) -> None:
    """Roll the predictor out, decode, score against the truth, the VAE's ceiling and the baselines, and film it."""
    from latentdyn import api

    cfg = build_config(RolloutConfig, params, click.get_current_context(), config_file, sets)
    res = api.rollout(cfg, out=out, progress=progress).metrics
    click.echo(f"wrote {out}/metrics.json, error_vs_horizon.png, rollout.mp4, rollout.gif")
    click.echo("one-step squared error per frame: " + ", ".join(f"{k} {v:.3f}" for k, v in res["one_step_se_per_frame"].items()))
    for name, v in res["open_loop"].items():
        s = v["summary"]
        extra = f", position error {s['position_error_px']:.2f} px" if s.get("position_error_px") is not None else ""
        click.echo(f"open loop {name}: squared error per frame {s['se_per_frame']:.3f}{extra}")


@click.command(name="latent-map")
@out_option("Folder for the figures and arrays.", folder=True)
@config_options(LatentMapConfig)
def latent_map_cmd(out, config_file, sets, **params) -> None:
    """Latent map of a split: scatter by class or ground-truth factor; manifold and magnification for 2-d."""
    from latentdyn import api

    cfg = build_config(LatentMapConfig, params, click.get_current_context(), config_file, sets)
    for path in api.latent_map(cfg, out=out).paths.values():
        click.echo(f"wrote {path}")


@click.command()
@out_option("Folder for figures, animation and JSON.", folder=True)
@config_options(InterpolateConfig)
def interpolate(out, config_file, sets, **params) -> None:
    """Geodesic against linear interpolation between pairs of examples, under the pull-back metric."""
    from latentdyn import api

    cfg = build_config(InterpolateConfig, params, click.get_current_context(), config_file, sets)
    res = api.interpolate(cfg, out=out).metrics
    r = res["length_ratio"]
    click.echo(f"geodesic / linear length over {cfg.pairs} pairs: median {r['median']:.3f} (quartiles {r['q25']:.3f}-{r['q75']:.3f}); "
               f"{res['seconds']:.1f} s")
    click.echo(f"wrote {out}/interpolation.json, pair_*.png, interpolation.mp4, interpolation.gif")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@out_option("Folder for analysis.json, the MI heat map, traversals and prior samples (default: RUN_DIR/analysis).",
            folder=True, required=False)
@config_options(AnalyzeConfig)
def analyze(run_dir, out, config_file, sets, **params) -> None:
    """What the latent space of a VAE (RUN_DIR, or --vae) learned: MIG, SAP, DCI, probes, MI heat map, traversals."""
    from latentdyn import api

    cfg = build_config(AnalyzeConfig, params, click.get_current_context(), config_file, sets)
    if run_dir is not None:
        cfg.vae = run_dir
    res = api.analyze(cfg, out=out or Path(cfg.vae) / "analysis").metrics
    te, fit = res["test"], res["fit train, score test"]
    dci = fit["dci"]
    click.echo(f"{res['kind']}: factors {', '.join(res['factors'])}; {cfg.split} split, {res['n']['test']:,} codes")
    click.echo(f"MIG {te['mig']:.3f}" + (f", SAP {te['sap']:.3f}" if "sap" in te else f", SAP {fit['sap']:.3f}")
               + (f", DCI disentanglement {dci['disentanglement']:.3f}" if dci.get("disentanglement") is not None else "")
               + f", completeness {dci['completeness']:.3f}, informativeness {dci['informativeness_test']:.3f}; "
               f"active units {te['active_units']}/{res['latent_dim']}")
    if "slots" in res:
        sl = res["slots"]
        m, po = sl["matched"], sl["per_object"]
        click.echo(f"slots matched to balls ({sl['matched_distance_px']['test']:.2f} px apart): MIG {m['test']['mig']:.3f}, "
                   f"DCI disentanglement {m['fit train, score test']['dci']['disentanglement']:.3f}; each ball's slot "
                   f"against its ball: MIG {po['test']['mig']:.3f}, DCI disentanglement "
                   f"{po['fit train, score test']['dci']['disentanglement']:.3f}")
    click.echo(f"wrote {Path(out or Path(cfg.vae) / 'analysis')}/analysis.json, mi_heatmap.png, traversals.png/.mp4, prior_samples.png"
               + (", mi_heatmap_slots.png, mi_heatmap_per_slot.png, traversals_slots.png/.mp4" if "slots" in res else ""))


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@out_option("Folder for steer.json and steer.png (default: RUN_DIR/steer).", folder=True, required=False)
@config_options(SteerConfig)
def steer(run_dir, out, config_file, sets, **params) -> None:
    """Move one factor of a VAE's codes (RUN_DIR, or --vae) along a fitted direction; asked against achieved."""
    from latentdyn import api

    cfg = build_config(SteerConfig, params, click.get_current_context(), config_file, sets)
    if run_dir is not None:
        cfg.vae = run_dir
    target = Path(out or Path(cfg.vae) / "steer")
    res = api.steer(cfg, out=target).metrics
    for name in ("unconditional", "conditional"):
        if name in res:
            r = res[name]
            shown = {k: v for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            click.echo(f"{name}: " + ", ".join(f"{k.replace('_', ' ')} {v:.3g}" for k, v in shown.items()))
    click.echo(f"wrote {target}/steer.json, steer.png")


@click.command(name="run")
@click.argument("experiment")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/<experiment name>).")
@click.option("--set", "overrides", multiple=True, metavar="STAGE.KEY=VALUE",
              help="Override a stage's setting, e.g. --set vae.epochs=5 or experiment.device=cpu (repeatable).")
@click.option("--only", default=None, help="Run only these stages (comma-separated); their inputs must be finished (a report stage shows what has).")
@click.option("--profile", default=None, help="Apply a [profiles.NAME] table of the file (for example: demo).")
@click.option("--fetch", is_flag=True, help="Download missing datasets first (checksum-verified).")
@click.option("--experiments-dir", type=click.Path(file_okay=False), default=None,
              help="Folder searched first for experiment files (then ./experiments, then ours).")
@data_dir_option
@click.option("--dry-run", is_flag=True, help="Show what each stage would do (run, resume, skip) and stop.")
@progress_option
def run_cmd(experiment, out, overrides, only, profile, fetch, experiments_dir, data_dir, dry_run, progress) -> None:
    """Run the stages of an EXPERIMENT file (or a name in experiments/) into one run folder.

    Finished stages whose settings and inputs are unchanged are skipped, so the same command
    continues an interrupted run; see docs/experiments.md.
    """
    from latentdyn.pipeline import plan as P
    from latentdyn.pipeline.runner import run_experiment

    only_list = [x.strip() for x in only.split(",") if x.strip()] if only else None
    if data_dir:
        overrides = (*overrides, f"experiment.data_dir={json.dumps(str(data_dir))}")
    if experiments_dir and not Path(experiment).suffix:
        experiment = str(P.find_toml(experiment, P.experiment_folders(experiments_dir), "experiment"))
    if dry_run:
        exp = P.load_experiment(experiment, overrides, profile)
        run_dir = Path(out) if out else Path("runs") / exp.info.name
        actions = P.plan(exp, run_dir, only_list)
        w = max(len(s.name) for s, _ in actions)
        for stage, action in actions:
            why = f"  (cannot run here: {stage.unavailable})" if stage.unavailable and action in ("run", "resume") else ""
            click.echo(f"{stage.name:{w}s}  {stage.kind:15s} {action}{why}")
        return
    res = run_experiment(experiment, out, overrides, only_list, profile, progress, echo=click.echo, fetch=fetch)
    if res["report"] is not None:
        click.echo(f"report: {res['report']}")


@click.command()
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/demo", show_default=True, help="Run folder.")
@click.option("--device", default=None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps (default: auto).")
@progress_option
def demo(out, device, progress) -> None:
    """The bouncing-ball study on a laptop budget (no download; measured 2 min 17 s on 2 idle CPU cores).

    Generates light-ball scenes, trains a beta-VAE and the GRU predictor, rolls it out, maps the
    latent space and writes an HTML report; prints the report's path. Running it again skips
    what is finished.
    """
    from latentdyn.engine.progress import duration
    from latentdyn.pipeline.runner import estimate_experiment, run_experiment

    overrides = (f"experiment.device={device}",) if device else ()
    est = estimate_experiment("bouncing_ball", out, overrides, "demo")
    if est is not None and est["seconds"] > 1:
        click.echo(f"the demo will take about {duration(est['seconds'])} on this machine (timed from its first training "
                   "steps; measured: about 2 minutes on 2 idle CPU cores)")
    t0 = time.perf_counter()
    res = run_experiment("bouncing_ball", out, overrides, None, "demo", progress, echo=click.echo)
    click.echo(f"demo finished in {time.perf_counter() - t0:.0f} s")
    metrics = res["run_dir"] / "rollout" / "metrics.json"
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        ol = m["open_loop"]
        model, per = ol["model"]["summary"], ol["model"]["per_step"]
        H = len(per["position_error_px"])
        lost = f"{model['vanished_frames']}" + (f" of {model['frames']}" if "frames" in model else "")
        click.echo(f"open loop over {H} predicted frames ({m.get('split', 'test')} split): ball position error "
                   f"{model['position_error_px']:.2f} px (step {H}: {per['position_error_px'][-1]:.2f} px; copying the last "
                   f"frame: {ol['copy_last']['summary']['position_error_px']:.2f} px), {lost} predicted frames lost the ball")
    click.echo(f"report: {res['report'].resolve()}")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--title", default=None, help="Page title (default: the experiment's or the folder's name).")
def report(run_dir, title) -> None:
    """Write RUN_DIR/report.html: configs, metrics, curves, videos and figures of a run folder."""
    from latentdyn.pipeline.report.page import write_report

    click.echo(f"wrote {write_report(run_dir, title)}")


COMMANDS = [rollout, latent_map_cmd, interpolate, analyze, steer, run_cmd, demo, report]
