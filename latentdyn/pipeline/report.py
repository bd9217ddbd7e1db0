"""The HTML report of a run folder, and the across-datasets comparison figure.

``write_report(run_dir)`` writes ``run_dir/report.html``: one static page with relative links
only (no network, no external scripts or fonts), readable straight from the disk. For an
experiment run folder (``latentdyn run``) it has one section per stage, in order; a single run
folder (a VAE or predictor run, a rollout, a latent map, an interpolation) gets the section of
its kind. Training curves are drawn into ``run_dir/report_files/``. Videos are MP4 with the GIF
as a fallback where the browser cannot play the MP4. See docs/experiments.md.
"""

from __future__ import annotations

import html
import json
import os
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np

from latentdyn import __version__
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

ASSETS = "report_files"


# --------------------------------------------------------------------------------------------
# The across-datasets comparison (compare-maps stages)
# --------------------------------------------------------------------------------------------


def _last_flow_png(vae_dir: Path) -> Path | None:
    pngs = sorted((vae_dir / "flow").glob("epoch_*.png"))
    return pngs[-1] if pngs else None


def compare_maps(rows: list[dict], out: str | Path, title: str = "", fps: float = 2.0) -> list[Path]:
    """One figure with a row per dataset: the last prediction matrix, the latent map and the
    manifold grid (2-d latents); and ``compare_flow.mp4``/``.gif``: every dataset's training
    flow, one above the other, epoch by epoch.

    ``rows``: dicts with ``label``, ``vae`` (VAE run folder) and ``map`` (latent-map folder).
    """
    from PIL import Image

    from latentdyn.viz.figures import _plt, save_figures
    from latentdyn.viz.video import write_video

    if not rows:
        raise LatentdynError("compare-maps needs at least one latent-map stage in maps = [...]")
    plt = _plt()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = [("prediction matrix (last epoch)", lambda r: _last_flow_png(Path(r["vae"]))),
            ("latent map", lambda r: Path(r["map"]) / "latent_map.png"),
            ("manifold grid", lambda r: Path(r["map"]) / "manifold.png")]
    cols = [c for c in cols if any((p := c[1](r)) is not None and p.is_file() for r in rows)]
    widths = [2.2, 1.15, 1.0][: len(cols)] if len(cols) == 3 else [1.0] * len(cols)
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.2 * sum(widths), 3.6 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": widths}, layout="constrained")
    for i, r in enumerate(rows):
        for j, (name, find) in enumerate(cols):
            ax = axes[i, j]
            ax.set_axis_off()
            p = find(r)
            if p is not None and p.is_file():
                ax.imshow(np.asarray(Image.open(p).convert("RGB")), interpolation="lanczos")
            else:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", color="0.5", transform=ax.transAxes)
            if i == 0:
                ax.set_title(name, fontsize=12)
        axes[i, 0].text(-0.02, 0.5, r["label"], transform=axes[i, 0].transAxes, rotation=90, ha="right", va="center",
                        fontsize=13, fontweight="bold")
    if title:
        fig.suptitle(title, fontsize=13)
    written = save_figures(fig, out / "compare")
    # the training flows, stacked: one frame per epoch (shorter runs hold their last frame)
    flows = [sorted((Path(r["vae"]) / "flow").glob("epoch_*.png")) for r in rows]
    if all(flows):
        imgs = [[np.asarray(Image.open(p).convert("RGB")) for p in f] for f in flows]
        W = max(im[0].shape[1] for im in imgs)
        E = max(len(im) for im in imgs)
        frames = []
        for e in range(E):
            parts = []
            for im in imgs:
                a = im[min(e, len(im) - 1)]
                pad = np.full((a.shape[0], W - a.shape[1], 3), 24, np.uint8)
                parts.append(np.concatenate([a, pad], 1))
            frames.append(np.concatenate(parts, 0))
        frames = np.stack(frames)  # (E, sum H, W, 3)
        written += [write_video(frames, out / "compare_flow.gif", fps), write_video(frames, out / "compare_flow.mp4", fps)]
    return written


# --------------------------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------------------------

