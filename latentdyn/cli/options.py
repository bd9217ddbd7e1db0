"""Click options shared by several commands, defined once (as rasterio's rio/options.py does)."""

from __future__ import annotations

import click

seed_option = click.option(
    "--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True,
    help="Seed of every random choice; the same seed gives the same bytes.",
)

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a setting of the definition, e.g. --set render.radius=2.0 (repeatable).",
)

workers_option = click.option(
    "--workers", type=click.IntRange(1, 64), default=None,
    help="Worker threads (default: the number of CPU cores, at most 8).",
)

progress_option = click.option(
    "--progress/--no-progress", default=None,
    help="Show a progress bar (default: only when stderr is a terminal).",
)

fps_option = click.option("--fps", type=click.FloatRange(min=0.1, max=120), default=10.0, show_default=True, help="Frames per second of the video.")

compile_option = click.option(
    "--compile", "compile_", is_flag=True,
    help="torch.compile the model for training (slow to start; pays off on GPUs and long runs).",
)
