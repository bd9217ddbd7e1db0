"""Training the GRU latent predictor (``latentdyn train dynamics``).

Each epoch draws ``windows_per_sequence`` random windows of ``context + horizon`` latents from
every training sequence (seeded by (seed, epoch)). The loss of a window is

    teacher forcing: mean over t of -log N(mu_{t+1} | m_{t+1}, exp(s_{t+1}))     (one-step)
  + open_loop_weight * the same, over the horizon, after warming up on the first
    ``context`` latents and feeding back the predicted means                    (multi-step)
  + a small squared error on the predicted next posterior log-variance,

the open-loop term being what keeps long rollouts on their track (compare the "multi-step
prediction" objectives of Venkatraman et al. 2015, "Improving multi-step prediction of learned
time series models"). Latents are read from the HDF5 file in chunks into one device tensor
(they are small: N x T x d floats). Checkpoints, metrics, resume and NaN handling are the VAE
trainer's (``latentdyn.engine.loop``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latentdyn.engine import loop as training
from latentdyn.core.config import from_dict, to_dict
from latentdyn.dynamics.model import DynamicsConfig, LatentGRU
from latentdyn.core.errors import LatentdynError


@dataclass
class DynamicsData:
    latents: str = ""  # the latents file (latentdyn encode)
    train_split: str = "train"
    val_split: str | None = None  # None: "val", else "test", else none
    vae_sha256: str = ""  # the VAE the latents came from (filled in from the file)


@dataclass
class DynamicsTrain:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3  # Adam
    context: int = 5  # observed latents before predicting (warm-up)
    horizon: int = 20  # open-loop steps in the multi-step loss
    open_loop_weight: float = 1.0  # weight of the multi-step loss against teacher forcing
    windows_per_sequence: int = 4  # random windows drawn from each sequence per epoch
    grad_clip: float = 1.0  # max gradient norm
    seed: int = 0
    device: str = "auto"
    compile: bool = False  # torch.compile the training objective (worth it on GPUs for long runs)


@dataclass
class DynamicsRunConfig:
    model: DynamicsConfig = field(default_factory=DynamicsConfig)
    data: DynamicsData = field(default_factory=DynamicsData)
    train: DynamicsTrain = field(default_factory=DynamicsTrain)

    def validate(self) -> None:
        t = self.train
        if t.epochs < 1:
            raise LatentdynError(f"--epochs {t.epochs}: must be at least 1")
        if t.context < 1:
            raise LatentdynError(f"--context {t.context}: must be at least 1")
        if t.horizon < 1:
            raise LatentdynError(f"--horizon {t.horizon}: must be at least 1")
        if not 0 < t.lr < 10:
            raise LatentdynError(f"--lr {t.lr}: must be in (0, 10)")
        if t.batch_size < 1 or t.windows_per_sequence < 1:
            raise LatentdynError("--batch-size and windows per sequence must be at least 1")
        if t.open_loop_weight < 0:
            raise LatentdynError(f"open_loop_weight {t.open_loop_weight}: must not be negative")


RESUME_MAY_CHANGE = {"train.epochs", "train.device", "train.compile"}


def read_latents(path: str | Path, split: str | None, device, chunk: int = 4096):
    """mu, logvar (N, T, d) of a split, read from HDF5 in chunks into device tensors."""
    from latentdyn.vae.encode import open_latents

    with open_latents(path) as lf:
        if lf.kind != "sequences":
            raise LatentdynError(f"{path} holds latents of images, not sequences; encode a scene file")
        ids = np.sort(lf.split_indices(split))
        N, T, d = len(ids), *lf.file["mu"].shape[1:]
        mu = torch.empty((N, T, d), device=device)
        lv = torch.empty((N, T, d), device=device)
        for s in range(0, N, chunk):
            sel = ids[s : s + chunk]
            mu[s : s + len(sel)] = torch.from_numpy(lf.file["mu"][sel]).to(device)
            lv[s : s + len(sel)] = torch.from_numpy(lf.file["logvar"][sel]).to(device)
    return mu, lv


def gaussian_nll(x, mean, logvar):
    """-log N(x | mean, exp(logvar)) summed over the last axis (nats)."""
    return 0.5 * ((x - mean) ** 2 * (-logvar).exp() + logvar + math.log(2 * math.pi)).sum(-1)


def window_loss(model: LatentGRU, mu, lv, context: int, horizon: int, open_loop_weight: float) -> dict:
    """Losses of windows mu, lv (B, K + H, d), per window (B,).

    One step (teacher forcing): squared error of each next mean, plus the Gaussian negative
    log-likelihood of the truth under the predicted variance with the mean held fixed (it fits
    only the variance). Multi-step: squared error of the open-loop means over the horizon.
    """
    mean, s, lv_next, h = model(mu[:, :-1], lv[:, :-1])  # teacher forcing: predictions of 1..K+H-1
    target = mu[:, 1:]
    tf_se = ((mean - target) ** 2).sum(-1).mean(1)  # (B,)
    nll = gaussian_nll(target, mean.detach(), s).mean(1)  # (B,)
    lv_err = ((lv_next - lv[:, 1:]) ** 2).mean((1, 2))  # (B,)
    if open_loop_weight > 0:
        out = model.rollout(mu[:, :context], lv[:, :context], horizon)
        se = ((out["mu"] - mu[:, context : context + horizon]) ** 2).sum(-1).mean(1)  # (B,)
    else:
        se = tf_se.new_zeros(tf_se.shape)
    loss = tf_se + open_loop_weight * se + 0.01 * nll + 0.1 * lv_err
    return {"loss": loss, "one_step_se": tf_se, "one_step_nll": nll, "open_loop_se": se}


class WindowObjective(torch.nn.Module):
    """``window_loss`` as a module, so one forward call covers teacher forcing and the open loop
    (what DistributedDataParallel needs to wrap)."""

    def __init__(self, model: LatentGRU, context: int, horizon: int, open_loop_weight: float):
        super().__init__()
        self.model, self.context, self.horizon, self.weight = model, context, horizon, open_loop_weight

    def forward(self, mu, lv) -> dict:
        return window_loss(self.model, mu, lv, self.context, self.horizon, self.weight)


def sample_windows(N: int, T: int, length: int, per_seq: int, generator):
    """Random window starts: (N * per_seq,) sequence ids and starts, seeded."""
    seq = torch.arange(N).repeat(per_seq)
    start = torch.randint(0, T - length + 1, (N * per_seq,), generator=generator)
    perm = torch.randperm(len(seq), generator=generator)
    return seq[perm], start[perm]


def gather_windows(x, seq, start, length: int):
    """x (N, T, d) -> windows (B, length, d) at (seq, start)."""
    idx = start[:, None] + torch.arange(length, device=start.device)  # (B, L)
    return x[seq[:, None], idx]  # (B, L, d)


def evaluate_windows(model, mu, lv, cfg: DynamicsRunConfig) -> dict:
    """Validation: every sequence's first window (deterministic), mean losses."""
    L = cfg.train.context + cfg.train.horizon
    model.eval()
    with torch.no_grad():
        terms = window_loss(model, mu[:, :L], lv[:, :L], cfg.train.context, cfg.train.horizon, 1.0)
    return {k: float(v.mean()) for k, v in terms.items()}