CSS = """
:root { --fg:#1d232b; --muted:#5c6773; --line:#dfe3e8; --bg:#f6f7f9; --card:#fff; --accent:#2f6fde; }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color:var(--fg); background:var(--bg); }
header { background:#1d2733; color:#f3f5f8; padding:22px 32px 18px; }
header h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header p { margin:0; color:#b9c3cf; }
nav { position:sticky; top:0; z-index:2; background:#263342; padding:8px 32px; display:flex; flex-wrap:wrap; gap:6px 16px; }
nav a { color:#d5deea; text-decoration:none; font-size:13px; }
nav a:hover { color:#fff; text-decoration:underline; }
main { max-width:1180px; margin:0 auto; padding:20px 24px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px; margin:18px 0; }
h2 { margin:0 0 2px; font-size:19px; }
h2 .kind { font-size:12px; font-weight:500; color:var(--muted); background:var(--bg); border:1px solid var(--line);
           border-radius:10px; padding:1px 8px; margin-left:8px; vertical-align:middle; }
h3 { font-size:15px; margin:18px 0 6px; color:#2a3440; }
.sub { color:var(--muted); margin:0 0 10px; font-size:13px; }
table { border-collapse:collapse; margin:6px 0 10px; font-size:13.5px; }
th, td { padding:4px 12px 4px 0; text-align:left; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; padding-left:12px; }
tr.ours td { font-weight:600; }
.gallery { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-start; }
figure { margin:0; max-width:100%; }
figure img, figure video { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; background:#111; }
figure img.plot { background:#fff; }
figcaption { font-size:12.5px; color:var(--muted); margin-top:4px; max-width:560px; }
.pixel { image-rendering: pixelated; }
details { margin:8px 0; }
summary { cursor:pointer; color:var(--accent); font-size:13.5px; }
pre { background:#f1f3f6; border:1px solid var(--line); border-radius:6px; padding:10px 12px; overflow:auto;
      font-size:12.5px; line-height:1.4; }
.status-running { color:#b26b00; }
footer { color:var(--muted); font-size:12px; text-align:center; margin:24px 0; }
"""

# MP4 first; where the browser cannot decode it, the GIF beside it takes its place.
SCRIPT = """
document.querySelectorAll('video[data-gif]').forEach(function (v) {
  function fallback() {
    if (!v.parentNode) return;
    var img = document.createElement('img');
    img.src = v.getAttribute('data-gif'); img.alt = v.getAttribute('aria-label') || '';
    img.className = v.className; v.parentNode.replaceChild(img, v);
  }
  var s = v.querySelector('source');
  if (s) s.addEventListener('error', fallback);
  v.addEventListener('error', fallback);
  if (s && !v.canPlayType(s.type)) fallback();
});
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return _esc(v)


class Page:
    """Collects sections; turns paths into relative, URL-quoted links from the report's folder."""

    def __init__(self, root: Path):
        self.root = root
        self.sections: list[tuple[str, str, str, str]] = []  # (anchor, title, html, kind)

    def link(self, path: Path) -> str:
        rel = os.path.relpath(Path(path).resolve(), self.root.resolve())
        return quote(Path(rel).as_posix())

    def image(self, path: Path, caption: str = "", plot: bool = True, width: int | None = None) -> str:
        if not Path(path).is_file():
            return ""
        w = f' width="{width}"' if width else ""
        cls = "plot" if plot else "pixel"
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return f'<figure><img class="{cls}" src="{self.link(path)}" alt="{_esc(caption or Path(path).name)}"{w}>{cap}</figure>'

    def video(self, mp4: Path, caption: str = "", width: int | None = None) -> str:
        mp4, gif = Path(mp4), Path(mp4).with_suffix(".gif")
        if not mp4.is_file():
            return self.image(gif, caption, plot=False, width=width)
        w = f' width="{width}"' if width else ""
        g = f' data-gif="{self.link(gif)}"' if gif.is_file() else ""
        inner = f'<img class="pixel" src="{self.link(gif)}" alt="{_esc(caption)}">' if gif.is_file() else ""
        cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
        return (f'<figure><video class="pixel" controls loop muted autoplay playsinline preload="auto"{w}{g} '
                f'aria-label="{_esc(caption)}"><source src="{self.link(mp4)}" type="video/mp4">{inner}</video>{cap}</figure>')

    def add(self, anchor: str, title: str, body: str, kind: str = "") -> None:
        self.sections.append((anchor, title, body, kind))


