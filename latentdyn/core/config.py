"""Dataclass configs from TOML files and ``--set section.key=value`` overrides.

A config is a dataclass whose fields are plain values or nested dataclasses (one per TOML
table). ``from_dict`` checks every key against the fields, so a typo is a one-line error that
lists the valid keys instead of a silently ignored setting; ``to_dict`` gives back plain data
that is saved with every result (JSON in HDF5 attributes, TOML in run folders).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from latentdyn.core.errors import LatentdynError

T = TypeVar("T")


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a missing or malformed file is a one-line LatentdynError."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise LatentdynError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as e:
        raise LatentdynError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise LatentdynError(f"cannot read config file {path}: {e.strerror}") from None


def find_toml(name_or_path: str | Path, folders: tuple[Path, ...], what: str) -> Path:
    """Resolve a TOML path, or a NAME looked up as NAME.toml in ``folders`` in order.

    ``what`` names the kind of file in the one-line errors (e.g. "scene", "experiment").
    """
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise LatentdynError(f"{what} file {p} does not exist")
        return p
    for folder in folders:
        if (folder / f"{p}.toml").is_file():
            return folder / f"{p}.toml"
    known = sorted({c.stem for f in folders if f.is_dir() for c in f.glob("*.toml")})
    raise LatentdynError(f"unknown {what} {str(name_or_path)!r}; give a .toml path or one of: {', '.join(known) or 'none found'}")


def parse_value(text: str) -> Any:
    """Parse the right-hand side of ``--set key=value`` as a TOML value, else keep the string.

    ``2.0`` -> 2.0, ``true`` -> True, ``[1, 2]`` -> [1, 2], ``"disk"`` and ``disk`` -> "disk".
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``a.b.c=value`` override applied.

    Keys are checked later by ``from_dict``; here only the syntax is checked.
    """
    out = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LatentdynError(f"--set {item!r}: expected KEY=VALUE, for example --set render.radius=2.0")
        parts = key.strip().split(".")
        node = out
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise LatentdynError(f"--set {item!r}: {p!r} is a value, not a section")
            node = child
        node[parts[-1]] = parse_value(value.strip())
    return out


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (int -> float widening allowed)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(tp):
            try:
                return _coerce(value, option, where)
            except LatentdynError as e:
                errors.append(str(e))
        names = " or ".join(_type_name(a) for a in typing.get_args(tp))
        raise LatentdynError(f"{where} = {value!r}: expected {names}")
    if tp is type(None):
        if value is None:
            return None
        raise LatentdynError(f"{where} = {value!r}: expected nothing")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise LatentdynError(f"{where} = {value!r}: expected a list")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise LatentdynError(f"{where} must be a table, got {value!r}")
        key_tp, item_tp = typing.get_args(tp) or (Any, Any)
        return {k: _coerce(v, item_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise LatentdynError(f"{where} must be a table of settings, got {value!r}")
        return from_dict(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise LatentdynError(f"{where} = {value!r}: expected a number")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise LatentdynError(f"{where} = {value!r}: expected a whole number")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise LatentdynError(f"{where} = {value!r}: expected true or false")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise LatentdynError(f"{where} = {value!r}: expected a string")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from plain data, refusing unknown keys with the valid ones listed."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        from latentdyn.core.options import closest

        prefix = f"{where}." if where else ""
        hint = closest(unknown[0], sorted(fields))
        raise LatentdynError(
            f"unknown key {prefix}{unknown[0]}{hint or ''}; valid keys{' in [' + where + ']' if where else ''}: "
            + ", ".join(sorted(fields))
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(value, hints[name], key)
    obj = cls(**kwargs)
    if any("help" in f.metadata for f in dataclasses.fields(cls)):  # a stage config: choices and bounds
        from latentdyn.core.options import check as check_options

        check_options(obj, where)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data form of a dataclass config (tuples become lists, for JSON and TOML)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def dumps_toml(data: Mapping[str, Any]) -> str:
    """Write plain nested data as TOML (tables of scalars and lists; enough for our configs)."""

    def fmt(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} as TOML")

    def key(k: str) -> str:
        return k if k and all(c.isalnum() or c in "-_" for c in k) else json.dumps(k)

    def table(d: Mapping[str, Any], prefix: str) -> list[str]:
        lines = [f"{key(k)} = {fmt(v)}" for k, v in d.items() if v is not None and not isinstance(v, Mapping)]
        for k, v in d.items():
            if isinstance(v, Mapping):
                name = f"{prefix}.{key(k)}" if prefix else key(k)
                lines += ["", f"[{name}]"] + table(v, name)
        return lines

    return "\n".join(table(data, "")).strip() + "\n"