def train_dynamics(cfg: DynamicsRunConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
                   verbose: bool = True) -> dict:
    """Train (or resume) the GRU predictor on a latents file into the run folder ``out``.

    Under ``torchrun`` the processes train one model with DistributedDataParallel (see
    ``latentdyn.engine.distributed``); only rank 0 writes, and the others return an empty dict.
    """
    from latentdyn.engine import distributed as distributed

    cfg.validate()
    with distributed.session(cfg.train.device) as (dist, device):
        return _train_dynamics(cfg, Path(out), resume, progress, verbose, dist, device)


def _train_dynamics(cfg: DynamicsRunConfig, run_dir: Path, resume: bool, progress: bool | None, verbose: bool,
                    dist, device) -> dict:
    from tqdm.auto import tqdm

    from latentdyn.engine import distributed as distributed
    from latentdyn.vae.encode import open_latents

    B = dist.local_batch(cfg.train.batch_size)  # per-rank batch; the configured one is global
    with open_latents(cfg.data.latents) as lf:
        cfg.data.vae_sha256 = lf.vae_sha256
        cfg.model.latent_dim = lf.latent_dim
        splits = lf.splits
    val_split = cfg.data.val_split
    if val_split is None:
        val_split = "val" if "val" in splits else ("test" if "test" in splits else "")
    train_split = cfg.data.train_split if splits else None
    mu, lv = read_latents(cfg.data.latents, train_split, device)  # (N, T, d): latents are small
    N, T, _ = mu.shape
    L = cfg.train.context + cfg.train.horizon
    if N < dist.world:
        raise LatentdynError(f"the {train_split!r} split of {cfg.data.latents} has {N} sequences"
                             + (f", fewer than the {dist.world} processes" if dist.active else ""))
    if L > T:
        raise LatentdynError(f"--context {cfg.train.context} + --horizon {cfg.train.horizon} = {L} is longer than the "
                             f"sequences ({T} frames); shorten them")
    val = read_latents(cfg.data.latents, val_split, device) if val_split and dist.main else None
    if val is not None and len(val[0]) == 0:
        val = None
    plain = to_dict(cfg)
    torch.manual_seed(cfg.train.seed)
    model = LatentGRU(cfg.model).to(device)
    model.fit_scales(mu)  # on every training sequence, the same on every rank; the checkpoint's when resuming
    if dist.active:  # each rank keeps its shard of the sequences
        shard = torch.from_numpy(dist.shard(N)).to(device)
        mu, lv = mu[shard], lv[shard]
        N = len(shard)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    start_epoch, best, log = training.start(run_dir, plain, "dynamics", resume, RESUME_MAY_CHANGE, model, opt, dist)
    net = distributed.wrap(WindowObjective(model, cfg.train.context, cfg.train.horizon, cfg.train.open_loop_weight),
                           dist, device, cfg.train.compile)
    row: dict = {}
    for epoch in range(start_epoch, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        g = training.torch_generator(training.epoch_seed(cfg.train.seed, epoch, dist.stream(41)), "cpu")
        seq, start = sample_windows(N, T, L, cfg.train.windows_per_sequence, g)
        seq, start = seq.to(device), start.to(device)
        sums = torch.zeros(4, device=device, dtype=torch.float64)
        bar = tqdm(range(0, len(seq), B), desc=f"epoch {epoch}/{cfg.train.epochs}", unit="batch", leave=False,
                   disable=not dist.main or (None if progress is None else not progress))
        for s in bar:
            wm = gather_windows(mu, seq[s : s + B], start[s : s + B], L)  # (B, L, d)
            wl = gather_windows(lv, seq[s : s + B], start[s : s + B], L)
            terms = net(wm, wl)
            loss = terms["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            sums += torch.stack([terms[k].detach().sum() for k in ("loss", "one_step_se", "one_step_nll", "open_loop_se")]).double()
        bar.close()
        tr = (dist.all_sum(sums) / (len(seq) * dist.world)).tolist()
        training.check_finite(tr[0], epoch, run_dir)
        if not dist.main:
            continue
        row = {"epoch": epoch, "train_loss": tr[0], "train_one_step_se": tr[1], "train_one_step_nll": tr[2],
               "train_open_loop_se": tr[3]}
        if val is not None:
            v = evaluate_windows(model, val[0], val[1], cfg)
            training.check_finite(v["loss"], epoch, run_dir, "validation loss")
            row.update({f"val_{k}": x for k, x in v.items()})
        row["seconds"] = time.perf_counter() - t0
        score = -row.get("val_loss", row["train_loss"])
        best = training.finish_epoch(run_dir, "dynamics", plain, model, opt, epoch, row, score, best, log,
                                     {"data": {"latents": str(cfg.data.latents), "n_train": N * dist.world, "length": T}})
        if verbose:
            msg = f"epoch {epoch}: train loss {tr[0]:.4f}, open-loop squared error {tr[3]:.4f}"
            if val is not None:
                msg += f"; val loss {row['val_loss']:.3f}, open-loop squared error {row['val_open_loop_se']:.4f}"
            tqdm.write(msg + f" ({row['seconds']:.1f} s)")
    distributed.finish(model, dist, run_dir, cfg.train.batch_size)
    return row


def load_dynamics(run_dir: str | Path, which: str = "best", device="cpu"):
    """The predictor and config of a dynamics run folder."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist; train one with `latentdyn train dynamics`")
    ck = training.load_checkpoint(run_dir / f"{which}.pt", "dynamics")
    cfg = from_dict(DynamicsRunConfig, ck["config"])
    model = LatentGRU(cfg.model)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise LatentdynError(f"{run_dir / (which + '.pt')} does not match its own config ({str(e).splitlines()[0][:100]})") from None
    return model.to(device).eval(), cfg, ck
