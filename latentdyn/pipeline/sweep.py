"""The ``[sweep]`` table of an experiment file: one setting over several values (and seeds).

::

    [sweep]
    key = "beta"                          # a setting of the swept stages
    values = [0, 0.5, 1, 2, 4, 8, 16]
    stages = ["vae_light", "vae_balls"]   # the stages whose `key` takes each value
    seeds = [1, 2, 3]                     # optional: every seeded stage of the clones gets each seed

At load time each swept stage, and every stage downstream of it (one that reads it, directly or
not), is cloned once per point (value, seed), named ``NAME-KEY=VALUE-seed=SEED`` (without
``-seed=SEED`` when there are no seeds), e.g. ``vae_light-beta=0.5-seed=1``. A clone's references
to other cloned stages point to the clones of the same point; stages upstream of the sweep (the
scenes) stay single and are shared. A gathering stage (``sweep-summary``) is not cloned: a field
of it that names a cloned stage reads every clone of it, in point order; the report reads
everything. Content keys then skip finished clones on a rerun, as for any stage. See
docs/experiments.md.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from latentdyn.core.errors import LatentdynError
from latentdyn.core.options import closest
from latentdyn.pipeline.stages import KINDS

SWEEP_KEYS = ("key", "values", "stages", "seeds")
GATHERING = ("sweep-summary",)  # kinds that read every clone instead of being cloned
_SAFE = re.compile(r"^[A-Za-z0-9_.+-]+$")  # a value as it appears in a stage name (and a folder name)


def _kind(name: str, table: dict) -> str | None:
    return table.get("kind", name if name in KINDS else None)


def _fmt_value(v: Any, where: str) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise LatentdynError(f"{where}: {v!r} is not a number or a string; give values such as [0, 0.5, 1]")
    text = f"{v:g}" if isinstance(v, (int, float)) else v
    if not _SAFE.match(text):
        raise LatentdynError(f"{where}: {v!r} cannot be part of a stage folder name; use letters, digits, '.', '_', '+', '-'")
    return text


def points(sweep: dict, where: str) -> list[tuple[str, dict]]:
    """The sweep's points in order: (name suffix, {key: value[, "seed": seed]}), values outer, seeds inner."""
    key, seeds = sweep["key"], sweep.get("seeds")
    out = []
    for v in sweep["values"]:
        vt = _fmt_value(v, f"{where} values")
        for seed in (seeds if seeds else [None]):
            suffix = f"-{key}={vt}" + (f"-seed={seed}" if seed is not None else "")
            out.append((suffix, {key: v, **({"seed": seed} if seed is not None else {})}))
    return out


def _ref(kind: str, table: dict, field: str) -> Any:
    """An input field's value: the table's, else the config's default (``vae = "vae"``)."""
    if field in table:
        return table[field]
    f = next(f for f in dataclasses.fields(KINDS[kind].config) if f.name == field)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _refs(name: str, table: dict) -> list[str]:
    """The stage names a raw stage table's input fields hold (a non-name is a dataset or a file)."""
    kind = _kind(name, table)
    if kind not in KINDS:
        return []  # an unknown kind: the one-line error comes from load_experiment
    out = []
    for f in KINDS[kind].refs:
        v = _ref(kind, table, f)
        out += [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, str)]
    return out


