"""What every trainer shares: run folders, checkpoints, metrics, resume and NaN guards.

A run folder holds ``config.toml`` (the resolved configuration), ``metrics.jsonl`` (one JSON
object per epoch), ``last.pt`` (written every epoch) and ``best.pt`` (best validation score).
Checkpoints are written atomically and carry their own provenance: a format name and version,
the kind of model, the full config, model and optimizer states, the epoch and the best score.
They are read with ``torch.load(..., weights_only=True)``, so a crafted file cannot run code.
Randomness inside an epoch is derived from (seed, epoch), so resuming after epoch k replays
epochs k+1... exactly as an uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from latentdyn.core.config import dumps_toml
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

CHECKPOINT_FORMAT = "latentdyn-checkpoint"
CHECKPOINT_VERSION = 1


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A well-mixed 63-bit seed for (seed, epoch, stream): the randomness of one epoch."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def torch_generator(seed: int, device) -> "torch.Generator":  # noqa: F821
    import torch

    dev = device if isinstance(device, torch.device) else torch.device(device)
    g = torch.Generator(device=dev if dev.type in ("cuda",) else "cpu")
    g.manual_seed(seed)
    return g


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
    if int(ck.get("format_version", 0)) > CHECKPOINT_VERSION:
        raise LatentdynError(f"{path} has checkpoint version {ck.get('format_version')}; upgrade latentdyn to read it")
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


def config_diff(old: dict, new: dict, ignore: set[str], prefix: str = "") -> list[str]:
    """Keys whose values differ between two plain nested configs (``ignore``: dotted keys)."""
    out = []
    for k in sorted(set(old) | set(new)):
        key = f"{prefix}{k}"
        if key in ignore:
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, ignore, key + ".")
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


def prepare_run_dir(run_dir: Path, config: dict, kind: str, resume: bool, ignore: set[str]) -> dict | None:
    """Create or check a run folder; return the checkpoint to resume from (or None).

    A new run refuses a folder that already holds a run (so nothing is overwritten); a resumed
    run refuses a folder of another kind of model or with a different config (``ignore`` lists
    the keys that may change on resume, such as the number of epochs).
    """
    last = run_dir / "last.pt"
    if resume:
        if not last.exists():
            raise LatentdynError(f"--resume: {run_dir} has no last.pt to resume from; start a new run without --resume")
        ck = load_checkpoint(last, kind)
        diff = config_diff(ck["config"], config, ignore)
        if diff:
            raise LatentdynError(f"--resume: the config differs from the run's ({'; '.join(diff[:3])}); resume with the same settings or use a new --out")
        return ck
    if run_dir.exists() and any(run_dir.glob("*.pt")):
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


def write_config(run_dir: Path, config: dict) -> None:
    with atomic_path(run_dir / "config.toml") as tmp:
        tmp.write_text(dumps_toml(config))


def check_finite(value: float, epoch: int, run_dir: Path, what: str = "loss") -> None:
    if not math.isfinite(value):
        raise LatentdynError(
            f"the {what} became {value} in epoch {epoch}; training stopped and {run_dir / 'last.pt'} keeps the last "
            "good epoch; lower --lr (or --beta warm-up) and --resume"
        )


def start(run_dir: Path, plain: dict, kind: str, resume: bool, ignore: set[str], model, optimizer,
          dist=None) -> tuple[int, float, MetricsLog]:
    """Prepare the run folder and restore a checkpoint when resuming.

    Returns (first epoch to run, best score so far, the metrics log). Under torchrun (``dist``
    active) rank 0 prepares and checks the folder and hands its answer, or its error, to every
    rank; the other ranks then load the same ``last.pt``.
    """
    if dist is None or not dist.active:
        return _start(run_dir, plain, kind, resume, ignore, model, optimizer)
    first, best, log = dist.on_main(lambda: _start(run_dir, plain, kind, resume, ignore, model, optimizer))
    if not dist.main and first > 1:
        ck = load_checkpoint(run_dir / "last.pt", kind, map_location=next(model.parameters()).device)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
    return first, best, log


def _start(run_dir: Path, plain: dict, kind: str, resume: bool, ignore: set[str], model, optimizer) -> tuple[int, float, MetricsLog]:
    import torch

    ck = prepare_run_dir(run_dir, plain, kind, resume, ignore)
    write_config(run_dir, plain)
    log = MetricsLog(run_dir / "metrics.jsonl")
    if ck is None:
        if log.path.exists():
            log.path.unlink()
        return 1, -float("inf"), log
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    torch.set_rng_state(ck["rng"]["torch"])
    log.truncate(ck["epoch"])
    return ck["epoch"] + 1, float(ck["best_score"]), log


def finish_epoch(run_dir: Path, kind: str, plain: dict, model, optimizer, epoch: int, row: dict, score: float,
                 best: float, log: MetricsLog, extra: dict | None = None) -> float:
    """Log the epoch, write last.pt (and best.pt when ``score`` beats ``best``); returns the new best.

    The metrics row is written before the checkpoint: a crash in between leaves a row that the
    next ``--resume`` drops (``MetricsLog.truncate``), never a checkpoint without its row.
    """
    import torch

    log.append(row)
    payload = {
        "kind": kind, "config": plain, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "epoch": epoch, "best_score": max(best, score), "rng": {"torch": torch.get_rng_state()}, **(extra or {}),
    }
    save_checkpoint(run_dir / "last.pt", payload)
    if score > best:
        save_checkpoint(run_dir / "best.pt", payload)
    return max(best, score)
