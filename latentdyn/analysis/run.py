"""``analyze`` and ``steer``: a trained VAE's latent space against the ground truth, in one call each.

``analyze`` encodes a train and a test split (posterior means and log-variances), takes their
factors (scene states: per ball x, y, vx, vy, named by ``ball order``; dataset labels), computes
MIG, the MI matrix, SAP, DCI, probes, active units and KL per dimension, writes ``analysis.json``
(every number under the split it was computed on), the MI heat map, the traversal grid and
video and a prior-sample grid. ``steer`` fits a direction for one factor on the train codes,
edits test codes and scores the decoded edits with a reader independent of the VAE. The recipe
is in docs/analysis.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from latentdyn.analysis import directions as dirs
from latentdyn.analysis import disentanglement as dis
from latentdyn.analysis.factors import auto_order, ball_permutation, parse_factor, scene_factors
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path, make_folder

FIT_SCORE = "fit train, score test"


def load_split(vae, source: str, split: str, data_dir=None, limit: int = 5000, seed: int = 0, order: str = "auto") -> dict:
    """Images, factors and codes of one split, ``limit`` frames at most (a seeded random subset).

    Scene file: factors from its states (``scene_factors`` with ``order``; ``auto``: see
    ``factors.auto_order``), all continuous, plus ``xy`` (N, n_balls, 2) named as the factors. A
    file without splits is split once by sequence (75 % train, 25 % test, seeded). Dataset: the
    label, discrete, and the class names.
    """
    from latentdyn import datasets

    rng = np.random.default_rng(seed)
    out: dict = {"split": split}
    if datasets.is_scene_source(source):
        from latentdyn.scenes.file import open_scenes

        with open_scenes(source) as sf:
            if sf.splits:
                ids = sf.split_indices(split)
            elif split in ("train", "test"):
                perm = np.random.default_rng(seed).permutation(sf.n_sequences)
                cut = int(round(0.75 * len(perm)))
                ids = perm[:cut] if split == "train" else perm[cut:]
            else:
                raise LatentdynError(f"{source} has no splits; use --split train or test (a seeded 75/25 split by sequence)")
            if sf.states is None:
                raise LatentdynError(f"{source} has no ball states; the analysis needs ground-truth factors")
            T = sf.length
            if limit:
                ids = rng.permutation(ids)[: max(1, 2 * math.ceil(limit / T))]  # enough sequences to draw frames from
            ids = np.sort(ids)
            frames = sf.read_frames(ids)  # (S, T, H, W[, C])
            states = np.asarray(sf.states[ids], np.float64)  # (S, T, n, 4)
            scene = sf.scene or {}
        n_balls = states.shape[2]
        out["order"] = order = auto_order(scene, n_balls) if order == "auto" else order
        images = frames.reshape(-1, *frames.shape[2:])
        images = images if images.ndim == 4 else images[..., None]
        factors, names = scene_factors(states, order)
        perm = ball_permutation(states, order)
        xy = np.take_along_axis(states[..., :2], perm[..., None], axis=2).reshape(-1, n_balls, 2)
        out.update(kind="scenes", names=names, continuous=np.ones(len(names), bool), frame_size=frames.shape[2:4][::-1])
        rows = {"xy": xy, "sequence": np.repeat(ids, T), "frame": np.tile(np.arange(T), len(ids))}
    else:
        data = datasets.load_source(str(source), split, data_dir, val_size=vae.val_size)  # train less val, val, test
        images, factors = data.images, data.labels[:, None].astype(np.int64)
        out.update(kind="dataset", names=["label"], continuous=np.zeros(1, bool), class_names=list(data.class_names))
        rows = {}
    if tuple(images.shape[1:]) != tuple(vae.shape):
        raise LatentdynError(f"{source} has images {tuple(images.shape[1:])} but the VAE in {vae.run} takes {tuple(vae.shape)}")
    if len(images) == 0:
        raise LatentdynError(f"the {split!r} split of {source} is empty")
    keep = np.sort(rng.choice(len(images), limit, replace=False)) if limit and len(images) > limit else np.arange(len(images))
    out["images"], out["factors"] = images[keep], factors[keep]
    out.update({k: v[keep] for k, v in rows.items()})
    out["mu"], out["logvar"] = (a.astype(np.float64) for a in vae.encode(out["images"]))
    return out


def _mi_heatmap(mi: np.ndarray, names: list[str], path: Path, title: str, columns: list[str] | None = None) -> Path:
    from latentdyn.viz.figures import _plt, save_figure

    plt = _plt()
    m, k = mi.shape
    fig, ax = plt.subplots(figsize=(1.2 + 0.45 * k, 1.0 + 0.4 * m), layout="constrained")
    im = ax.imshow(mi, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(k), columns or [f"z{i + 1}" for i in range(k)], fontsize=7, rotation=90 if columns else 0)
    ax.set_yticks(range(m), names, fontsize=7)
    for (j, i), v in np.ndenumerate(mi):
        if np.isfinite(v) and k * m <= 400:
            ax.text(i, j, f"{v:.2f}", ha="center", va="center", fontsize=5, color="w" if v < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="I(factor; z) / H(factor)")
    ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def plain(x):
    """``x`` with numpy scalars and arrays as Python values and NaN / inf as None (valid JSON)."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v) for v in x]
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    return x


