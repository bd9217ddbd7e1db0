"""Training the beta-VAE (``latentdyn train vae``), with the training-flow animation.

The data sit on the training device as one uint8 tensor (N, C, H, W) and batches are indexed
straight out of it (no per-item DataLoader); they become floats on the device. Every epoch
appends a row to ``metrics.jsonl``, writes ``last.pt`` (and ``best.pt`` when the validation ELBO
improves) and a "prediction matrix" PNG: fixed inputs above their reconstructions, and decodes
of fixed prior samples. At the end the PNGs become ``flow.gif`` and ``flow.mp4``, an animation of
how the model learned, epoch by epoch.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentdyn.engine import loop as training
from latentdyn.core.config import from_dict, to_dict
from latentdyn.core.errors import LatentdynError
from latentdyn.vae.model import VAEConfig

BINARIZE = ("none", "static", "dynamic")


@dataclass
class DataConfig:
    source: str = "fashion-mnist"  # a dataset name (mnist, fashion-mnist, cifar10, cifar10-gray) or a scene file
    data_dir: str | None = None  # where the dataset files are (see docs/datasets.md)
    train_split: str = "train"
    val_split: str | None = None  # None: "test" for datasets; a scene file's "val", else "test", else none
    binarize: str = "none"  # "static" (> 0.5 once), "dynamic" (Bernoulli each epoch) or "none"
    limit: int = 0  # use only the first N training images (0: all); for quick runs
    max_memory_mb: int = 4096  # scene frames larger than this stream from HDF5 in blocks instead of sitting in memory


@dataclass
class OptimConfig:
    epochs: int = 10
    batch_size: int = 128  # the tutorial setting is 32 (with lr 1e-4)
    lr: float = 1e-3  # Adam
    warmup_epochs: int = 0  # KL warm-up: beta rises linearly from 0 to its value over these epochs
    seed: int = 0
    device: str = "auto"  # auto: cuda, then mps, then cpu
    compile: bool = False  # torch.compile the training step's model (worth it on GPUs for long runs)


@dataclass
class VAERunConfig:
    model: VAEConfig = field(default_factory=VAEConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: OptimConfig = field(default_factory=OptimConfig)

    def validate(self) -> None:
        t, d = self.train, self.data
        if t.epochs < 1:
            raise LatentdynError(f"--epochs {t.epochs}: must be at least 1")
        if not 1 <= t.batch_size <= 65536:
            raise LatentdynError(f"--batch-size {t.batch_size}: must be 1..65536")
        if not 0 < t.lr < 10:
            raise LatentdynError(f"--lr {t.lr}: must be in (0, 10)")
        if t.warmup_epochs < 0:
            raise LatentdynError(f"--warmup-epochs {t.warmup_epochs}: must not be negative")
        if d.binarize not in BINARIZE:
            raise LatentdynError(f"--binarize {d.binarize!r}: use static, dynamic or none")
        if d.binarize != "none" and self.model.likelihood != "bernoulli":
            raise LatentdynError("--binarize needs the Bernoulli likelihood; drop --binarize for a Gaussian model")
        if d.limit < 0:
            raise LatentdynError(f"--limit {d.limit}: must not be negative")


RESUME_MAY_CHANGE = {"train.epochs", "train.device", "train.compile", "data.data_dir", "data.max_memory_mb"}


class MemoryFrames:
    """A split held as one uint8 tensor (N, C, H, W) on the device; batches are indexed out of it."""

    def __init__(self, x_u8):
        self.x = x_u8

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int, generator=None):
        import torch

        if generator is None:
            for s in range(0, len(self.x), batch_size):
                yield self.x[s : s + batch_size]
            return
        perm = torch.randperm(len(self.x), generator=generator).to(self.x.device)
        for s in range(0, len(self.x), batch_size):
            yield self.x[perm[s : s + batch_size]]

    def head(self, n: int):
        return self.x[:n]


def default_val_split(cfg: VAERunConfig) -> str | None:
    from latentdyn import datasets

    if cfg.data.val_split is not None:
        return cfg.data.val_split or None
    if not datasets.is_scene_source(cfg.data.source):
        return "test"
    from latentdyn.scenes.file import open_scenes

    with open_scenes(cfg.data.source) as sf:
        names = sf.splits
    return "val" if "val" in names else ("test" if "test" in names else None)


def open_frames(cfg: VAERunConfig, split: str | None, device, limit: int = 0, dist=None):
    """A split of the configured source as a frame set (in memory, or streamed for big scene files).

    Returns (frames, (H, W, C)). A scene file without splits trains on every sequence. With
    ``dist`` (a :class:`latentdyn.engine.distributed.Dist`) only this rank's shard is kept: images
    rank, rank + N, ... of a dataset, or those sequences of a scene file (read by index).
    """
    from latentdyn import datasets

    if not datasets.is_scene_source(cfg.data.source):
        data = datasets.load_source(cfg.data.source, split, cfg.data.data_dir)
        images = data.images[:limit] if limit else data.images
        if dist is not None and dist.active:
            images = images[dist.shard(len(images))]
        return MemoryFrames(to_device_uint8(images, device)), tuple(data.shape)
    from latentdyn.scenes.file import open_scenes
    from latentdyn.scenes.stream import SceneStream

    with open_scenes(cfg.data.source) as sf:
        if split == cfg.data.train_split and not sf.splits:
            split = None
        ids = np.sort(sf.split_indices(split))
        T, shape = sf.length, sf.frame_shape
    shape = shape if len(shape) == 3 else (*shape, 1)
    if limit:
        ids = ids[: -(-limit // T)]
    if dist is not None and dist.active:
        ids = ids[dist.shard(len(ids))]
    n_bytes = len(ids) * T * int(np.prod(shape))
    if n_bytes > cfg.data.max_memory_mb * 2**20:
        block = max(1, (64 * 2**20) // (T * int(np.prod(shape))))  # about 64 MiB per block
        return SceneStream(cfg.data.source, ids, device, block), shape
    with open_scenes(cfg.data.source) as sf:
        frames = sf.read_frames(ids) if len(ids) else np.zeros((0, T, *sf.frame_shape), np.uint8)
    images = frames.reshape(-1, *shape)
    return MemoryFrames(to_device_uint8(images[:limit] if limit else images, device)), shape


def to_device_uint8(images: np.ndarray, device):
    """(N, H, W, C) uint8 numpy -> (N, C, H, W) uint8 tensor on ``device``."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)  # (N, C, H, W)


