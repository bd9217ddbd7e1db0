"""The ``latentdyn`` command line: parsing and error mapping only; the work is in the library.

Every LatentdynError (bad option, missing or corrupt file, impossible config) becomes one line
``Error: ...`` on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from latentdyn import __version__
from latentdyn.core.errors import LatentdynError
from latentdyn.cli.options import compile_option, fps_option, progress_option, seed_option, set_option, workers_option


class _Group(click.Group):
    """A click group that turns the library's errors into a one-line message and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LatentdynError as e:
            click.echo(f"Error: {e}", err=True)
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted: unfinished output files were removed.", err=True)
            ctx.exit(130)
        except OSError as e:  # disk full, permissions, ... raised outside our own checks
            where = f" ({e.filename})" if e.filename else ""
            click.echo(f"Error: {e.strerror or e}{where}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="latentdyn")
def cli() -> None:
    """Learn and predict dynamics in the latent space of a beta-VAE.

    Start with `latentdyn generate three_balls --out data/three_balls.h5 --video three_balls.mp4`.
    """


@cli.command()
@click.argument("scene")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Scene file to write (.h5).")
@click.option("-n", "--sequences", "n", type=int, default=100, show_default=True, help="Number of sequences.")
@click.option("--length", type=int, default=None, help="Frames per sequence (default: the scene's length).")
@seed_option
@set_option
@click.option("--split", default="train=0.8,val=0.1,test=0.1", show_default=True, help="Named splits and their fractions ('' for none).")
@click.option("--video", type=click.Path(dir_okay=False), default=None, help="Also write a video of the first sequences (.mp4 or .gif).")
@workers_option
@progress_option
def generate(scene, out, n, length, seed, overrides, split, video, workers, progress) -> None:
    """Generate bouncing-ball sequences from SCENE (a name in scenes/ or a .toml file).

    Frames (uint8) and ground-truth states go to one HDF5 file; see docs/formats.md.
    """
    from latentdyn.scenes import generate as scenes
    from latentdyn.viz.video import VIDEO_SUFFIXES

    if length is not None:
        overrides = (*overrides, f"scene.length={length}")
    config = scenes.load_scene(scene, overrides)
    splits = scenes.parse_splits(split)
    if video and Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise LatentdynError(f"--video {video}: use a .mp4 or .gif file name")
    path = scenes.generate(config, out, n, seed=seed, splits=splits, workers=workers, progress=progress)
    frames = n * config.scene.length
    click.echo(f"wrote {path}: {n} sequences x {config.scene.length} frames of {'x'.join(map(str, config.frame_shape))} ({frames} frames)")
    if video:
        from latentdyn.viz.video import scene_video

        click.echo(f"wrote {scene_video(path, video)}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Video to write (.mp4 or .gif).")
@click.option("--sequences", default=None, help="Sequences to show, e.g. 0,1,2,3 or 0-8 (default: the first 4).")
@click.option("--scale", type=click.IntRange(1, 32), default=None, help="Pixel upscaling factor (default: about 112 px per tile).")
@fps_option
def video(file, out, sequences, scale, fps) -> None:
    """Write a video grid of sequences of the scene FILE, with the frame number shown."""
    from latentdyn.viz.video import scene_video

    click.echo(f"wrote {scene_video(file, out, sequences, fps=fps, scale=scale)}")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def info(file) -> None:
    """Summarise a scene file: shapes, splits and the scene definition."""
    import json

    from latentdyn.scenes.file import open_scenes

    with open_scenes(file) as sf:
        click.echo(f"{file}: {sf.n_sequences} sequences x {sf.length} frames of {'x'.join(map(str, sf.frame_shape))}")
        if sf.states is not None:
            click.echo(f"states: {sf.states.shape[2]} balls (x, y, vx, vy in pixels)")
        for name, idx in sf.splits.items():
            click.echo(f"split {name}: {len(idx)} sequences")
        if sf.scene:
            click.echo("scene: " + json.dumps(sf.scene, sort_keys=False))


@cli.command(name="scenes")
def scenes_cmd() -> None:
    """List the scene definitions in scenes/."""
    from latentdyn.scenes import generate as scenes
    from latentdyn.core.config import load_toml

    folders = [Path.cwd() / "scenes", scenes.SCENES_DIR]
    seen = set()
    for folder in folders:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            if path.stem in seen:
                continue
            seen.add(path.stem)
            info = load_toml(path).get("scene", {})
            click.echo(f"{path.stem:16s} {info.get('description', '')}")


@cli.group()
def datasets() -> None:
    """Image datasets: list what is available, fetch, and look at samples."""


data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Folder holding the dataset files as distributed (searched before the cache).",
)


