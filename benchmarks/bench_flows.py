"""Measurement: flow priors and IAF posteriors against the plain Gaussian VAE (docs/results.md).

    OMP_NUM_THREADS=1 python benchmarks/bench_flows.py --work /tmp/bench_flows [--arch mlp]
        [--epochs 12] [--limit 20000] [--seeds 0 1 2] [--eval-limit 2000] [--iw-samples 64]
        [--variants gaussian/gaussian flow/gaussian gaussian/iaf flow/iaf [flow-maf/gaussian]]
        [--timing-steps 200] [--figures docs/figures]

Fashion-MNIST as 8-bit data (no binarisation; ``likelihood = auto`` is then the discretised
logistic, a true log-probability of the images, docs/likelihoods.md), latent 2. For every seed,
the variants (prior / posterior: gaussian/gaussian, flow/gaussian, gaussian/iaf, flow/iaf, and
optionally flow-maf/gaussian, the affine MAF prior instead of the default spline flow) are
trained with the same settings and epochs on the first ``--limit`` training images
(``latentdyn.train_vae``, mlp, batch 128, Adam 1e-3; val split 5,000 held-out training images),
in an order rotated by the seed so that drifts in the shared machine's load do not always hit
the same variant. ``latentdyn.evaluate`` then scores each run's last checkpoint on the first
``--eval-limit`` test images: the one-sample ELBO, the importance-weighted bound with K =
``--iw-samples`` (Burda et al. 2016) and both in bits/dim.

Time: the median ``seconds`` of the epochs in metrics.jsonl (training plus the validation pass;
runs minutes apart, so exposed to the machine's load), and the median time of one training
step of each variant on the same batch, the variants interleaved step by step
(``--timing-steps``), which load changes hit alike. The goal of issue #18: the flow prior's IWAE
beats the Gaussian prior's by >= 2 nats at <= 1.3x the time per epoch (paired by seed).

Also writes ``--figures``/flow_samples.png (64 prior samples of each of the four variants, seed
0, side by side, via ``latentdyn.sample``) and the latent map of the seed-0 flow-prior run with
its prior's contours (flow_latent_map.png). Finished runs and evaluations in ``--work`` are
reused, so a rerun only adds what is missing; results go to ``--work``/results.json and a
markdown table to stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import latentdyn as ld
from latentdyn.engine.checkpoint import MetricsLog

# label -> TrainVAEConfig settings; "flow" is the spline flow prior (NSF), "flow-maf" the affine one
VARIANTS = {
    "gaussian/gaussian": {"prior": "gaussian", "posterior": "gaussian"},
    "flow/gaussian": {"prior": "flow", "posterior": "gaussian", "prior_flow": "nsf"},
    "gaussian/iaf": {"prior": "gaussian", "posterior": "iaf"},
    "flow/iaf": {"prior": "flow", "posterior": "iaf", "prior_flow": "nsf"},
    "flow-maf/gaussian": {"prior": "flow", "posterior": "gaussian", "prior_flow": "maf"},  # optional
}
DEFAULT_VARIANTS = ["gaussian/gaussian", "flow/gaussian", "gaussian/iaf", "flow/iaf"]


def run_dir(work: Path, label: str, seed: int) -> Path:
    return work / f"{label.replace('/', '-')}-s{seed}"


def evaluate_once(run: Path, epochs: int, iw_samples: int, limit: int) -> dict:
    """``latentdyn evaluate`` of the run's last.pt on the first ``limit`` test images, unless its
    eval_test.json already holds exactly that (the evaluation is seeded: the same numbers)."""
    path = run / "eval_test.json"
    if path.exists():
        ev = json.loads(path.read_text())
        if (ev.get("epoch"), ev.get("n"), ev.get("iw_samples"), ev.get("checkpoint")) == (epochs, limit, iw_samples, "last"):
            return ev
    return ld.evaluate(vae=run, split="test", iw_samples=iw_samples, limit=limit, checkpoint="last", device="cpu").metrics


def train_once(run: Path, epochs: int, **cfg) -> list[dict]:
    """Train ``run`` unless a finished run of ``epochs`` epochs is there; its metrics rows."""
    log = run / "metrics.jsonl"
    rows = MetricsLog(log).read() if log.exists() else []
    if not (rows and rows[-1]["epoch"] == epochs and (run / "last.pt").exists()):
        if run.exists():
            shutil.rmtree(run)  # an unfinished run of this benchmark's own work folder
        ld.train_vae(out=run, epochs=epochs, **cfg)
        rows = MetricsLog(log).read()
    return rows


def mean_sd(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f}" + (f" ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else "")


def sample_figure(runs: dict[str, Path], out: Path, work: Path) -> Path:
    """The variants' 64-sample grids side by side with their names above (one grey PNG)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    grids = []
    for label, run in runs.items():
        png = work / f"samples_{label.replace('/', '-')}.png"
        ld.sample(vae=run, n=64, temperature=1.0, seed=0, checkpoint="last", device="cpu", out=png)
        grids.append((label, np.asarray(Image.open(png).convert("L"))))
    h, w = grids[0][1].shape
    gap, head = 8, 16
    canvas = np.full((head + h, len(grids) * (w + gap) - gap), 255, np.uint8)
    for k, (_, g) in enumerate(grids):
        canvas[head:, k * (w + gap) : k * (w + gap) + w] = g
    pil = Image.fromarray(canvas)
    draw = ImageDraw.Draw(pil)
    for k, (label, _) in enumerate(grids):
        draw.text((k * (w + gap) + 2, 2), f"prior/posterior {label}", fill=0, font=ImageFont.load_default())
    out.parent.mkdir(parents=True, exist_ok=True)
    pil.save(out, format="PNG", optimize=True)
    return out


