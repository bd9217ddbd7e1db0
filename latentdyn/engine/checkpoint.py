"""Run folders and checkpoints: atomic, self-describing, safe to load, resumable.

A run folder holds ``config.toml`` (the resolved configuration), ``metrics.jsonl`` (one JSON
object per epoch), ``best.pt`` (best validation score) and ``last.pt`` (written every epoch).
Checkpoints are written atomically (a temporary file beside the destination, renamed into
place) and carry their own provenance: a format name and version, the kind of model, the full
config, model and optimizer states, the epoch and the best score. They are read with
``torch.load(..., weights_only=True)``, so a crafted file cannot run code. Temporary files that
a crash left behind (``.NAME.*.tmp.pt``) are ignored and removed when a run starts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from latentdyn.core.config import dumps_toml
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

CHECKPOINT_FORMAT = "latentdyn-checkpoint"
CHECKPOINT_VERSION = 2  # 2: flat stage configs (latentdyn 0.2)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Atomically write a checkpoint (a dict of tensors, numbers, strings, lists, dicts)."""
    import torch

    payload = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, kind: str | None = None, map_location="cpu") -> dict[str, Any]:
    """Read a checkpoint safely; refuse other formats, kinds, and anything that is not plain data."""
    import pickle

    import torch

    path = Path(path)
    if not path.exists():
        raise LatentdynError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe content"
        raise LatentdynError(f"{path} was refused: it holds more than plain tensors and data ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise LatentdynError(f"{path} is not a readable checkpoint (corrupt or truncated: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise LatentdynError(f"{path} is not a latentdyn checkpoint")
    version = int(ck.get("format_version", 0))
    if version > CHECKPOINT_VERSION:
        raise LatentdynError(f"{path} has checkpoint version {version}; upgrade latentdyn to read it")
    if version < CHECKPOINT_VERSION:
        raise LatentdynError(f"{path} was written by an older latentdyn (checkpoint version {version}, this one reads "
                             f"{CHECKPOINT_VERSION}); train it again with this version")
    if kind is not None and ck.get("kind") != kind:
        raise LatentdynError(f"{path} is a {ck.get('kind')!r} checkpoint, not a {kind!r} one; give the right run folder")
    return ck


class MetricsLog:
    """``metrics.jsonl``: one JSON object per epoch, appended and flushed to disk."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def truncate(self, last_epoch: int) -> None:
        """Keep only epochs <= last_epoch (a crash may have logged an epoch whose checkpoint was lost)."""
        rows = [r for r in self.read() if r.get("epoch", 0) <= last_epoch]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))

    def append(self, row: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())


def config_diff(old: dict, new: dict, ignore: set[str], prefix: str = "", defaults: dict | None = None) -> list[str]:
    """Keys whose values differ between two plain nested configs (``ignore``: dotted keys). A
    top-level key that ``old`` lacks reads as its value in ``defaults`` (options added since, at
    the default that computes what the old run computed; ``options.later_defaults``)."""
    out = []
    defaults = defaults or {}
    for k in sorted(set(old) | set(new)):
        key = f"{prefix}{k}"
        if key in ignore:
            continue
        a, b = old.get(k, defaults.get(k) if not prefix else None), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, ignore, key + ".")
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def prepare_run_dir(run_dir: Path, config: dict, kind: str, resume: bool, ignore: set[str],
                    defaults: dict | None = None) -> dict | None:
    """Create or check a run folder; return the checkpoint to resume from (or None).

    A new run refuses a folder that already holds a run (so nothing is overwritten); a resumed
    run refuses a folder of another kind of model or with a different config (``ignore`` lists
    the keys that may change on resume, such as the number of epochs; ``defaults``: what a key
    the checkpoint predates stands for, see ``config_diff``).
    """
    last = run_dir / "last.pt"
    if resume:
        if not last.exists():
            raise LatentdynError(f"--resume: {run_dir} has no last.pt to resume from; start a new run without --resume")
        ck = load_checkpoint(last, kind)
        diff = config_diff(ck["config"], config, ignore, defaults=defaults)
        if diff:
            raise LatentdynError(f"--resume: the config differs from the run's ({'; '.join(diff[:3])}); resume with the same settings or use a new --out")
        return ck
    if run_dir.exists() and any(p.name in ("last.pt", "best.pt") for p in run_dir.glob("*.pt")):
        other = load_checkpoint(last, None) if last.exists() else None
        what = f"a {other.get('kind')} run" if other else "a run"
        raise LatentdynError(f"{run_dir} already holds {what}; pass --resume to continue it or choose a new --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise LatentdynError(f"--out {run_dir} is a file; give a folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentdynError(f"cannot create run folder {run_dir}: {e.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise LatentdynError(f"run folder {run_dir} is not writable")
    return None


def remove_stray_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files (``.NAME.XXXX.tmp.SUFFIX``) that a crash mid-write left behind."""
    stray = [p for p in run_dir.glob(".*.tmp*") if p.is_file()]
    for p in stray:
        p.unlink(missing_ok=True)
    return stray


def write_config(run_dir: Path, config: dict) -> None:
    with atomic_path(run_dir / "config.toml") as tmp:
        tmp.write_text(dumps_toml(config))