@datasets.command(name="list")
@data_dir_option
def datasets_list(data_dir) -> None:
    """Name, size and where each dataset was found (or that it is missing)."""
    from latentdyn import datasets as ds

    click.echo(f"{'name':14s} {'train':>7s} {'test':>7s}  {'image':9s} where")
    for name in ds.DATASETS:
        st = ds.status(name, data_dir)
        shape = "x".join(map(str, st["shape"]))
        if st["found"]:
            sizes = st["sizes"]
            click.echo(f"{name:14s} {sizes.get('train', '-'):>7} {sizes.get('test', '-'):>7}  {shape:9s} {st['found']}")
        else:
            click.echo(f"{name:14s} {'-':>7s} {'-':>7s}  {shape:9s} missing (latentdyn datasets fetch {name})")


@datasets.command(name="fetch")
@click.argument("name")
@data_dir_option
@progress_option
def datasets_fetch(name, data_dir, progress) -> None:
    """Download NAME's official files (checksum-verified) into the cache or --data-dir."""
    from latentdyn import datasets as ds

    spec = ds.get_spec(name)
    if data_dir is None and (hit := ds.locate(name, "train")) is not None and ds.locate(name, "test") is not None:
        click.echo(f"{name} is already available in {hit[0]}")
        return
    click.echo(f"fetched {name} into {ds.fetch(spec.name, data_dir, progress)}")


@datasets.command(name="show")
@click.argument("name")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Figure to write (.png, .pdf or .svg).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True)
@click.option("--per-class", type=click.IntRange(1, 32), default=8, show_default=True, help="Examples per class.")
@seed_option
@data_dir_option
def datasets_show(name, out, split, per_class, seed, data_dir) -> None:
    """A labelled grid of samples of NAME, one row per class."""
    from latentdyn import datasets as ds
    from latentdyn.viz.figures import FIGURE_SUFFIXES, class_grid, save_figure
    from latentdyn.core.fileio import check_writable_dir

    if Path(out).suffix.lower() not in FIGURE_SUFFIXES:
        raise LatentdynError(f"--out {out}: use a .png, .pdf or .svg file name")
    check_writable_dir(out)
    data = ds.load(name, split, data_dir)
    fig = class_grid(data.images, data.labels, data.class_names, per_class, seed,
                     title=f"{name} ({split}, {len(data):,} images)")
    click.echo(f"wrote {save_figure(fig, out)}")


@cli.group()
def train() -> None:
    """Train models: the beta-VAE and the GRU latent predictor."""


@train.command(name="vae")
@click.option("--data", "source", required=True, help="A dataset name (mnist, fashion-mnist, cifar10, cifar10-gray) or a scene file.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Run folder (created; --resume continues it).")
@click.option("--latent-dim", type=int, default=2, show_default=True)
@click.option("--beta", type=float, default=1.0, show_default=True, help="Weight of the KL term (Higgins et al. 2017).")
@click.option("--arch", type=click.Choice(["tutorial", "mlp", "resnet"]), default="resnet", show_default=True)
@click.option("--likelihood", type=click.Choice(["auto", "bernoulli", "gaussian"]), default="auto", show_default=True,
              help="auto: Gaussian for colour images, Bernoulli otherwise.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--binarize", type=click.Choice(["static", "dynamic", "none"]), default="none", show_default=True)
@click.option("--warmup-epochs", type=int, default=0, show_default=True, help="KL warm-up: beta rises linearly over these epochs.")
@click.option("--limit", type=int, default=0, help="Use only the first N training images (0: all).")
@click.option("--max-memory-mb", type=click.IntRange(0), default=4096, show_default=True,
              help="Scene files larger than this stream from HDF5 in blocks instead of sitting in memory.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps.")
