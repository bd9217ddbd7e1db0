"""Benchmark: the wall time the three-ball study takes to reach each target of issue #16.

    python benchmarks/bench_targets.py --profile quick --out runs/targets [--seed 1]
    python benchmarks/bench_targets.py --profile quick --read runs/tb-seeds/seed-1 runs/tb-seeds/seed-2 ...

The first form runs ``latentdyn run three_balls`` (every seeded stage seeded ``--seed``; finished
stages of an earlier run in ``--out`` are skipped, and then their recorded times are used); the
second only reads finished run folders. For each target it prints the figure as measured (test
split, models selected on val, ball presence and position judged against the true states), the
target, whether it is met, and the experiment's wall time up to the stage that made it (the VAE
for the reconstructions, the rollout for the predictor's figures, which read them; the stages run
in file order, each stage's time as its ``stage.json`` recorded it).
Beside each figure stand the yardsticks of the same run: the ceiling (true future latents decoded)
and copy-last. The whole experiment's time is divided by the issue's budget (30 min for the quick
profile, 3 h for the full one on 2 CPU cores): the ratio. With several run folders, the figures
are given per run and as mean ± standard deviation (ddof = 1).

Targets (issue #16, "Targets"; quick / full profile): VAE reconstructions with every ball present
>= 99% / 99.5% of frames; 20-step open loop after 10 observed frames: every ball present in >= 90%
/ 95% of the frames at every step (the worst step is compared) and a mean position error, lost
balls counted, <= 2.5 / 2.0 px; one-step squared error per frame <= 2.8 / 2.5.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

TARGETS = {  # name -> (quick, full, "min" or "max", the stage that makes it, its key path in rollout/metrics.json)
    "VAE reconstructions, every ball present": (0.99, 0.995, "min", "vae", "open_loop.reconstruction.summary.all_present"),
    "20-step open loop, every ball present (worst step)": (0.90, 0.95, "min", "rollout", "worst:open_loop.model.per_step.all_present"),
    "20-step open loop, position error (px)": (2.5, 2.0, "max", "rollout", "open_loop.model.summary.position_error_px"),
    "one-step squared error per frame": (2.8, 2.5, "max", "rollout", "one_step_se_per_frame.model"),
}
YARDSTICKS = {  # the same figure for the ceiling and copy-last, where it exists
    "20-step open loop, every ball present (worst step)": ("worst:open_loop.reconstruction.per_step.all_present",
                                                            "worst:open_loop.copy_last.per_step.all_present"),
    "20-step open loop, position error (px)": ("open_loop.reconstruction.summary.position_error_px",
                                               "open_loop.copy_last.summary.position_error_px"),
    "one-step squared error per frame": ("one_step_se_per_frame.reconstruction", "one_step_se_per_frame.copy_last"),
}
BUDGET_S = {"quick": 30 * 60, None: 3 * 3600}


def lookup(d: dict, path: str):
    """A figure of a metrics.json by key path; ``worst:`` the lowest value of a per-step list."""
    worst = path.startswith("worst:")
    for k in path.removeprefix("worst:").split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    if worst:
        vals = [v for v in d if v is not None]
        return float(min(vals)) if vals else None
    return d


def stage_times(run: Path, names: list[str]) -> dict[str, float]:
    """Each stage's recorded seconds, cumulative in file order (stages without a record: 0)."""
    total, out = 0.0, {}
    for n in names:
        p = run / n / "stage.json"
        rec = json.loads(p.read_text()) if p.is_file() else {}
        total += float(rec.get("seconds") or 0.0)
        out[n] = total
    return out


def read_run(run: Path, names: list[str]) -> dict:
    m = run / "rollout" / "metrics.json"
    if not m.is_file():
        raise SystemExit(f"{run}: no rollout/metrics.json; run the experiment first (without --read)")
    metrics = json.loads(m.read_text())
    times = stage_times(run, names)
    return {"metrics": metrics, "times": times, "total_s": times[names[-1]] if names else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", help="quick (the default) or full")
    ap.add_argument("--out", default="runs/targets", help="run folder (run mode)")
    ap.add_argument("--seed", type=int, default=1, help="seed of every seeded stage (run mode)")
    ap.add_argument("--read", nargs="+", type=Path, help="finished run folders to read instead of running")
    args = ap.parse_args()
    profile = None if args.profile == "full" else args.profile

    from latentdyn.pipeline.plan import load_experiment

    exp = load_experiment("three_balls", [], profile)
    names = [s.name for s in exp.stages]
    if args.read:
        runs = args.read
    else:
        from latentdyn.pipeline.runner import run_experiment

        sets = [f"{s.name}.seed={args.seed}" for s in exp.stages if hasattr(s.settings, "seed")]
        t0 = time.perf_counter()
        run_experiment("three_balls", Path(args.out), sets, None, profile, progress=False, echo=print)
        print(f"this call: {time.perf_counter() - t0:.0f} s of wall time (stages finished earlier were skipped)")
        runs = [Path(args.out)]
    got = [read_run(r, names) for r in runs]
    which = 0 if profile == "quick" else 1
    budget = BUDGET_S.get(profile, BUDGET_S[None])
    print(f"three_balls ({args.profile} profile): {len(runs)} run(s); machine: {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average {os.getloadavg()[0]:.2f} now")
    print(f"{'target':52s} {'needed':>8s} {'measured':>22s} {'met':>4s} {'reached after':>14s}   ceiling / copy-last")
    for label, (q, f, sense, stage, path) in TARGETS.items():
        need = (q, f)[which]
        vals = [lookup(g["metrics"], path) for g in got]
        vals = [v for v in vals if v is not None]
        if not vals:
            print(f"{label:52s} {'':>8s} {'(not in the run)':>22s}")
            continue
        mean = float(np.mean(vals))
        shown = f"{mean:.3f}" + (f" ± {np.std(vals, ddof=1):.3f}" if len(vals) > 1 else "")
        met = all((v >= need) if sense == "min" else (v <= need) for v in vals)
        at = float(np.mean([g["times"].get(stage, 0.0) for g in got]))
        ys = YARDSTICKS.get(label)
        yard = ""
        if ys:
            c = [lookup(g["metrics"], ys[0]) for g in got]
            k = [lookup(g["metrics"], ys[1]) for g in got]
            yard = f"{np.mean([v for v in c if v is not None]):.3f} / {np.mean([v for v in k if v is not None]):.3f}"
        print(f"{label:52s} {need:8.3g} {shown:>22s} {'yes' if met else 'no':>4s} {at / 60:11.1f} min   {yard}")
    totals = [g["total_s"] for g in got]
    total = float(np.mean(totals))
    print(f"{'wall time, whole experiment':52s} {budget / 60:6.0f} m {total / 60:20.1f} m {'yes' if max(totals) <= budget else 'no':>4s}"
          f"   ratio to the budget: {total / budget:.2f}")
    for r, g in zip(runs, got):
        steps = ", ".join(f"{n} {g['times'][n] - (g['times'][names[i - 1]] if i else 0):.0f} s" for i, n in enumerate(names))
        print(f"  {r}: {steps}")


if __name__ == "__main__":
    main()
