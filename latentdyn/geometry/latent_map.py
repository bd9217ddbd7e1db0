"""Latent maps (``latentdyn latent-map``): what the encoder does with a dataset, at a glance.

- Scatter of the posterior means of a split, coloured by class (image datasets, with a legend of
  class names) or by a ground-truth factor (scene files: ball x, y and speed).
- For a 2-d latent: the decoded manifold, decodes of a grid of latent points spaced by the
  inverse Gaussian CDF (Kingma and Welling 2014, Fig. 4; the TensorFlow tutorial's
  ``plot_latent_images``), and the magnification factor sqrt(det J^T J) of the decoder as a heat
  map under the scatter (Bishop et al. 1997; Arvanitidis et al. 2018), and the prior's
  log-density log p(z) as contours over it (N(0, I) or the flow prior: ``prior_log_density``).
  With a flow prior the manifold grid is the inverse-CDF grid of the prior's base pushed
  through the flow (z = g(u)), so it covers the prior's quantiles, as the plain grid does for N(0, I).
- For more dimensions: a PCA projection, and a pairwise panel of the most active dimensions,
  coloured like the map, with its colour bar (or class legend).
Figures are written as PNG and PDF, with the plotted arrays beside them (``latent_map.npz``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError


def encode_source(vae, cfg, source: str, split: str | None, data_dir, device, limit: int = 0):
    """Means (N, d), colour values and their names for a dataset split or a scene file's split."""
    from latentdyn import datasets
    from latentdyn.vae.encode import encode_frames
    from latentdyn.vae.train import model_hwc

    if datasets.is_scene_source(source):
        from latentdyn.scenes.file import open_scenes

        with open_scenes(source) as sf:
            ids = np.sort(sf.split_indices(split if sf.splits else None))
            frames = sf.read_frames(ids)  # (S, T, H, W[, C])
            states = sf.states[ids] if sf.states is not None else None
        shape = frames.shape[2:] if frames.ndim == 5 else (*frames.shape[2:], 1)
        images = frames.reshape(-1, *shape)
        factors = {}
        if states is not None:
            st = states[:, :, 0].reshape(-1, 4)  # the first ball's x, y, vx, vy per frame
            factors = {"ball x (px)": st[:, 0], "ball y (px)": st[:, 1], "speed (px/frame)": np.hypot(st[:, 2], st[:, 3])}
        labels, names = None, []
    else:
        data = datasets.load_source(source, split or "test", data_dir, val_size=cfg.val_size)
        images, labels, names, factors = data.images, data.labels, data.class_names, {}
    if limit:
        images = images[:limit]
        labels = labels[:limit] if labels is not None else None
        factors = {k: v[:limit] for k, v in factors.items()}
    want = model_hwc(vae)
    if tuple(images.shape[1:]) != want:
        raise LatentdynError(f"{source} has images {tuple(images.shape[1:])} but the VAE takes {want}")
    mu, _ = encode_frames(vae, images, device, binarize=cfg.binarize)
    return mu, labels, names, factors


def inverse_cdf_grid(n: int, lo: float = 0.05, hi: float = 0.95) -> np.ndarray:
    """(n*n, 2) latent points on the grid Phi^-1(linspace(lo, hi, n))^2, rows top to bottom."""
    from scipy.stats import norm

    v = norm.ppf(np.linspace(lo, hi, n))
    gx, gy = np.meshgrid(v, v[::-1])
    return np.stack([gx.ravel(), gy.ravel()], -1)


def magnification_map(vae, lo: np.ndarray, hi: np.ndarray, n: int = 60, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """Magnification factor on an n x n grid over the box [lo, hi] of a 2-d latent; returns (grid (n*n, 2), mag (n, n))."""
    import torch

    from latentdyn.geometry.metric import magnification

    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], -1)
    z = torch.as_tensor(grid, dtype=torch.float32, device=device)
    mag = magnification(vae.decode, z, batch=128).detach().cpu().numpy().reshape(n, n)
    return grid, mag