def _write_json(data: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(plain(data), indent=2, allow_nan=False) + "\n")


def _open(vae_run, source, out, split, train_split, data_dir, device, limit, seed, order):
    """The VAE, the source (default: its training data), the output folder, and the train and
    scored splits' codes and factors (drawn with seeds seed and seed + 1)."""
    from latentdyn.analysis import vaeio

    vae = vaeio.load(vae_run, device)
    source = str(source or vae.source)
    data_dir = data_dir or vae.data_dir
    out = Path(out)
    make_folder(out)
    tr = load_split(vae, source, train_split, data_dir, limit, seed, order)
    te = load_split(vae, source, split, data_dir, limit, seed + 1, order)
    return vae, source, out, tr, te


def analyze(vae_run, source: str | None, out, split: str = "test", data_dir=None, device: str = "auto",
            limit: int = 5000, seed: int = 0, train_split: str = "train", order: str = "auto", bins: int = dis.BINS,
            dci_method: str = "gbt", dci_estimators: int = 100, probe_kinds=("linear", "hgb"),
            traversal_codes: int = 4, steps: int = 9, span: float = 3.0, traversal_scale: str = "posterior",
            fps: float = 6.0) -> dict:
    """Score a VAE run's codes against ground-truth factors; write analysis.json and figures into ``out``.

    Codes are fitted on ``train_split`` (DCI, SAP for labels, probes) and scored on ``split``.
    Returns the written dict (numbers under "train", "test" / ``split``, or "fit train, score test").
    """
    from latentdyn.analysis import traversals as trv
    from latentdyn.vae.evaluate import active_units

    vae, source, out, tr, te = _open(vae_run, source, out, split, train_split, data_dir, device, limit, seed, order)
    names, cont = te["names"], te["continuous"]
    ct, ft, cs, fs = tr["mu"], tr["factors"], te["mu"], te["factors"]
    mi = dis.mi_matrix(cs, fs, bins, cont, normalize=True)  # (m, k)
    n_active, var = active_units(cs)
    kl = trv.kl_per_dim(cs, te["logvar"])
    res: dict = {
        "vae_run": str(vae_run), "vae_epoch": vae.epoch, "source": source, "kind": te["kind"], "latent_dim": vae.latent_dim,
        "factors": names, "continuous": cont.tolist(), "ball_order": te.get("order"), "seed": seed,
        "splits": {"train": train_split, "test": split}, "n": {"train": len(ct), "test": len(cs)},
        "recipe": f"docs/analysis.md; MIG bins {bins}, DCI {dci_method} ({dci_estimators} estimators), probes {list(probe_kinds)}",
    }
    res["train"] = {"mig": dis.mig(ct, ft, bins, cont)}
    res["test"] = {
        "mig": dis.mig(cs, fs, bins, cont),
        "mig_per_factor": dict(zip(names, dis.mig_per_factor(cs, fs, bins, cont).tolist())),
        "mi_normalized": mi.tolist(),
        "active_units": n_active, "posterior_mean_variance": var.tolist(), "kl_per_dim": kl.tolist(),
        # first-order bias of a plug-in MI estimate from a bins x bins table (Miller 1955): MI below it is noise
        "mi_bias_nats": (bins - 1) ** 2 / (2 * len(cs)),
    }
    fit = {}
    if cont.all():
        res["test"]["sap"] = dis.sap(cs, fs, continuous=cont)  # R^2 of 1-D fits on the test codes, as the lib (no held-out part)
    else:
        fit["sap"] = dis.sap(ct, ft, cs, fs, continuous=cont)
    fit["dci"] = dis.dci(ct, ft, cs, fs, method=dci_method, continuous=cont, n_estimators=dci_estimators, seed=seed)
    fit["probes"] = dis.probes(ct, ft, cs, fs, kinds=probe_kinds, continuous=cont, names=names, seed=seed)
    res[FIT_SCORE] = fit
    title = f"{Path(str(vae_run)).name} on {Path(source).name} ({split}, {len(cs):,} frames)"
    _mi_heatmap(mi, names, out / "mi_heatmap.png", "normalised MI, " + title)
    t = trv.write_traversals(vae.decode, cs, te["logvar"], out, traversal_codes, steps, span, traversal_scale,
                             seed=seed, fps=fps, title="traversals, " + title)
    trv.prior_grid(vae.decode, vae.latent_dim, out / "prior_samples.png", seed=seed)
    figs = {"mi_heatmap": "mi_heatmap.png", "traversals": "traversals.png",  # file names inside ``out``
            "traversal_videos": ["traversals.mp4", "traversals.gif"], "prior_samples": "prior_samples.png"}
    res["test"]["traversal"] = {"dims": t["dims"], "codes": t["codes"], "offsets": t["offsets"], "scale": t["scale"]}
    if vae.latent_shape and te["kind"] == "scenes" and te["xy"].shape[1] <= vae.latent_shape[0]:
        from latentdyn.analysis.slots import analyze_slots

        res["slots"] = analyze_slots(vae, tr, te, out, bins, dci_method, dci_estimators, seed, traversal_codes, steps,
                                     span, fps, title, _mi_heatmap)
        figs.update(res["slots"].pop("figures"))
    res["figures"] = figs
    res = plain(res)
    _write_json(res, out / "analysis.json")
    return res


