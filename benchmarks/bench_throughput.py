"""Benchmark: training throughput (samples per second) on whatever device is found.

    python benchmarks/bench_throughput.py [--device auto] [--sequences 500] [--arch resnet] [--batch-size 128]

In the same run, on the same device and the same light-ball frames (generated here):
1. beta-VAE. Yardstick: the plain PyTorch way with the same model (latentdyn's BetaVAE), the
   same batch size and optimiser: a DataLoader over a CPU TensorDataset of float frames,
   shuffled, each batch copied to the device. Ours: ``train_vae`` (frames on the device as
   uint8, indexed batches; bf16 autocast and channels-last on CUDA), one epoch, no validation.
2. GRU predictor. Yardstick: a DataLoader over precomputed CPU windows (context + horizon
   latents), each batch copied to the device, the same model and loss. Ours: ``train_dynamics``.
Prints frames/s (windows/s) of both and the ratio. On a GPU this measures the GPU path.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentdyn.scenes import generate as scenes
from latentdyn.engine.devices import pick_device
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.model import LatentGRU
from latentdyn.dynamics.train import train_dynamics, window_loss
from latentdyn.vae.encode import encode
from latentdyn.scenes.file import open_scenes
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.model import BetaVAE
from latentdyn.vae.train import train_vae


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def plain_vae(frames_u8: np.ndarray, cfg: TrainVAEConfig, batch: int, dev) -> float:
    """Frames/s of the plain DataLoader loop (one epoch)."""
    torch.manual_seed(0)
    model = BetaVAE(cfg, (1, *frames_u8.shape[1:3])).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(frames_u8.astype(np.float32) / 255.0)[:, None]  # (N, 1, H, W) on the CPU
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=batch, shuffle=True)
    sync(dev)
    t0 = time.perf_counter()
    for (xb,) in loader:
        xb = xb.to(dev)
        loss = model(xb)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(dev)
    return len(x) / (time.perf_counter() - t0)


def plain_dynamics(mu: np.ndarray, lv: np.ndarray, context: int, horizon: int, batch: int, dev, windows: int = 4) -> float:
    """Windows/s of the plain DataLoader loop (one epoch of ``windows`` windows per sequence)."""
    rng = np.random.default_rng(0)
    N, T, d = mu.shape
    L = context + horizon
    seq = np.repeat(np.arange(N), windows)
    start = rng.integers(0, T - L + 1, len(seq))
    idx = start[:, None] + np.arange(L)
    wm, wl = torch.from_numpy(mu[seq[:, None], idx]), torch.from_numpy(lv[seq[:, None], idx])  # (W, L, d) on the CPU
    torch.manual_seed(0)
    model = LatentGRU(TrainDynamicsConfig(hidden=128), d).to(dev)
    model.fit_scales(torch.from_numpy(mu).to(dev))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(wm, wl), batch_size=batch, shuffle=True)
    sync(dev)
    t0 = time.perf_counter()
    for a, b in loader:
        loss = window_loss(model, a.to(dev), b.to(dev), context, horizon, 1.0)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    sync(dev)
    return len(wm) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--sequences", type=int, default=500, help="light-ball sequences of 40 frames")
    ap.add_argument("--arch", default="resnet")
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args()
    dev = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        scene = scenes.load_scene("light_ball", ["scene.length=40"])
        path = scenes.generate(scene, tmp / "ball.h5", args.sequences, seed=0, splits={"train": 1.0}, progress=False)
        with open_scenes(path) as sf:
            frames = sf.read_frames(np.arange(sf.n_sequences)).reshape(-1, 28, 28)  # (N*T, 28, 28) uint8
        print(f"device: {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else
                                  f", {torch.get_num_threads()} threads") + f"; {len(frames):,} frames of 28x28")
        run = TrainVAEConfig(data=str(path), arch=args.arch, latent_dim=4, likelihood="bernoulli", val_split="", epochs=1,
                             batch_size=args.batch_size, device=str(dev))
        plain = plain_vae(frames, run, args.batch_size, dev)
        row = train_vae(run, tmp / "vae", progress=False, verbose=False)
        ours = len(frames) / row["seconds"]
        print(f"VAE ({args.arch}, batch {args.batch_size})  plain DataLoader loop: {plain:10,.0f} frames/s")
        print(f"VAE ({args.arch}, batch {args.batch_size})  latentdyn train_vae  : {ours:10,.0f} frames/s  "
              f"(ratio {ours / plain:.2f} x; ours includes its checkpoint and figure)")
        lat = encode(tmp / "vae", path, tmp / "lat.h5", device=str(dev), progress=False)
        import h5py

        with h5py.File(lat, "r") as f:
            mu, lv = f["mu"][...], f["logvar"][...]
        K, H, B = 5, 20, 64
        plain_w = plain_dynamics(mu, lv, K, H, B, dev)
        dcfg = TrainDynamicsConfig(latents=str(lat), hidden=128, val_split="", epochs=1, batch_size=B, context=K, horizon=H,
                                   device=str(dev))
        drow = train_dynamics(dcfg, tmp / "dyn", progress=False, verbose=False)
        ours_w = len(mu) * 4 / drow["seconds"]
        print(f"GRU (context {K}, horizon {H}, batch {B})  plain DataLoader loop: {plain_w:10,.0f} windows/s")
        print(f"GRU (context {K}, horizon {H}, batch {B})  latentdyn train_dynamics: {ours_w:10,.0f} windows/s  "
              f"(ratio {ours_w / plain_w:.2f} x)")


if __name__ == "__main__":
    main()
