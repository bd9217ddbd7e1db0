"""Benchmark: rolling out and decoding 1000 sequences of 100 steps, against a per-sequence loop.

    python benchmarks/bench_rollout.py [--sequences 1000] [--steps 100] [--device auto]

Both sides use the same models (a GRU predictor of width 128 on a 4-d latent and a decoder for
28x28 frames, ``--arch`` tutorial by default, randomly initialised: speed does not depend on
training):
- yardstick: the way a notebook often does it, one sequence at a time, one step at a time
  (GRU step, decode the frame), here over a sample of sequences and scaled to the total;
- ours: ``latentdyn.dynamics.model.predict`` for all sequences at once, then one batched decode
  (``rollout.decode_latents``).
Prints seconds for both, frames per second, and the ratio. Reports whatever device it finds.
"""

from __future__ import annotations

import argparse
import time

import torch

from latentdyn.engine.devices import pick_device
from latentdyn.dynamics.config import TrainDynamicsConfig
from latentdyn.dynamics.model import LatentGRU, predict
from latentdyn.dynamics.rollout import decode_latents
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.model import BetaVAE


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--context", type=int, default=10)
    ap.add_argument("--yardstick-sequences", type=int, default=20, help="sequences the slow loop actually runs")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--arch", default="tutorial", choices=["tutorial", "mlp", "resnet"], help="decoder architecture")
    args = ap.parse_args()
    dev = pick_device(args.device)
    torch.manual_seed(0)
    d = 4
    vae = BetaVAE(TrainVAEConfig(arch=args.arch, latent_dim=d, likelihood="bernoulli"), (1, 28, 28)).to(dev).eval()
    if dev.type in ("cpu", "cuda"):
        vae = vae.to(memory_format=torch.channels_last)
    gru = LatentGRU(TrainDynamicsConfig(hidden=128), d).to(dev).eval()
    torch.nn.init.normal_(gru.head.weight, std=0.01)  # make it move
    ctx = torch.randn(args.sequences, args.context, d, device=dev)
    ctx_lv = torch.full_like(ctx, -3.0)

    # yardstick: per sequence, per step
    n = min(args.yardstick_sequences, args.sequences)
    sync(dev)
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(n):
            mean, s, lvn, h = gru(ctx[i : i + 1], ctx_lv[i : i + 1])
            z, lv, prev = mean[:, -1:], lvn[:, -1:], ctx[i : i + 1, -1:]
            for _ in range(args.steps):
                vae.decode(z[:, 0])  # one frame
                nz, _, lv, h = gru(z, lv, h, prev)
                prev, z = z, nz
    sync(dev)
    loop = (time.perf_counter() - t0) * args.sequences / n

    # ours: every sequence at once, then one batched decode
    sync(dev)
    t0 = time.perf_counter()
    z = predict(gru, ctx, args.steps, context_logvar=ctx_lv)  # (N, steps, d)
    sync(dev)
    t_roll = time.perf_counter() - t0
    frames = decode_latents(vae, z)  # (N, steps, 28, 28, 1)
    sync(dev)
    ours = time.perf_counter() - t0
    total = args.sequences * args.steps
    print(f"device: {dev}; {args.sequences} sequences x {args.steps} steps, {args.arch} decoder, frames {tuple(frames.shape[2:])}")
    print(f"per-sequence loop : {loop:8.1f} s  ({total / loop:10,.0f} frames/s; {n} sequences timed, scaled)")
    print(f"latentdyn batched : {ours:8.1f} s  ({total / ours:10,.0f} frames/s): GRU rollout {t_roll:.2f} s, "
          f"decoding ({args.arch}) {ours - t_roll:.1f} s")
    print(f"ratio             : {loop / ours:8.1f} x")


if __name__ == "__main__":
    main()
