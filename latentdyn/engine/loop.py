"""The one epoch loop of every trainer, with checkpoints, resume, tracking and NaN guards.

A trainer (``latentdyn.vae.train``, ``latentdyn.dynamics.train``) builds its model, data and
loss, and hands them to :func:`run_epochs` as a :class:`Fit`: the loop draws the batches of
each epoch, steps the optimizer, sums the per-example terms (all-reduced over torchrun
processes), validates on the validation split (rank 0), logs the row to ``metrics.jsonl`` and
TensorBoard, writes ``best.pt`` then ``last.pt`` and stops early when the validation score has
not improved for ``patience`` epochs. Randomness inside an epoch is derived from (seed, epoch),
so resuming after epoch k replays epochs k+1... exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from latentdyn.core.errors import LatentdynError
from latentdyn.engine.checkpoint import (
    MetricsLog, load_checkpoint, prepare_run_dir, remove_stray_temporaries, save_checkpoint, write_config,
)

SCHEDULES = ("constant", "cosine", "cosine-step", "plateau")
PER_STEP = ("cosine-step",)  # schedules stepped after every optimizer step, not every epoch


@dataclass
class Fit:
    """What a trainer hands the epoch loop.

    ``step(batch, epoch)`` returns a dict of per-example terms (B,) whose first entry in
    ``terms`` is the loss; ``batches(epoch)`` yields the batches of an epoch (``n_batches`` of
    them, ``n_examples`` examples over all ranks); ``validate(epoch)`` (rank 0) returns the
    validation metrics; ``score(row)`` the number to maximise (read from ``val_*`` when there is
    a validation split). ``on_epoch(epoch, row)`` runs after the checkpoints (rank 0);
    ``row_extra(epoch)`` adds entries to the epoch's row (rank 0); ``stop(epoch)``, asked before
    every epoch after the first, ends training when it returns True (one process only).
    """

    kind: str
    run_dir: Path
    plain: dict
    model: Any
    optimizer: Any
    epochs: int
    terms: tuple[str, ...]
    step: Callable[[Any, int], dict]
    batches: Callable[[int], Iterable]
    n_batches: int
    n_examples: int
    score: Callable[[dict], float]
    validate: Callable[[int], dict] | None = None
    grad_clip: float | None = None
    schedule: str = "constant"
    patience: int = 0
    extra: dict = field(default_factory=dict)
    on_epoch: Callable[[int, dict], None] | None = None
    message: Callable[[dict], str] | None = None
    defaults: dict = field(default_factory=dict)  # options added since a checkpoint was saved: options.later_defaults
    threads: int = 0  # intra-op CPU threads: 0 lets latentdyn.engine.threads choose and adapt
    row_extra: Callable[[int], dict] | None = None  # more entries of an epoch's row (e.g. the sequences seen so far)
    stop: Callable[[int], bool] | None = None  # asked before each epoch (1-based) but the first: True ends training (a time budget)


def make_scheduler(optimizer, schedule: str, epochs: int, n_batches: int = 1):
    """The learning-rate schedule: constant, cosine to 0 over the epochs (Loshchilov and Hutter
    2017, without restarts; stepped once an epoch), the same cosine over the ``epochs * n_batches``
    optimizer steps, stepped after each (``cosine-step``: for runs of a few epochs, whose last steps
    then take small ones), or halving when the validation score stops improving (plateau)."""
    import torch

    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "cosine-step":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * n_batches))
    if schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=3)
    if schedule != "constant":
        raise LatentdynError(f"lr_schedule {schedule!r}: use one of {', '.join(SCHEDULES)}")
    return None


def run_epochs(fit: Fit, dist, device, progress: bool | None = None, verbose: bool = True, resume: bool = False,
               ignore: set[str] = frozenset(), tracker=None) -> dict:
    """Train ``fit`` from its run folder's state (new, or resumed from ``last.pt``); returns the last row."""
    import torch
    from tqdm.auto import tqdm

    from latentdyn.engine.progress import Heartbeat, Progress, bars_shown, say
    from latentdyn.engine.threads import ThreadPolicy

    scheduler = make_scheduler(fit.optimizer, fit.schedule, fit.epochs, fit.n_batches)
    per_step = fit.schedule in PER_STEP
    threads = ThreadPolicy(fit.threads, adapt=device.type == "cpu")  # free cores, re-read while training
    first, best, log, since_best = start(fit.run_dir, fit.plain, fit.kind, resume, ignore, fit.model, fit.optimizer,
                                         dist, scheduler, fit.defaults)
    bars = dist.main and bars_shown(progress)  # else lines: one per epoch, and inside long epochs
    clock = Progress(fit.epochs, first - 1)  # elapsed, and the time left from the epochs run so far
    row: dict = {}
    for epoch in range(first, fit.epochs + 1):
        if fit.patience and since_best >= fit.patience:
            break  # early stopping on the validation score
        if fit.stop is not None and epoch > 1 and fit.stop(epoch):
            break
        t0 = time.perf_counter()
        fit.model.train()
        sums = torch.zeros(len(fit.terms), device=device, dtype=torch.float64)
        bar = tqdm(fit.batches(epoch), total=fit.n_batches, desc=f"epoch {epoch}/{fit.epochs}", unit="batch", leave=False,
                   disable=not bars)
        beat = Heartbeat(f"epoch {epoch}/{fit.epochs}", fit.n_batches, verbose and dist.main and not bars)
        for k, batch in enumerate(bar):
            terms = fit.step(batch, epoch)
            loss = terms[fit.terms[0]].mean()
            fit.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if fit.grad_clip:
                torch.nn.utils.clip_grad_norm_(fit.model.parameters(), fit.grad_clip)
            fit.optimizer.step()
            if per_step:
                scheduler.step()
            threads.step()
            sums += torch.stack([terms[t].detach().sum() for t in fit.terms]).double()
            if k % 50 == 49 and dist.main and not bar.disable:  # a host sync now and then for the bar, never every step
                bar.set_postfix(loss=f"{sums[0].item() / max(1, (k + 1) * len(terms[fit.terms[0]])):.3f}")
            beat(k + 1)  # no bar: a line now and then in a long epoch
        bar.close()
        threads.pause()  # validation and checkpoints are not steps
        tr = (dist.all_sum(sums) / fit.n_examples).tolist()
        check_finite(tr[0], epoch, fit.run_dir)
        if not dist.main:  # rank 0 validates; every rank takes its score, so schedules and stops agree
            score = _shared_score(dist, 0.0, device)
            since_best = 0 if score > best else since_best + 1
            best = max(best, score)
            _step_schedule(None if per_step else scheduler, score)
            continue
        row = {"epoch": epoch, **{f"train_{t}": v for t, v in zip(fit.terms, tr)},
               "lr": fit.optimizer.param_groups[0]["lr"], **(fit.row_extra(epoch) if fit.row_extra else {})}
        if fit.validate is not None:
            val = fit.validate(epoch)
            check_finite(val[next(iter(val))], epoch, fit.run_dir, "validation score")
            row.update({f"val_{k}": v for k, v in val.items()})
        row["seconds"] = time.perf_counter() - t0
        score = _shared_score(dist, fit.score(row), device)
        improved = score > best
        since_best = 0 if improved else since_best + 1
        _step_schedule(None if per_step else scheduler, score)
        best = finish_epoch(fit, epoch, row, score, best, log, scheduler, since_best)
        if tracker is not None:
            tracker.row(row, epoch)
        if fit.on_epoch is not None:
            fit.on_epoch(epoch, row)
        if verbose:
            say(f"epoch {epoch}/{fit.epochs}: " + (fit.message(row) if fit.message else f"loss {tr[0]:.4f}")
                + (" (best)" if improved else "") + f" ({row['seconds']:.1f} s; {clock.status(epoch)})")
    return row