def check(sweep: Any, stages: dict, where: str) -> dict:
    """The sweep table, checked: every error is one line naming the key and the fix."""
    if not isinstance(sweep, dict):
        raise LatentdynError(f"{where}: [sweep] must be a table with key, values, stages (and seeds)")
    unknown = sorted(set(sweep) - set(SWEEP_KEYS))
    if unknown:
        raise LatentdynError(f"{where}: unknown key sweep.{unknown[0]}{closest(unknown[0], SWEEP_KEYS)}; "
                             f"valid keys: {', '.join(SWEEP_KEYS)}")
    for k in ("key", "values", "stages"):
        if k not in sweep:
            raise LatentdynError(f"{where}: [sweep] has no {k}; e.g. key = \"beta\", values = [0, 1, 4], stages = [\"vae\"]")
    key, values, names, seeds = sweep["key"], sweep["values"], sweep["stages"], sweep.get("seeds")
    if not isinstance(key, str) or not key:
        raise LatentdynError(f"{where}: sweep.key = {key!r}; give a setting name, e.g. key = \"beta\"")
    if not isinstance(values, list) or not values:
        raise LatentdynError(f"{where}: sweep.values is empty; give at least one value, e.g. values = [0, 1, 4]")
    if len({repr(v) for v in values}) != len(values):
        raise LatentdynError(f"{where}: sweep.values = {values!r} repeats a value; give each once")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise LatentdynError(f"{where}: sweep.stages must list stage names, e.g. stages = [\"vae\"]")
    if seeds is not None and (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
                              or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise LatentdynError(f"{where}: sweep.seeds = {seeds!r}; give distinct integers, e.g. seeds = [1, 2, 3], or leave it out")
    for n in names:
        if n not in stages:
            raise LatentdynError(f"{where}: sweep.stages names {n!r}, which is no stage{closest(n, list(stages))}; "
                                 f"stages: {', '.join(stages)}")
        if not isinstance(stages[n], dict):
            raise LatentdynError(f"{where}: stages.{n} must be a table of settings")
        kind = _kind(n, stages[n])
        if kind not in KINDS:
            raise LatentdynError(f"stage {n!r}: kind = {kind!r}; use one of {', '.join(KINDS)}{closest(str(kind), list(KINDS))}")
        if kind in GATHERING or KINDS[kind].partial_inputs:
            raise LatentdynError(f"{where}: sweep.stages names {n!r}, a {kind} stage, which gathers and cannot be swept")
        fields = [f.name for f in dataclasses.fields(KINDS[kind].config)]
        if key not in fields:
            raise LatentdynError(f"{where}: sweep.key = {key!r} is no setting of stage {n!r} ({kind}){closest(key, fields)}")
    return sweep


def expand(stages: dict, sweep: dict | None, where: str) -> tuple[dict, dict[str, dict]]:
    """Raw stage tables with the sweep's clones in place of the swept stages and those downstream.

    Returns (the new tables in run order, clone name -> its point ``{key: value[, "seed": s]}``).
    Each cloned stage's clones take its place in the file order.
    """
    if sweep is None:
        return stages, {}
    sweep = check(sweep, stages, where)
    pts = points(sweep, where)
    cloned: set[str] = set()
    for name, table in stages.items():
        if not isinstance(table, dict):
            continue
        kind = _kind(name, table)
        gathers = kind in GATHERING or (kind in KINDS and KINDS[kind].partial_inputs)
        if name in sweep["stages"] or (not gathers and any(r in cloned for r in _refs(name, table))):
            cloned.add(name)
    out: dict = {}
    where_of: dict[str, dict] = {}
    for name, table in stages.items():
        if name not in cloned:
            out[name] = _gather_refs(name, table, cloned, pts) if isinstance(table, dict) else table
            continue
        for suffix, point in pts:
            clone = {**table, "kind": _kind(name, table)}  # a clone's name is no kind
            for f in KINDS[_kind(name, table)].refs:
                v = _ref(_kind(name, table), clone, f)
                if isinstance(v, list):
                    clone[f] = [x + suffix if x in cloned else x for x in v]
                elif v in cloned:
                    clone[f] = v + suffix
            if name in sweep["stages"]:
                clone[sweep["key"]] = point[sweep["key"]]
            fields = {f.name for f in dataclasses.fields(KINDS[_kind(name, table)].config)}
            if "seed" in point and "seed" in fields:
                clone["seed"] = point["seed"]
            cname = name + suffix
            if cname in stages:
                raise LatentdynError(f"{where}: the sweep clone {cname!r} has the name of a stage; rename that stage")
            out[cname], where_of[cname] = clone, point
    return out, where_of


def _gather_refs(name: str, table: dict, cloned: set[str], pts: list[tuple[str, dict]]) -> dict:
    """A stage that is not cloned: a field naming a cloned stage reads every clone (a list field),
    or is refused (one stage cannot read many)."""
    kind = _kind(name, table)
    if kind not in KINDS:
        return table
    table = dict(table)
    for f in KINDS[kind].refs:
        v = _ref(kind, table, f)
        if isinstance(v, list):
            table[f] = [x + s for x in v for s in ([p[0] for p in pts] if x in cloned else [""])]
        elif isinstance(v, str) and v in cloned:
            raise LatentdynError(f"stage {name!r}: {f} = {v!r} is swept (one clone per point); read it from a stage "
                                 "downstream of the sweep, or add this stage to sweep.stages")
    return table
