"""Click options derived from a stage's config dataclass, and configs built back from them.

``@config_options(TrainVAEConfig)`` adds one click option per field (name, type, default and
help text all read from the field, see ``latentdyn.core.options``), plus ``--config`` (rerun
from a saved config: a run folder, its ``config.toml``, or a file that carries its config) and
``--set KEY=VALUE``. :func:`build_config` turns the parsed values back into the dataclass: the
saved config (if any) first, then every option given on the command line, then ``--set``.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Callable

import click

from latentdyn.core.config import apply_overrides, from_dict, load_toml
from latentdyn.core.errors import LatentdynError
from latentdyn.core.options import Option, options

CONFIG_HELP = ("Rerun from a saved config: a run folder (its config.toml), a .toml file, or a file that carries its "
               "config (a scene or latents file, an evaluation .json); options given here override it.")


def option_name(o: Option) -> str:
    return "--" + o.name.replace("_", "-")


def click_option(o: Option) -> Callable:
    """The click option of one config field."""
    base = o.base_type
    kw: dict[str, Any] = {"help": o.full_help, "show_default": True}
    if base is bool:
        decl = o.flag or f"{option_name(o)}/--no-{o.name.replace('_', '-')}"
        return click.option(decl, o.name, default=o.default, **kw)
    decls = [option_name(o)] + ([o.short] if o.short else [])
    if typing.get_origin(base) is list:
        return click.option(*decls, o.name, multiple=True, default=tuple(o.default), metavar=o.metavar or "VALUE", **kw)
    if o.choices:
        kw["type"] = click.Choice(list(o.choices))
    elif base in (int, float):
        kw["type"] = base
    if o.metavar:
        kw["metavar"] = o.metavar
    if o.default is None:
        kw["show_default"] = False
    return click.option(*decls, o.name, default=o.default, **kw)


def config_options(cls: type, skip: tuple[str, ...] = (), sets: bool = True) -> Callable:
    """Decorator: the click options of every CLI field of ``cls`` (less ``skip``), ``--config``
    and (``sets``) ``--set KEY=VALUE``."""

    def deco(fn: Callable) -> Callable:
        for o in reversed([o for o in options(cls) if o.cli and o.name not in skip]):
            fn = click_option(o)(fn)
        if sets:
            fn = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                              help="Set any key of the stage's config, also those without an option (repeatable).")(fn)
        fn = click.option("--config", "config_file", type=click.Path(exists=True), default=None, help=CONFIG_HELP)(fn)
        return fn

    return deco


def saved_config(path: str | Path) -> dict:
    """The config a run folder, TOML file, HDF5 file or evaluation JSON saved."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.toml"
        if not p.is_file():
            raise LatentdynError(f"--config {path}: the folder has no config.toml; give a run folder or a .toml file")
    if p.suffix == ".toml":
        return load_toml(p)
    if p.suffix == ".json":
        try:
            data = json.loads(p.read_text()).get("config")
        except (OSError, ValueError, AttributeError):
            data = None
    elif p.suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(p, "r") as f:
                data = json.loads(f.attrs["config"]) if "config" in f.attrs else None
        except OSError:
            data = None
    else:
        data = None
    if not isinstance(data, dict):
        raise LatentdynError(f"--config {path}: holds no saved config; give a run folder, a .toml file, or a file "
                             "written by latentdyn")
    return data


def build_config(cls: type, params: dict, ctx: click.Context, config_file=None, sets=(), skip=()) -> Any:
    """The config from a saved one (``config_file``), the options given, and ``--set``."""
    fields = [o for o in options(cls) if o.cli and o.name not in skip]
    base = saved_config(config_file) if config_file else {}
    data = {k: v for k, v in base.items()}
    for o in fields:
        given = ctx.get_parameter_source(o.name) not in (click.core.ParameterSource.DEFAULT, None)
        if given or (o.name not in data and not config_file):
            value = params[o.name]
            data[o.name] = list(value) if isinstance(value, tuple) else value
    for item in sets:
        key = item.partition("=")[0].strip()
        if "." in key:
            raise LatentdynError(f"--set {item!r}: a stage's keys are flat; write --set {key.split('.')[-1]}=...")
    data = apply_overrides(data, list(sets))
    return from_dict(cls, data)
