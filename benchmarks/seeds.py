"""Headline figures over several seeds: run an experiment once per seed, print mean ± standard deviation.

Each seed S runs ``latentdyn run EXPERIMENT --set STAGE.seed=S`` for every stage with a ``seed``
(scenes, VAE, predictor, rollout) into ``OUT/seed-S`` (finished runs are skipped, so the script
resumes), then reads the rollout's metrics.json and the evaluation of each run and prints, per
figure, mean ± standard deviation over the seeds (sample standard deviation, ddof = 1), the split
each figure is measured on, and the per-seed values. Also writes ``OUT/seeds.json``.

    python benchmarks/seeds.py bouncing_ball --profile demo --seeds 1,2,3 --out runs/demo-seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from latentdyn.pipeline.plan import load_experiment
from latentdyn.pipeline.runner import run_experiment


def _get(d: dict, path: str):
    """The value at a dotted key path; a path ending in ``:min10`` gives the least of a per-step list's
    first 10 values (e.g. the worst step through step 10)."""
    path, _, op = path.partition(":")
    for k in path.split("."):
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    if op == "min10" and isinstance(d, list) and d:
        return float(min(x for x in d[:10] if x is not None))
    return d


FIGURES = [  # (label, file inside the run folder, key path)
    ("open loop: position error, lost balls counted (px)", "rollout/metrics.json", "open_loop.model.summary.position_error_px"),
    ("open loop: frames with every ball present", "rollout/metrics.json", "open_loop.model.summary.all_present"),
    ("open loop: direction error (deg)", "rollout/metrics.json", "open_loop.model.summary.direction_error_deg"),
    ("open loop: squared error per frame", "rollout/metrics.json", "open_loop.model.summary.se_per_frame"),
    ("open loop: PSNR (dB)", "rollout/metrics.json", "open_loop.model.summary.psnr"),
    ("open loop: SSIM", "rollout/metrics.json", "open_loop.model.summary.ssim"),
    ("open loop: worst step through step 10, every ball present", "rollout/metrics.json",
     "open_loop.model.per_step.all_present:min10"),
    ("open loop: frames showing exactly the true number of balls", "rollout/metrics.json", "open_loop.model.summary.count_exact"),
    ("state oracle: frames with every ball present", "rollout/metrics.json", "open_loop.state_oracle.summary.all_present"),
    ("state oracle: worst step through step 10", "rollout/metrics.json", "open_loop.state_oracle.per_step.all_present:min10"),
    ("state oracle: position error (px)", "rollout/metrics.json", "open_loop.state_oracle.summary.position_error_px"),
    ("state oracle: one-step squared error per frame", "rollout/metrics.json", "one_step_se_per_frame.state_oracle"),
    ("object slots: sequences in which no slot changes ball", "rollout/metrics.json", "slots.consistency"),
    ("40-step state oracle: frames with every ball present", "rollout_40/metrics.json",
     "open_loop.state_oracle.summary.all_present"),
    ("ceiling (true latents decoded): position error (px)", "rollout/metrics.json", "open_loop.reconstruction.summary.position_error_px"),
    ("ceiling: frames with every ball present", "rollout/metrics.json", "open_loop.reconstruction.summary.all_present"),
    ("copy last frame: position error (px)", "rollout/metrics.json", "open_loop.copy_last.summary.position_error_px"),
    ("40-step open loop: position error (px)", "rollout_40/metrics.json", "open_loop.model.summary.position_error_px"),
    ("40-step open loop: frames with every ball present", "rollout_40/metrics.json", "open_loop.model.summary.all_present"),
    ("40-step, sampled futures: position error (px)", "rollout_40/metrics.json", "open_loop.model_samples_mean.summary.position_error_px"),
    ("40-step, sampled futures: frames with every ball present", "rollout_40/metrics.json", "open_loop.model_samples_mean.summary.all_present"),
    ("40-step, ceiling: frames with every ball present", "rollout_40/metrics.json", "open_loop.reconstruction.summary.all_present"),
    ("pixel ConvLSTM, same budget: squared error per frame", "rollout/metrics.json", "open_loop.convlstm.summary.se_per_frame"),
    ("pixel ConvLSTM, same budget: SSIM", "rollout/metrics.json", "open_loop.convlstm.summary.ssim"),
    ("pixel ConvLSTM, same budget: absolute error per frame", "rollout/metrics.json", "open_loop.convlstm.summary.ae_per_frame"),
    ("pixel ConvLSTM, same budget: frames with every object present", "rollout/metrics.json",
     "open_loop.convlstm.summary.all_present"),
    ("pixel ConvLSTM, same budget: position error (px)", "rollout/metrics.json", "open_loop.convlstm.summary.position_error_px"),
    ("pixel ConvLSTM, same budget: one-step squared error per frame", "rollout/metrics.json", "one_step_se_per_frame.convlstm"),
    ("pixel ConvLSTM, same budget: seconds trained", "rollout/metrics.json", "pixel_baseline.trained_seconds"),
    ("open loop: absolute error per frame", "rollout/metrics.json", "open_loop.model.summary.ae_per_frame"),
    ("ceiling: squared error per frame", "rollout/metrics.json", "open_loop.reconstruction.summary.se_per_frame"),
    ("one-step squared error per frame (model)", "rollout/metrics.json", "one_step_se_per_frame.model"),
    ("one-step squared error per frame (copy last)", "rollout/metrics.json", "one_step_se_per_frame.copy_last"),
    ("one-step squared error per frame (linear)", "rollout/metrics.json", "one_step_se_per_frame.linear_pixels"),
    ("one-step squared error per frame (ceiling)", "rollout/metrics.json", "one_step_se_per_frame.reconstruction"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("experiment")
    ap.add_argument("--profile", default=None)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra STAGE.KEY=VALUE overrides")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    exp = load_experiment(args.experiment, args.overrides, args.profile)
    seeded = [s.name for s in exp.stages if hasattr(s.settings, "seed")]
    rows = {}
    for seed in seeds:
        run = Path(args.out) / f"seed-{seed}"
        sets = [*args.overrides, *(f"{name}.seed={seed}" for name in seeded)]
        run_experiment(args.experiment, run, sets, None, args.profile, progress=False, echo=None)
        rows[seed] = {label: _get(json.loads((run / f).read_text()), key) if (run / f).is_file() else None
                      for label, f, key in FIGURES}
    split = _get(json.loads((Path(args.out) / f"seed-{seeds[0]}" / "rollout" / "metrics.json").read_text()), "split") or "test"
    print(f"{args.experiment} ({args.profile or 'full'} profile), {len(seeds)} seeds {seeds}; rollouts on the {split} split")
    summary = {}
    for label, _, _ in FIGURES:
        vals = [rows[s][label] for s in seeds if isinstance(rows[s][label], (int, float))]
        if not vals:
            continue
        mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
        summary[label] = {"mean": mean, "std": sd, "values": vals}
        print(f"  {label:55s} {mean:9.4g} ± {sd:.2g}   ({', '.join(f'{v:.4g}' for v in vals)})")
    out = Path(args.out) / "seeds.json"
    out.write_text(json.dumps({"experiment": args.experiment, "profile": args.profile, "seeds": seeds, "split": split,
                               "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
