"""Benchmark: our VAE trainer against a plain PyTorch loop of the TensorFlow-tutorial model.

    python benchmarks/bench_vae.py [--data fashion-mnist] [--epochs 10] [--max-ours-epochs 10]

In the same run, on statically binarized data, both sides on the same split: trained on the
official training set less the 5,000 validation images (``latentdyn.datasets.splits``), scored on
those validation images; the test set is not read.
1. Yardstick: the tutorial's convolutional VAE (written here, independently of latentdyn),
   trained the plain way: a DataLoader over a TensorDataset, batch 32, Adam 1e-4, for
   ``--epochs`` epochs. Seconds per epoch (training only) and its final validation ELBO.
2. Ours: ``latentdyn train vae`` with its defaults (resnet, batch 128, Adam 1e-3), epoch by
   epoch, until its validation ELBO reaches the yardstick's final one. Its wall time includes its
   own per-epoch validation, checkpoints and prediction-matrix figures.
Both ELBOs are one-sample estimates with the analytic KL, in nats per example (Bernoulli: a
log-probability of the binarised images).
Prints seconds per epoch of both, and the ratio of our time-to-target to the loop's total time
(target: 1/3 or less).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from latentdyn.vae.config import TrainVAEConfig
from latentdyn.vae.train import train_vae


class TutorialVAE(nn.Module):
    """tensorflow.org/tutorials/generative/cvae, in PyTorch."""

    def __init__(self, d=2):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 32, 3, 2), nn.ReLU(), nn.Conv2d(32, 64, 3, 2), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(64 * 6 * 6, 2 * d))
        self.dec = nn.Sequential(nn.Linear(d, 7 * 7 * 32), nn.ReLU(), nn.Unflatten(1, (32, 7, 7)),
                                 nn.ConvTranspose2d(32, 64, 3, 2, 1, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(64, 32, 3, 2, 1, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 3, 1, 1))

    def terms(self, x):
        mu, logvar = self.enc(x).chunk(2, 1)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        rec = -F.binary_cross_entropy_with_logits(self.dec(z), x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)
        return rec, kl


def plain_loop(x_train, x_val, epochs, dev):
    torch.manual_seed(0)
    model = TutorialVAE().to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x_train), batch_size=32, shuffle=True)
    secs, elbos = [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for (xb,) in loader:
            rec, kl = model.terms(xb.to(dev))
            loss = -(rec - kl).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        secs.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            elbo = sum((lambda r, k: (r - k).sum().item())(*model.terms(x_val[s:s + 1000].to(dev))) for s in range(0, len(x_val), 1000))
        elbos.append(elbo / len(x_val))
        print(f"  plain loop epoch {epoch + 1}: {secs[-1]:.1f} s, val ELBO {elbos[-1]:.2f}", flush=True)
    return secs, elbos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the plain loop")
    ap.add_argument("--max-ours-epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0, help="training images (0: all of the train split)")
    ap.add_argument("--device", default="auto", help="auto (cuda, mps, cpu) or a device name; both loops use it")
    args = ap.parse_args()
    from latentdyn.engine.devices import pick_device

    dev = pick_device(args.device)
    print(f"device: {dev}, threads {torch.get_num_threads()}; data {args.data}, static binarization")
    from latentdyn.datasets.splits import load_split

    tr = load_split(args.data, "train", args.data_dir)  # the same 55,000 (Fashion-)MNIST images as ours
    va = load_split(args.data, "val", args.data_dir)
    n = args.limit or len(tr.images)
    x_train = torch.from_numpy(tr.images[:n]).permute(0, 3, 1, 2).float().div(255).gt(0.5).float()
    x_val = torch.from_numpy(va.images).permute(0, 3, 1, 2).float().div(255).gt(0.5).float()
    secs, elbos = plain_loop(x_train, x_val, args.epochs, dev)
    target = elbos[-1]
    total = sum(secs)
    with tempfile.TemporaryDirectory() as d:
        cfg = TrainVAEConfig(data=args.data, data_dir=args.data_dir, binarize="static", limit=args.limit,
                             epochs=args.max_ours_epochs, device=str(dev))
        reached, wall, ours_secs = None, 0.0, []
        run = Path(d) / "run"
        for epoch in range(1, args.max_ours_epochs + 1):
            cfg.epochs = epoch
            t0 = time.perf_counter()
            train_vae(cfg, run, resume=epoch > 1, progress=False)
            wall += time.perf_counter() - t0
            row = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
            ours_secs.append(row["seconds"])
            print(f"  ours (resnet) epoch {epoch}: {row['seconds']:.1f} s, val ELBO {row['val_elbo']:.2f}, wall so far {wall:.1f} s", flush=True)
            if row["val_elbo"] >= target:
                reached = wall
                break
    print(f"plain loop (tutorial, batch 32) : {total / len(secs):7.1f} s/epoch ({n * len(secs) / total:,.0f} images/s), "
          f"{args.epochs}-epoch val ELBO {target:.2f} in {total:.0f} s ({n:,} training images, {len(x_val):,} val)")
    print(f"latentdyn default (resnet, 128) : {sum(ours_secs) / len(ours_secs):7.1f} s/epoch "
          f"({n * len(ours_secs) / sum(ours_secs):,.0f} images/s incl. validation and checkpoints)")
    if reached is not None:
        print(f"time to the loop's final ELBO   : {reached:.0f} s = {reached / total:.2f} of the loop's time (target <= 0.33)")
    else:
        print(f"time to the loop's final ELBO   : not reached in {args.max_ours_epochs} epochs ({wall:.0f} s)")


if __name__ == "__main__":
    main()
