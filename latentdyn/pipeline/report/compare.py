"""The across-datasets comparison of compare-maps stages: one figure and the stacked training flows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError

FIGURE_WIDTH = 10.5  # inches: the report shows figures at 96 px per inch in a column of about 11


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
    unit = min(4.2, FIGURE_WIDTH / sum(widths))  # inches per width unit: the figure fits the report's column
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(unit * sum(widths), unit * 0.86 * len(rows)), squeeze=False,
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
