"""One report section per stage kind: (page, stage folder, name, record) -> HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.pipeline.report.html import ASSETS, Page, _config_block, _esc, _fmt, _kv_table, _read_json, _read_jsonl, _table
from latentdyn.pipeline.report.baselines import budget_label, section_convlstm
from latentdyn.pipeline.report.curves import FIGURE_WIDTH, _curves  # noqa: F401 (FIGURE_WIDTH: re-exported)

BETA_RULE = "β(epoch) = β × min(1, epoch / warmup_epochs), as the VAE trainer sets it"


def beta_per_epoch(rows: list[dict], cfg: dict) -> list[float] | None:
    """The KL weight β of each metrics row, or None when it never changes (no warm-up).

    Rows that log ``beta`` give it; otherwise it follows from the run's config.toml as
    latentdyn/vae/train.py sets it (``BETA_RULE``): β × min(1, epoch / warmup_epochs), epochs
    counted from 1; with ``warmup_epochs = 0``, β throughout.
    """
    if rows and all(r.get("beta") is not None for r in rows):
        betas = [float(r["beta"]) for r in rows]
    else:
        beta, warm = float(cfg.get("beta", 1.0)), int(cfg.get("warmup_epochs", 0) or 0)
        betas = [beta * min(1.0, r["epoch"] / warm) if warm else beta for r in rows]
    return betas if len(set(betas)) > 1 else None


def _read_toml(path: Path) -> dict:
    from latentdyn.core.config import load_toml

    try:
        return load_toml(path) if Path(path).is_file() else {}
    except LatentdynError:  # a config this latentdyn cannot read: the report shows what it can
        return {}


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
        cfg = _read_toml(d / "config.toml")
        betas = beta_per_epoch(rows, cfg)
        val = any("val_elbo" in r for r in rows)
        panels = [("ELBO (nats, higher is better)", [("train_elbo", "train split"), ("val_elbo", "validation split")]),
                  ("KL (nats)", [("train_kl", "train split"), ("val_kl", "validation split")])]
        if betas is not None:  # the KL weight changed (a warm-up): its curve; a constant β is said in the caption
            panels.append(("β, the KL weight", [("beta", "β")]))
        png = _curves([{**r, "beta": b} for r, b in zip(rows, betas)] if betas is not None else rows, panels,
                      page.root / ASSETS / f"{name}_curves.png")
        beta = (f"β warms up: {BETA_RULE}" if betas is not None
                else f"β = {_fmt(float(rows[-1].get('beta', cfg.get('beta', 1.0))))} throughout")
        cap = (f"training curves per epoch: the training split (averaged over the epoch's training pass)"
               f"{' and the validation split' if val else ''}; {beta}")
        split = "validation" if val else "training"
        vid = page.video(d / "flow.mp4", f"prediction matrix per epoch: inputs from the {split} split, their reconstructions "
                                         f"and prior samples; titled with the epoch's {'val' if val else 'train'} ELBO")
        parts.append(f'<div class="gallery">{vid}{page.image(png, cap) if png else ""}</div>')
    evals = sorted(d.glob("eval_*.json"))
    for p in evals:
        parts.append(_section_eval_json(p))
    parts.append(_config_block(d / "config.toml", "resolved VAE configuration"))
    return "".join(parts)


def _section_eval_json(path: Path) -> str:
    r = _read_json(path) or {}
    keep = {k: r.get(k) for k in ("data", "split", "n", "epoch", "elbo", "elbo_bits_per_dim", "rec", "kl", "log_px_iw",
                                  "iwae_bits_per_dim", "iw_samples", "bernoulli_ce", "gaussian_density_nll",
                                  "training_loss", "note", "active_units", "latent_dim") if k in r}
    p = r.get("protocol") or {}
    if p:
        keep["protocol"] = (f"{p.get('likelihood')} on {p.get('data')} data; "
                            + ("a log-probability of the data" if p.get("is_log_probability") else "a training loss, not a likelihood"))
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
        splits = (("train", "train split"), ("val", "validation split"))
        panels = [(title, [(f"{prefix}_{key}", label) for prefix, label in splits])
                  for title, key in (("loss", "loss"), ("open-loop squared error (latent)", "open_loop_se"),
                                     ("one-step squared error (latent)", "one_step_se"))]
        png = _curves(rows, panels, page.root / ASSETS / f"{name}_curves.png")
        val = any("val_loss" in r for r in rows)
        parts.append(page.image(png, "training curves per epoch: the training split (averaged over the epoch's training pass)"
                                + (" and the validation split" if val else "")) if png else "")
        parts.append(page.image(d / "open_loop_vs_sequences.png", "validation open-loop error against the training "
                                "sequences seen: fresh sequences drawn from the scene every epoch (fresh_sequences)"))
    parts.append(_config_block(d / "config.toml", "resolved predictor configuration"))
    return "".join(parts)


ROLLOUT_NAMES = {"model": "GRU predictor (ours)", "copy_last": "copy last frame", "linear_pixels": "per-pixel linear extrapolation",
                 "constant_velocity_latent": "constant velocity in latent space", "reconstruction": "ceiling: the true future latents decoded",
                 "model_samples_mean": "GRU predictor, sampled futures",
                 "state_oracle": "state oracle: the predictor on the true states, drawn by the scene's renderer",
                 "model_frozen_decoder": "our predictions through the frozen decoder (the model row uses the tuned one)",
                 "convlstm": "ConvLSTM in pixels (Shi et al. 2015), trained here"}


def _section_rollout(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    m = _read_json(d / "metrics.json")
    if m is None:
        return "<p>metrics.json is missing.</p>"
    settings = (record or {}).get("settings", {})
    ref = settings.get("reference") or {}
    cfg = m.get("config", {})
    K, H = cfg.get("context"), cfg.get("horizon")
    split = _esc(m.get("split", "test"))
    n_seq = len(m.get("sequences", []))
    parts = [f'<p class="sub">{n_seq} sequences of the {split} split; {K} observed frames, then {H} predicted '
             "open loop. One-step errors predict every frame from the true past (as the RTRBM/TSBN papers measured).</p>"]
    one = m.get("one_step_se_per_frame", {})
    names = dict(ROLLOUT_NAMES)
    cell = {"convgru": "ConvGRU", "interaction": "interaction"}.get(m.get("predictor"))
    if cell:
        names.update(model=f"{cell} predictor (ours)", model_samples_mean=f"{cell} predictor, sampled futures")
    if m.get("pixel_baseline"):  # the same-budget ConvLSTM, labelled with its budget
        names["convlstm"] = budget_label(m["pixel_baseline"])
    header = ["method", "one-step squared error per frame"] + (["published"] if ref else [])
    rows = [[names.get(k, k), v] + ([ref.get(k)] if ref else []) for k, v in one.items()]
    parts.append(f"<h3>One-step-ahead error ({split} split)</h3>"
                 + _table(rows, header, ["ours" if k == "model" else "" for k in one]))
    if ref and settings.get("reference_source"):
        parts.append(f'<p class="sub">Published figures: {_esc(settings["reference_source"])}</p>')
    ol = m.get("open_loop", {})
    thing = (m.get("objects") or {}).get("objects") or "ball"  # "sprite" for moving digits
    cols = [("se_per_frame", "squared error / frame (MSE)"), ("ae_per_frame", "absolute error / frame (MAE)"),
            ("psnr", "PSNR (dB)"), ("ssim", "SSIM"),
            ("all_present", f"fraction of frames with every {thing}"), ("count_exact", f"fraction of frames showing the true number of {thing}s"),
            ("position_error_px", f"position error (px), lost {thing}s counted"),
            ("direction_error_deg", "direction error (deg)"), ("vanished_frames", f"frames losing a {thing}"),
            ("split_frames", "frames with extra blobs")]
    cols = [c for c in cols if any(c[0] in v.get("summary", {}) for v in ol.values())]
    rows = [[names.get(k, k)] + [_of_frames(v["summary"], c) for c, _ in cols] for k, v in ol.items()]
    classes = ["ours" if k == "model" else "" for k in ol]
    published = settings.get("published") or {}
    rows += _published_rows(published, [c for c, _ in cols])
    classes += ["published"] * len(published)
    parts.append(f"<h3>Open loop over {H} steps (mean over steps; {split} split)</h3>"
                 + _table(rows, ["method"] + [c[1] for c in cols], classes))
    if published:
        notes = "".join(f"<li>{_esc(k)}: {_esc(v['note'])}</li>" for k, v in published.items() if v.get("note"))
        parts.append(f'<p class="sub">Rows marked "published, not run here" are figures quoted from '
                     f'{_esc(settings.get("published_source") or "the literature")}, on their own test data.</p>'
                     + (f'<ul class="sub">{notes}</ul>' if notes else ""))
    obj = m.get("objects") or {}
    if obj:
        truth = obj.get("truth_reading") or {}
        parts.append(f'<p class="sub">Objects judged {"against the true states" if obj.get("protocol") == "states" else "by a region detector"}: '
                     f'{_esc(obj.get("presence", ""))}; a lost {thing} counts {_fmt(obj.get("penalty_px"))} px. On the true frames '
                     f'this reads {_percent(truth.get("all_present"))} of frames with every {thing} present'
                     + (f', centroid offset {_fmt(truth.get("centroid_offset_px"))} px' if "centroid_offset_px" in truth else "")
                     + (f', and {_percent(truth.get("count_exact"))} of them showing the true number of {thing}s '
                        f'(counted without the states: {_esc(obj.get("count", ""))})' if "count_exact" in truth else "")
                     + (f". The {thing}s' shape: {_esc(obj.get('shape_from'))}" if obj.get("shape_from", "definition") != "definition" else "")
                     + '. The ceiling decodes the true future latents: what any predictor can reach with this VAE.</p>')
    sl = m.get("slots")
    if sl:
        parts.append(f'<p class="sub">Object slots: in {_percent(sl.get("consistency"))} of the {sl.get("sequences")} '
                     f'sequences every slot keeps its {thing} over all {sl.get("frames")} frames '
                     f'({_percent(sl.get("frames_kept"))} of frames as in the first; matched slots lie '
                     f'{_fmt(sl.get("matched_distance_px"))} px from their {thing}s on average).</p>')
    parts.append('<div class="gallery">'
                 + page.video(d / "rollout.mp4", f"sequences of the {split} split, left to right: truth | prediction | error; "
                                                 "green frame: observed, red frame: predicted")
                 + page.image(d / "error_vs_horizon.png", f"error against the prediction horizon, mean over the {n_seq} "
                                                          f"sequences of the {split} split") + "</div>")
    return "".join(parts)


COUNTS = ("vanished_frames", "split_frames")  # frame counts, shown against the frames judged


def _of_frames(summary: dict, key: str):
    """A summary value; a frame count with its denominator ("179 of 2,500")."""
    v = summary.get(key)
    if key in COUNTS and v is not None and summary.get("frames"):
        return f"{_fmt(v)}\u00a0of\u00a0{_fmt(summary['frames'])}"  # no-break spaces: one line in the table
    return v


def _percent(v) -> str:
    return "–" if v is None else f"{100 * v:.3g}%"


PUBLISHED_KEYS = {"se_per_frame": "mse", "ae_per_frame": "mae", "psnr": "psnr", "ssim": "ssim"}  # our column -> PublishedFigure


def _published_rows(published: dict, cols: list[str]) -> list[list]:
    """Rows of published open-loop figures under our columns; columns they do not report stay empty."""
    rows = []
    for label, fig in published.items():
        epochs = f", {fig['epochs']} epochs" if fig.get("epochs") and "epoch" not in label else ""
        rows.append([f"{label}{epochs} (published, not run here)"] + [fig.get(PUBLISHED_KEYS.get(c, "")) for c in cols])
    return rows


def _section_latent_map(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    split = _esc(_read_toml(d / "config.toml").get("split") or ((record or {}).get("settings") or {}).get("split") or "test")
    figs = [page.image(d / f"{stem}.png", cap) for stem, cap in
            (("latent_map", f"latent map: posterior means of the {split} split"),
             ("manifold", "decoded manifold on an inverse-CDF grid of the prior (no data split)"),
             ("pairs", f"pairs of the most active dimensions: posterior means of the {split} split"),
             ("slot_map", f"object slots: each ball's slot, its position numbers coloured by the ball's true place ({split})"))]
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
    split = f" of the {r['split']} split" if r.get("split") else ""
    parts.append('<div class="gallery">' + page.video(d / "interpolation.mp4", f"pairs{split}: linear (top) against geodesic "
                                                      "(bottom)")
                 + "".join(page.image(p, p.stem.replace("_", " ") + split) for p in pairs[:4]) + "</div>")
    if len(pairs) > 4:
        parts.append("<details><summary>more pairs</summary><div class=\"gallery\">"
                     + "".join(page.image(p, p.stem.replace("_", " ") + split) for p in pairs[4:]) + "</div></details>")
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
    parts.append('<div class="gallery">' + page.video(d / "scenes.mp4", "the file's first sequences, each labelled with its split")
                 + "</div>")
    return "".join(parts)


def _section_encode(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    from latentdyn.latents.file import open_latents

    p = d / "latents.h5"
    if not p.is_file():
        return ""
    with open_latents(p) as lf:
        ls = lf.latent_shape
        states = lf.file.attrs.get("latents", "vae") == "states"
        return _kv_table({"file": p.name, "kind": lf.kind + (" (true states: the state oracle's input)" if states else ""),
                          "latent dimensions": lf.latent_dim,
                          **({"latent map (channels x height x width)": " x ".join(map(str, ls))} if len(ls) == 3 else {}),
                          **({("objects x features (x, y, vx, vy)" if states else "object slots (slots x dimensions each)"):
                              " x ".join(map(str, ls))} if len(ls) == 2 else {}),
                          "shape of the means": "x".join(map(str, lf.file["mu"].shape)),
                          **{f"split {k}": len(v) for k, v in lf.splits.items()}})


def _section_evaluate(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    return _section_eval_json(d / "eval.json") if (d / "eval.json").is_file() else ""


def _section_compare(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    return ('<div class="gallery">' + page.image(d / "compare.png", "across datasets: the prediction matrix of the last "
                                                 "epoch (validation inputs), the latent map (the split each latent-map stage "
                                                 "names: see its section) and the manifold")
            + page.video(d / "compare_flow.mp4", "the training flows one above the other, one frame per epoch") + "</div>")


def _section_analyze(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    r = _read_json(d / "analysis.json") or {}
    if not r:
        return "<p>analysis.json is missing.</p>"
    te, fit = r.get("test", {}), r.get("fit train, score test", {})
    dci = fit.get("dci", {})
    splits = r.get("splits", {})
    parts = [f'<p class="sub">{_esc(r.get("kind"))}: factors {_esc(", ".join(r.get("factors", [])))}; codes are posterior means; '
             f'scores on the {_esc(splits.get("test"))} split ({r.get("n", {}).get("test")} codes), fits on '
             f'{_esc(splits.get("train"))}. Recipe: {_esc(r.get("recipe", ""))}.</p>']
    rows = [["MIG", te.get("mig"), r.get("train", {}).get("mig")], ["SAP", te.get("sap", fit.get("sap")), None],
            ["DCI disentanglement", dci.get("disentanglement"), None], ["DCI completeness", dci.get("completeness"), None],
            ["DCI informativeness", dci.get("informativeness_test"), dci.get("informativeness_train")],
            ["active units", f"{te.get('active_units')} of {r.get('latent_dim')}", None]]
    parts.append(_table(rows, ["score", "test", "train"]))
    probes = fit.get("probes", {})
    if isinstance(probes, dict) and probes.get("factors"):
        pf = probes["factors"]
        kinds = sorted({k for v in pf.values() for k in v})
        parts.append("<h3>Probes (fit on train codes, scored on test: R², accuracy for labels)</h3>"
                     + _table([[f] + [v.get(k) for k in kinds] for f, v in pf.items()], ["factor"] + kinds))
    test = _esc(splits.get("test", "test"))
    parts.append('<div class="gallery">' + page.image(d / "mi_heatmap.png", f"normalised mutual information, factor by latent "
                                                      f"({test} split)")
                 + page.image(d / "traversals.png", f"latent traversals from codes of the {test} split, dimensions by KL")
                 + page.video(d / "traversals.mp4", f"traversals from codes of the {test} split")
                 + page.image(d / "prior_samples.png", "samples of the prior (no data split)") + "</div>")
    sl = r.get("slots")
    if sl:  # a slot VAE: each ball's slot scored against its ball (docs/analysis.md, "Object slots")
        m, po = sl["matched"], sl["per_object"]
        parts.append(f"<h3>Object slots, matched to the balls ({_fmt(sl['matched_distance_px']['test'])} px apart on {test})</h3>"
                     + _table([["slots matched to balls", m["test"]["mig"], m["fit train, score test"]["dci"]["disentanglement"]],
                               ["each ball's slot against its ball", po["test"]["mig"],
                                po["fit train, score test"]["dci"]["disentanglement"]]], ["codes", "MIG", "DCI disentanglement"])
                     + '<div class="gallery">' + page.image(d / "mi_heatmap_per_slot.png", "normalised MI of each ball's slot")
                     + page.image(d / "traversals_slots.png", "traversals of each ball's slot") + "</div>")
    return "".join(parts)


def _section_steer(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    r = _read_json(d / "steer.json") or {}
    sp = r.get("splits") or {}
    rows = []
    for k in ("unconditional", "conditional"):
        if k in r:
            rows += [[k, key.replace("_", " "), v] for key, v in r[k].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return (f'<p class="sub">factor {_esc(r.get("factor", ""))}, asked {_fmt(r.get("by"))}</p>' + _table(rows, ["edit", "measure", "value"])
            + '<div class="gallery">' + page.image(d / "steer.png", "decoded codes above their edits: codes of the "
                                                   f"{_esc(sp.get('edit', 'test'))} split, directions fit on the "
                                                   f"{_esc(sp.get('fit', 'train'))} split") + "</div>")


def _section_sweep(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    from latentdyn.pipeline.sweep_summary import METRICS, OUTCOMES

    r = _read_json(d / "summary.json") or {}
    if not r:
        return "<p>summary.json is missing.</p>"
    x, sp, rank = r.get("x"), r.get("splits", {}), r.get("spearman", {})
    parts = [f'<p class="sub">{r.get("n_runs")} runs: {len(r.get("values", []))} values of {_esc(x)} × seeds '
             f'{_esc(", ".join(map(str, r.get("seeds", []))))}. Scores on the {_esc(sp.get("analysis"))} split (fits on train); '
             f'reconstruction error = −E<sub>q</sub>[log p(x|z)] in nats per frame on the {_esc(sp.get("reconstruction"))} '
             f'split at the best epoch; {r.get("rollout_horizon")}-step open-loop rollouts on the {_esc(sp.get("rollout"))} '
             "split. Mean ± sample standard deviation (ddof 1) over seeds.</p>"]
    fields = [*r.get("metrics", []), *OUTCOMES]
    labels = {**{k: v[0] for k, v in METRICS.items()}, **OUTCOMES}

    def cell(st: dict) -> str:
        return "–" if st.get("mean") is None else _fmt(st["mean"]) + ("" if st.get("std") is None else f" ± {_fmt(st['std'])}")

    rows = [[v["x"], v["n"]] + [cell(v[f]) for f in fields] for v in r.get("values", [])]
    parts.append(_table(rows, [x, "n"] + [labels[f] for f in fields]))
    pairs = [(m, o) for m in r.get("metrics", []) for o in ("vs_x", "vs_rec_error", "vs_position_error_px", "vs_all_present")]
    rows = [[labels[m], labels.get(o[3:], x), rank.get(m, {}).get(o, {}).get("rho"), rank.get(m, {}).get(o, {}).get("p"),
             rank.get(m, {}).get(o, {}).get("n")] for m, o in pairs if o in rank.get(m, {})]
    parts.append("<h3>Spearman rank correlations over all runs</h3>" + _table(rows, ["score", "against", "ρ", "p", "runs"]))
    parts.append('<div class="gallery">' + page.image(d / "sweep.png", f"scores ({sp.get('analysis')} split) against {x}, "
                                                      f"reconstruction error ({sp.get('reconstruction')} split) and rollout "
                                                      f"error ({sp.get('rollout')} split); one dot per run, coloured by the "
                                                      "swept value")
                 + "</div>")
    return "".join(parts)


SECTIONS = {
    "generate": _section_generate, "train-vae": _section_vae, "evaluate": _section_evaluate, "encode": _section_encode,
    "encode-states": _section_encode,
    "train-dynamics": _section_dynamics, "rollout": _section_rollout, "latent-map": _section_latent_map,
    "interpolate": _section_interpolate, "compare-maps": _section_compare, "analyze": _section_analyze,
    "steer": _section_steer, "file": _section_generate, "sweep-summary": _section_sweep,
    "train-convlstm": section_convlstm,
}