def _parse_class(text: str, class_names: list[str]) -> int:
    t = text.strip()
    if t.isdigit() and int(t) < len(class_names):
        return int(t)
    if t in class_names:
        return class_names.index(t)
    raise LatentdynError(f"class {t!r}: give an index 0..{len(class_names) - 1} or one of {', '.join(class_names)}")


def _edit_figure(rows: list[np.ndarray], labels: list[str], path: Path, title: str) -> Path:
    from latentdyn.analysis.traversals import _show, montage
    from latentdyn.viz.figures import _plt, save_figure

    plt = _plt()
    img = montage(np.stack(rows))  # rows (R, n, H, W, C)
    H = rows[0].shape[1]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * rows[0].shape[0] + 1.5), 0.55 * len(rows) + 0.8))
    _show(ax, img)
    ax.set_xticks([])
    ax.set_yticks([(r + 0.5) * H + r for r in range(len(rows))], labels, fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def steer(vae_run, source: str | None, out, factor: str, by: float, condition=(), split: str = "test",
          data_dir=None, device: str = "auto", limit: int = 5000, seed: int = 0, n: int = 16,
          train_split: str = "train", order: str = "auto", show: int = 10) -> dict:
    """Fit a direction for ``factor`` on train codes, edit ``n`` test codes by ``by``, score the decodes.

    Scenes: ``factor`` is a ball position (``x0``, ``y1``, ...; ``by`` in pixels) and ``condition``
    names factors to hold still (any of x, y, vx, vy); test frames are those whose edited position
    stays inside the central 70 % of the frame. Datasets: ``factor`` is ``A->B`` (class indices or
    names, optionally ``label:`` first) and ``by`` the logit of B against A that the latent
    classifier should reach (3: p(B) = 0.95; ``directions.edit_to``); ``n`` test images of class A.
    Writes ``steer.json`` and ``steer.png`` (decoded originals above their edits).
    """
    vae, source, out, tr, te = _open(vae_run, source, out, split, train_split, data_dir, device, limit, seed, order)
    rng = np.random.default_rng(seed)
    res: dict = {"vae_run": str(vae_run), "source": source, "factor": factor, "by": float(by), "seed": seed,
                 "splits": {"fit": train_split, "edit": split}, "ball_order": te.get("order")}
    if te["kind"] == "scenes":
        names = te["names"]
        j = parse_factor(factor, names)
        ball, coord = divmod(j, 4)
        if coord > 1:
            raise LatentdynError(f"factor {factor!r} is a velocity, which one frame does not show; steer a position (x or y)")
        size = np.asarray(te["frame_size"], np.float64)[coord]
        goal = te["xy"][:, ball, coord] + by
        ok = np.flatnonzero((goal > 0.15 * size) & (goal < 0.85 * size))
        pick = np.sort(rng.choice(ok, min(n, len(ok)), replace=False)) if len(ok) else ok
        if len(pick) == 0:
            raise LatentdynError(f"no {split} frame can move {factor} by {by:g} px and stay inside the frame; ask less")
        d = dirs.fit_direction(tr["mu"], tr["factors"][:, j], True, name=factor)
        codes, ref = te["mu"][pick], te["xy"][pick]
        res["direction"] = d.as_dict()
        res["direction"]["train_r2"] = float(1 - np.var(tr["factors"][:, j] - d.predict(tr["mu"])) / np.var(tr["factors"][:, j]))
        res["unconditional"], before, after = dirs.score_position_edit(vae.decode, codes, ref, ball, coord, by, d)
        rows, labels = [before, after], ["decoded", f"{factor} {by:+g}px"]
        if condition:
            conds = [dirs.fit_direction(tr["mu"], tr["factors"][:, parse_factor(c, names)], True, name=c) for c in condition]
            u = dirs.orthogonalize(d, conds)
            res["conditional"], _, after_c = dirs.score_position_edit(vae.decode, codes, ref, ball, coord, by, u)
            res["conditional"]["conditions"] = list(condition)
            res["conditional"]["cosine_to_unconditional"] = float(u.normal @ d.normal)
            rows.append(after_c)
            labels.append("conditional")
        res["frames"] = {"sequence": te["sequence"][pick].tolist(), "frame": te["frame"][pick].tolist()}
    else:
        names = te["class_names"]
        pair = factor.split(":", 1)[1] if factor.startswith("label:") else factor
        if "->" not in pair:
            raise LatentdynError(f"factor {factor!r}: for a dataset give a class edit like 3->5 or Coat->Bag")
        a, b = (_parse_class(p, names) for p in pair.split("->", 1))
        y = tr["factors"][:, 0]
        sel = np.isin(y, [a, b])
        d = dirs.fit_direction(tr["mu"][sel], y[sel], False, positive=b, name=f"{names[a]}->{names[b]}")
        src = np.flatnonzero(te["factors"][:, 0] == a)
        pick = np.sort(rng.choice(src, min(n, len(src)), replace=False))
        if len(pick) == 0:
            raise LatentdynError(f"the {split} split has no image of class {names[a]!r}")
        probe = dirs.pixel_probe(tr["images"], tr["factors"][:, 0], seed=seed)
        res["probe_test_accuracy"] = float(np.mean(dirs.probe_predict(probe, te["images"]) == te["factors"][:, 0]))
        res["direction"] = d.as_dict()
        res["unconditional"], before, after = dirs.score_class_edit(vae.decode, te["mu"][pick], d, by, probe, a, b)
        res["class_names"] = [names[a], names[b]]
        rows, labels = [before, after], ["decoded", f"-> {names[b]} (logit {by:g})"]
    k = min(show, len(rows[0]))
    _edit_figure([r[:k] for r in rows], labels, out / "steer.png", f"steer {factor} by {by:g} ({split} codes)")
    res["figures"] = {"edits": "steer.png"}  # inside ``out``
    res = plain(res)
    _write_json(res, out / "steer.json")
    return res