def _table(rows: list[list], header: list[str] | None = None, classes: list[str] | None = None) -> str:
    out = ["<table>"]
    numeric = [any(isinstance(r[i], (int, float)) for r in rows if i < len(r)) for i in range(max(map(len, rows), default=0))]
    if header:
        out.append("<tr>" + "".join(f'<th class="{"num" if i < len(numeric) and numeric[i] else ""}">{_esc(h)}</th>'
                                    for i, h in enumerate(header)) + "</tr>")
    for k, r in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{"num" if numeric[i] else ""}">{_fmt(v) if i else _esc(v)}</td>'
                                          for i, v in enumerate(r)) + "</tr>")
    return "".join(out) + "</table>"


def _kv_table(d: dict) -> str:
    return _table([[k, v] for k, v in d.items() if not isinstance(v, (list, dict))])


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    if Path(path).is_file():
        for line in Path(path).read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue
    return rows


def _config_block(path: Path, label: str = "configuration") -> str:
    if not Path(path).is_file():
        return ""
    return f"<details><summary>{_esc(label)} ({_esc(Path(path).name)})</summary><pre>{_esc(Path(path).read_text())}</pre></details>"


# --------------------------------------------------------------------------------------------
# Sections by kind: (page, folder, record) -> html
# --------------------------------------------------------------------------------------------


def _curves(rows: list[dict], panels: list[tuple[str, list[tuple[str, str]]]], path: Path) -> Path | None:
    """Training curves: one panel per (title, [(key, label), ...]) over the epochs."""
    from latentdyn.viz.figures import _plt, save_figure

    if not rows:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.2), squeeze=False, layout="constrained")
    ep = [r["epoch"] for r in rows]
    for ax, (title, keys) in zip(axes[0], panels):
        for key, label in keys:
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(ep, [np.nan if y is None else y for y in ys], marker="o" if len(ep) < 30 else None, ms=3, label=label)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path, dpi=110)


