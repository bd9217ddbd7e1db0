"""Benchmark: two training jobs started together on this machine, each one's speed against it alone.

    python benchmarks/bench_threads.py [--work /tmp/bench_threads] [--epochs 3]

In the same run, on the same files (a light_ball scene file and its latents, made here with an MLP
VAE), for the GRU trainer (``latentdyn train dynamics``, the demo's predictor) and the VAE trainer
(``latentdyn train vae``, resnet at the small-frame width):
1. latentdyn's thread policy (``latentdyn.engine.threads``: free cores, timed on the work): one job
   alone, then two jobs started together.
2. Yardstick: PyTorch's default, one thread per core (``LATENTDYN_THREADS`` = the core count, as
   latentdyn ran before the policy): alone, then two together.
Each job is a ``latentdyn`` process; its speed is its training examples per second of epoch time
(``metrics.jsonl``'s ``seconds``, so start-up is not counted). Prints each speed and the ratio of a
job's speed beside the other to its speed alone (the issue's target: at least 0.45).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CLI = [sys.executable, "-m", "latentdyn.cli.main"]


def sh(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(CLI + args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def wait_all(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            raise SystemExit(f"a job failed:\n{err[-2000:]}")


def speed(run: Path, examples: int) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return examples * len(rows) / sum(r["seconds"] for r in rows)


def prepare(work: Path) -> tuple[Path, Path]:
    scenes, vae, lat = work / "ball.h5", work / "vae", work / "lat.h5"
    if not lat.exists():
        subprocess.run(CLI + ["generate", "light_ball", "--out", str(scenes), "-n", "400", "--set", "scene.length=40",
                              "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(CLI + ["train", "vae", "--data", str(scenes), "--arch", "mlp", "--latent-dim", "4", "--epochs", "2",
                              "--out", str(vae)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(CLI + ["encode", "--vae", str(vae), "--data", str(scenes), "--out", str(lat)], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return scenes, lat


def measure(kind: str, work: Path, scenes: Path, lat: Path, epochs: int, env: dict, n: int, tag: str) -> list[float]:
    runs = [work / f"{kind}-{tag}-{i}" for i in range(n)]
    if kind == "gru":
        args = lambda r: ["train", "dynamics", "--latents", str(lat), "--epochs", str(epochs), "--hidden", "128",
                          "--horizon", "20", "--out", str(r)]
        examples = 320 * 4  # train sequences x windows per sequence
    else:
        args = lambda r: ["train", "vae", "--data", str(scenes), "--epochs", str(epochs), "--latent-dim", "4", "--out", str(r)]
        examples = 320 * 40
    for r in runs:
        subprocess.run(["rm", "-rf", str(r)])
    wait_all([sh(args(r), env) for r in runs])
    return [speed(r, examples) for r in runs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default="/tmp/bench_threads")
    ap.add_argument("--epochs", type=int, default=3)
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    scenes, lat = prepare(work)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cores} cores; load average {os.getloadavg()[0]:.2f} at the start; {a.epochs} epochs per job")
    policies = {"latentdyn policy": {"LATENTDYN_THREADS": "", "OMP_NUM_THREADS": ""},
                "PyTorch default (yardstick)": {"LATENTDYN_THREADS": str(cores), "OMP_NUM_THREADS": ""}}
    for kind in ("gru", "vae"):
        for name, env in policies.items():
            t = time.perf_counter()
            alone = measure(kind, work, scenes, lat, a.epochs, env, 1, "alone")[0]
            pair = measure(kind, work, scenes, lat, a.epochs, env, 2, "pair")
            print(f"{kind:4s} {name:28s} alone {alone:9,.0f} ex/s; two together {pair[0]:9,.0f} and {pair[1]:9,.0f} ex/s; "
                  f"ratio {pair[0] / alone:.2f} and {pair[1] / alone:.2f} ({time.perf_counter() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