def small_png(src: Path, out: Path, scale: float = 0.6, colours: int = 256) -> Path:
    """A copy of a matplotlib PNG ``scale`` times the size, in a palette of ``colours``: small enough for docs/."""
    from PIL import Image

    im = Image.open(src).convert("RGB")
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.LANCZOS)
    im = im.quantize(colours, method=Image.Quantize.FASTOCTREE)
    out.parent.mkdir(parents=True, exist_ok=True)
    im.save(out, format="PNG", optimize=True)
    return out


def step_times(labels: list[str], arch: str, steps: int, batch: int = 128, seed: int = 0) -> dict[str, float]:
    """Median seconds of one training step (forward, backward, Adam) of each variant on the same
    Fashion-MNIST batch, the variants interleaved step by step so that the shared machine's load
    changes hit all of them alike."""
    import torch

    from latentdyn import datasets
    from latentdyn.vae.config import TrainVAEConfig
    from latentdyn.vae.model import BetaVAE

    x = torch.from_numpy(datasets.load("fashion-mnist", "train").images[:batch]).permute(0, 3, 1, 2).float() / 255
    x = x.contiguous(memory_format=torch.channels_last)
    nets = {}
    for label in labels:
        torch.manual_seed(seed)
        cfg = TrainVAEConfig(arch=arch, latent_dim=2, likelihood="discretized-logistic", **VARIANTS[label])
        m = BetaVAE(cfg, (1, 28, 28)).to(memory_format=torch.channels_last)
        nets[label] = (m, torch.optim.Adam(m.parameters(), lr=1e-3))
    times: dict[str, list[float]] = {k: [] for k in nets}
    g = torch.Generator().manual_seed(seed)
    for k in range(steps + 5):
        for v, (m, opt) in nets.items():
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            m(x, generator=g)["loss"].mean().backward()
            opt.step()
            if k >= 5:  # warm-up steps left out
                times[v].append(time.perf_counter() - t0)
    return {v: statistics.median(t) for v, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, help="folder of the runs (kept; finished runs are reused)")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--arch", default="mlp")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--eval-limit", type=int, default=2000)
    ap.add_argument("--iw-samples", type=int, default=64)
    ap.add_argument("--figures", default=None, help="folder for flow_samples.png and flow_latent_map.png")
    ap.add_argument("--timing-steps", type=int, default=200, help="interleaved training steps per variant (0: skip)")
    ap.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if "gaussian/gaussian" not in a.variants:
        ap.error("--variants must include gaussian/gaussian, the yardstick")
    results = []
    for seed in a.seeds:
        order = a.variants[seed % len(a.variants) :] + a.variants[: seed % len(a.variants)]
        for label in order:
            run = run_dir(work, label, seed)
            rows = train_once(run, a.epochs, data=a.data, arch=a.arch, latent_dim=2, limit=a.limit, seed=seed,
                              batch_size=128, lr=1e-3, device="cpu", **VARIANTS[label])
            ev = evaluate_once(run, a.epochs, a.iw_samples, a.eval_limit)
            r = {"variant": label, "seed": seed, "run": str(run),
                 "seconds_per_epoch": statistics.median(row["seconds"] for row in rows),
                 "val_elbo_last": rows[-1].get("val_elbo"),
                 **{k: ev[k] for k in ("elbo", "rec", "kl", "log_px_iw", "elbo_bits_per_dim", "iwae_bits_per_dim",
                                       "active_units", "n", "iw_samples", "kl_estimate")}}
            results.append(r)
            print(json.dumps(r), flush=True)
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    by = {v: [r for r in results if r["variant"] == v] for v in a.variants}
    print(f"\n{a.data}, {a.arch}, latent 2, {a.epochs} epochs on {a.limit} images, seeds {a.seeds}; "
          f"test: first {a.eval_limit} images, K = {a.iw_samples}\n")
    print("| prior / posterior | test ELBO (nats) | reconstruction (nats) | KL (nats) | IWAE log p(x) (nats) | "
          "IWAE bits/dim | s / epoch |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for v, rs in by.items():
        print(f"| {v} | {mean_sd([r['elbo'] for r in rs])} | {mean_sd([r['rec'] for r in rs])} | "
              f"{mean_sd([r['kl'] for r in rs])} | {mean_sd([r['log_px_iw'] for r in rs])} | "
              f"{statistics.mean(r['iwae_bits_per_dim'] for r in rs):.4f} | {mean_sd([r['seconds_per_epoch'] for r in rs])} |")
    base = {r["seed"]: r for r in by["gaussian/gaussian"]}
    st = step_times(a.variants, a.arch, a.timing_steps) if a.timing_steps else {}
    if st:
        (work / "step_times.json").write_text(json.dumps(st, indent=2) + "\n")
    print()
    paired = {}
    for v in a.variants[1:] if a.variants[0] == "gaussian/gaussian" else [x for x in a.variants if x != "gaussian/gaussian"]:
        d_iw = [r["log_px_iw"] - base[r["seed"]]["log_px_iw"] for r in by[v]]
        ratio = [r["seconds_per_epoch"] / base[r["seed"]]["seconds_per_epoch"] for r in by[v]]
        paired[v] = (statistics.mean(d_iw), statistics.mean(ratio))
        print(f"{v} vs gaussian/gaussian (paired by seed): IWAE {mean_sd(d_iw)} nats "
              f"(per seed {', '.join(f'{x:+.2f}' for x in d_iw)}); time per epoch x{mean_sd(ratio)}"
              + (f"; training step x{st[v] / st['gaussian/gaussian']:.2f}" if st else ""))
    if st:
        print(f"median training step (batch 128, {a.timing_steps} steps each, interleaved): "
              + ", ".join(f"{v} {1e3 * t:.1f} ms" for v, t in st.items()))
    for v in ("flow/gaussian", "flow-maf/gaussian"):
        if v in paired:
            d, t = paired[v]
            step = f", x{st[v] / st['gaussian/gaussian']:.2f} per interleaved training step" if st else ""
            print(f"goal, {v} (flow prior >= +2 nats IWAE at <= 1.3x time per epoch): "
                  f"{'met' if d >= 2 and t <= 1.3 else 'not met'} ({d:+.2f} nats; x{t:.2f} per epoch from metrics.jsonl{step})")
    if a.figures and all(v in a.variants for v in DEFAULT_VARIANTS):
        s0 = min(a.seeds)
        figs = Path(a.figures)
        print("wrote", sample_figure({v: run_dir(work, v, s0) for v in DEFAULT_VARIANTS},
                                     figs / "flow_samples.png", work))
        lm = ld.latent_map(vae=run_dir(work, "flow/gaussian", s0), out=work / "map_flow", limit=2000, device="cpu")
        print("wrote", small_png(lm.out / "latent_map.png", figs / "flow_latent_map.png"))


if __name__ == "__main__":
    main()
