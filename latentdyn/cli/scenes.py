"""Commands of the scenes stage: list definitions, generate, film and describe scene files."""

from __future__ import annotations

import json

import click

from latentdyn.cli.derive import build_config, config_options
from latentdyn.cli.options import out_option, progress_option
from latentdyn.scenes.config import GenerateConfig, ImportVideoConfig


@click.command(name="scenes")
@click.option("--scenes-dir", type=click.Path(file_okay=False), default=None, help="Folder searched first for definitions.")
def scenes_cmd(scenes_dir) -> None:
    """List the scene definitions: yours (--scenes-dir, ./scenes) and the shipped ones."""
    from latentdyn.core.config import load_toml
    from latentdyn.core.resources import list_definitions, scene_folders

    for path in list_definitions(scene_folders(scenes_dir)):
        info = load_toml(path).get("scene", {})
        click.echo(f"{path.stem:16s} {info.get('description', '')}")


@click.command()
@click.argument("scene", required=False)
@out_option("Scene file to write (.h5).")
@config_options(GenerateConfig, sets=False)
@click.option("--video", type=click.Path(dir_okay=False), default=None, help="Also write a video of the first sequences (.mp4 or .gif).")
@progress_option
def generate(scene, out, config_file, video, progress, **params) -> None:
    """Generate bouncing-ball sequences from SCENE (a name that `latentdyn scenes` lists, or a .toml file).

    Frames (uint8) and ground-truth states go to one HDF5 file; see docs/formats.md.
    """
    from latentdyn import api

    cfg = build_config(GenerateConfig, params, click.get_current_context(), config_file)
    if scene is not None:
        cfg.scene = scene
    elif not config_file:
        raise click.UsageError("give a SCENE (see `latentdyn scenes`) or --config FILE")
    res = api.generate(cfg, out=out, video=video, progress=progress)
    m = res.metrics
    click.echo(f"wrote {res.out}: {m['sequences']} sequences x {m['frames'] // m['sequences']} frames of "
               f"{'x'.join(map(str, m['frame_shape']))} ({m['frames']} frames)")
    for name, path in res.paths.items():
        if name.startswith("video"):
            click.echo(f"wrote {path}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@out_option("Video to write (.mp4 or .gif).")
@click.option("--sequences", default=None, help="Sequences to show, e.g. 0,1,2,3 or 0-8 (default: the first 4).")
@click.option("--scale", type=click.IntRange(1, 32), default=None, help="Pixel upscaling factor (default: about 112 px per tile).")
@click.option("--fps", type=click.FloatRange(min=0.1, max=120), default=10.0, show_default=True, help="Frames per second of the video.")
def video(file, out, sequences, scale, fps) -> None:
    """Write a video grid of sequences of the scene FILE, with the frame number shown."""
    from latentdyn.viz.video import scene_video

    click.echo(f"wrote {scene_video(file, out, sequences, fps=fps, scale=scale)}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def info(file) -> None:
    """Summarise a scene file: shapes, splits and the scene definition."""
    from latentdyn.scenes.file import open_scenes

    with open_scenes(file) as sf:
        click.echo(f"{file}: {sf.n_sequences} sequences x {sf.length} frames of {'x'.join(map(str, sf.frame_shape))}")
        if sf.states is not None:
            what = "sprites" if sf.sprites else "balls"
            click.echo(f"states: {sf.states.shape[2]} {what} (x, y, vx, vy in pixels)")
        if sf.sprites:
            g = sf.file["sprites"].attrs
            click.echo(f"sprites from {g.get('dataset', 'a dataset')}: dataset index and label of each, per sequence")
        for name, idx in sf.splits.items():
            click.echo(f"split {name}: {len(idx)} sequences")
        if "splits_summary" in sf.file.attrs:  # an imported video: where its clips went, and why any are in no split
            from latentdyn.scenes.video_import import describe_splits

            click.echo(describe_splits(json.loads(sf.file.attrs["splits_summary"])))
        if sf.scene:
            click.echo("scene: " + json.dumps(sf.scene, sort_keys=False))


@click.command(name="import-video")
@click.argument("source", type=click.Path(), required=False)
@out_option("Scene file to write (.h5).")
@config_options(ImportVideoConfig, sets=False)
def import_video(source, out, config_file, **params) -> None:
    """Cut your own video (MP4, GIF, any video ffmpeg reads, or a folder of PNG frames) into a scene file of clips.

    The file has the standard layout without states (docs/formats.md), so every later stage reads it.
    """
    from latentdyn import api

    cfg = build_config(ImportVideoConfig, params, click.get_current_context(), config_file)
    if source is not None:
        cfg.source = source
    res = api.import_video(cfg, out=out)
    m = res.metrics
    click.echo(f"wrote {res.out}: {m['clips']} clips x {m['length']} frames of {'x'.join(map(str, m['frame_shape']))} "
               f"from {m['source_frames']} frames" + (f" at {m['fps']:g} fps" if m["fps"] else ""))
    from latentdyn.scenes.video_import import describe_splits

    click.echo(describe_splits(m["splits"]))


COMMANDS = [scenes_cmd, generate, import_video, video, info]
