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
           may_resume: bool = False, minimum: float | None = None, maximum: float | None = None,
           key_if_set: bool | str = False) -> Any:
    """A dataclass field that carries its help text and how the CLI, caches and resume treat it.

    ``why``: the reason for the default (shown in ``--help`` and docs). ``flag``: the click
    spelling of a boolean, e.g. ``"--use-logvar/--means-only"``. ``choices``: the allowed strings.
    ``short``: a one-letter alias such as ``"-n"``. ``cli=False``: settable from TOML and
    ``--set`` only. ``in_key=False``: cannot change what the stage computes (the device, the
    number of workers), so it does not enter the stage's cache key. ``may_resume``: may differ
    when a training run is resumed (``epochs``, ``device``). ``minimum``/``maximum``: bounds
    checked when the config is built. ``key_if_set``: an option added after runs were made whose
    default computes exactly what those runs computed; it enters the cache key only when set to
    something else, so finished stages keep their keys (and are skipped) across the addition.
    ``key_if_set=True`` marks an option that was once always in the key (so the stage's
    ``full_key``, which reproduces those keys, includes it); ``key_if_set="added"`` one that never
    was (left out of ``full_key`` too). Either way a checkpoint saved before the option existed
    resumes as if it had the default (``later_defaults``).
    """
    meta = {"help": help, "why": why, "flag": flag, "choices": choices, "metavar": metavar, "short": short, "cli": cli,
            "in_key": in_key, "may_resume": may_resume, "minimum": minimum, "maximum": maximum, "key_if_set": key_if_set}
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
    key_if_set: bool | str = False

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
        return self.help + (f" (Default because: {self.why}.)" if self.why else "")


DEVICE_HELP = "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps."


def device_option(training: bool = False) -> Any:
    """The ``device`` field every stage that runs a model has (it never changes a result)."""
    return option("auto", DEVICE_HELP, in_key=False, may_resume=training)


def data_dir_option() -> Any:
    """The ``data_dir`` field of the stages that may read an image dataset."""
    return option(None, "Folder holding the dataset files as distributed (searched before the cache).", in_key=False,
                  may_resume=True, metavar="DIR")


def seed_option(what: str = "every random choice") -> Any:
    return option(0, f"Seed of {what}; the same seed gives the same bytes.", minimum=0, maximum=2**63 - 1)


def vae_option() -> Any:
    """The ``vae`` input field of the stages that read a trained VAE."""
    return option("vae", "VAE run folder (in an experiment: a train-vae stage).", metavar="RUN")


def source_option() -> Any:
    """The ``data`` input field of the stages that read what a VAE was trained on by default."""
    return option(None, "Dataset name or scene file (default: the VAE's training data).", metavar="SOURCE")


@dataclasses.dataclass
class TrainingOptions:
    """The settings both trainers share (the epoch loop's, ``latentdyn.engine.loop``). A trainer's
    config inherits them; its own fields come first in ``--help``."""

    train_split: str = option("train", "The split trained on.", cli=False)
    val_split: str | None = option(None, "The split that selects best.pt and drives early stopping and the plateau "
                                   "schedule (default: val; never test). '' for none.", cli=False)
    lr_schedule: str = option("constant", "Learning-rate schedule: constant, cosine (to 0 over the epochs, set once an epoch), "
                              "cosine-step (the same over the optimizer steps, set every step: for runs of a few epochs), "
                              "or plateau (halve when the val score stalls for 3 epochs).",
                              choices=("constant", "cosine", "cosine-step", "plateau"))
    patience: int = option(0, "Stop when the val score has not improved for this many epochs (0: never).", minimum=0)
    seed: int = seed_option()
    device: str = device_option(training=True)
    compile: bool = option(False, "torch.compile the model (slow to start; pays off on GPUs and long runs).",
                           in_key=False, may_resume=True)
    threads: int = option(0, "CPU threads per op (0: chosen from the cores other processes leave free and timed on the "
                          "work, re-read during training; LATENTDYN_THREADS or OMP_NUM_THREADS also fix it).", minimum=0,
                          why="0: never slower for having more threads, on an idle or a shared machine (docs/results.md)",
                          in_key=False, may_resume=True, key_if_set="added")
    tensorboard: bool = option(False, "Also log to RUN/tensorboard (pip install \"latentdyn[tensorboard]\").",
                               in_key=False, may_resume=True)


def options(cls: type) -> Iterator[Option]:
    """The options of a stage config class: its own fields first, then those it inherits."""
    hints = typing.get_type_hints(cls)
    own = set(cls.__dict__.get("__annotations__", {}))
    fields = sorted(dataclasses.fields(cls), key=lambda f: f.name not in own)  # stable: field order within each
    for f in fields:
        if not f.init:
            continue
        m = f.metadata
        if "help" not in m:
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with option(...)")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        yield Option(f.name, hints[f.name], default, m["help"], m["why"], m["flag"], m["choices"], m["metavar"],
                     m["short"], m["cli"], m["in_key"], m["may_resume"], m["minimum"], m["maximum"],
                     m.get("key_if_set", False))


def check(obj: Any, where: str = "") -> None:
    """Check a config's values against its options' choices and bounds (one-line errors)."""
    from latentdyn.core.errors import LatentdynError

    for o in options(type(obj)):
        v = getattr(obj, o.name)
        if v is None:
            continue
        key = f"{where}.{o.name} = {v!r}" if where else f"--{o.name.replace('_', '-')} {v}"  # as the user wrote it
        if o.choices is not None and v not in o.choices:
            raise LatentdynError(f"{key}: use one of {', '.join(o.choices)}")
        if o.minimum is not None and isinstance(v, (int, float)) and v < o.minimum:
            raise LatentdynError(f"{key}: must be at least {o.minimum:g}")
        if o.maximum is not None and isinstance(v, (int, float)) and v > o.maximum:
            raise LatentdynError(f"{key}: must be at most {o.maximum:g}")


def closest(name: str, valid: list[str] | tuple[str, ...]) -> str:
    """'; did you mean X?' for the valid name closest to ``name``, or '' when none is close."""
    hit = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f"; did you mean {hit[0]}?" if hit else ""


def key_settings(obj: Any, every: bool = False) -> dict[str, Any]:
    """The settings that can change what a stage computes (those with ``in_key``; a ``key_if_set``
    option only when it differs from its default, or, with ``every``, always when it was once
    always in the key: ``key_if_set=True``, not ``"added"``)."""
    import json

    plain = json.loads(json.dumps(dataclasses.asdict(obj)))  # plain data, as config.to_dict gives

    def keep(o: Option) -> bool:
        if not o.key_if_set or plain[o.name] != json.loads(json.dumps(o.default)):
            return True
        return every and o.key_if_set is True

    return {o.name: plain[o.name] for o in options(type(obj)) if o.in_key and keep(o)}


def later_defaults(cls: type) -> dict[str, Any]:
    """The defaults (plain data) of the options added after runs were made (``key_if_set``): what a
    checkpoint's config that lacks them computed, so ``--resume`` accepts it."""
    import json

    return {o.name: json.loads(json.dumps(o.default)) for o in options(cls) if o.key_if_set}


def resumable(cls: type) -> set[str]:
    """Names of the options that may change when a run is resumed."""
    return {o.name for o in options(cls) if o.may_resume}
