"""Benchmark: fresh training sequences (``fresh_sequences``, issue #25), made against used.

    python benchmarks/bench_fresh.py --latents LAT.h5 --out DIR [--epochs 10] [--fresh 1000] [--probe 243]

1. Production, one CPU thread: the seconds of simulating, rendering and encoding ``--probe``
   sequences of the latents file's scene with its VAE (``dynamics.fresh.SequenceMaker``, in this
   process), and of one epoch of ``--fresh`` sequences from one worker process
   (``FreshStream``, start-up apart), in sequences per second.
2. Consumption: the same predictor (the three_balls quick profile's GRU: hidden 256, 5 + 10
   latents a window, 4 windows a sequence, batch 64, lr 2e-3, seed 1, one thread) trained
   ``--epochs`` on the file's fixed training sequences and on ``--fresh`` fresh ones per epoch;
   the fixed run's sequences per second of epoch time is what the trainer consumes.
3. The figure: validation open-loop error against the training sequences seen, both runs
   (DIR/open_loop_vs_sequences.png), and DIR/bench_fresh.json with every number.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def production(latents: str, probe: int, fresh: int) -> dict:
    """Sequences per second made by one thread: the stages in this process, then a worker's epoch."""
    import torch

    from latentdyn.dynamics.fresh import FreshStream, SequenceMaker, fresh_seed, fresh_source
    from latentdyn.vae.encode import encode_frames

    torch.set_num_threads(1)
    src = fresh_source(latents)
    make = SequenceMaker(src)
    seed, ids = fresh_seed(src.generator_seed, 1, 1), np.arange(probe)
    t0 = time.perf_counter()
    make.draw.states(seed, ids)
    t1 = time.perf_counter()
    frames = make.draw.frames(seed, ids)[0]  # simulated again, then rendered
    t2 = time.perf_counter()
    encode_frames(make.vae, frames.reshape(-1, *frames.shape[2:]), "cpu", binarize=make.binarize,
                  precision=src.precision)
    t3 = time.perf_counter()
    out = {"probe_sequences": probe, "simulate_s": t1 - t0, "render_s": (t2 - t1) - (t1 - t0), "encode_s": t3 - t2,
           "in_process_sequences_per_s": probe / (t3 - t1)}
    t0 = time.perf_counter()
    with FreshStream(src, fresh, seed=1, workers=1) as stream:
        stream.start(1)
        blocks = stream.blocks(1)
        first = next(blocks)
        t1 = time.perf_counter()
        n = len(first[0]) + sum(len(mu) for mu, _ in blocks)
        t2 = time.perf_counter()
    out.update({"worker_first_block_s": t1 - t0, "worker_epoch_sequences": n, "worker_epoch_s": t2 - t1,
                "worker_sequences_per_s": (n - len(first[0])) / (t2 - t1)})
    return out


def train(latents: str, out: Path, epochs: int, fresh: int) -> list[dict]:
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.dynamics.train import train_dynamics

    cfg = TrainDynamicsConfig(latents=latents, hidden=256, context=5, horizon=10, windows=4, batch_size=64, lr=2e-3,
                              epochs=epochs, seed=1, threads=1, device="cpu", fresh_sequences=fresh)
    t0 = time.perf_counter()
    train_dynamics(cfg, out, progress=False, verbose=False)
    print(f"  {out.name}: {time.perf_counter() - t0:.1f} s")
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def main() -> None:
    from latentdyn.viz.figures import open_loop_vs_sequences

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latents", required=True)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--fresh", type=int, default=1000)
    ap.add_argument("--probe", type=int, default=243)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    prod = production(a.latents, a.probe, a.fresh)
    print("production (one thread):", json.dumps({k: round(v, 3) for k, v in prod.items()}))
    runs = {"fixed file": train(a.latents, a.out / "fixed", a.epochs, 0),
            f"{a.fresh} fresh each epoch": train(a.latents, a.out / "fresh", a.epochs, a.fresh)}
    fig = open_loop_vs_sequences(runs, a.out / "open_loop_vs_sequences.png")
    summary = {"production": prod, "runs": {}}
    for label, rows in runs.items():
        sec = float(np.median([r["seconds"] for r in rows]))
        best = min(rows, key=lambda r: r["val_loss"])
        summary["runs"][label] = {
            "median_epoch_s": sec, "sequences_per_epoch": rows[0]["sequences_seen"],
            "consumed_sequences_per_s": rows[0]["sequences_seen"] / sec,
            "best_epoch": best["epoch"], "best_val_open_loop_se": best["val_open_loop_se"],
            "last_val_open_loop_se": rows[-1]["val_open_loop_se"],
            "last_train_open_loop_se": rows[-1]["train_open_loop_se"],
            "val_open_loop_se": [round(r["val_open_loop_se"], 4) for r in rows]}
        print(label, json.dumps(summary["runs"][label]))
    fixed, fresh = summary["runs"].values()
    print(f"ratios, fresh / fixed file (the yardstick, same run): seconds per epoch "
          f"{fresh['median_epoch_s'] / fixed['median_epoch_s']:.2f}; best val open-loop error "
          f"{fresh['best_val_open_loop_se'] / fixed['best_val_open_loop_se']:.3f}; worker production / trainer consumption "
          f"{prod['worker_sequences_per_s'] / fixed['consumed_sequences_per_s']:.2f} (>= 1: the trainer never waits)")
    (a.out / "bench_fresh.json").write_text(json.dumps(summary, indent=1))
    print("figure:", fig)


if __name__ == "__main__":  # the fresh-sequence workers are spawned: the guard keeps them from running this
    main()