def batch_floats(x_u8, binarize: str, generator=None):
    """uint8 (B, C, H, W) -> float32 in [0, 1], binarized as configured."""
    import torch

    if binarize == "static":
        return (x_u8 > 127).float()  # pixel / 255 > 0.5, as the TF tutorial's np.where(x > .5, 1, 0)
    x = x_u8.float().div_(255.0)  # (B, C, H, W)
    if binarize == "dynamic":
        x = torch.bernoulli(x, generator=generator)
    return x


def resolve_likelihood(source: str, likelihood: str = "auto") -> str:
    """``auto``: Gaussian for colour images (CIFAR-10, RGB scene frames), Bernoulli otherwise."""
    if likelihood != "auto":
        return likelihood
    from latentdyn import datasets as ds

    if ds.is_scene_source(source):
        from latentdyn.scenes.file import open_scenes

        with open_scenes(source) as sf:
            colour = len(sf.frame_shape) == 3 and sf.frame_shape[-1] == 3
    else:
        colour = ds.get_spec(source).shape[-1] == 3
    return "gaussian" if colour else "bernoulli"


def resolve_model(cfg: VAERunConfig, shape: tuple[int, int, int]) -> VAEConfig:
    """Fill the model's input shape from the data; (H, W, C) -> VAEConfig."""
    m = cfg.model
    H, W, C = shape
    m.channels, m.height, m.width_px = C, H, W
    m.validate()
    return m


def train_vae(cfg: VAERunConfig, out: str | Path, resume: bool = False, progress: bool | None = None,
              verbose: bool = True) -> dict:
    """Train (or resume) a beta-VAE into the run folder ``out``; returns the last metrics row.

    Under ``torchrun`` the processes train one model with DistributedDataParallel (see
    ``latentdyn.engine.distributed``); only rank 0 writes, and the others return an empty dict.
    """
    from latentdyn.engine import distributed as distributed

    cfg.validate()
    with distributed.session(cfg.train.device) as (dist, device):
        return _train_vae(cfg, Path(out), resume, progress, verbose, dist, device)