def _shared_score(dist, score: float, device) -> float:
    """Rank 0's score on every rank (the others pass 0)."""
    if not dist.active:
        return score
    import torch

    return float(dist.all_sum(torch.tensor([score], device=device, dtype=torch.float64))[0])


def _step_schedule(scheduler, score: float | None) -> None:
    import torch

    if scheduler is None:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if score is not None:
            scheduler.step(score)
    else:
        scheduler.step()


def check_finite(value: float, epoch: int, run_dir: Path, what: str = "loss") -> None:
    if not math.isfinite(value):
        raise LatentdynError(
            f"the {what} became {value} in epoch {epoch}; training stopped and {run_dir / 'last.pt'} keeps the last "
            "good epoch; lower --lr (or --beta warm-up) and --resume"
        )


def start(run_dir: Path, plain: dict, kind: str, resume: bool, ignore: set[str], model, optimizer,
          dist=None, scheduler=None, defaults: dict | None = None) -> tuple[int, float, MetricsLog, int]:
    """Prepare the run folder and restore a checkpoint when resuming.

    Returns (first epoch to run, best score so far, the metrics log, epochs since the best).
    Under torchrun (``dist``
    active) rank 0 prepares and checks the folder and hands its answer, or its error, to every
    rank; the other ranks then load the same ``last.pt``.
    """
    if dist is None or not dist.active:
        return _start(run_dir, plain, kind, resume, ignore, model, optimizer, scheduler, defaults)
    first, best, log, since = dist.on_main(lambda: _start(run_dir, plain, kind, resume, ignore, model, optimizer, scheduler,
                                                          defaults))
    if not dist.main and first > 1:
        ck = load_checkpoint(run_dir / "last.pt", kind, map_location=next(model.parameters()).device)
        _restore(ck, model, optimizer, scheduler)
    return first, best, log, since