@compile_option
@seed_option
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@data_dir_option
@progress_option
def train_vae_cmd(source, out, latent_dim, beta, arch, likelihood, epochs, batch_size, lr, binarize, warmup_epochs,
                  limit, max_memory_mb, device, compile_, seed, resume, data_dir, progress) -> None:
    """Train a beta-VAE on a dataset or a scene file."""
    from latentdyn.vae.model import VAEConfig
    from latentdyn.vae.train import DataConfig, OptimConfig, VAERunConfig, resolve_likelihood, train_vae

    likelihood = resolve_likelihood(str(source), likelihood)
    cfg = VAERunConfig(
        model=VAEConfig(arch=arch, latent_dim=latent_dim, beta=beta, likelihood=likelihood),
        data=DataConfig(source=str(source), data_dir=data_dir, binarize=binarize, limit=limit, max_memory_mb=max_memory_mb),
        train=OptimConfig(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=warmup_epochs, seed=seed, device=device,
                          compile=compile_),
    )
    cfg.model.validate()
    row = train_vae(cfg, out, resume=resume, progress=progress)
    if row:  # only rank 0 of a torchrun job reports
        click.echo(f"finished {out}: epoch {row.get('epoch', cfg.train.epochs)}"
                   + (f", validation ELBO {row['val_elbo']:.2f} nats" if "val_elbo" in row else ""))


@train.command(name="dynamics")
@click.option("--latents", required=True, type=click.Path(dir_okay=False), help="Latents file of scene sequences (latentdyn encode).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Run folder (created; --resume continues it).")
@click.option("--hidden", type=int, default=128, show_default=True, help="GRU width.")
@click.option("--layers", type=int, default=1, show_default=True, help="Stacked GRU layers.")
@click.option("--use-logvar/--means-only", default=True, show_default=True, help="Also read the posterior log-variances.")
@click.option("--residual/--absolute", default=True, show_default=True, help="Predict a change of the latent, or the next latent.")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True)
@click.option("--context", type=int, default=5, show_default=True, help="Observed latents before the open-loop part.")
@click.option("--horizon", type=int, default=20, show_default=True, help="Open-loop steps in the training loss.")
@click.option("--open-loop-weight", type=float, default=1.0, show_default=True, help="Weight of the multi-step loss (0: teacher forcing only).")
@click.option("--windows", "windows_per_sequence", type=int, default=4, show_default=True, help="Windows drawn from each sequence per epoch.")
@click.option("--device", default="auto", show_default=True)
@compile_option
@seed_option
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")
@progress_option
def train_dynamics_cmd(latents, out, hidden, layers, use_logvar, residual, epochs, batch_size, lr, context, horizon,
                       open_loop_weight, windows_per_sequence, device, compile_, seed, resume, progress) -> None:
    """Train the GRU latent predictor on encoded scene sequences."""
    from latentdyn.dynamics.model import DynamicsConfig
    from latentdyn.dynamics.train import DynamicsData, DynamicsRunConfig, DynamicsTrain, train_dynamics

    cfg = DynamicsRunConfig(
        model=DynamicsConfig(hidden=hidden, layers=layers, use_logvar=use_logvar, residual=residual),
        data=DynamicsData(latents=str(latents)),
        train=DynamicsTrain(epochs=epochs, batch_size=batch_size, lr=lr, context=context, horizon=horizon,
                            open_loop_weight=open_loop_weight, windows_per_sequence=windows_per_sequence, seed=seed, device=device,
                            compile=compile_),
    )
    row = train_dynamics(cfg, out, resume=resume, progress=progress)
    if row:  # only rank 0 of a torchrun job reports
        click.echo(f"finished {out}: epoch {row.get('epoch')}" + (f", validation loss {row['val_loss']:.3f}" if "val_loss" in row else ""))


