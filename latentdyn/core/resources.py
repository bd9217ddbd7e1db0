"""Where scene and experiment definitions are found: the user's folders first, then ours.

A scene or experiment NAME is looked up as NAME.toml in, in order: the folder given with
``--scenes-dir`` / ``--experiments-dir`` (or ``$LATENTDYN_SCENES`` / ``$LATENTDYN_EXPERIMENTS``),
``./scenes/`` / ``./experiments/`` of the current folder, and the definitions shipped inside the
package (the repository's top-level ``scenes/`` and ``experiments/``, read with
importlib.resources, so an installed wheel finds them from any folder).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def shipped(kind: str) -> Path:
    """The folder of shipped definitions of ``kind`` ("scenes" or "experiments")."""
    return Path(str(resources.files("latentdyn.shipped") / kind))


def _folders(kind: str, env: str, extra: str | Path | None) -> tuple[Path, ...]:
    out = [Path(p) for p in (extra, os.environ.get(env)) if p]
    return (*out, Path.cwd() / kind, shipped(kind))


def scene_folders(extra: str | Path | None = None) -> tuple[Path, ...]:
    return _folders("scenes", "LATENTDYN_SCENES", extra)


def experiment_folders(extra: str | Path | None = None) -> tuple[Path, ...]:
    return _folders("experiments", "LATENTDYN_EXPERIMENTS", extra)


def list_definitions(folders: tuple[Path, ...]) -> list[Path]:
    """Every NAME.toml of the folders, the first of each name winning, sorted by name."""
    seen: dict[str, Path] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            seen.setdefault(path.stem, path)
    return [seen[k] for k in sorted(seen)]