def _restore(ck: dict, model, optimizer, scheduler) -> None:
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if scheduler is not None and ck.get("scheduler"):
        scheduler.load_state_dict(ck["scheduler"])


def _start(run_dir: Path, plain: dict, kind: str, resume: bool, ignore: set[str], model, optimizer,
           scheduler=None, defaults: dict | None = None) -> tuple[int, float, MetricsLog, int]:
    import torch

    ck = prepare_run_dir(run_dir, plain, kind, resume, ignore, defaults)
    remove_stray_temporaries(run_dir)
    write_config(run_dir, plain)
    log = MetricsLog(run_dir / "metrics.jsonl")
    if ck is None:
        if log.path.exists():
            log.path.unlink()
        return 1, -float("inf"), log, 0
    _restore(ck, model, optimizer, scheduler)
    torch.set_rng_state(ck["rng"]["torch"])
    log.truncate(ck["epoch"])
    return ck["epoch"] + 1, float(ck["best_score"]), log, int(ck.get("since_best", 0))


def finish_epoch(fit: Fit, epoch: int, row: dict, score: float, best: float, log: MetricsLog, scheduler=None,
                 since_best: int = 0) -> float:
    """Log the epoch, write best.pt (when ``score`` beats ``best``) and then last.pt; returns the new best.

    The order makes every crash window safe: the metrics row comes first (a row without its
    checkpoint is dropped on ``--resume`` by ``MetricsLog.truncate``), then best.pt, then last.pt;
    a crash between the two checkpoints leaves last.pt one epoch behind, and resuming replays that
    epoch exactly (randomness is per (seed, epoch)), writing the same best.pt again.
    """
    import torch

    log.append(row)
    payload = {
        "kind": fit.kind, "config": fit.plain, "model": fit.model.state_dict(), "optimizer": fit.optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {}, "epoch": epoch,
        "best_score": max(best, score), "since_best": since_best, "rng": {"torch": torch.get_rng_state()}, **fit.extra,
    }
    if score > best:
        save_checkpoint(fit.run_dir / "best.pt", payload)
    save_checkpoint(fit.run_dir / "last.pt", payload)
    return max(best, score)