def _train_vae(cfg: VAERunConfig, run_dir: Path, resume: bool, progress: bool | None, verbose: bool, dist, device) -> dict:
    import torch
    from tqdm.auto import tqdm

    from latentdyn.engine import distributed as distributed
    from latentdyn.vae.model import BetaVAE

    B = dist.local_batch(cfg.train.batch_size)  # per-rank batch; the configured one is global
    train, shape = open_frames(cfg, cfg.data.train_split, device, cfg.data.limit, dist)
    if len(train) == 0:
        raise LatentdynError(f"the {cfg.data.train_split!r} split of {cfg.data.source} is empty"
                             + (f" or smaller than the {dist.world} processes" if dist.active else ""))
    val_name = default_val_split(cfg) if dist.main else None  # rank 0 validates and draws
    val = open_frames(cfg, val_name, device)[0] if val_name else None
    if val is not None and len(val) == 0:
        val = None
    resolve_model(cfg, shape)
    plain = to_dict(cfg)
    torch.manual_seed(cfg.train.seed)  # initial weights
    model = BetaVAE(cfg.model).to(device)
    if device.type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    start_epoch, best, log = training.start(run_dir, plain, "vae", resume, RESUME_MAY_CHANGE, model, opt, dist)
    net = distributed.wrap(model, dist, device, cfg.train.compile)  # DDP averages the gradients over the ranks
    flow = FlowRecorder(run_dir, (val if val is not None else train).head(8), cfg, device) if dist.main else None
    N = len(train) * dist.world  # examples per epoch over all ranks
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    row = {}
    for epoch in range(start_epoch, cfg.train.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        beta = cfg.model.beta * min(1.0, epoch / cfg.train.warmup_epochs) if cfg.train.warmup_epochs else cfg.model.beta
        g_perm = training.torch_generator(training.epoch_seed(cfg.train.seed, epoch, dist.stream(1)), "cpu")
        g_noise = training.torch_generator(training.epoch_seed(cfg.train.seed, epoch, dist.stream(2)), device)
        g_bin = training.torch_generator(training.epoch_seed(cfg.train.seed, epoch, dist.stream(3)), device)
        sums = torch.zeros(4, device=device, dtype=torch.float64)  # loss, elbo, rec, kl
        bar = tqdm(train.batches(B, g_perm), total=-(-len(train) // B), desc=f"epoch {epoch}/{cfg.train.epochs}", unit="batch",
                   leave=False, disable=not dist.main or (None if progress is None else not progress))
        seen = 0
        for k, x_u8 in enumerate(bar):
            xb = batch_floats(x_u8, cfg.data.binarize, g_bin)
            if device.type in ("cpu", "cuda"):
                xb = xb.contiguous(memory_format=torch.channels_last)
            with autocast:
                terms = net(xb, beta=beta, generator=g_noise)
            loss = terms["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sums += torch.stack([terms[t].detach().sum() for t in ("loss", "elbo", "rec", "kl")]).double()
            seen += len(x_u8)
            if k % 50 == 49 and dist.main and not bar.disable:  # a host sync now and then for the bar, never every step
                bar.set_postfix(loss=f"{sums[0].item() / seen:.2f}")
        bar.close()
        tr = (dist.all_sum(sums) / N).tolist()
        training.check_finite(tr[0], epoch, run_dir)
        if not dist.main:
            continue
        val_stats = evaluate_elbo(model, val, cfg, device) if val is not None else None
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch, "beta": beta, "train_loss": tr[0], "train_elbo": tr[1], "train_rec": tr[2],
               "train_kl": tr[3], "seconds": seconds}
        if val_stats is not None:
            training.check_finite(val_stats["elbo"], epoch, run_dir, "validation ELBO")
            row.update({f"val_{k}": v for k, v in val_stats.items()})
        score = row.get("val_elbo", row["train_elbo"])
        best = training.finish_epoch(run_dir, "vae", plain, model, opt, epoch, row, score, best, log,
                                     {"data": {"source": str(cfg.data.source), "shape": list(shape), "n_train": N}})
        flow.snapshot(model, epoch, score)
        if verbose:
            msg = f"epoch {epoch}: train ELBO {tr[1]:.2f}" + (f", val ELBO {row['val_elbo']:.2f}" if val_stats else "")
            tqdm.write(f"{msg} ({seconds:.1f} s)")
    if dist.main:
        flow.animate()
    distributed.finish(model, dist, run_dir, cfg.train.batch_size)
    return row


def evaluate_elbo(model, frames, cfg: VAERunConfig, device, batch: int = 1000) -> dict:
    """One-sample ELBO, reconstruction and KL (nats per example) over a frame set.

    Dynamic binarization uses one fixed sample (seeded), so scores of different epochs compare.
    """
    import torch

    model.eval()
    g_noise = training.torch_generator(training.epoch_seed(cfg.train.seed, 0, 12), device)
    g_bin = training.torch_generator(training.epoch_seed(cfg.train.seed, 0, 13), device)
    sums = torch.zeros(3, device=device, dtype=torch.float64)
    with torch.no_grad():
        for x_u8 in frames.batches(batch):
            xb = batch_floats(x_u8, cfg.data.binarize, g_bin)
            t = model(xb, generator=g_noise)
            sums += torch.stack([t["elbo"].sum(), t["rec"].sum(), t["kl"].sum()]).double()
    elbo, rec, kl = (sums / len(frames)).tolist()
    return {"elbo": elbo, "rec": rec, "kl": kl}


class FlowRecorder:
    """The per-epoch prediction matrix (inputs, reconstructions, prior samples) and its animation."""

    def __init__(self, run_dir: Path, x_u8, cfg: VAERunConfig, device, n: int = 8):
        """``x_u8``: the fixed inputs, uint8 (n, C, H, W) on the device."""
        import torch

        self.dir = run_dir / "flow"
        self.dir.mkdir(exist_ok=True)
        self.run_dir, self.cfg = run_dir, cfg
        self.x = batch_floats(x_u8[:n], cfg.data.binarize if cfg.data.binarize == "static" else "none")  # (n, C, H, W)
        g = training.torch_generator(training.epoch_seed(cfg.train.seed, 0, 21), "cpu")
        self.z = torch.randn((n, cfg.model.latent_dim), generator=g).to(device)  # fixed prior samples

    def snapshot(self, model, epoch: int, score: float) -> Path:
        import torch

        from latentdyn.viz.video import upscale

        model.eval()
        with torch.no_grad():
            mu, _ = model.encode(self.x)
            rec = model.decode(mu).float()  # (n, C, H, W)
            gen = model.decode(self.z).float()
        rows = [self.x.float(), rec, gen]
        img = torch.cat([torch.cat(list(r), dim=-1) for r in rows], dim=-2)  # (C, 3H, nW)
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()  # (3H, nW, C)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, -1)
        scale = max(1, round(84 / self.cfg.model.height))
        arr = upscale(arr[None], scale)[0]
        from PIL import Image, ImageDraw, ImageFont

        H = self.cfg.model.height * scale
        canvas = np.full((arr.shape[0] + 20, arr.shape[1] + 110, 3), 24, np.uint8)
        canvas[20:, 110:] = arr
        pil = Image.fromarray(canvas)
        draw, font = ImageDraw.Draw(pil), ImageFont.load_default()
        draw.text((4, 4), f"epoch {epoch}   ELBO {score:.1f} nats", fill=(235, 235, 235), font=font)
        for k, label in enumerate(["input", "reconstruction", "prior sample"]):
            draw.text((4, 20 + k * H + H // 2 - 6), label, fill=(235, 235, 235), font=font)
        path = self.dir / f"epoch_{epoch:03d}.png"
        from latentdyn.core.fileio import atomic_path

        with atomic_path(path) as tmp:
            pil.save(tmp, format="PNG")
        return path

    def animate(self, fps: float = 2.0) -> list[Path]:
        """flow.gif and flow.mp4 from every epoch's PNG, one frame per epoch."""
        from PIL import Image

        from latentdyn.viz.video import write_video

        pngs = sorted(self.dir.glob("epoch_*.png"))
        if not pngs:
            return []
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])  # (E, H, W, 3)
        return [write_video(frames, self.run_dir / "flow.gif", fps), write_video(frames, self.run_dir / "flow.mp4", fps)]


def load_vae(run_dir: str | Path, which: str = "best", device="cpu"):
    """The model (in eval mode, parameters frozen: for analysis, not training), its config and
    checkpoint, from a run folder (``which``: best or last)."""
    import torch

    from latentdyn.vae.model import BetaVAE

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist; train one with `latentdyn train vae`")
    path = run_dir / f"{which}.pt"
    ck = training.load_checkpoint(path, "vae")
    cfg = from_dict(VAERunConfig, ck["config"])
    model = BetaVAE(cfg.model)
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise LatentdynError(f"{path} does not match its own config ({str(e).splitlines()[0][:100]})") from None
    model = model.to(device).eval().requires_grad_(False)  # no autograd graph through the weights
    if torch.device(device).type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)  # faster convolutions for every consumer
    return model, cfg, ck
