"""Click options shared by several commands that are not stage settings, defined once (as
rasterio's rio/options.py does). Stage settings come from the config dataclasses (``derive``)."""

from __future__ import annotations

import click

progress_option = click.option(
    "--progress/--no-progress", default=None,
    help="Show progress bars (default: only when stderr is a terminal).",
)

resume_option = click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt.")

data_dir_option = click.option(
    "--data-dir", type=click.Path(file_okay=False), default=None,
    help="Folder holding the dataset files as distributed (searched before the cache).",
)


def out_option(what: str, folder: bool = False, required: bool = True):
    """``--out/-o``: a file or a folder, described by ``what``."""
    return click.option("--out", "-o", required=required,
                        type=click.Path(file_okay=not folder, dir_okay=folder), help=what)


def echo_row(out, row: dict, what: str) -> None:
    """The one line a training command prints when it ends (rank 0 of torchrun only)."""
    if row:
        click.echo(f"finished {out}: epoch {row.get('epoch')}" + (f", {what}" if what else ""))
