"""The HTML report of a run folder.

``write_report(run_dir)`` writes ``run_dir/report.html``: one static page with relative links
only (no network, no external scripts or fonts), readable straight from the disk. For an
experiment run folder (``latentdyn run``) it has one section per stage, in order; a single run
folder (a VAE or predictor run, a rollout, a latent map, an interpolation) gets the section of
its kind. Training curves are drawn into ``run_dir/report_files/``. Videos are MP4 with the GIF
as a fallback where the browser cannot play the MP4. See docs/experiments.md.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

from latentdyn.core.version import __version__
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.pipeline.report.html import CSS, SCRIPT, Page, _config_block, _esc, _fmt, _table
from latentdyn.pipeline.report.sections import SECTIONS
from latentdyn.pipeline.runfolder import run_summary, stage_dir


def detect_kind(d: Path) -> str | None:
    """What a single folder holds, from its files."""
    if (d / "metrics.jsonl").is_file() and (d / "config.toml").is_file():
        from latentdyn.core.config import load_toml

        cfg = load_toml(d / "config.toml")
        return "train-vae" if "arch" in cfg else "train-convlstm" if "budget_from" in cfg else "train-dynamics"
    for fname, kind in (("metrics.json", "rollout"), ("interpolation.json", "interpolate"), ("latent_map.npz", "latent-map"),
                        ("compare.png", "compare-maps"), ("scenes.h5", "generate"), ("eval.json", "evaluate"),
                        ("latents.h5", "encode")):
        if (d / fname).is_file():
            return kind
    return None


def _summary_text(record: dict) -> str:
    """A stage's summary for the overview, led by the split its figures come from where it has one
    ("test split: position error px 9.9"); training stages' keys name theirs (train_elbo, val_elbo)."""
    summ = "; ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in (record.get("summary") or {}).items())
    split = (record.get("settings") or {}).get("split")
    one = isinstance(split, str) and split and "=" not in split  # not a generate stage's "train=0.8,..."
    return f"{_esc(split)} split: {summ}" if one and summ else summ


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def write_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write ``run_dir/report.html`` and its curve figures; returns the page's path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist")
    page = Page(run_dir)
    records = run_summary(run_dir)
    intro = ""
    if records:
        from latentdyn.core.config import load_toml

        resolved = load_toml(run_dir / "experiment.toml")
        exp = resolved.get("experiment", {})
        title = title or f"{exp.get('name', run_dir.name)}"
        intro = _esc(exp.get("description", ""))
        by_name = {r["name"]: r for r in records}
        rows = []
        for name, table in resolved.get("stages", {}).items():
            r = by_name.get(name) or {"name": name, "kind": table.get("kind", ""), "status": "not run"}  # e.g. left out by --only
            if r["kind"] == "report":
                continue
            summ = _summary_text(r)
            secs = r.get("seconds")
            rows.append([r["name"], r["kind"], r["status"], round(secs, 1) if secs is not None else None, summ])
        overview = _table(rows, ["stage", "kind", "status", "seconds", "result"])
        overview += _config_block(run_dir / "experiment.toml", "resolved experiment")
        page.add("overview", "Overview", overview)
        items = [(r["name"], r["kind"], stage_dir(run_dir, r["name"]), r) for r in records if r["kind"] in SECTIONS]
    else:
        kind = detect_kind(run_dir)
        if kind is None:
            raise LatentdynError(f"{run_dir} holds no run this report knows (an experiment run folder, a VAE or predictor "
                                 "run, a rollout, a latent map or an interpolation)")
        title = title or run_dir.name
        items = [(run_dir.name, kind, run_dir, None)]
    for name, kind, d, rec in items:
        body = SECTIONS[kind](page, d, name, rec)
        if rec is not None and rec.get("status") != "done":
            body = '<p class="sub status-running">this stage has not finished</p>' + body
        page.add(name, name, body, kind)
    return _write_page(page, run_dir, title, intro)


def _write_page(page: Page, run_dir: Path, title: str, intro: str) -> Path:
    nav = "".join(f'<a href="#{quote(a)}">{_esc(t)}</a>' for a, t, _, _ in page.sections)
    secs = [f'<section id="{_esc(a)}"><h2>{_esc(t)}' + (f'<span class="kind">{_esc(k)}</span>' if k else "")
            + f"</h2>{body}</section>" for a, t, body, k in page.sections]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)} · latentdyn report</title>
<style>{CSS}</style></head>
<body><header><h1>{_esc(title)}</h1><p>{intro + " · " if intro else ""}{_esc(run_dir.resolve().name)} · written {stamp} by latentdyn {__version__}</p></header>
<nav>{nav}</nav>
<main>{"".join(secs)}</main>
<footer>latentdyn {__version__} · every file linked here lies in this run folder</footer>
<script>{SCRIPT}</script>
</body></html>
"""
    with atomic_path(run_dir / "report.html") as tmp:
        tmp.write_text(doc, encoding="utf-8")
    return run_dir / "report.html"