@cli.command()
@click.option("--vae", "vae_run", required=True, type=click.Path(file_okay=False), help="VAE run folder.")
@click.option("--data", "source", required=True, help="A scene file, or a dataset name (then --split picks train or test).")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Latents file to write (.h5).")
@click.option("--split", default=None, help="Datasets: train or test (default test). Scene files: every sequence is encoded.")
@click.option("--device", default="auto", show_default=True)
@data_dir_option
@progress_option
def encode(vae_run, source, out, split, device, data_dir, progress) -> None:
    """Encode frames into posterior means and log-variances, with provenance (HDF5)."""
    from latentdyn.vae.encode import encode as encode_fn

    click.echo(f"wrote {encode_fn(vae_run, source, out, split, device, data_dir, progress=progress)}")


@cli.command()
@click.option("--vae", "vae_run", required=True, type=click.Path(file_okay=False), help="VAE run folder.")
@click.option("--dynamics", "dyn_run", required=True, type=click.Path(file_okay=False), help="Dynamics run folder.")
@click.option("--data", "source", required=True, type=click.Path(dir_okay=False), help="Scene file.")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for metrics.json, the plot and the videos.")
@click.option("--split", default="test", show_default=True)
@click.option("--context", type=int, default=10, show_default=True, help="Observed frames before predicting.")
@click.option("--horizon", type=int, default=20, show_default=True, help="Predicted steps.")
@click.option("--sequences", type=int, default=64, show_default=True, help="Sequences to score.")
@click.option("--samples", type=int, default=0, show_default=True, help="Sampled futures per sequence (0: the mean only).")
@click.option("--video-sequences", type=int, default=4, show_default=True)
@click.option("--device", default="auto", show_default=True)
@seed_option
@fps_option
def rollout(vae_run, dyn_run, source, out, split, context, horizon, sequences, samples, video_sequences, device, seed, fps) -> None:
    """Roll the predictor out, decode, score against the truth and the baselines, and film it."""
    from latentdyn.dynamics.rollout import RolloutConfig, run_rollout

    cfg = RolloutConfig(split=split, context=context, horizon=horizon, sequences=sequences, samples=samples,
                        video_sequences=video_sequences, seed=seed, device=device, fps=fps)
    res = run_rollout(vae_run, dyn_run, source, out, cfg)
    click.echo(f"wrote {out}/metrics.json, error_vs_horizon.png, rollout.mp4, rollout.gif")
    click.echo("one-step squared error per frame: " + ", ".join(f"{k} {v:.3f}" for k, v in res["one_step_se_per_frame"].items()))
    for name, v in res["open_loop"].items():
        s = v["summary"]
        extra = f", position error {s['position_error_px']:.2f} px" if "position_error_px" in s else ""
        click.echo(f"open loop {name}: squared error per frame {s['se_per_frame']:.3f}{extra}")


@cli.command(name="latent-map")
@click.option("--vae", "vae_run", required=True, type=click.Path(file_okay=False), help="VAE run folder.")
@click.option("--data", "source", default=None, help="Dataset name or scene file (default: the run's training data).")
@click.option("--split", default="test", show_default=True)
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the figures and arrays.")
@click.option("--limit", type=int, default=5000, show_default=True, help="Points plotted (0: all).")
@click.option("--grid", type=click.IntRange(2, 40), default=20, show_default=True, help="Manifold grid side (2-d latents).")
@click.option("--device", default="auto", show_default=True)
@data_dir_option
def latent_map_cmd(vae_run, source, split, out, limit, grid, device, data_dir) -> None:
    """Latent map of a split: scatter by class or ground-truth factor; manifold and magnification for 2-d."""
    from latentdyn.geometry.latent_map import latent_map

    res = latent_map(vae_run, source, out, split, data_dir, device, limit, grid)
    for f in res["figures"]:
        click.echo(f"wrote {f}")
    click.echo(f"wrote {res['arrays']}")


