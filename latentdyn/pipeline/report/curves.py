"""Training curves per epoch, drawn for the report's sections (``sections``, ``baselines``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIGURE_WIDTH = 10.5  # inches at most: figures are shown at 96 px per inch (html.print_width) in a column of about 11


def _curves(rows: list[dict], panels: list[tuple[str, list[tuple[str, str]]]], path: Path) -> Path | None:
    """Training curves: one panel per (title, [(key, label), ...]) over the epochs, at most three
    a row, the whole no wider than ``FIGURE_WIDTH``."""
    from latentdyn.viz.figures import _plt, save_figure

    if not rows:
        return None
    plt = _plt()
    cols = min(3, len(panels))
    nrows = -(-len(panels) // cols)
    width = min(4.4 * cols, FIGURE_WIDTH)
    fig, axes = plt.subplots(nrows, cols, figsize=(width, 3.2 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    ep = [r["epoch"] for r in rows]
    for ax, (title, keys) in zip(axes.flat, panels):
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
