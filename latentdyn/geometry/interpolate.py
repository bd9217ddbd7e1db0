"""Geodesic against linear interpolation (``latentdyn interpolate``).

For pairs of test examples: their posterior means are joined by the straight line and by the
geodesic of the decoder's pull-back metric (``geometry.connecting_geodesic``); both paths are
drawn over the latent map and magnification heat map, decoded at points evenly spaced in
image space (both at constant speed under the decoder mean), animated side by side, and
measured the same way (``geometry.metric.measure_curves``: length under the metric of each
piecewise-linear latent curve, energy of its constant-speed parametrisation, L^2 / 2): lengths,
energies and the ratios geodesic / linear, per pair and as median and quartiles over all pairs.
With ``variance_aware`` the metric also counts an RBF uncertainty that grows away from the data
(Arvanitidis et al. 2018), centred on latents of the VAE's *training* split, so geodesics keep
to where the training data are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError


def pick_pairs(labels: np.ndarray | None, n_items: int, pairs: int, classes: tuple[int, int] | None, seed: int) -> np.ndarray:
    """(pairs, 2) indices of examples to join, seeded; from class A to class B when given."""
    rng = np.random.default_rng([seed, 0x1A7E])
    if classes is not None:
        if labels is None:
            raise LatentdynError("--classes needs a dataset with labels, not a scene file")
        a, b = (np.flatnonzero(labels == c) for c in classes)
        if len(a) == 0 or len(b) == 0:
            raise LatentdynError(f"--classes {classes[0]},{classes[1]}: no examples of one of them in this split")
        return np.stack([rng.choice(a, pairs), rng.choice(b, pairs)], 1)
    if n_items < 2:
        raise LatentdynError("need at least two examples to interpolate between")
    out = np.stack([rng.choice(n_items, 2, replace=False) for _ in range(pairs)])
    return out


def parse_classes(text: str | None, names: list[str]) -> tuple[int, int] | None:
    """'3,8' or 'Sandal,Sneaker' -> class indices."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise LatentdynError(f"--classes {text!r}: give two classes, e.g. 3,8 or Sandal,Sneaker")
    out = []
    for p in parts:
        if p.isdigit() and int(p) < len(names):
            out.append(int(p))
        elif p in names:
            out.append(names.index(p))
        else:
            raise LatentdynError(f"--classes: unknown class {p!r}; use one of {', '.join(names)} or 0..{len(names) - 1}")
    return out[0], out[1]


def data_aware_decoder(decode, mu: np.ndarray, seed: int = 0, k: int = 64, weight: float = 1.0):
    """The decoder with an RBF uncertainty that grows away from the data (Arvanitidis et al. 2018):
    centres are ``k`` of the latent means ``mu`` (seeded; pass means of the *training* split, the
    data the decoder has seen), the bandwidth h their median nearest-centre distance, sigma shared
    by all D outputs (``metric.rbf_sigma``, zeta = 1e-3). Its pull-back metric is
    J_mu^T J_mu + weight^2 * D * grad sigma grad sigma^T (``metric.variance_aware``)."""
    import torch

    from latentdyn.geometry import metric as G

    if len(mu) < 1:
        raise LatentdynError("data_aware_decoder: no latent means to place RBF centres on; give the training split's means")
    rng = np.random.default_rng([seed, 0xCE])
    c = mu[rng.choice(len(mu), min(k, len(mu)), replace=False)]
    dist = np.linalg.norm(c[:, None] - c[None], axis=-1) + np.eye(len(c)) * 1e9
    h = float(np.median(dist.min(1))) if len(c) > 1 else 1.0
    return G.variance_aware(decode, G.rbf_sigma(torch.as_tensor(c, dtype=torch.float32), bandwidth=h, scale=1.0, zeta=1e-3), weight)