def _section_vae(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    rows = _read_jsonl(d / "metrics.jsonl")
    parts = []
    if rows:
        last = rows[-1]
        best = max(rows, key=lambda r: r.get("val_elbo", r.get("train_elbo", -np.inf)))
        parts.append(_table([["train ELBO (nats)", last.get("train_elbo"), best.get("train_elbo")],
                             ["validation ELBO (nats)", last.get("val_elbo"), best.get("val_elbo")],
                             ["validation reconstruction", last.get("val_rec"), best.get("val_rec")],
                             ["validation KL", last.get("val_kl"), best.get("val_kl")],
                             ["seconds per epoch", float(np.mean([r.get("seconds", 0) for r in rows])), None]],
                            ["", f"last (epoch {last['epoch']})", f"best (epoch {best['epoch']})"]))
        png = _curves(rows, [("ELBO (nats, higher is better)", [("train_elbo", "train"), ("val_elbo", "validation")]),
                             ("KL (nats)", [("train_kl", "train"), ("val_kl", "validation")]),
                             ("beta", [("beta", "beta (warm-up)")])], page.root / ASSETS / f"{name}_curves.png")
        fig = page.image(png, "training curves") if png else ""
        vid = page.video(d / "flow.mp4", "prediction matrix per epoch: inputs, reconstructions, prior samples", width=560)
        parts.append(f'<div class="gallery">{vid}{fig}</div>')
    evals = sorted(d.glob("eval_*.json"))
    for p in evals:
        parts.append(_section_eval_json(p))
    parts.append(_config_block(d / "config.toml", "resolved VAE configuration"))
    return "".join(parts)


def _section_eval_json(path: Path) -> str:
    r = _read_json(path) or {}
    keep = {k: r.get(k) for k in ("data", "split", "n", "epoch", "elbo", "rec", "kl", "log_px_iw", "iw_samples",
                                  "active_units", "latent_dim") if k in r}
    return f"<h3>Evaluation ({_esc(path.name)})</h3>" + _kv_table(keep)


def _section_dynamics(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    rows = _read_jsonl(d / "metrics.jsonl")
    parts = []
    if rows:
        last = rows[-1]
        best = max(rows, key=lambda r: -r.get("val_loss", r.get("train_loss", np.inf)))
        parts.append(_table([[k.replace("_", " "), last.get(k), best.get(k)] for k in
                             ("train_loss", "val_loss", "train_one_step_se", "val_one_step_se", "train_open_loop_se",
                              "val_open_loop_se") if k in last],
                            ["", f"last (epoch {last['epoch']})", f"best (epoch {best['epoch']})"]))
        png = _curves(rows, [("loss", [("train_loss", "train"), ("val_loss", "validation")]),
                             ("open-loop squared error (latent)", [("train_open_loop_se", "train"), ("val_open_loop_se", "validation")]),
                             ("one-step squared error (latent)", [("train_one_step_se", "train"), ("val_one_step_se", "validation")])],
                      page.root / ASSETS / f"{name}_curves.png")
        parts.append(page.image(png, "training curves") if png else "")
    parts.append(_config_block(d / "config.toml", "resolved predictor configuration"))
    return "".join(parts)


ROLLOUT_NAMES = {"model": "GRU predictor (ours)", "copy_last": "copy last frame", "linear_pixels": "per-pixel linear extrapolation",
                 "constant_velocity_latent": "constant velocity in latent space", "reconstruction": "VAE reconstruction (floor)",
                 "model_samples_mean": "GRU predictor, sampled futures"}


def _section_rollout(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    m = _read_json(d / "metrics.json")
    if m is None:
        return "<p>metrics.json is missing.</p>"
    settings = (record or {}).get("settings", {})
    ref = settings.get("reference") or {}
    cfg = m.get("config", {})
    K, H = cfg.get("context"), cfg.get("horizon")
    parts = [f'<p class="sub">{len(m.get("sequences", []))} test sequences; {K} observed frames, then {H} predicted '
             "open loop. One-step errors predict every frame from the true past (as the RTRBM/TSBN papers measured).</p>"]
    one = m.get("one_step_se_per_frame", {})
    header = ["method", "one-step squared error per frame"] + (["published"] if ref else [])
    rows = [[ROLLOUT_NAMES.get(k, k), v] + ([ref.get(k)] if ref else []) for k, v in one.items()]
    parts.append("<h3>One-step-ahead error</h3>" + _table(rows, header, ["ours" if k == "model" else "" for k in one]))
    if ref and settings.get("reference_source"):
        parts.append(f'<p class="sub">Published figures: {_esc(settings["reference_source"])}</p>')
    ol = m.get("open_loop", {})
    cols = [("se_per_frame", "squared error / frame"), ("position_error_px", "position error (px)"),
            ("direction_error_deg", "direction error (deg)"), ("vanished_frames", "frames losing a ball"),
            ("split_frames", "frames with extra blobs")]
    cols = [c for c in cols if any(c[0] in v.get("summary", {}) for v in ol.values())]
    rows = [[ROLLOUT_NAMES.get(k, k)] + [v["summary"].get(c) for c, _ in cols] for k, v in ol.items()]
    parts.append(f"<h3>Open loop over {H} steps (mean over steps)</h3>"
                 + _table(rows, ["method"] + [c[1] for c in cols], ["ours" if k == "model" else "" for k in ol]))
    parts.append('<div class="gallery">'
                 + page.video(d / "rollout.mp4", "left to right: truth | prediction | error; green frame: observed, "
                                                 "red frame: predicted", width=560)
                 + page.image(d / "error_vs_horizon.png", "error against the prediction horizon", width=520) + "</div>")
    return "".join(parts)


def _section_latent_map(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    figs = [page.image(d / f"{stem}.png", cap) for stem, cap in
            (("latent_map", "latent map (means of the test split)"), ("manifold", "decoded manifold on an inverse-CDF grid"),
             ("pairs", "pairs of the most active dimensions"))]
    return f'<div class="gallery">{"".join(figs)}</div>'


def _section_interpolate(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    r = _read_json(d / "interpolation.json") or {}
    parts = []
    if r:
        lr, er = r.get("length_ratio", {}), r.get("energy_ratio", {})
        parts.append(f'<p class="sub">{len(r.get("pairs", []))} pairs, metric: {_esc(r.get("metric", ""))}, '
                     f'{r.get("n_points")} points per geodesic, {_fmt(r.get("seconds"))} s.</p>')
        parts.append(_table([["length", lr.get("median"), lr.get("q25"), lr.get("q75"), lr.get("min")],
                             ["energy", er.get("median"), er.get("q25"), er.get("q75"), er.get("min")]],
                            ["geodesic / linear", "median", "25%", "75%", "min"]))
        rows = [[f"{k}" + (f" ({' → '.join(p['labels'])})" if "labels" in p else ""), p["line_length"], p["geodesic_length"],
                 p["length_ratio"], p["converged"]] for k, p in enumerate(r.get("pairs", []))]
        parts.append("<details><summary>every pair</summary>"
                     + _table(rows, ["pair", "linear length", "geodesic length", "ratio", "converged"]) + "</details>")
    pairs = sorted(d.glob("pair_*.png"))
    parts.append('<div class="gallery">' + page.video(d / "interpolation.mp4", "linear (top) against geodesic (bottom)", width=520)
                 + "".join(page.image(p, p.stem.replace("_", " "), width=520) for p in pairs[:4]) + "</div>")
    if len(pairs) > 4:
        parts.append("<details><summary>more pairs</summary><div class=\"gallery\">"
                     + "".join(page.image(p, p.stem.replace("_", " "), width=520) for p in pairs[4:]) + "</div></details>")
    return "".join(parts)


def _section_generate(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    from latentdyn.scenes.file import open_scenes

    parts = []
    h5 = d / "scenes.h5"
    if h5.is_file():
        with open_scenes(h5) as sf:
            info = {"file": h5.name, "sequences": sf.n_sequences, "frames per sequence": sf.length,
                    "frame shape": "x".join(map(str, sf.frame_shape)),
                    **{f"split {k}": len(v) for k, v in sf.splits.items()}}
        parts.append(_kv_table(info))
    parts.append('<div class="gallery">' + page.video(d / "scenes.mp4", "the first sequences", width=480) + "</div>")
    return "".join(parts)


def _section_encode(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    from latentdyn.vae.encode import open_latents

    p = d / "latents.h5"
    if not p.is_file():
        return ""
    with open_latents(p) as lf:
        return _kv_table({"file": p.name, "kind": lf.kind, "latent dimensions": lf.latent_dim,
                          "shape of the means": "x".join(map(str, lf.file["mu"].shape)),
                          **{f"split {k}": len(v) for k, v in lf.splits.items()}})


def _section_evaluate(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    return _section_eval_json(d / "eval.json") if (d / "eval.json").is_file() else ""


def _section_compare(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    return ('<div class="gallery">' + page.image(d / "compare.png", "across datasets: prediction matrix, latent map, manifold")
            + page.video(d / "compare_flow.mp4", "the training flows side by side, one frame per epoch", width=560) + "</div>")


SECTIONS = {
    "generate": _section_generate, "train-vae": _section_vae, "evaluate": _section_evaluate, "encode": _section_encode,
    "train-dynamics": _section_dynamics, "rollout": _section_rollout, "latent-map": _section_latent_map,
    "interpolate": _section_interpolate, "compare-maps": _section_compare,
}


def detect_kind(d: Path) -> str | None:
    """What a single folder holds, from its files."""
    if (d / "metrics.jsonl").is_file() and (d / "config.toml").is_file():
        from latentdyn.core.config import load_toml

        return "train-vae" if "arch" in load_toml(d / "config.toml").get("model", {}) else "train-dynamics"
    for fname, kind in (("metrics.json", "rollout"), ("interpolation.json", "interpolate"), ("latent_map.npz", "latent-map"),
                        ("compare.png", "compare-maps"), ("scenes.h5", "generate"), ("eval.json", "evaluate"),
                        ("latents.h5", "encode")):
        if (d / fname).is_file():
            return kind
    return None


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------


def write_report(run_dir: str | Path, title: str | None = None) -> Path:
    """Write ``run_dir/report.html`` and its curve figures; returns the page's path."""
    from latentdyn.pipeline.experiment import run_summary, stage_dir

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
            summ = "; ".join(f"{k.replace('_', ' ')} {_fmt(v)}" for k, v in (r.get("summary") or {}).items())
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