def prior_log_density(vae, lo: np.ndarray, hi: np.ndarray, n: int = 120, device="cpu") -> tuple[np.ndarray, np.ndarray]:
    """log p(z) of a 2-d latent's prior on an n x n grid over the box [lo, hi]; returns (xs and ys
    stacked (2, n), log p (n, n), rows along y)."""
    import torch

    xs, ys = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    gx, gy = np.meshgrid(xs, ys)
    z = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], -1), dtype=torch.float32, device=device)  # (n*n, 2)
    with torch.no_grad():
        logp = vae.log_prior(z).cpu().numpy().reshape(n, n)
    return np.stack([xs, ys]), logp


def _scatter(ax, mu2, labels, names, values=None, vname=""):
    if labels is not None:
        import matplotlib.pyplot as plt

        cmap = plt.get_cmap("tab10")
        for c, name in enumerate(names):
            sel = labels == c
            ax.scatter(mu2[sel, 0], mu2[sel, 1], s=3, color=cmap(c % 10), label=name, alpha=0.7, linewidths=0)
        ax.legend(markerscale=4, fontsize=7, loc="best", framealpha=0.8)
    else:
        sc = ax.scatter(mu2[:, 0], mu2[:, 1], s=3, c=values, cmap="viridis", alpha=0.8, linewidths=0)
        ax.figure.colorbar(sc, ax=ax, label=vname, fraction=0.046)


def _panel_axes(plt, n: int):
    """A figure of ``n`` scatter panels, two a row (5.6 x 4.8 in each): no wider than the report's column."""
    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 4.8 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _pairs_figure(mu: np.ndarray, labels, names, panel: tuple, split: str):
    """Pairwise scatter of the (up to) four dimensions of largest variance, histograms on the
    diagonal, coloured like the latent map's first panel, with its key: the class legend, or a
    colour bar naming the factor."""
    from latentdyn.viz.figures import _plt

    plt = _plt()
    var = mu.var(0)
    top = np.argsort(-var)[: min(4, mu.shape[1])]
    k = len(top)
    values, vname = panel
    fig, axes = plt.subplots(k, k, figsize=(2.4 * k + 1.2, 2.4 * k), squeeze=False, layout="constrained")
    sc = None
    for i, a in enumerate(top):
        for j, b in enumerate(top):
            ax = axes[i, j]
            ax.tick_params(labelsize=8)
            if i == j:
                ax.hist(mu[:, a], bins=40, color="0.4")
            elif labels is not None:
                cmap = plt.get_cmap("tab10")
                for c, name in enumerate(names):
                    sel = labels == c
                    ax.scatter(mu[sel, b], mu[sel, a], s=1, color=cmap(c % 10), label=name, linewidths=0)
            else:
                sc = ax.scatter(mu[:, b], mu[:, a], s=1, c=values, cmap="viridis", linewidths=0)
            if i == k - 1:
                ax.set_xlabel(f"z{b + 1}")
            if j == 0:
                ax.set_ylabel(f"z{a + 1}")
    if labels is not None and k > 1:
        handles, classes = axes[0, 1].get_legend_handles_labels()
        fig.legend(handles, classes, loc="outside right center", markerscale=6, fontsize=8, title="class")
    elif sc is not None and vname:
        fig.colorbar(sc, ax=axes, label=vname, fraction=0.04, shrink=0.6)
    fig.suptitle(f"most active dimensions, posterior means of the {split} split (variance "
                 f"{', '.join(f'{var[t]:.2f}' for t in top)})", fontsize=10)
    return fig


def _scene_positions(source: str, split: str | None, limit: int = 0) -> np.ndarray | None:
    """True ball positions (N, n, 2) of the frames ``encode_source`` reads (same order), or None."""
    from latentdyn import datasets

    if not datasets.is_scene_source(source):
        return None
    from latentdyn.scenes.file import open_scenes

    with open_scenes(source) as sf:
        if sf.states is None:
            return None
        ids = np.sort(sf.split_indices(split if sf.splits else None))
        xy = np.asarray(sf.states[ids][..., :2], np.float64)  # (S, T, n, 2)
    xy = xy.reshape(-1, *xy.shape[2:])
    return xy[:limit] if limit else xy