def interpolate(vae_run, source: str | None, out: str | Path, pairs: int = 8, classes: str | None = None, steps: int = 10,
                split: str = "test", n_points: int = 32, data_dir=None, device: str = "auto", seed: int = 0, limit: int = 3000,
                fps: float = 6.0, variance_aware: bool = False, centres_split: str | None = None,
                centres: np.ndarray | None = None) -> dict:
    """Compare geodesic and linear interpolation between pairs; figures, animation and JSON in ``out``.

    With ``variance_aware``, the RBF centres are ``centres`` (latent means (N, d)) when given, else
    the posterior means of ``centres_split`` of ``source`` (default: the VAE's training split,
    ``cfg.train_split``, its first ``cfg.limit`` examples when the VAE was trained on
    those, at most ``limit``).
    """
    import torch

    from latentdyn.geometry import metric as G
    from latentdyn.engine.devices import pick_device
    from latentdyn.core.fileio import atomic_path, make_folder
    from latentdyn.geometry.latent_map import encode_source, magnification_map
    from latentdyn.vae.train import load_vae

    if pairs < 1 or steps < 2:
        raise LatentdynError("--pairs must be at least 1 and --steps at least 2")
    dev = pick_device(device)
    vae, cfg, _ = load_vae(vae_run, "best", dev)
    source = str(source or cfg.data)
    mu, labels, names, _ = encode_source(vae, cfg, source, split, data_dir or cfg.data_dir, dev, limit)
    if classes and not names:
        raise LatentdynError("--classes needs a dataset with class names, not a scene file")
    idx = pick_pairs(labels, len(mu), pairs, parse_classes(classes, names), seed)
    z0 = torch.as_tensor(mu[idx[:, 0]], device=dev)
    z1 = torch.as_tensor(mu[idx[:, 1]], device=dev)
    metric_decoder, centres_info = vae.decode, None
    if variance_aware:
        if centres is None:
            centres_split = centres_split or cfg.train_split
            caps = [x for x in (limit, cfg.limit) if x]  # the VAE saw only the first cfg.limit
            n_c = min(caps) if caps else 0
            centres = encode_source(vae, cfg, source, centres_split, data_dir or cfg.data_dir, dev, n_c)[0]
            centres_info = {"split": centres_split, "from": len(centres)}
        else:
            centres = np.asarray(centres, dtype=np.float32)
            if centres.ndim != 2 or centres.shape[1] != mu.shape[1]:
                raise LatentdynError(f"centres: give latent means (N, {mu.shape[1]}); got shape {centres.shape}")
            centres_info = {"split": "given", "from": len(centres)}
        metric_decoder = data_aware_decoder(vae.decode, centres, seed)
    t0 = time.perf_counter()
    geo = G.connecting_geodesic(metric_decoder, z0, z1, n_points=n_points)
    seconds = time.perf_counter() - t0
    line_s = G.reparametrize(vae.decode, G.straight_line(z0, z1, n_points), steps)  # both at constant speed in image space
    geo_s = G.reparametrize(vae.decode, geo["curve"], steps)
    with torch.no_grad():
        img_line = vae.decode(line_s.reshape(-1, mu.shape[1])).float().clamp(0, 1).cpu().numpy()  # (P*S, C, H, W)
        img_geo = vae.decode(geo_s.reshape(-1, mu.shape[1])).float().clamp(0, 1).cpu().numpy()
    C, H, W = img_line.shape[1:]
    img_line = img_line.reshape(pairs, steps, C, H, W).transpose(0, 1, 3, 4, 2)  # (P, S, H, W, C)
    img_geo = img_geo.reshape(pairs, steps, C, H, W).transpose(0, 1, 3, 4, 2)
    L, Lg = geo["line_length"].cpu().numpy(), geo["length"].cpu().numpy()
    E, Eg = geo["line_energy"].cpu().numpy(), geo["energy"].cpu().numpy()
    ratio_len, ratio_en = Lg / np.maximum(L, 1e-12), Eg / np.maximum(E, 1e-12)
    q = lambda x: {"median": float(np.median(x)), "q25": float(np.percentile(x, 25)), "q75": float(np.percentile(x, 75)),  # noqa: E731
                   "min": float(np.min(x)), "max": float(np.max(x))}
    result = {
        "vae": str(vae_run), "data": source, "split": split, "n_points": n_points, "steps": steps, "seconds": seconds,
        "metric": "variance-aware (decoder mean + RBF uncertainty)" if variance_aware else "decoder mean",
        "measure": "length under the metric of the piecewise-linear latent curve (chords of its image, "
                   "4 per segment); energy of its constant-speed parametrisation over unit time, length^2 / 2",
        **({"centres": centres_info} if centres_info else {}),
        "decoder_passes": geo["decoder_passes"], "fallbacks": int(geo["fallback"].sum()),
        "pairs": [{"a": int(a), "b": int(b), "line_length": float(L[k]), "geodesic_length": float(Lg[k]),
                   "line_energy": float(E[k]), "geodesic_energy": float(Eg[k]), "length_ratio": float(ratio_len[k]),
                   "energy_ratio": float(ratio_en[k]), "converged": bool(geo["converged"][k]),
                   "fallback": bool(geo["fallback"][k]),
                   **({"labels": [names[labels[a]], names[labels[b]]]} if labels is not None else {})}
                  for k, (a, b) in enumerate(idx)],
        "length_ratio": q(ratio_len), "energy_ratio": q(ratio_en),
    }
    out = Path(out)
    make_folder(out)
    with atomic_path(out / "interpolation.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    mag = None
    if mu.shape[1] == 2:
        lo = np.minimum(mu.min(0), np.minimum(geo["curve"].cpu().numpy().reshape(-1, 2).min(0), 0)) - 0.3
        hi = np.maximum(mu.max(0), geo["curve"].cpu().numpy().reshape(-1, 2).max(0)) + 0.3
        mag = (lo, hi, magnification_map(vae, lo, hi, n=50, device=dev)[1])
    figures = [_pair_figure(k, mu, labels, names, line_s[k].cpu().numpy(), geo["curve"][k].cpu().numpy(), img_line[k],
                            img_geo[k], result["pairs"][k], mag, out) for k in range(pairs)]
    videos = _animation(img_line, img_geo, out, fps)
    result["figures"] = [str(f) for f in figures]
    result["videos"] = [str(v) for v in videos]
    return result


def _pair_figure(k, mu, labels, names, line, curve, img_line, img_geo, info, mag, out: Path) -> Path:
    from latentdyn.viz.figures import _plt, save_figure
    from latentdyn.geometry.latent_map import _scatter

    plt = _plt()
    S = img_line.shape[0]
    fig = plt.figure(figsize=(max(8, 0.9 * S), 7.5), layout="constrained")
    gs = fig.add_gridspec(3, S, height_ratios=[4, 1, 1])
    ax = fig.add_subplot(gs[0, :])
    if mu.shape[1] == 2:
        pts, ln, cv = mu, line, curve
        if mag is not None:
            lo, hi, m = mag
            ax.imshow(np.log10(m + 1e-12), extent=(lo[0], hi[0], lo[1], hi[1]), origin="lower", cmap="Greys", aspect="auto")
        ax.set_xlabel("z1")
        ax.set_ylabel("z2")
    else:  # project onto the two principal axes of the means
        c = mu.mean(0)
        vt = np.linalg.svd(mu - c, full_matrices=False)[2][:2]
        pts, ln, cv = (mu - c) @ vt.T, (line - c) @ vt.T, (curve - c) @ vt.T
        ax.set_xlabel("PC1")
        ax.set_ylabel("PC2")
    _scatter(ax, pts, labels, names, np.zeros(len(pts)) if labels is None else None, "")
    ax.plot(ln[:, 0], ln[:, 1], "--", color="tab:red", lw=2, label="linear")
    ax.plot(cv[:, 0], cv[:, 1], "-", color="tab:blue", lw=2.5, label="geodesic")
    ax.set_title(f"pair {k}: length geodesic {info['geodesic_length']:.2f} / linear {info['line_length']:.2f} "
                 f"= {info['length_ratio']:.3f}", fontsize=10)
    for row, imgs, name in ((1, img_line, "linear"), (2, img_geo, "geodesic")):
        for j in range(S):
            a = fig.add_subplot(gs[row, j])
            im = imgs[j]
            a.imshow(im[..., 0] if im.shape[-1] == 1 else im, cmap="gray", vmin=0, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
            if j == 0:
                a.set_ylabel(name, fontsize=9)
    return save_figure(fig, out / f"pair_{k:02d}.png")


def _animation(img_line, img_geo, out: Path, fps: float) -> list[Path]:
    """Both morphs side by side for every pair, there and back."""
    from latentdyn.viz.video import auto_scale, grid, write_video

    P, S = img_line.shape[:2]
    to8 = lambda x: (x * 255).round().astype(np.uint8)  # noqa: E731
    order = list(range(S)) + list(range(S - 2, 0, -1))  # there and back, no frame twice in a row
    panels, labels = [], []
    for k in range(P):
        panels += [to8(img_line[k][order]), to8(img_geo[k][order])]
        labels += [f"pair {k} linear", f"pair {k} geodesic"]
    frames = grid(panels, labels=labels, columns=2 if P <= 4 else 4, scale=auto_scale(img_line.shape[2], 84),
                  title=[f"step {j + 1}/{S}" for j in order])
    return [write_video(frames, out / "interpolation.mp4", fps), write_video(frames, out / "interpolation.gif", fps)]
