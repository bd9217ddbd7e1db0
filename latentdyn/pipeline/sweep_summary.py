"""A sweep gathered (``kind = "sweep-summary"``): scores of every clone against the swept setting.

For each run of the sweep (an analyze clone, the VAE it reads and the rollout of that VAE) it
reads, without recomputing anything:

- disentanglement from the analyze stage's ``analysis.json`` (docs/analysis.md): MIG on the
  scored split (Chen et al. 2018), SAP (Kumar et al. 2018), DCI disentanglement, completeness
  and informativeness (Eastwood and Williams 2018; importances fitted on train, scored on
  test), and the best probe R² (the probe kind with the highest mean test R² over factors);
- reconstruction error from the VAE's ``metrics.jsonl``: ``-val_rec``, the negative expected
  log-likelihood E_q[-log p(x|z)] in nats per frame on the validation split, at the epoch of
  ``best.pt`` (the checkpoint analyze and rollout use; ``train_rec`` where there is no
  validation split, and ``rec_split`` says so);
- the rollout's open-loop figures over its horizon from ``metrics.json``: the position error
  in pixels with lost balls counted and the fraction of frames with every ball present.

It writes ``summary.json`` (per value: each seed's number, the mean, the sample standard
deviation with ddof = 1, n; every run; Spearman rank correlations, ``scipy.stats.spearmanr``,
over all runs) and ``sweep.png``/``.pdf``: one row of panels per score, against the swept
setting (mean ± std over seeds, every run as a dot), against the reconstruction error and
against the rollout error (one dot per run, coloured by the swept value).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, make_folder

FIT = "fit train, score test"


def _probe_r2(a: dict):
    means = (a.get(FIT, {}).get("probes") or {}).get("mean") or {}
    return max(means.values()) if means else None


METRICS = {  # name -> (label, reader of analysis.json)
    "mig": ("MIG", lambda a: a["test"].get("mig")),
    "sap": ("SAP", lambda a: a["test"].get("sap", a.get(FIT, {}).get("sap"))),
    "dci_disentanglement": ("DCI disentanglement", lambda a: a.get(FIT, {}).get("dci", {}).get("disentanglement")),
    "dci_completeness": ("DCI completeness", lambda a: a.get(FIT, {}).get("dci", {}).get("completeness")),
    "dci_informativeness": ("DCI informativeness (test R²)", lambda a: a.get(FIT, {}).get("dci", {}).get("informativeness_test")),
    "probe_r2": ("best probe R² (test)", _probe_r2),
}
OUTCOMES = {  # what the scores are set against
    "rec_error": "reconstruction error (nats/frame)",
    "position_error_px": "open-loop position error (px)",
    "all_present": "open-loop frames with every ball",
}


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def _read_json(p: Path) -> dict:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        raise LatentdynError(f"{p} is missing or unreadable; rerun the stage that writes it") from None


def reconstruction_error(vae_dir: Path, epoch: int | None) -> tuple[float | None, str]:
    """(-rec at ``epoch`` of the VAE's metrics.jsonl, the split it is on): validation, else train."""
    try:
        rows = [json.loads(line) for line in (vae_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        raise LatentdynError(f"{vae_dir}/metrics.jsonl is missing or unreadable; rerun that VAE") from None
    row = next((r for r in rows if r.get("epoch") == epoch), rows[-1] if rows else {})
    for key, split in (("val_rec", "validation"), ("train_rec", "train")):
        if _num(row.get(key)) is not None:
            return -float(row[key]), split
    return None, "none"


def read_run(x, seed, vae_dir: Path, analyze_dir: Path, rollout_dir: Path | None) -> dict:
    """One run of the sweep: its point, every score and every outcome (None where absent)."""
    a = _read_json(analyze_dir / "analysis.json")
    row = {"x": x, "seed": seed, "vae": vae_dir.name, "analyze": analyze_dir.name,
           "analysis_split": a.get("splits", {}).get("test"), "vae_epoch": a.get("vae_epoch")}
    row.update({k: _num(read(a)) for k, (_, read) in METRICS.items()})
    row["rec_error"], row["rec_split"] = reconstruction_error(vae_dir, a.get("vae_epoch"))
    row.update(rollout=None, position_error_px=None, all_present=None, horizon=None, rollout_split=None)
    if rollout_dir is not None:
        m = _read_json(rollout_dir / "metrics.json")
        s = m.get("open_loop", {}).get("model", {}).get("summary", {})
        row.update(rollout=rollout_dir.name, position_error_px=_num(s.get("position_error_px")),
                   all_present=_num(s.get("all_present")), horizon=m.get("config", {}).get("horizon"),
                   rollout_split=m.get("split", "test"))
    return row


def _stats(vals: list) -> dict:
    v = [x for x in vals if x is not None]
    return {"mean": float(np.mean(v)) if v else None, "std": float(np.std(v, ddof=1)) if len(v) > 1 else None, "n": len(v)}


def spearman(a: list, b: list) -> dict:
    """Spearman's rank correlation over the runs where both are known (None when undefined)."""
    from scipy.stats import spearmanr

    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    if len(pairs) < 3 or len({p[0] for p in pairs}) < 2 or len({p[1] for p in pairs}) < 2:
        return {"rho": None, "p": None, "n": len(pairs)}
    r = spearmanr([p[0] for p in pairs], [p[1] for p in pairs])
    return {"rho": _num(r.statistic), "p": _num(r.pvalue), "n": len(pairs)}


def summarize(runs: list[dict], x: str) -> dict:
    """Per value of ``x``: every field's per-seed values, mean, std (ddof 1) and n; Spearman over all runs."""
    fields = [*METRICS, *OUTCOMES]
    values = []
    for v in sorted({r["x"] for r in runs}, key=lambda v: (isinstance(v, str), v)):
        rs = [r for r in runs if r["x"] == v]
        values.append({"x": v, "n": len(rs), "seeds": [r["seed"] for r in rs],
                       **{f: {"values": [r[f] for r in rs], **_stats([r[f] for r in rs])} for f in fields}})
    numeric = all(isinstance(r["x"], (int, float)) for r in runs)
    rank = {m: {**({"vs_x": spearman([r["x"] for r in runs], [r[m] for r in runs])} if numeric else {}),
                **{f"vs_{o}": spearman([r[m] for r in runs], [r[o] for r in runs]) for o in OUTCOMES}} for m in METRICS}
    first = runs[0] if runs else {}
    return {"x": x, "n_runs": len(runs), "seeds": sorted({r["seed"] for r in runs if r["seed"] is not None}),
            "splits": {"analysis": first.get("analysis_split"), "reconstruction": first.get("rec_split"),
                       "rollout": first.get("rollout_split")},
            "rollout_horizon": first.get("horizon"), "values": values, "spearman": rank, "runs": runs}


def write_summary(runs: list[dict], out_dir: Path, x: str, metrics: list[str], title: str) -> dict:
    """Write ``summary.json`` and ``sweep.png``/``.pdf`` into ``out_dir``; returns the summary."""
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        from latentdyn.core.options import closest

        raise LatentdynError(f"metrics: {bad[0]!r} is no score{closest(bad[0], list(METRICS))}; use {', '.join(METRICS)}")
    if not runs:
        raise LatentdynError("analyze names no analyze stage; list the swept analyze stages, e.g. analyze = [\"analyze\"]")
    make_folder(out_dir)
    summary = {"format": "latentdyn-sweep-summary", "version": 1, "title": title, "metrics": metrics, **summarize(runs, x)}
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    plot(summary, out_dir / "sweep")
    return summary


def _xscale(ax, xs: list) -> None:
    """Symlog with the linear part up to the smallest positive value: 0 sits one step left of it."""
    pos = [v for v in xs if v > 0]
    if pos and max(pos) / min(pos) > 4:
        ax.set_xscale("symlog", linthresh=min(pos), linscale=0.5)
    ax.set_xticks(xs)
    ax.set_xticklabels([f"{v:g}" for v in xs], fontsize=8)


def plot(summary: dict, stem: Path) -> list[Path]:
    """Rows: the scores; columns: against x (mean ± std), reconstruction error, rollout error."""
    from matplotlib import cm

    from latentdyn.viz.figures import _plt, save_figures

    plt = _plt()
    runs, x, metrics = summary["runs"], summary["x"], summary["metrics"]
    xs = [v["x"] for v in summary["values"]]
    numeric = all(isinstance(v, (int, float)) for v in xs)
    colour = {v: cm.viridis(i / max(1, len(xs) - 1)) for i, v in enumerate(xs)}
    cols = [x, "rec_error", "position_error_px"]
    fig, axes = plt.subplots(len(metrics), 3, figsize=(13, 3.1 * len(metrics)), squeeze=False, layout="constrained")
    for i, m in enumerate(metrics):
        label = METRICS[m][0]
        for j, col in enumerate(cols):
            ax = axes[i][j]
            if j == 0:
                pos = xs if numeric else list(range(len(xs)))
                mean = [np.nan if v[m]["mean"] is None else v[m]["mean"] for v in summary["values"]]
                std = [0.0 if v[m]["std"] is None else v[m]["std"] for v in summary["values"]]
                ax.errorbar(pos, mean, yerr=std, color="k", marker="o", ms=4, capsize=3, lw=1, label="mean ± std")
                for r in runs:
                    if r[m] is not None:
                        ax.scatter(pos[xs.index(r["x"])], r[m], color=colour[r["x"]], s=14, alpha=0.8, zorder=3)
                if numeric:
                    _xscale(ax, xs)
                else:
                    ax.set_xticks(pos, [str(v) for v in xs])
                ax.set_xlabel(x)
            else:
                for r in runs:
                    if r[m] is not None and r[col] is not None:
                        ax.scatter(r[col], r[m], color=colour[r["x"]], s=22, edgecolor="k", lw=0.3,
                                   label=f"{x} = {r['x']:g}" if numeric else f"{x} = {r['x']}")
                ax.set_xlabel(OUTCOMES[col])
                rho = summary["spearman"][m][f"vs_{col}"]["rho"]
                ax.set_title(f"Spearman ρ = {rho:.2f}" if rho is not None else "", fontsize=9)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    handles, labels = axes[0][1].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    if seen:
        fig.legend(seen.values(), seen.keys(), loc="outside right center", fontsize=8, title="runs")
    fig.suptitle(f"{summary.get('title') or 'sweep'}: {summary['n_runs']} runs, seeds {summary['seeds']}; scores on "
                 f"{summary['splits']['analysis']}, reconstruction on {summary['splits']['reconstruction']}, "
                 f"{summary.get('rollout_horizon')}-step rollouts on {summary['splits']['rollout']}", fontsize=10)
    return save_figures(fig, stem, dpi=110)