def slot_map(vae, mu: np.ndarray, xy: np.ndarray, title: str):
    """The per-slot latent map of an object-slot VAE: every (frame, ball) a point, the ball's slot
    (matched by position, ``latentdyn.vae.slot_match.codes_by_object``): its position dimensions
    z1, z2 coloured by the ball's true x and y, and a PCA of its other dimensions coloured by x."""
    from latentdyn.vae.slot_match import codes_by_object, slot_positions_np
    from latentdyn.viz.figures import _plt

    K, D = vae.latent_shape
    by = codes_by_object(mu, slot_positions_np(vae, mu), xy, (K, D))
    obj = by["objects"].reshape(-1, D)  # (N n, D)
    bx, byy = xy[..., 0].reshape(-1), xy[..., 1].reshape(-1)
    rest = obj[:, 2:] - obj[:, 2:].mean(0)
    if rest.shape[1] >= 2:
        vt = np.linalg.svd(rest[:20000], full_matrices=False)[2]
        app, alab = rest @ vt[:2].T, ("appearance PC1", "appearance PC2")
    else:
        app, alab = np.stack([obj[:, 0], rest[:, 0] if rest.shape[1] else obj[:, 1]], -1), ("z1", "z3" if D > 2 else "z2")
    plt = _plt()
    fig, axes = _panel_axes(plt, 3)
    for ax, pts, vals, vname, labs in ((axes[0], obj[:, :2], bx, "ball x (px)", ("z1", "z2")),
                                       (axes[1], obj[:, :2], byy, "ball y (px)", ("z1", "z2")),
                                       (axes[2], app, bx, "ball x (px)", alab)):
        _scatter(ax, pts, None, [], vals, vname)
        ax.set_xlabel(labs[0])
        ax.set_ylabel(labs[1])
    for ax in axes[:2]:
        ax.invert_yaxis()  # z2 is the slot's y, which grows down the frame as the states' y
    fig.suptitle(title + f"; each ball's slot ({K} slots of {D}), matched by position; "
                 f"mean slot-to-ball distance {np.mean(by['distance']):.2f} px", fontsize=10)
    return fig, {"slot_codes": obj, "slot_distance": by["distance"]}


