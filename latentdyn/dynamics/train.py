"""Training the GRU latent predictor (``latentdyn train dynamics``).

Each epoch draws ``windows_per_sequence`` random windows of ``context + horizon`` latents from
every training sequence (seeded by (seed, epoch)); with ``fresh_sequences`` the training
sequences are new ones of the file's scene every epoch (``latentdyn.dynamics.fresh``). The loss
of a window is

    teacher forcing: mean over t of -log N(mu_{t+1} | m_{t+1}, exp(s_{t+1}))     (one-step)
  + open_loop_weight * the same, over the horizon, after warming up on the first
    ``context`` latents and feeding back the predicted means                    (multi-step)
  + a small squared error on the predicted next posterior log-variance
  + frame_loss_weight * mean over the horizon of sum over pixels of
        (D(m_{K+j}) - D(mu_{K+j}))^2, D the frozen VAE decoder's mean image      (decoded frames)

the open-loop term being what keeps long rollouts on their track (compare the "multi-step
prediction" objectives of Venkatraman et al. 2015, "Improving multi-step prediction of learned
time series models"). The decoded-frame term (off by default) scores the open loop where the
rollout is judged, in pixels, against the reconstruction of the truth (the ceiling of any
predictor in this latent space), as World Models-style pipelines train through the decoder
(Ha and Schmidhuber 2018; Hafner et al. 2019, "Learning latent dynamics for planning from
pixels", train their predictor on decoded frames). The inputs, never the targets, may be
perturbed in training: ``sample_inputs`` draws them from the posteriors, z = mu + exp(lv / 2) e,
and ``latent_noise`` adds sigma * s e, s each latent's spread over the training means (e
standard normal, drawn from (seed, epoch)), so the predictor learns to return to the data from
slightly off it, as it must in open loop (Bengio et al. 2015, "Scheduled sampling"; noise
injection as in Sanchez-Gonzalez et al. 2020, "Learning to simulate complex physics"). Latents are read from the HDF5 file in chunks into one device tensor
(they are small: N x T x d floats). Checkpoints, metrics, resume and NaN handling are the VAE
trainer's (``latentdyn.engine.loop``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from latentdyn.core.config import to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.options import check, later_defaults, resumable
from latentdyn.core.rng import epoch_seed, torch_generator
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.model import LatentGRU, load_dynamics, make_predictor  # noqa: F401 (load_dynamics: re-exported)
from latentdyn.dynamics.windows import gather_windows, sample_windows  # noqa: F401 (re-exported)

RESUME_MAY_CHANGE = resumable(TrainDynamicsConfig)
RESUME_DEFAULTS = later_defaults(TrainDynamicsConfig)  # options a resumed checkpoint may predate
TERMS = ("loss", "one_step_se", "one_step_nll", "open_loop_se")
FRAME_TERM = "open_loop_frame_se"  # a term only when frame_loss_weight > 0 (the default rows stay as they were)


def validate(cfg: TrainDynamicsConfig) -> None:
    """One-line errors for settings that cannot work together (before any file is read)."""
    if cfg.cell == "convgru" and cfg.kernel % 2 == 0:
        raise LatentdynError(f"--kernel {cfg.kernel}: use an odd size (the maps keep their size)")
    if cfg.decoder_finetune and cfg.frame_loss_weight <= 0:
        raise LatentdynError("--decoder-finetune trains the decoder through the frame loss: also give "
                             "--frame-loss-weight > 0 and --vae RUN")
    if cfg.frame_loss_weight > 0 and not cfg.vae:
        raise LatentdynError(f"--frame-loss-weight {cfg.frame_loss_weight:g} needs --vae RUN, the VAE that made the "
                             "latents (in an experiment: vae = a train-vae stage)")


def load_frame_decoder(cfg: TrainDynamicsConfig, latent_dim: int, vae_sha256: str, device):
    """The frozen VAE (eval mode, no gradients into its weights) that decodes the open loop for
    the frame loss, checked against the latents file; None when the frame loss is off."""
    from latentdyn.latents.file import check_vae_hash
    from latentdyn.vae.train import load_vae

    if cfg.frame_loss_weight <= 0:
        return None
    vae = load_vae(cfg.vae, "best", device)[0]  # eval() and requires_grad_(False)
    if vae.latent_dim != latent_dim:
        raise LatentdynError(f"--vae {cfg.vae} has {vae.latent_dim} latent dimensions, the latents file {cfg.latents} "
                             f"{latent_dim}; give the VAE that made the latents")
    check_vae_hash(vae_sha256, cfg.vae, str(cfg.latents))
    return vae


def perturb_inputs(mu, lv, mu_std, latent_noise: float, sample_inputs: bool, generator):
    """The predictor's training inputs from windows mu, lv (B, L, d): z = mu [+ exp(lv / 2) e1]
    [+ latent_noise * mu_std * e2], e standard normal from ``generator`` (CPU)."""
    z = mu
    if sample_inputs:
        z = z + (0.5 * lv).exp() * torch.randn(mu.shape, generator=generator).to(mu.device)  # (B, L, d)
    if latent_noise > 0:
        z = z + latent_noise * mu_std * torch.randn(mu.shape, generator=generator).to(mu.device)  # (B, L, d)
    return z


def frame_error(vae, z, target) -> torch.Tensor:
    """Predicted latents z and true latents target (B, H, d) -> per window (B,): the squared
    error between their decoded mean images, summed over pixels, averaged over the H steps.
    Gradients reach z, never the VAE (its weights are frozen; the target is decoded without a graph)."""
    B, H, d = z.shape
    pred = vae.decode(z.reshape(B * H, d))  # (B*H, C, h, w)
    with torch.no_grad():
        true = vae.decode(target.reshape(B * H, d))  # (B*H, C, h, w)
    return ((pred.float() - true.float()) ** 2).flatten(1).sum(1).view(B, H).mean(1)  # (B,)


def read_latents(path: str | Path, split: str | None, device, chunk: int = 4096):
    """mu, logvar (N, T, d) of a split, read from HDF5 in chunks into device tensors."""
    from latentdyn.latents.file import open_latents

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


def window_loss(model: LatentGRU, mu, lv, context: int, horizon: int, open_loop_weight: float,
                inputs=None, vae=None, frame_weight: float = 0.0, frames=None) -> dict:
    """Losses of windows mu, lv (B, K + H, d), per window (B,).

    One step (teacher forcing): squared error of each next mean, plus the Gaussian negative
    log-likelihood of the truth under the predicted variance with the mean held fixed (it fits
    only the variance). Multi-step: squared error of the open-loop means over the horizon.
    ``inputs`` (B, K + H, d): what the predictor reads in place of mu (``perturb_inputs``; the
    targets stay mu). With ``frame_weight > 0``, also the decoded-frame error of the open loop
    under ``vae`` (``frame_error``, the term ``open_loop_frame_se``); given the windows' true
    ``frames`` (B, K + H, C, h, w) uint8, against those frames through ``model.tuned_vae``, the
    decoder trained with the predictor, plus its reconstruction term (``decoder_tuning.frame_terms``).
    """
    x = mu if inputs is None else inputs
    mean, s, lv_next, h = model(x[:, :-1], lv[:, :-1])  # teacher forcing: predictions of 1..K+H-1
    target = mu[:, 1:]
    tf_se = ((mean - target) ** 2).sum(-1).mean(1)  # (B,)
    nll = gaussian_nll(target, mean.detach(), s).mean(1)  # (B,)
    lv_err = ((lv_next - lv[:, 1:]) ** 2).mean((1, 2))  # (B,)
    if open_loop_weight > 0 or frame_weight > 0:
        out = model.rollout(x[:, :context], lv[:, :context], horizon)  # out["mu"]: (B, H, d)
        se = ((out["mu"] - mu[:, context : context + horizon]) ** 2).sum(-1).mean(1)  # (B,)
    else:
        se = tf_se.new_zeros(tf_se.shape)
    loss = tf_se + open_loop_weight * se + 0.01 * nll + 0.1 * lv_err
    terms = {"loss": loss, "one_step_se": tf_se, "one_step_nll": nll, "open_loop_se": se}
    if frame_weight > 0 and frames is not None:
        from latentdyn.dynamics.decoder_tuning import EXTRA_TERM, frame_terms

        fut = slice(context, context + horizon)
        terms[FRAME_TERM], terms[EXTRA_TERM] = frame_terms(model.tuned_vae, out["mu"], mu[:, fut], frames[:, fut])  # (B,) each
        terms["loss"] = loss + frame_weight * (terms[FRAME_TERM] + terms[EXTRA_TERM])
    elif frame_weight > 0:
        terms[FRAME_TERM] = frame_error(vae, out["mu"], mu[:, context : context + horizon])  # (B,)
        terms["loss"] = loss + frame_weight * terms[FRAME_TERM]
    return terms


class WindowObjective(torch.nn.Module):
    """``window_loss`` as a module, so one forward call covers teacher forcing and the open loop
    (what DistributedDataParallel needs to wrap)."""

    def __init__(self, model: LatentGRU, context: int, horizon: int, open_loop_weight: float, vae=None,
                 frame_weight: float = 0.0):
        super().__init__()
        self.model, self.context, self.horizon, self.weight = model, context, horizon, open_loop_weight
        self._vae = (vae,)  # a tuple: not a submodule, so DDP, .train() and the checkpoint never see the frozen VAE
        self.frame_weight = frame_weight

    def forward(self, mu, lv, inputs=None, frames=None) -> dict:
        return window_loss(self.model, mu, lv, self.context, self.horizon, self.weight, inputs, self._vae[0],
                           self.frame_weight, frames)


def horizon_at(cfg: TrainDynamicsConfig, epoch: int) -> int:
    """The training open-loop horizon of ``epoch`` (1-based): 1 + (horizon - 1) * epoch / horizon_curriculum,
    rounded down, at most ``horizon`` (a curriculum over the horizon: short rollouts first, as in
    Venkatraman et al. 2015's multi-step training and the growing horizons of learned simulators)."""
    if cfg.horizon_curriculum <= 0:
        return cfg.horizon
    return int(min(cfg.horizon, 1 + (cfg.horizon - 1) * max(0, epoch - 1) // cfg.horizon_curriculum))


def evaluate_windows(model, mu, lv, cfg: TrainDynamicsConfig, vae=None, frames=None) -> dict:
    """Validation: every sequence's first window (deterministic, clean inputs), mean losses (with
    the decoded-frame term weighted as in training when it is on)."""
    L = cfg.context + cfg.horizon
    model.eval()
    with torch.no_grad():
        terms = window_loss(model, mu[:, :L], lv[:, :L], cfg.context, cfg.horizon, 1.0, None, vae,
                            cfg.frame_loss_weight, frames[:, :L] if frames is not None else None)
    return {k: float(v.mean()) for k, v in terms.items()}


def train_dynamics(cfg: TrainDynamicsConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
                   verbose: bool = True) -> dict:
    """Train (or resume) the GRU predictor on a latents file into the run folder ``out``.

    Under ``torchrun`` the processes train one model with DistributedDataParallel (see
    ``latentdyn.engine.distributed``); only rank 0 writes, and the others return an empty dict.
    """
    from latentdyn.engine import distributed

    check(cfg)
    validate(cfg)
    with distributed.session(cfg.device) as (dist, device):
        return _train_dynamics(cfg, Path(out), resume, progress, verbose, dist, device)


def _train_dynamics(cfg: TrainDynamicsConfig, run_dir: Path, resume: bool, progress: bool | None, verbose: bool,
                    dist, device) -> dict:
    from latentdyn.engine import distributed
    from latentdyn.engine.loop import Fit, run_epochs
    from latentdyn.engine.tracking import Tracker
    from latentdyn.latents.file import open_latents

    B = dist.local_batch(cfg.batch_size)  # per-rank batch; the configured one is global
    with open_latents(cfg.latents) as lf:
        vae_sha256, latent_dim, latent_shape, splits = lf.vae_sha256, lf.latent_dim, lf.latent_shape, lf.splits
        latents_kind = str(lf.file.attrs.get("latents", "vae"))  # "states": the state oracle's (latentdyn.latents.states)
    if cfg.val_split is None:
        cfg.val_split = "val" if "val" in splits else ""  # never test: without val, selected on the training loss
    train_split = cfg.train_split if splits else None
    mu, lv = read_latents(cfg.latents, train_split, device)  # (N, T, d): latents are small
    N, T, _ = mu.shape
    L = cfg.context + cfg.horizon
    if N < dist.world:
        raise LatentdynError(f"the {train_split!r} split of {cfg.latents} has {N} sequences"
                             + (f", fewer than the {dist.world} processes" if dist.active else ""))
    if L > T:
        raise LatentdynError(f"--context {cfg.context} + --horizon {cfg.horizon} = {L} is longer than the "
                             f"sequences ({T} frames); shorten them")
    val = read_latents(cfg.latents, cfg.val_split, device) if cfg.val_split and dist.main else None
    if val is not None and len(val[0]) == 0:
        val = None
    vae = load_frame_decoder(cfg, latent_dim, vae_sha256, device)
    plain = to_dict(cfg)
    torch.manual_seed(cfg.seed)
    model = make_predictor(cfg, latent_shape).to(device)
    model.fit_scales(mu)  # on every training sequence, the same on every rank; the checkpoint's when resuming
    if cfg.init:  # fine-tuning: the weights of a trained run (resuming loads this run's own checkpoint over them)
        from latentdyn.dynamics.model import start_from

        start_from(model, cfg, vae_sha256, latent_shape)
    frames = val_frames = tuned = None
    tuned_terms: tuple[str, ...] = ()
    if cfg.decoder_finetune:  # the decoder trained on predictions (latentdyn.dynamics.decoder_tuning)
        from latentdyn.dynamics import decoder_tuning as DT
        from latentdyn.engine.checkpoint import load_checkpoint

        DT.attach(model, vae=DT.trainable_copy(vae))
        tuned = DT.vae_record(load_checkpoint(Path(cfg.vae) / "best.pt", "vae"))
        if not cfg.fresh_sequences:  # fresh sequences bring their own frames (latentdyn.dynamics.fresh)
            frames = DT.read_frames(cfg.latents, train_split, device)  # (N, T, C, H, W) uint8
        val_frames = DT.read_frames(cfg.latents, cfg.val_split, device) if val is not None else None
        tuned_terms = (DT.EXTRA_TERM,)
    if dist.active:  # each rank keeps its shard of the sequences
        shard = torch.from_numpy(dist.shard(N)).to(device)
        mu, lv = mu[shard], lv[shard]
        frames = frames[shard] if frames is not None else None
        N = len(shard)
    tuned_params = list(model.tuned_vae.parameters()) if tuned is not None else []
    ids = {id(p) for p in tuned_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if tuned_params:
        groups.append({"params": [p for p in tuned_params if p.requires_grad], "lr": cfg.decoder_lr})
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    objective = WindowObjective(model, cfg.context, cfg.horizon, cfg.open_loop_weight, vae, cfg.frame_loss_weight)
    net = distributed.wrap(objective, dist, device, cfg.compile)
    fresh_ids = dist.shard(cfg.fresh_sequences) if cfg.fresh_sequences else None  # this rank's fresh sequences
    if fresh_ids is not None and len(fresh_ids) == 0:
        raise LatentdynError(f"--fresh-sequences {cfg.fresh_sequences} is fewer than the {dist.world} processes; "
                             f"draw at least {dist.world}")
    n_windows = (N if fresh_ids is None else len(fresh_ids)) * cfg.windows
    per_epoch = n_windows * dist.world // cfg.windows  # training sequences drawn per epoch (all ranks)
    perturbed = cfg.latent_noise > 0 or cfg.sample_inputs
    terms = TERMS + ((FRAME_TERM,) if vae is not None else ()) + tuned_terms

    def file_windows(g):
        seq, start = sample_windows(N, T, L, cfg.windows, g)
        seq, start = seq.to(device), start.to(device)
        for s in range(0, len(seq), B):
            sel, at = seq[s : s + B], start[s : s + B]
            # (B, L, d) each [, frames (B, L, C, H, W) with decoder_finetune]
            yield (gather_windows(mu, sel, at, L), gather_windows(lv, sel, at, L),
                   *((gather_windows(frames, sel, at, L),) if frames is not None else ()))

    def batches(epoch: int):
        g = torch_generator(epoch_seed(cfg.seed, epoch, dist.stream(41)), "cpu")
        windows = fresh.batches(epoch, L, cfg.windows, B, g, device) if fresh is not None else file_windows(g)
        noise = torch_generator(epoch_seed(cfg.seed, epoch, dist.stream(43)), "cpu") if perturbed else None
        for m, v, *fr in windows:  # (B, L, d) each [, frames]
            x = perturb_inputs(m, v, model.mu_std, cfg.latent_noise, cfg.sample_inputs, noise) if noise is not None else None
            yield (m, v, x, *fr)  # WindowObjective(mu, lv, inputs, frames): None inputs read mu itself

    def message(r: dict) -> str:
        msg = f"train loss {r['train_loss']:.4f}, open-loop squared error {r['train_open_loop_se']:.4f}"
        if FRAME_TERM in terms:
            msg += f" (frames {r['train_' + FRAME_TERM]:.2f})"
        if "val_loss" in r:
            msg += f"; val loss {r['val_loss']:.3f}, open-loop squared error {r['val_open_loop_se']:.4f}"
        return msg

    def step(batch, epoch: int) -> dict:
        objective.horizon = horizon_at(cfg, epoch)  # the curriculum's horizon (windows keep their full length)
        return net(*batch)

    tracker = Tracker(run_dir, cfg.tensorboard and dist.main) if dist.main else None
    on_epoch = _rollout_film(cfg, val, tracker, device) if tracker is not None and tracker.enabled and val else None
    fit = Fit(
        kind="dynamics", run_dir=run_dir, plain=plain, model=model, optimizer=opt, epochs=cfg.epochs, terms=terms,
        step=step, batches=batches, n_batches=-(-n_windows // B),
        n_examples=n_windows * dist.world, score=lambda r: -r.get("val_loss", r["train_loss"]),
        validate=(lambda epoch: evaluate_windows(model, val[0], val[1], cfg, vae, val_frames)) if val is not None else None,
        grad_clip=cfg.grad_clip, schedule=cfg.lr_schedule, patience=cfg.patience if val is not None else 0,
        extra={"data": {"latents": str(cfg.latents), "n_train": N * dist.world, "length": T, "latent_dim": latent_dim,
                        "latent_shape": list(latent_shape), "vae_sha256": vae_sha256, "val_split": cfg.val_split,
                        "latents_kind": latents_kind, **({"tuned_vae": tuned} if tuned is not None else {})}},
        message=message, on_epoch=(lambda epoch, row: on_epoch(model, epoch)) if on_epoch else None,
        defaults=RESUME_DEFAULTS, threads=cfg.threads,
        row_extra=lambda epoch: {"sequences_seen": epoch * per_epoch,
                                 "distinct_sequences": epoch * per_epoch if fresh_ids is not None else per_epoch},
    )
    fresh = _fresh_stream(cfg, fresh_ids, resume) if fresh_ids is not None else None
    try:
        row = run_epochs(fit, dist, device, progress, verbose, resume, RESUME_MAY_CHANGE, tracker)
    finally:
        if tracker is not None:
            tracker.close()
        if fresh is not None:
            fresh.close()
    if fresh is not None and dist.main and val is not None:
        _fresh_figure(run_dir)
    distributed.finish(model, dist, run_dir, cfg.batch_size)
    return row


def _fresh_stream(cfg: TrainDynamicsConfig, ids, resume: bool):
    """The producer of fresh training sequences (``latentdyn.dynamics.fresh``), started on epoch 1
    unless resuming (the resumed epoch starts it)."""
    from latentdyn.dynamics.fresh import FreshStream, fresh_source

    stream = FreshStream(fresh_source(cfg.latents), cfg.fresh_sequences, cfg.seed, cfg.fresh_workers, ids=ids,
                         frames=cfg.decoder_finetune)
    if not resume:
        stream.start(1)
    return stream


def _fresh_figure(run_dir: Path) -> None:
    """RUN/open_loop_vs_sequences.png: the validation open-loop error against the training sequences seen."""
    import json

    from latentdyn.viz.figures import open_loop_vs_sequences

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    open_loop_vs_sequences({"fresh sequences every epoch": rows}, run_dir / "open_loop_vs_sequences.png")


def _rollout_film(cfg: TrainDynamicsConfig, val, tracker, device, n: int = 4):
    """For TensorBoard: each epoch, the open loop of the first ``n`` validation sequences decoded
    by the VAE that made the latents (when its run folder is still there), as a video."""
    from latentdyn.dynamics.rollout import decode_latents, rollout_frames
    from latentdyn.latents.file import open_latents
    from latentdyn.vae.train import load_vae

    with open_latents(cfg.latents) as lf:
        vae_run = Path(lf.file.attrs.get("vae_run", ""))
        try:
            lf.check_vae(vae_run)
        except LatentdynError:
            return None  # the VAE is gone or changed: scalars only
    vae = load_vae(vae_run, "best", device)[0]
    mu, lv = val[0][:n], val[1][:n]  # (n, T, d)
    K, L = cfg.context, cfg.context + cfg.horizon
    truth = decode_latents(vae, mu[:, :L].cpu().numpy())  # (n, L, h, w, C): the reconstruction stands for the truth

    def film(model, epoch: int) -> None:
        model.eval()
        with torch.no_grad():
            z = model.rollout(mu[:, :K], lv[:, :K], cfg.horizon)["mu"]  # (n, H, d)
        frames = rollout_frames(truth, decode_latents(vae, z.cpu().numpy()), K, list(range(len(mu))))
        tracker.video("val/rollout", frames, epoch)

    return film
