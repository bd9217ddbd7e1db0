"""Stage options, each written once: name, type, default, the reason for the default, help text.

A stage's settings are one dataclass (``TrainVAEConfig``, ``RolloutConfig``, ...) whose fields
are made with :func:`option`. Everything else is derived from those fields: the click options
of the stage's command (``latentdyn.cli.derive``), the keys of its experiment-file table, the
run folder's ``config.toml``, what enters a stage's cache key and what may change on
``--resume``. Adding an option to a stage is one new field.

Example::

    @dataclass
    class TrainVAEConfig:
        beta: float = option(1.0, "Weight of the KL term (Higgins et al. 2017).",
                             why="1 is the plain VAE")
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Iterator


def option(default: Any, help: str, *, why: str = "", flag: str | None = None, choices: tuple[str, ...] | None = None,
           metavar: str | None = None, short: str | None = None, cli: bool = True, in_key: bool = True,
           may_resume: bool = False, minimum: float | None = None, maximum: float | None = None) -> Any:
    """A dataclass field that carries its help text and how the CLI, caches and resume treat it.

    ``why``: the reason for the default (shown in ``--help`` and docs). ``flag``: the click
    spelling of a boolean, e.g. ``"--use-logvar/--means-only"``. ``choices``: the allowed strings.
    ``short``: a one-letter alias such as ``"-n"``. ``cli=False``: settable from TOML and
    ``--set`` only. ``in_key=False``: cannot change what the stage computes (the device, the
    number of workers), so it does not enter the stage's cache key. ``may_resume``: may differ
    when a training run is resumed (``epochs``, ``device``). ``minimum``/``maximum``: bounds
    checked when the config is built.
    """
    meta = {"help": help, "why": why, "flag": flag, "choices": choices, "metavar": metavar, "short": short, "cli": cli,
            "in_key": in_key, "may_resume": may_resume, "minimum": minimum, "maximum": maximum}
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class Option:
    """One field of a stage config, as the CLI and the pipeline see it."""

    name: str
    type: Any
    default: Any
    help: str
    why: str
    flag: str | None
    choices: tuple[str, ...] | None
    metavar: str | None
    short: str | None
    cli: bool
    in_key: bool
    may_resume: bool
    minimum: float | None
    maximum: float | None

    @property
    def optional(self) -> bool:
        return type(None) in typing.get_args(self.type)

    @property
    def base_type(self) -> Any:
        """The annotation less ``| None``."""
        args = [a for a in typing.get_args(self.type) if a is not type(None)]
        if typing.get_origin(self.type) in (typing.Union, getattr(__import__("types"), "UnionType")) and len(args) == 1:
            return args[0]
        return self.type

    @property
    def full_help(self) -> str:
        return self.help + (f" [default: {self.why}]" if self.why else "")


def options(cls: type) -> Iterator[Option]:
    """The options of a stage config class, in field order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        m = f.metadata
        if "help" not in m:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with option(...)")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        yield Option(f.name, hints[f.name], default, m["help"], m["why"], m["flag"], m["choices"], m["metavar"],
                     m["short"], m["cli"], m["in_key"], m["may_resume"], m["minimum"], m["maximum"])


def check(obj: Any, where: str = "") -> None:
    """Check a config's values against its options' choices and bounds (one-line errors)."""
    from latentdyn.core.errors import LatentdynError

    for o in options(type(obj)):
        v = getattr(obj, o.name)
        key = f"{where}.{o.name}" if where else o.name
        if v is None:
            continue
        if o.choices is not None and v not in o.choices:
            raise LatentdynError(f"{key} = {v!r}: use one of {', '.join(o.choices)}")
        if o.minimum is not None and isinstance(v, (int, float)) and v < o.minimum:
            raise LatentdynError(f"{key} = {v!r}: must be at least {o.minimum:g}")
        if o.maximum is not None and isinstance(v, (int, float)) and v > o.maximum:
            raise LatentdynError(f"{key} = {v!r}: must be at most {o.maximum:g}")


def closest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """'; did you mean X?' for the valid name closest to ``name``, or '' when none is close."""
    hit = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {hit[0]}?" if hit else ""


def key_settings(obj: Any) -> dict[str, Any]:
    """The settings that can change what a stage computes (those with ``in_key``)."""
    from latentdyn.core.config import to_dict

    plain = to_dict(obj)
    return {o.name: plain[o.name] for o in options(type(obj)) if o.in_key}


def resumable(cls: type) -> set[str]:
    """Names of the options that may change when a run is resumed."""
    return {o.name for o in options(cls) if o.may_resume}
