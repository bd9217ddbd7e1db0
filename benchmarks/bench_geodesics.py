"""Benchmark: our batched geodesic solver against StochMan's on the same decoder and pairs.

    pip install stochman   # only for this benchmark
    python benchmarks/bench_geodesics.py [--vae RUN] [--pairs 64] [--points 32]

The decoder is a ``tutorial`` VAE with a 2-d latent on Fashion-MNIST (28x28 outputs): ``--vae``
gives a trained run; without it, one is trained here for one epoch. Pairs are the posterior
means of random test images. StochMan (Detlefsen et al.) gets an ``EmbeddedManifold`` whose
embedding is the decoder and its default solver (``connecting_geodesic``: a cubic spline
optimised by Adam for up to 150 steps), evaluated on the same 32-point grid. Both results, and
the straight line, are measured by the same function (``latentdyn.geometry.metric.measure_curves``:
length under the pull-back metric of the piecewise-linear curve through the points, energy of its
constant-speed parametrisation L^2 / 2). Prints energies, lengths and times, and the ratios
(target: equal or lower energy in a fifth of StochMan's time or less).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from latentdyn.geometry import metric as G


def get_vae(path: str | None, tmp: Path, dev):
    from latentdyn.vae.config import TrainVAEConfig
    from latentdyn.vae.train import load_vae, train_vae

    if path is None:
        path = tmp / "vae"
        cfg = TrainVAEConfig(data="fashion-mnist", arch="tutorial", latent_dim=2, binarize="static", limit=20000, epochs=1,
                             device=str(dev))
        train_vae(cfg, path, progress=False, verbose=False)
    return load_vae(path, "best", dev)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vae", default=None)
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--points", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a device name; both solvers use it")
    ap.add_argument("--skip-stochman", action="store_true", help="time only ours (StochMan not installed, or to save time)")
    args = ap.parse_args()
    from latentdyn.engine.devices import pick_device

    dev = pick_device(args.device)
    from latentdyn import datasets
    from latentdyn.vae.encode import encode_frames

    with tempfile.TemporaryDirectory() as d:
        vae, cfg, _ = get_vae(args.vae, Path(d), dev)
    for p in vae.parameters():
        p.requires_grad_(False)
    test = datasets.load("fashion-mnist", "test")
    mu, _ = encode_frames(vae, test.images, dev, binarize=cfg.binarize)
    rng = np.random.default_rng(args.seed)
    idx = np.stack([rng.choice(len(mu), 2, replace=False) for _ in range(args.pairs)])
    z0, z1 = torch.as_tensor(mu[idx[:, 0]], device=dev), torch.as_tensor(mu[idx[:, 1]], device=dev)
    decode = vae.decode
    print(f"decoder: {cfg.arch}, latent {cfg.latent_dim}, output {vae.shape[1]}x{vae.shape[2]}; "
          f"{args.pairs} pairs, {args.points} points; device {dev}, torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    ours = G.connecting_geodesic(decode, z0, z1, n_points=args.points)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t_ours = time.perf_counter() - t0
    if args.skip_stochman:
        print(f"straight line      : energy {ours['line_energy'].sum().item():10.1f}   length median {ours['line_length'].median():.3f}")
        print(f"latentdyn          : energy {ours['energy'].sum().item():10.1f}   length median {ours['length'].median():.3f}   "
              f"{t_ours:7.1f} s ({ours['converged'].float().mean():.0%} converged, {ours['decoder_passes']:,} decoder passes)")
        print(f"length ratio geodesic / line: median {(ours['length'] / ours['line_length']).median():.3f}")
        print(f"pairs per second: ours {args.pairs / t_ours:.2f}")
        return

    from stochman.curves import CubicSpline
    from stochman.geodesic import geodesic_minimizing_energy
    from stochman.manifold import EmbeddedManifold

    class Decoded(EmbeddedManifold):
        def embed(self, c, jacobian=False):
            B, N, dim = c.shape
            return decode(c.reshape(-1, dim)).reshape(B, N, -1)

    t0 = time.perf_counter()
    spline = CubicSpline(z0.clone(), z1.clone())
    geodesic_minimizing_energy(spline, Decoded(), eval_grid=args.points)
    t_sm = time.perf_counter() - t0
    with torch.no_grad():
        sm_curve = spline(torch.linspace(0, 1, args.points, device=dev))  # (B, n, d)
        sm = G.measure_curves(decode, sm_curve)  # as ours and the line are measured
        sm_len, sm_en = sm["length"], sm["energy"]
    e_ours, e_sm, e_line = ours["energy"].sum().item(), sm_en.sum().item(), ours["line_energy"].sum().item()
    print(f"straight line      : energy {e_line:10.1f}   length median {ours['line_length'].median():.3f}")
    print(f"StochMan 0.3       : energy {e_sm:10.1f}   length median {sm_len.median():.3f}   {t_sm:7.1f} s")
    print(f"latentdyn          : energy {e_ours:10.1f}   length median {ours['length'].median():.3f}   {t_ours:7.1f} s "
          f"({ours['converged'].float().mean():.0%} converged, {ours['decoder_passes']:,} decoder passes)")
    print(f"energy ours / StochMan: {e_ours / e_sm:.3f}   time ours / StochMan: {t_ours / t_sm:.3f}  (target <= 1 and <= 0.2)")
    print(f"pairs per second: ours {args.pairs / t_ours:.2f}, StochMan {args.pairs / t_sm:.2f}")
    print(f"pairs where ours has lower energy: {(ours['energy'] <= sm_en + 1e-6).float().mean():.0%}")


if __name__ == "__main__":
    main()
