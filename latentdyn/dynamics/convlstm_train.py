"""Training the pixel-space ConvLSTM (``latentdyn train convlstm``) for a wall-time budget.

The model (``latentdyn.dynamics.convlstm``) learns a scene file's training split: each epoch draws
``epoch_sequences`` training sequences and a random window of ``context + horizon`` frames from
each (seeded by (seed, epoch)), and minimises the squared error of its predictions of frames
1..L-1 of the window, averaged over pixels (OpenSTL's ``MSELoss``, Tan et al. 2023), with
scheduled sampling after the context (Bengio et al. 2015): a step reads the true frame with
probability ``truth_prob``, which falls linearly from 1 at the start to 0 at ``sampling_until`` of
the training (``truth_prob``). Validation rolls the first window of every validation sequence out
open loop (``context`` frames observed, ``horizon`` predicted) and scores the squared error per
frame, summed over pixels: the rollout's ``se_per_frame``, which selects best.pt.

**The budget.** ``budget_seconds``, or the summed epoch seconds of the runs in ``budget_from``
(``run_seconds``: the 'seconds' of their metrics.jsonl, which every latentdyn trainer logs the
same way, training and validation, without the checkpoints), bounds the ConvLSTM's own epochs'
seconds, counted alike. Before each epoch after the first, training stops when the seconds spent
plus half the last epoch's would pass the budget, so it ends at the epoch end nearest to the
budget (``over_budget``); ``epochs`` bounds it too. ``RUN/budget.json`` records the budget, the
seconds used, the epochs and what stopped it. With a budget the run is as reproducible as the
machine's speed; with ``epochs`` alone, the same seed gives the same bytes. Checkpoints, resume and
metrics are the epoch loop's (``latentdyn.engine.loop``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from latentdyn.core.config import to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.core.options import check, resumable
from latentdyn.core.rng import epoch_seed, torch_generator
from latentdyn.dynamics.config import TrainConvLSTMConfig
from latentdyn.dynamics.convlstm import CHECKPOINT_KIND, ConvLSTMPredictor, make_convlstm

RESUME_MAY_CHANGE = resumable(TrainConvLSTMConfig)
TERMS = ("loss", "se_per_frame")


def run_seconds(run_dir: str | Path) -> float:
    """A training run's seconds: the sum of its epochs' 'seconds' in metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise LatentdynError(f"--budget-from {run_dir}: no metrics.jsonl there; give a finished training run folder "
                             "(latentdyn train vae / dynamics)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows or any(not isinstance(r.get("seconds"), (int, float)) for r in rows):
        raise LatentdynError(f"--budget-from {run_dir}: its metrics.jsonl has no epoch seconds; finish training it first")
    return float(sum(r["seconds"] for r in rows))


def budget_of(cfg: TrainConvLSTMConfig) -> tuple[float, dict[str, float]]:
    """The budget in seconds (0: none) and the seconds of each ``budget_from`` run."""
    if cfg.budget_from and cfg.budget_seconds:
        raise LatentdynError("give --budget-seconds or --budget-from, not both")
    parts = {str(r): run_seconds(r) for r in cfg.budget_from}
    return (sum(parts.values()) if parts else float(cfg.budget_seconds)), parts


def over_budget(seconds: list[float], budget: float) -> bool:
    """Whether to stop before the next epoch: the epochs so far took ``seconds`` and one more like
    the last would end further from the budget than stopping now (spent + last / 2 > budget)."""
    return budget > 0 and bool(seconds) and sum(seconds) + seconds[-1] / 2 > budget


def truth_prob(progress: float, sampling_until: float) -> float:
    """Scheduled sampling: the probability of reading a true frame after the context at ``progress``
    (the fraction of training done, 0..1): 1 - progress / sampling_until, at least 0 (0 throughout
    when sampling_until is 0)."""
    if sampling_until <= 0:
        return 0.0
    return max(0.0, 1.0 - progress / sampling_until)


def window_terms(model: ConvLSTMPredictor, x: torch.Tensor, context: int, prob: float, generator=None) -> dict:
    """Per window (B,): the loss, the squared error averaged over the predictions of frames 1..L-1
    and their pixels, and ``se_per_frame``, the same summed over pixels; x (B, L, C, h, w) in [0, 1]."""
    pred = model(x, context, prob, generator)  # (B, L-1, C, h, w)
    se = ((pred - x[:, 1:]) ** 2).flatten(2).sum(2).mean(1)  # (B,)
    return {"loss": se / np.prod(x.shape[2:]), "se_per_frame": se}


def open_loop_se(model: ConvLSTMPredictor, frames: torch.Tensor, context: int, horizon: int, batch: int = 32) -> float:
    """Squared error per predicted frame, summed over pixels, mean over the horizon and the
    sequences (the rollout's ``se_per_frame``): frames (N, >= K+H, C, h, w) uint8."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(frames), batch):
            x = frames[s : s + batch, : context + horizon].float() / 255.0  # (b, K+H, C, h, w)
            pred = model.rollout(x[:, :context], horizon)  # (b, H, C, h, w)
            total += float(((pred - x[:, context:]) ** 2).flatten(2).sum(2).mean(1).sum())
            n += len(x)
    return total / max(n, 1)


def read_split(path: str | Path, split: str | None, device) -> torch.Tensor:
    """A split's frames as one uint8 tensor (N, T, C, h, w) (sequences in file order)."""
    from latentdyn.scenes.file import open_scenes

    with open_scenes(path) as sf:
        ids = np.sort(sf.split_indices(split))
        fr = sf.read_frames(ids) if len(ids) else np.zeros((0, sf.length, *sf.frame_shape), np.uint8)
    if fr.ndim == 4:
        fr = fr[..., None]  # (N, T, h, w, 1)
    return torch.from_numpy(np.ascontiguousarray(fr.transpose(0, 1, 4, 2, 3))).to(device)  # (N, T, C, h, w)


def train_convlstm(cfg: TrainConvLSTMConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
                   verbose: bool = True) -> dict:
    """Train (or resume) the ConvLSTM on ``cfg.data`` into the run folder ``out``; the last epoch's row."""
    from latentdyn.engine import distributed

    check(cfg)
    if cfg.kernel % 2 == 0:
        raise LatentdynError(f"--kernel {cfg.kernel}: use an odd size (the maps keep their size)")
    budget, parts = budget_of(cfg)
    with distributed.session(cfg.device) as (dist, device):
        if dist.active:
            raise LatentdynError("train convlstm runs in one process (its time budget is one process's); "
                                 "run it without torchrun")
        return _train(cfg, Path(out), resume, progress, verbose, dist, device, budget, parts)


def _train(cfg: TrainConvLSTMConfig, run_dir: Path, resume: bool, progress, verbose: bool, dist, device,
           budget: float, parts: dict) -> dict:
    from latentdyn.engine.loop import Fit, run_epochs
    from latentdyn.engine.tracking import Tracker
    from latentdyn.scenes.file import open_scenes

    with open_scenes(cfg.data) as sf:
        splits = sf.splits
    if cfg.val_split is None:
        cfg.val_split = "val" if "val" in splits else ""  # never test: without val, selected on the training loss
    frames = read_split(cfg.data, cfg.train_split if splits else None, device)  # (N, T, C, h, w) uint8
    N, T = frames.shape[:2]
    L = cfg.context + cfg.horizon
    if N == 0:
        raise LatentdynError(f"the {cfg.train_split!r} split of {cfg.data} is empty; give a scene file with training sequences")
    if L > T:
        raise LatentdynError(f"--context {cfg.context} + --horizon {cfg.horizon} = {L} is longer than the sequences "
                             f"({T} frames); shorten them")
    val = read_split(cfg.data, cfg.val_split, device) if cfg.val_split else None
    val = val if val is not None and len(val) else None
    shape = tuple(frames.shape[2:])  # (C, h, w)
    torch.manual_seed(cfg.seed)
    model = make_convlstm(cfg, shape).to(device)
    model.start_at(float(frames[: min(N, 256)].float().mean()) / 255.0)  # the checkpoint's weights when resuming
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    per_epoch = min(N, cfg.epoch_sequences) if cfg.epoch_sequences else N
    B = cfg.batch_size

    def seconds() -> list[float]:
        log = run_dir / "metrics.jsonl"
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []
        return [float(r["seconds"]) for r in rows]

    def progress_at(epoch: int) -> float:  # the fraction of training done before ``epoch``
        done = (epoch - 1) / cfg.epochs
        return max(done, sum(seconds()) / budget) if budget > 0 else done

    def batches(epoch: int):
        g = torch_generator(epoch_seed(cfg.seed, epoch, 47), "cpu")
        seq = torch.randperm(N, generator=g)[:per_epoch]
        start = torch.randint(0, T - L + 1, (per_epoch,), generator=g)
        p = truth_prob(progress_at(epoch), cfg.sampling_until)
        for s in range(0, per_epoch, B):
            idx = start[s : s + B, None] + torch.arange(L)  # (b, L)
            x = frames[seq[s : s + B, None].to(device), idx.to(device)].float() / 255.0  # (b, L, C, h, w)
            yield x, p, g

    def step(batch, epoch: int) -> dict:
        x, p, g = batch
        return window_terms(model, x, cfg.context, p, g)

    def message(r: dict) -> str:
        return (f"train squared error per frame {r['train_se_per_frame']:.2f} (truth fed {r['truth_prob']:.2f})"
                + (f"; val open loop {r['val_se_per_frame']:.2f}" if "val_se_per_frame" in r else "")
                + (f"; {sum(seconds()):.0f} s of the {budget:.0f} s budget" if budget > 0 else ""))

    tracker = Tracker(run_dir, cfg.tensorboard)
    fit = Fit(
        kind=CHECKPOINT_KIND, run_dir=run_dir, plain=to_dict(cfg), model=model, optimizer=opt, epochs=cfg.epochs,
        terms=TERMS, step=step, batches=batches, n_batches=-(-per_epoch // B), n_examples=per_epoch,
        score=lambda r: -r.get("val_se_per_frame", r["train_se_per_frame"]),
        validate=(lambda epoch: {"se_per_frame": open_loop_se(model, val, cfg.context, cfg.horizon)}) if val is not None else None,
        grad_clip=cfg.grad_clip or None, schedule=cfg.lr_schedule, patience=cfg.patience if val is not None else 0,
        extra={"data": {"scenes": str(cfg.data), "n_train": N, "length": T, "frame_shape": list(shape),
                        "val_split": cfg.val_split},
               "budget": {"seconds": budget, "from": parts}},
        message=message, threads=cfg.threads,
        row_extra=lambda epoch: {"truth_prob": truth_prob(progress_at(epoch), cfg.sampling_until)},
        stop=lambda epoch: over_budget(seconds(), budget),
    )
    try:
        row = run_epochs(fit, dist, device, progress, verbose, resume, RESUME_MAY_CHANGE, tracker)
    finally:
        tracker.close()
    spent = seconds()
    stopped = "epochs" if len(spent) >= cfg.epochs else "budget" if over_budget(spent, budget) else "patience"
    record = {"budget_seconds": budget, "budget_from": parts, "trained_seconds": sum(spent), "epochs": len(spent),
              "stopped_by": stopped}
    with atomic_path(run_dir / "budget.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    return row
