"""Measurement: an 8-bit Fashion-MNIST VAE scored with a true likelihood (nats and bits/dim).

    OMP_NUM_THREADS=1 python benchmarks/bench_likelihood.py [--arch tutorial] [--latent-dim 8]
        [--likelihood discretized-logistic] [--epochs 3] [--limit 20000] [--test-limit 2000] [--iw-samples 64]

Trains with ``latentdyn.vae.train.train_vae`` on the first ``--limit`` training images
(x = u8 / 255, no binarisation), validating on the test split, then runs
``latentdyn.vae.evaluate.evaluate_run`` on the first ``--test-limit`` test images: the
one-sample ELBO, the importance-weighted bound with K = ``--iw-samples`` (Burda et al. 2016)
and both in bits per dimension. Prints the evaluation JSON (less the per-dimension lists).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from latentdyn.vae.evaluate import evaluate_run
from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.train import train_vae


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="tutorial")
    ap.add_argument("--latent-dim", type=int, default=8)
    ap.add_argument("--likelihood", default="discretized-logistic")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--test-limit", type=int, default=2000)
    ap.add_argument("--iw-samples", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    a = ap.parse_args()
    cfg = TrainVAEConfig(data="fashion-mnist", arch=a.arch, latent_dim=a.latent_dim, likelihood=a.likelihood,
                         binarize="none", limit=a.limit, epochs=a.epochs, batch_size=128, lr=1e-3, seed=a.seed, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(a.out or Path(tmp) / "run")
        t0 = time.perf_counter()
        row = train_vae(cfg, run, progress=False)
        t1 = time.perf_counter()
        res = evaluate_run(run, split="test", iw_samples=a.iw_samples, device="cpu", limit=a.test_limit, which="last",
                           progress=False)
        t2 = time.perf_counter()
    res = {k: v for k, v in res.items() if k not in ("posterior_mean_variance", "kl_per_dim", "run")}
    res.update({"train_seconds": round(t1 - t0, 1), "eval_seconds": round(t2 - t1, 1),
                "last_val_elbo_full_test_split": row.get("val_elbo")})
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
