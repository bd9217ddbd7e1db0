"""Predicted frames of several VAE + predictor pairs of one experiment run, beside the truth.

    python docs/figures/compare_rollouts.py runs/moving_fashion docs/figures/moving_fashion_flat_vs_spatial.png \\
        --pair vae:dynamics:"flat + GRU" --pair vae_spatial:dynamics_convgru:"map + ConvGRU" --test 0,3

Each pair is ``VAE_STAGE:DYNAMICS_STAGE:LABEL``; the sequences are the given positions in the scene
file's test split; ``--context`` frames are observed (not shown), ``--horizon`` predicted open loop
from the posterior means, decoded to mean images (what ``latentdyn rollout`` scores).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from latentdyn.dynamics.model import load_dynamics
    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import load_vae

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("out")
    ap.add_argument("--pair", action="append", required=True, help="VAE_STAGE:DYNAMICS_STAGE:LABEL")
    ap.add_argument("--test", default="0", help="positions in the test split, comma-separated")
    ap.add_argument("--scenes", default="scenes", help="the generate stage")
    ap.add_argument("--context", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=10)
    a = ap.parse_args()
    dev = torch.device("cpu")
    K, H = a.context, a.horizon
    with open_scenes(f"{a.run}/{a.scenes}/scenes.h5") as sf:
        ids = np.sort(sf.file["splits/test"][...][[int(s) for s in a.test.split(",")]])
        fr = sf.read_frames(ids)
    fr = fr[..., None] if fr.ndim == 4 else fr  # (S, T, h, w, C) uint8
    S, _, h, w, C = fr.shape
    rows = [("truth", fr[:, K : K + H] / 255.0)]
    for spec in a.pair:
        vae_n, dyn_n, label = spec.split(":", 2)
        vae, _, _ = load_vae(f"{a.run}/{vae_n}", "best", dev)
        dyn, _, _ = load_dynamics(f"{a.run}/{dyn_n}", "best", dev)
        mu, lv = encode_frames(vae, fr[:, :K].reshape(S * K, h, w, C), dev)  # (S*K, d) each
        mu, lv = torch.from_numpy(mu).view(S, K, -1), torch.from_numpy(lv).view(S, K, -1)
        with torch.no_grad():
            z = dyn.rollout(mu, lv, H)["mu"]  # (S, H, d)
            img = vae.decode(z.reshape(S * H, -1)).permute(0, 2, 3, 1).reshape(S, H, h, w, C).numpy()
        rows.append((label, img))
    n = len(rows)
    fig, axes = plt.subplots(n * S, H, figsize=(H, 1.07 * n * S), squeeze=False)
    for s in range(S):
        for r, (label, im) in enumerate(rows):
            for t in range(H):
                ax = axes[n * s + r, t]
                frame = im[s, t]
                ax.imshow(frame[..., 0] if C == 1 else frame, cmap="gray" if C == 1 else None, vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if t == 0:
                    ax.set_ylabel(label, fontsize=7)
                if s == 0 and r == 0:
                    ax.set_title(f"step {t + 1}", fontsize=8)
    fig.suptitle(f"test sequences {ids.tolist()}: {K} frames observed (not shown), {H} predicted open loop", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
