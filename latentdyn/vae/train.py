"""Training the beta-VAE (``latentdyn train vae``) and loading trained ones.

The trainer builds the model, the frames and the per-batch objective and hands them to the one
epoch loop (``latentdyn.engine.loop``): ``metrics.jsonl``, ``best.pt`` (selected on the
validation split, never test), ``last.pt``, resume, early stopping and TensorBoard are the
loop's. Every epoch also draws the prediction matrix of the training flow (``flow.py``).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from latentdyn.core.config import from_dict, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.core.options import check, later_defaults, resumable
from latentdyn.core.rng import epoch_seed, torch_generator
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.data import batch_floats, open_frames, resolve_likelihood, val_split_of

RESUME_MAY_CHANGE = resumable(TrainVAEConfig)
RESUME_DEFAULTS = later_defaults(TrainVAEConfig)  # options a resumed checkpoint may predate
TERMS = ("loss", "elbo", "rec", "kl")


def validate(cfg: TrainVAEConfig) -> None:
    """Check a config's values (bounds, choices, combinations) with one-line errors."""
    check(cfg)
    from latentdyn.vae.config import check_slots

    check_slots(cfg)
    if cfg.width not in (0, 4) and cfg.width % 8:
        raise LatentdynError(f"width {cfg.width}: use 0 (from the frame size), 4, or a multiple of 8 "
                             "(the group normalisation's 8 groups at twice the width)")
    if cfg.lr_warmup and cfg.lr_schedule != "constant":
        raise LatentdynError(f"lr_warmup {cfg.lr_warmup} works with lr_schedule constant, not {cfg.lr_schedule}; "
                             "set one of them")
    if cfg.binarize != "none" and cfg.likelihood not in ("auto", "bernoulli"):
        raise LatentdynError("--binarize needs the Bernoulli likelihood; drop --binarize for a Gaussian model")


def train_vae(cfg: TrainVAEConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
              verbose: bool = True) -> dict:
    """Train (or resume) a beta-VAE into the run folder ``out``; returns the last metrics row.

    Under ``torchrun`` the processes train one model with DistributedDataParallel (see
    ``latentdyn.engine.distributed``); only rank 0 writes, and the others return an empty dict.
    """
    from latentdyn.engine import distributed

    validate(cfg)
    with distributed.session(cfg.device) as (dist, device):
        return _train_vae(cfg, Path(out), resume, progress, verbose, dist, device)