def latent_map(vae_run, source: str | None, out: str | Path, split: str = "test", data_dir=None, device: str = "auto",
               limit: int = 5000, grid: int = 20) -> dict:
    """Write the latent-map figures of a VAE on a split into ``out``; returns the written paths."""
    import torch

    from latentdyn.engine.devices import pick_device
    from latentdyn.core.fileio import atomic_path, make_folder
    from latentdyn.viz.figures import _plt, save_figures
    from latentdyn.vae.train import load_vae

    plt = _plt()
    dev = pick_device(device)
    vae, cfg, _ = load_vae(vae_run, "best", dev)
    source = str(source or cfg.data)
    mu, labels, names, factors = encode_source(vae, cfg, source, split, data_dir or cfg.data_dir, dev, limit)
    if len(mu) == 0:
        raise LatentdynError(f"the {split!r} split of {source} is empty")
    out = Path(out)
    make_folder(out)
    d = mu.shape[1]
    arrays = {"mu": mu}
    if labels is not None:
        arrays["labels"] = labels
    for k, v in factors.items():
        arrays["factor_" + k.split(" ")[0] + "_" + k.split(" ")[1]] = v
    written = []
    varying = {k: v for k, v in factors.items() if np.ptp(v) > 1e-3 * max(1.0, float(np.abs(v).max()))}  # a constant colours nothing
    panels = [(None, "")] if labels is not None else [(v, k) for k, v in varying.items()] or [(np.zeros(len(mu)), "")]
    title = f"{Path(vae_run).name}: {Path(source).name}, {split} split, {len(mu):,} points"
    if d == 2:
        lo, hi = mu.min(0) - 0.5, mu.max(0) + 0.5
        mgrid, mag = magnification_map(vae, lo, hi, device=dev)
        axes_lp, logp = prior_log_density(vae, lo, hi, device=dev)
        arrays.update(magnification=mag, magnification_grid=mgrid, prior_log_density=logp, prior_log_density_axes=axes_lp)
        top = float(logp.max())
        levels = [top - k for k in (8.0, 6.0, 4.0, 2.0, 1.0)]  # nats below the highest density in view
        fig, axes = _panel_axes(plt, len(panels))
        for ax, (vals, vname) in zip(axes, panels):
            ax.imshow(np.log10(mag + 1e-12), extent=(lo[0], hi[0], lo[1], hi[1]), origin="lower", cmap="Greys",
                      aspect="auto", alpha=0.9)
            cs = ax.contour(axes_lp[0], axes_lp[1], logp, levels=levels, colors="tab:red", linewidths=0.7, alpha=0.9,
                            zorder=3)  # over the points
            ax.clabel(cs, fmt="%.0f", fontsize=6)
            _scatter(ax, mu, labels, names, vals, vname)
            ax.set_xlabel("z1")
            ax.set_ylabel("z2")
        fig.suptitle(title + f"; grey: log10 magnification factor; red: log p(z) of the {cfg.prior} prior (nats)",
                     fontsize=10)
        written += save_figures(fig, out / "latent_map")
        fig2 = plt.figure(figsize=(6, 6))
        pts = inverse_cdf_grid(grid)
        with torch.no_grad():
            zs = vae.prior.from_base(torch.as_tensor(pts, dtype=torch.float32, device=dev))  # (g*g, 2); identity for N(0, I)
            imgs = vae.decode(zs).float().clamp(0, 1).cpu().numpy()  # (g*g, C, H, W)
        C, H, W = imgs.shape[1:]
        mont = imgs.reshape(grid, grid, C, H, W).transpose(0, 3, 1, 4, 2).reshape(grid * H, grid * W, C)
        arrays["manifold"] = mont
        ax = fig2.add_subplot(111)
        ax.imshow(mont[..., 0] if C == 1 else mont, cmap="gray" if C == 1 else None, vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(f"decoded manifold, {grid}x{grid} inverse-CDF grid" + (" through the flow prior" if vae.prior.is_flow
                                                                             else ""), fontsize=10)
        written += save_figures(fig2, out / "manifold")
    else:
        centred = mu - mu.mean(0)
        _, s, vt = np.linalg.svd(centred[: min(len(centred), 20000)], full_matrices=False)
        pca = centred @ vt[:2].T  # (N, 2)
        arrays.update(pca=pca, pca_components=vt[:2], pca_explained=(s**2 / (s**2).sum())[:2])
        fig, axes = _panel_axes(plt, len(panels))
        for ax, (vals, vname) in zip(axes, panels):
            _scatter(ax, pca, labels, names, vals, vname)
            ax.set_xlabel(f"PC1 ({arrays['pca_explained'][0]:.0%})")
            ax.set_ylabel(f"PC2 ({arrays['pca_explained'][1]:.0%})")
        fig.suptitle(title + " (PCA of the means)", fontsize=10)
        written += save_figures(fig, out / "latent_map")
        written += save_figures(_pairs_figure(mu, labels, names, panels[0], split), out / "pairs")
    xy = _scene_positions(source, split, limit) if getattr(vae, "carries_slots", False) else None
    if xy is not None and xy.shape[1] <= vae.latent_shape[0]:
        fig3, more = slot_map(vae, mu, xy, title)
        written += save_figures(fig3, out / "slot_map")
        arrays.update(more)
    with atomic_path(out / "latent_map.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return {"figures": [str(w) for w in written], "arrays": str(out / "latent_map.npz"), "latent_dim": d}
