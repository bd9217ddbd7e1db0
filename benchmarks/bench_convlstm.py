"""Seconds per training sequence of the pixel-space ConvLSTM (``latentdyn.dynamics.convlstm``) by size.

    OMP_NUM_THREADS=1 python benchmarks/bench_convlstm.py [--threads 1] [--sizes 2x64x5x4,2x64x3x4,...]

One optimiser step (Adam) on a batch of 16 random sequences of 20 frames of 64 x 64 (Moving MNIST's
shape), 10 observed, scheduled sampling at 0.5; the best of the steps after a warm-up, divided by
16. A size is LAYERSxHIDDENxKERNELxPATCH; 4x128x5x4 is OpenSTL's ConvLSTM-S, the yardstick: every
row prints its time as a ratio to ConvLSTM-S's, measured in the same run (it is added when missing).
"""

from __future__ import annotations

import argparse
import time

import torch

from latentdyn.dynamics.convlstm import ConvLSTMPredictor
from latentdyn.dynamics.convlstm_train import window_terms

SIZES = "2x64x5x4,2x64x3x4,1x64x5x4,2x32x5x4,3x32x5x4,4x128x5x4"
YARDSTICK = "4x128x5x4"  # OpenSTL's ConvLSTM-S


def seconds_per_sequence(layers: int, hidden: int, kernel: int, patch: int, steps: int = 3, batch: int = 16) -> float:
    x = torch.rand(batch, 20, 1, 64, 64, generator=torch.Generator().manual_seed(0))  # (B, T, C, h, w)
    model = ConvLSTMPredictor((1, 64, 64), layers, hidden, kernel, patch)
    opt = torch.optim.Adam(model.parameters())
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        loss = window_terms(model, x, 10, 0.5, torch.Generator().manual_seed(1))["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return min(times[1:]) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default=SIZES)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.sizes.split(",")
    if YARDSTICK not in sizes:
        sizes.append(YARDSTICK)
    rows = []
    for size in sizes:
        layers, hidden, kernel, patch = map(int, size.split("x"))
        n = sum(p.numel() for p in ConvLSTMPredictor((1, 64, 64), layers, hidden, kernel, patch).parameters())
        rows.append((size, n, seconds_per_sequence(layers, hidden, kernel, patch, steps=2 if hidden >= 128 else 3)))
    ref = dict((size, s) for size, _, s in rows)[YARDSTICK]
    print("| layers x hidden | kernel | patch | parameters | s per training sequence | time / ConvLSTM-S's |\n"
          "| --- | --- | --- | --- | --- | --- |")
    for size, n, s in rows:
        layers, hidden, kernel, patch = size.split("x")
        print(f"| {layers} x {hidden} | {kernel} | {patch} | {n:,} | {s:.3f} | {s / ref:.3f} |")


if __name__ == "__main__":
    main()