def _train_vae(cfg: TrainVAEConfig, run_dir: Path, resume: bool, progress, verbose: bool, dist, device) -> dict:
    import torch

    from latentdyn.engine import distributed
    from latentdyn.engine.loop import Fit, run_epochs
    from latentdyn.engine.tracking import Tracker
    from latentdyn.vae.flow import FlowRecorder
    from latentdyn.vae.factory import make_vae
    from latentdyn.vae.model import channels_last_pays, resolve_width

    cfg.likelihood = resolve_likelihood(cfg.data, cfg.likelihood, cfg.binarize)  # the saved config says what was used
    if cfg.val_split is None:
        cfg.val_split = val_split_of(cfg) or ""  # recorded: the run says what it was selected on
    B = dist.local_batch(cfg.batch_size)  # per-rank batch; the configured one is global
    train, shape = open_frames(cfg, cfg.train_split, device, cfg.limit, dist)
    if len(train) == 0:
        raise LatentdynError(f"the {cfg.train_split!r} split of {cfg.data} is empty"
                             + (f" or smaller than the {dist.world} processes" if dist.active else ""))
    val = open_frames(cfg, cfg.val_split, device)[0] if cfg.val_split and dist.main else None  # rank 0 validates
    if val is not None and len(val) == 0:
        val = None
    H, W, C = shape
    if cfg.arch == "resnet":
        if resume and not cfg.width and (run_dir / "config.toml").is_file():  # a run made before the width rule keeps its width
            from latentdyn.core.config import load_toml

            cfg.width = int(load_toml(run_dir / "config.toml").get("width", 0) or 0)
        cfg.width = resolve_width(cfg, (C, H, W))  # the saved config says which width was used
    if cfg.arch == "slots":
        from latentdyn.vae.slots import auto_slot_width, training_clips

        cfg.width = cfg.width or auto_slot_width((C, H, W))
        train = training_clips(cfg, train)  # clips of consecutive frames: the slots are carried through them
        val = training_clips(cfg, val) if val is not None else None  # selected on frames encoded as they are used
    plain = to_dict(cfg)
    torch.manual_seed(cfg.seed)  # initial weights
    model = make_vae(cfg, (C, H, W)).to(device)
    nhwc = channels_last_pays(model, device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    net = distributed.wrap(model, dist, device, cfg.compile)  # DDP averages the gradients over the ranks
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    n_batches = -(-len(train) // B)
    done = {"epoch": 0, "steps": 0}  # optimizer steps taken, for the learning-rate warm-up

    def step(x_u8, epoch: int) -> dict:
        beta = cfg.beta * min(1.0, epoch / cfg.warmup_epochs) if cfg.warmup_epochs else cfg.beta
        if cfg.lr_warmup:
            if done["epoch"] != epoch:  # a new epoch, or a resumed run: the steps of the epochs before
                done.update(epoch=epoch, steps=(epoch - 1) * n_batches)
            done["steps"] += 1
            for group in opt.param_groups:
                group["lr"] = cfg.lr * min(1.0, done["steps"] / cfg.lr_warmup)
        g_bin, g_noise = gens[epoch]
        xb = batch_floats(x_u8, cfg.binarize, g_bin)
        if nhwc:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with autocast:
            return net(xb, beta=beta, generator=g_noise)

    gens: dict[int, tuple] = {}

    def batches(epoch: int):
        g_perm = torch_generator(epoch_seed(cfg.seed, epoch, dist.stream(1)), "cpu")
        gens.clear()
        gens[epoch] = (torch_generator(epoch_seed(cfg.seed, epoch, dist.stream(3)), device),
                       torch_generator(epoch_seed(cfg.seed, epoch, dist.stream(2)), device))
        return train.batches(B, g_perm)

    tracker = Tracker(run_dir, cfg.tensorboard and dist.main) if dist.main else None
    flow = {}

    def on_epoch(epoch: int, row: dict) -> None:
        if "flow" not in flow:
            flow["flow"] = FlowRecorder(run_dir, (val if val is not None else train).head(8), cfg, device)
        flow["flow"].snapshot(model, epoch, row.get("val_elbo", row["train_elbo"]), tracker)

    from latentdyn.vae import likelihoods as lik

    honest = lik.is_log_probability(cfg.likelihood, lik.data_protocol(cfg.binarize))
    name = "ELBO" if honest else f"-({lik.TRAINING_LOSS_KEY.get(cfg.likelihood, 'loss')} + KL), not a likelihood"

    def message(r: dict) -> str:
        return f"train {name} {r['train_elbo']:.2f}" + (f", val {r['val_elbo']:.2f}" if "val_elbo" in r else "")

    fit = Fit(
        kind="vae", run_dir=run_dir, plain=plain, model=model, optimizer=opt, epochs=cfg.epochs, terms=TERMS,
        step=step, batches=batches, n_batches=n_batches, n_examples=len(train) * dist.world,
        score=lambda row: row.get("val_elbo", row["train_elbo"]),
        validate=(lambda epoch: evaluate_elbo(model, val, cfg, device)) if val is not None else None,
        schedule=cfg.lr_schedule, patience=cfg.patience if val is not None else 0,
        extra={"data": {"source": str(cfg.data), "shape": [C, H, W], "n_train": len(train) * dist.world,
                        "val_split": cfg.val_split, "elbo_is_log_probability": honest}},
        on_epoch=on_epoch,
        message=message,
        defaults=RESUME_DEFAULTS, threads=cfg.threads,
    )
    try:
        row = run_epochs(fit, dist, device, progress, verbose, resume, RESUME_MAY_CHANGE, tracker)
        if dist.main and "flow" in flow:
            flow["flow"].animate()
    finally:
        if tracker is not None:
            tracker.close()
    distributed.finish(model, dist, run_dir, cfg.batch_size)
    return row


def evaluate_elbo(model, frames, cfg: TrainVAEConfig, device, batch: int = 1000) -> dict:
    """One-sample ELBO, reconstruction and KL (nats per example) and the KL of each latent
    dimension (``kl_dims_key``) over a frame set (for a slot model, clips encoded in order). Dynamic binarisation uses one fixed sample (seeded), so scores of
    different epochs compare."""
    import torch

    model.eval()
    g_noise = torch_generator(epoch_seed(cfg.seed, 0, 12), device)
    g_bin = torch_generator(epoch_seed(cfg.seed, 0, 13), device)
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    kl_dims = torch.zeros(model.latent_dim, device=device, dtype=torch.float64)
    with torch.no_grad():
        for x_u8 in frames.batches(batch):
            xb = batch_floats(x_u8, cfg.binarize, g_bin)
            t = model(xb, generator=g_noise)
            sums += torch.stack([t["elbo"].sum(), t["rec"].sum(), t["kl"].sum()]).double()
            if xb.ndim == 5:  # slot clips (B, L, C, H, W): encoded in order, the slots carried
                mu, logvar = (t.flatten(0, 1) for t in model.encode_sequence(xb))  # (B*L, d) each
            else:
                mu, logvar, _ = model.posterior(xb)  # the (base) Gaussian
            kl_dims += model.kl_per_dim(mu.float(), logvar.float()).sum(0).double()
    elbo, rec, kl = (sums / len(frames)).tolist()
    return {"elbo": elbo, "rec": rec, "kl": kl, kl_dims_key(model): (kl_dims / len(frames)).tolist()}


def kl_dims_key(model) -> str:
    """``kl_per_dim``: the closed-form KL of each latent dimension (Gaussian prior and posterior; they
    sum to the KL). With a flow there is no per-dimension KL: ``base_kl_per_dim`` is then the closed-form
    KL(q0(z0|x) || N(0, 1)) of each dimension of the *base* Gaussian, a proxy of which dimensions the
    encoder uses that does not sum to the KL (docs/flows.md)."""
    return "base_kl_per_dim" if model.has_flow else "kl_per_dim"


def load_vae(run_dir: str | Path, which: str = "best", device="cpu"):
    """The model (in eval mode, parameters frozen: for analysis, not training), its config and
    checkpoint, from a run folder (``which``: best or last)."""
    import torch

    from latentdyn.engine.checkpoint import load_checkpoint
    from latentdyn.vae.factory import make_vae
    from latentdyn.vae.model import channels_last_pays

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist; train one with `latentdyn train vae`")
    path = run_dir / f"{which}.pt"
    ck = load_checkpoint(path, "vae")
    cfg = from_dict(TrainVAEConfig, ck["config"])
    model = make_vae(cfg, tuple(ck["data"]["shape"]))
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        from latentdyn.vae.model import flow_mismatch

        flows = flow_mismatch(model, ck["model"])
        if flows:
            raise LatentdynError(f"{path} does not match its own config: {flows}; retrain it, or set prior/posterior "
                                 "in its config to what it was trained with") from None
        raise LatentdynError(f"{path} does not match its own config ({str(e).splitlines()[0][:100]})") from None
    model = model.to(device).eval().requires_grad_(False)  # no autograd graph through the weights
    if channels_last_pays(model, device):
        model = model.to(memory_format=torch.channels_last)  # faster convolutions for every consumer
    return model, cfg, ck


def model_hwc(model) -> tuple[int, int, int]:
    """The (H, W, C) of the images a model takes."""
    C, H, W = model.shape
    return H, W, C
