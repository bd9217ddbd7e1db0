"""Commands of the datasets stage: list, fetch and look at the image datasets."""

from __future__ import annotations

from pathlib import Path

import click

from latentdyn.cli.options import data_dir_option, progress_option
from latentdyn.core.errors import LatentdynError


@click.group()
def datasets() -> None:
    """Image datasets: list what is available, fetch, and look at samples."""


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
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="The official split shown.")
@click.option("--per-class", type=click.IntRange(1, 32), default=8, show_default=True, help="Examples per class.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of the examples drawn.")
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


COMMANDS = [datasets]
