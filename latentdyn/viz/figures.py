"""Figures people look at: matplotlib, saved atomically as PNG or PDF (by the file's suffix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save and close ``fig`` at ``path`` (atomic); the format follows the suffix."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise LatentdynError(f"cannot write figure {path}: use a .png, .pdf or .svg file name")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lower()[1:], bbox_inches="tight")
    _plt().close(fig)
    return path


def save_figures(fig, stem: str | Path, formats: tuple[str, ...] = ("png", "pdf"), dpi: int = 150) -> list[Path]:
    """Save ``fig`` as stem.png, stem.pdf, ... (atomically each) and close it."""
    stem = Path(stem)
    out = []
    for fmt in formats:
        path = stem.with_suffix("." + fmt)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt, bbox_inches="tight")
        out.append(path)
    _plt().close(fig)
    return out


def class_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], per_class: int = 8,
               seed: int = 0, title: str | None = None):
    """A labelled grid: one row per class, ``per_class`` random examples of it (seeded)."""
    plt = _plt()
    rng = np.random.default_rng(seed)
    n_cls = len(class_names)
    H, W, C = images.shape[1:]
    height = n_cls * 0.9 + 0.6
    fig, axes = plt.subplots(n_cls, per_class, figsize=(per_class * 0.9 + 1.6, height), squeeze=False)
    for c in range(n_cls):
        members = np.flatnonzero(labels == c)
        pick = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        for k in range(per_class):
            ax = axes[c, k]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if k < len(pick):
                img = images[pick[k]]
                ax.imshow(img[..., 0] if C == 1 else img, cmap="gray" if C == 1 else None, vmin=0, vmax=255,
                          interpolation="nearest")
        axes[c, 0].set_ylabel(f"{c}: {class_names[c]}", rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(wspace=0.05, hspace=0.05, top=1 - 0.45 / height)
    return fig


def open_loop_vs_sequences(runs: dict[str, list[dict]], path: str | Path, key: str = "val_open_loop_se") -> Path:
    """The validation open-loop error of predictor runs against the training sequences they have
    seen: ``runs`` maps a label to its ``metrics.jsonl`` rows (``sequences_seen``, repeats counted,
    and ``distinct_sequences``, the different ones among them), one curve each, the best epoch
    marked. Fixed training sequences repeat every epoch; fresh ones (``fresh_sequences``) do not."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 3.8), layout="constrained")
    for label, rows in runs.items():
        rows = [r for r in rows if key in r and "sequences_seen" in r]
        if not rows:
            continue
        x, y = [r["sequences_seen"] for r in rows], [r[key] for r in rows]
        best = int(np.argmin(y))
        distinct = rows[-1].get("distinct_sequences", x[-1])
        line, = ax.plot(x, y, marker="o" if len(x) < 30 else None, ms=3, label=f"{label} ({distinct:,} different)")
        ax.plot(x[best], y[best], "*", ms=11, color=line.get_color())
    if not ax.lines:
        plt.close(fig)
        raise LatentdynError(f"no metrics rows with {key} and sequences_seen to draw in {path}")
    ax.set_xlabel("training sequences seen (repeats counted)")
    ax.set_ylabel("val open-loop squared error (latent)")
    ax.set_title("validation open-loop error vs training sequences seen (*: best)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=110)