@cli.command()
@click.option("--vae", "vae_run", required=True, type=click.Path(file_okay=False), help="VAE run folder.")
@click.option("--data", "source", default=None, help="Dataset name or scene file (default: the run's training data).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for figures, animation and JSON.")
@click.option("--pairs", type=click.IntRange(1, 256), default=8, show_default=True)
@click.option("--classes", default=None, help="Join class A to class B, e.g. 3,8 or Sandal,Sneaker.")
@click.option("--steps", type=click.IntRange(2, 64), default=10, show_default=True, help="Decoded images along each path.")
@click.option("--points", "n_points", type=click.IntRange(3, 256), default=32, show_default=True, help="Points of the geodesic.")
@click.option("--split", default="test", show_default=True)
@click.option("--variance-aware", is_flag=True, help="Add an RBF uncertainty that grows away from the data to the metric.")
@click.option("--device", default="auto", show_default=True)
@seed_option
@data_dir_option
def interpolate(vae_run, source, out, pairs, classes, steps, n_points, split, variance_aware, device, seed, data_dir) -> None:
    """Geodesic against linear interpolation between pairs of examples, under the pull-back metric."""
    from latentdyn.geometry.interpolate import interpolate as run

    res = run(vae_run, source, out, pairs, classes, steps, split, n_points, data_dir, device, seed, variance_aware=variance_aware)
    r = res["length_ratio"]
    click.echo(f"geodesic / linear length over {pairs} pairs: median {r['median']:.3f} (quartiles {r['q25']:.3f}-{r['q75']:.3f}); "
               f"{res['seconds']:.1f} s")
    click.echo(f"wrote {out}/interpolation.json, pair_*.png, interpolation.mp4, interpolation.gif")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--data", "source", default=None, help="Dataset name or scene file (default: the run's training data).")
@click.option("--split", default="test", show_default=True)
@click.option("--iw-samples", type=int, default=64, show_default=True, help="Samples of the importance-weighted bound (0: skip).")
@click.option("--checkpoint", "which", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--limit", type=int, default=0, help="Evaluate only the first N examples (0: all).")
@click.option("--device", default="auto", show_default=True)
@data_dir_option
@progress_option
def evaluate(run_dir, source, split, iw_samples, which, limit, device, data_dir, progress) -> None:
    """Evaluate a trained VAE: ELBO, IWAE log p(x), active units, KL per dimension (JSON)."""
    import json

    from latentdyn.vae.evaluate import evaluate_run

    result = evaluate_run(run_dir, source, split, iw_samples, data_dir, device, limit, which=which, progress=progress)
    click.echo(json.dumps(result, indent=2))


@cli.command(name="run")
@click.argument("experiment")
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/<experiment name>).")
@click.option("--set", "overrides", multiple=True, metavar="STAGE.KEY=VALUE",
              help="Override a stage's setting, e.g. --set vae.epochs=5 or experiment.device=cpu (repeatable).")
@click.option("--only", default=None, help="Run only these stages (comma-separated); their inputs must be finished (a report stage shows what has).")
@click.option("--profile", default=None, help="Apply a [profiles.NAME] table of the file (for example: demo).")
@click.option("--fetch", is_flag=True, help="Download missing datasets first (checksum-verified).")
@data_dir_option
@click.option("--dry-run", is_flag=True, help="Show what each stage would do (run, resume, skip) and stop.")
@progress_option
def run_cmd(experiment, out, overrides, only, profile, fetch, data_dir, dry_run, progress) -> None:
    """Run the stages of an EXPERIMENT file (or a name in experiments/) into one run folder.

    Finished stages whose settings and inputs are unchanged are skipped, so the same command
    continues an interrupted run; see docs/experiments.md.
    """
    import json

    from latentdyn.pipeline import experiment as X

    only_list = [x.strip() for x in only.split(",") if x.strip()] if only else None
    if data_dir:
        overrides = (*overrides, f"experiment.data_dir={json.dumps(str(data_dir))}")
    if dry_run:
        exp = X.load_experiment(experiment, overrides, profile)
        run_dir = Path(out) if out else Path("runs") / exp.info.name
        actions = X.plan(exp, run_dir, only_list)
        w = max(len(s.name) for s, _ in actions)
        for stage, action in actions:
            why = f"  (cannot run here: {stage.unavailable})" if stage.unavailable and action in ("run", "resume") else ""
            click.echo(f"{stage.name:{w}s}  {stage.kind:15s} {action}{why}")
        return
    res = X.run_experiment(experiment, out, overrides, only_list, profile, progress, echo=click.echo, fetch=fetch)
    if res["report"] is not None:
        click.echo(f"report: {res['report']}")


@cli.command()
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/demo", show_default=True, help="Run folder.")
@click.option("--device", default=None, help="auto (cuda, mps, cpu), cpu, cuda, cuda:N or mps (default: auto).")
@progress_option
def demo(out, device, progress) -> None:
    """The bouncing-ball study on a laptop budget (synthetic scenes, no download, about 4 minutes on 2 CPU cores).

    Generates light-ball scenes, trains a beta-VAE and the GRU predictor, rolls it out, maps the
    latent space and writes an HTML report; prints the report's path. Running it again skips
    what is finished.
    """
    import time

    from latentdyn.pipeline import experiment as X

    overrides = (f"experiment.device={device}",) if device else ()
    t0 = time.perf_counter()
    res = X.run_experiment("bouncing_ball", out, overrides, None, "demo", progress, echo=click.echo)
    click.echo(f"demo finished in {time.perf_counter() - t0:.0f} s")
    metrics = res["run_dir"] / "rollout" / "metrics.json"
    if metrics.is_file():
        import json

        ol = json.loads(metrics.read_text())["open_loop"]
        model, per = ol["model"]["summary"], ol["model"]["per_step"]
        H = len(per["position_error_px"])
        click.echo(f"open loop over {H} predicted frames: ball position error {model['position_error_px']:.2f} px "
                   f"(step {H}: {per['position_error_px'][-1]:.2f} px; copying the last frame: "
                   f"{ol['copy_last']['summary']['position_error_px']:.2f} px), {model['vanished_frames']} frames lost the ball")
    click.echo(f"report: {res['report'].resolve()}")


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--title", default=None, help="Page title (default: the experiment's or the folder's name).")
def report(run_dir, title) -> None:
    """Write RUN_DIR/report.html: configs, metrics, curves, videos and figures of a run folder."""
    from latentdyn.pipeline.report import write_report

    click.echo(f"wrote {write_report(run_dir, title)}")


@cli.command(name="import-video")
@click.argument("source", type=click.Path())
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="Scene file to write (.h5).")
@click.option("--size", default="64", show_default=True, help="Frame size: a side (64), WIDTHxHEIGHT (64x48) or 'source'; centre-cropped to that aspect.")
@click.option("--grey/--colour", default=True, show_default=True, help="Grey (ITU-R 601-2 luma) or RGB frames.")
@click.option("--clip-length", type=int, default=20, show_default=True, help="Frames per clip (sequence).")
@click.option("--stride", type=int, default=None, help="Frames between clip starts (default: the clip length, no overlap).")
@click.option("--split", default="train=0.8,val=0.1,test=0.1", show_default=True, help="Named splits and their fractions ('' for none).")
@click.option("--split-mode", type=click.Choice(["random", "time"]), default="random", show_default=True,
              help="random: clips drawn at random (seeded); time: consecutive runs of clips, no frame shared between splits.")
@seed_option
@click.option("--fps", type=float, default=None, help="Resample a video to this frame rate (at most the source's); for a PNG folder, its frame rate.")
def import_video_cmd(source, out, size, grey, clip_length, stride, split, split_mode, seed, fps) -> None:
    """Cut your own video (MP4, GIF, any video ffmpeg reads, or a folder of PNG frames) into a scene file of clips.

    The file has the standard layout without states (docs/formats.md), so every later stage reads it.
    """
    from latentdyn.scenes.file import open_scenes
    from latentdyn.scenes.video_import import import_video, parse_size

    path = import_video(source, out, parse_size(size), grey, clip_length, stride, split, seed, fps, split_mode)
    with open_scenes(path) as sf:
        rate = sf.file.attrs.get("fps")
        click.echo(f"wrote {path}: {sf.n_sequences} clips x {sf.length} frames of {'x'.join(map(str, sf.frame_shape))} "
                   f"from {sf.file.attrs['source_frames']} frames" + (f" at {float(rate):g} fps" if rate else ""))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="latentdyn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
