"""The run folder of an experiment: a folder per stage, its record, the lock and the log.

Each stage runs in ``RUN/NAME/`` and leaves ``RUN/NAME/stage.json``: its kind, resolved
settings, inputs, content key, status and the latentdyn version that wrote it. A stage whose
key changed is rerun in a fresh folder; the old folder is moved aside to
``RUN/_superseded/NAME-KEY/`` (never deleted), so an upgrade or a changed setting cannot destroy
a result.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Callable

from latentdyn.core.version import __version__
from latentdyn.core.config import load_toml, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

STAGE_FORMAT = "latentdyn-stage"
SUPERSEDED = "_superseded"


def stage_dir(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / name


def read_record(run_dir: Path, name: str) -> dict | None:
    p = stage_dir(run_dir, name) / "stage.json"
    if not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text())
    except (OSError, ValueError):
        return None  # a damaged record means: redo the stage
    return rec if isinstance(rec, dict) and rec.get("format") == STAGE_FORMAT else None


def write_record(run_dir: Path, stage, status: str, **extra) -> dict:
    from latentdyn.pipeline.stages import STAGE_VERSION

    rec = {"format": STAGE_FORMAT, "format_version": STAGE_VERSION, "name": stage.name, "kind": stage.kind,
           "status": status, "key": stage.key, "resume_key": stage.resume_key, "settings": to_dict(stage.settings),
           "reads": stage.refs, "latentdyn": __version__, **extra}
    with atomic_path(stage_dir(run_dir, stage.name) / "stage.json") as tmp:
        tmp.write_text(json.dumps(rec, indent=2, allow_nan=False) + "\n")
    return rec


def outputs_of(run_dir: Path, name: str, kind: str) -> dict[str, Path]:
    """The paths a finished stage leaves (what downstream stages read)."""
    from latentdyn.pipeline.stages import KINDS

    d = stage_dir(run_dir, name)
    return {k: (d / rel).resolve() if rel.startswith("..") else (d / rel if rel else d) for k, rel in KINDS[kind].outputs.items()}


def move_aside(run_dir: Path, name: str) -> Path | None:
    """Move a stage folder whose results no longer match to ``RUN/_superseded/NAME-KEY[-k]/``."""
    d = stage_dir(run_dir, name)
    if not d.exists():
        return None
    rec = read_record(run_dir, name) or {}
    base = Path(run_dir) / SUPERSEDED / f"{name}-{str(rec.get('key', 'unknown'))[:10]}"
    dest, k = base, 1
    while dest.exists():
        k += 1
        dest = base.with_name(f"{base.name}-{k}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(d), str(dest))
    return dest


def last_seconds(run_dir: Path, name: str) -> float | None:
    """How long stage ``name`` took when it last finished (its record, else its newest superseded
    folder's), for the run's estimate of the time left; None if it never finished."""
    superseded = sorted((Path(run_dir) / SUPERSEDED).glob(f"{name}-*/stage.json"), key=lambda p: p.stat().st_mtime)
    for path in [stage_dir(run_dir, name) / "stage.json", *reversed(superseded)]:
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(rec, dict) and rec.get("name") == name and rec.get("status") == "done"
                and isinstance(rec.get("seconds"), (int, float))):
            return float(rec["seconds"])
    return None


def trained_epochs(d: Path) -> int:
    """The last epoch logged in a training stage's metrics.jsonl (0 if none)."""
    try:
        lines = (d / "metrics.jsonl").read_text().splitlines()
        return int(json.loads(lines[-1])["epoch"]) if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


@contextlib.contextmanager
def lock(run_dir: Path):
    """One ``latentdyn run`` per run folder at a time."""
    import fcntl

    f = open(run_dir / ".lock", "a")  # "a": never truncates, so the mtime of a finished run stays
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise LatentdynError(f"another `latentdyn run` is using {run_dir}; wait for it or choose another --out") from None
        yield
    finally:
        f.close()


class RunLog:
    """Stage lines to the terminal and to RUN/run.log."""

    def __init__(self, path: Path, echo: Callable[[str], None] | None):
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        with open(self.path, "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        if self.echo:
            self.echo(msg)


def run_summary(run_dir: str | Path) -> list[dict]:
    """The stage records of a run folder, in the order of its experiment.toml (for reports)."""
    run_dir = Path(run_dir)
    cfg = run_dir / "experiment.toml"
    if not cfg.is_file():
        return []
    names = list(load_toml(cfg).get("stages", {}))
    return [r for n in names if (r := read_record(run_dir, n)) is not None]
