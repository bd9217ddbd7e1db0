"""The ``latentdyn`` command line: parsing and error mapping only; the work is in the library.

Every LatentdynError (bad option, missing or corrupt file, impossible config) becomes one line
``Error: ...`` on stderr and exit code 2, with no traceback. The commands are listed in
pipeline order; each stage's options are derived from its config dataclass
(``latentdyn.cli.derive``) and each command calls the matching ``latentdyn.api`` function.
"""

from __future__ import annotations

import sys

import click

from latentdyn.core.version import __version__
from latentdyn.core.errors import LatentdynError


class _Group(click.Group):
    """A click group that keeps its commands in pipeline order and turns the library's errors
    into a one-line message and exit code 2."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order they were added: the pipeline's

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

    The commands below follow the pipeline: scenes and datasets, the beta-VAE, latents, the GRU
    predictor, rollouts, latent geometry, then whole experiments and their reports. Start with
    `latentdyn demo`, or `latentdyn generate three_balls --out data/three_balls.h5 --video three_balls.mp4`.
    """


def _register() -> None:
    from latentdyn.cli import data, models, scenes, study

    for module in (scenes, data, models, study):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="latentdyn")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
