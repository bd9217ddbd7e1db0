"""Report sections of the yardsticks trained beside our models: the pixel-space ConvLSTM."""

from __future__ import annotations

import json
from pathlib import Path

from latentdyn.pipeline.report.html import ASSETS, Page, _config_block, _esc, _fmt, _read_jsonl, _table


def section_convlstm(page: Page, d: Path, name: str, record: dict | None = None) -> str:
    """A train-convlstm stage: its budget and the seconds it used, its last and best epochs, its curves."""
    from latentdyn.pipeline.report.curves import _curves

    rows = _read_jsonl(d / "metrics.jsonl")
    parts = []
    try:
        b = json.loads((d / "budget.json").read_text())
    except (OSError, ValueError):
        b = None
    if b is not None:
        source = " + ".join(Path(p).name for p in b.get("budget_from") or {})
        budget = f"{_fmt(b['budget_seconds'])} s" + (f" (the epochs of {_esc(source)})" if source else "") \
            if b.get("budget_seconds") else "none"
        parts.append(f'<p class="sub">Wall-time budget {budget}; trained {_fmt(b["trained_seconds"])} s in '
                     f'{b["epochs"]} epochs, stopped by {_esc(str(b["stopped_by"]))}. Seconds are the epochs\' as every '
                     "trainer here logs them (training and validation, not checkpoints).</p>")
    if rows:
        last = rows[-1]
        best = min(rows, key=lambda r: r.get("val_se_per_frame", r.get("train_se_per_frame", float("inf"))))
        parts.append(_table([[k.replace("_", " "), last.get(k), best.get(k)] for k in
                             ("train_se_per_frame", "val_se_per_frame", "truth_prob", "seconds") if k in last],
                            ["", f"last (epoch {last['epoch']})", f"best (epoch {best['epoch']})"]))
        png = _curves(rows, [("squared error per frame", [("train_se_per_frame", "train split, scheduled sampling"),
                                                          ("val_se_per_frame", "validation split, open loop")]),
                             ("probability of reading the true frame", [("truth_prob", "scheduled sampling")])],
                      page.root / ASSETS / f"{name}_curves.png")
        parts.append(page.image(png, "training curves per epoch: the training split's squared error per frame (frames "
                                "1..L-1 of each window, truth fed as scheduled) and the validation open loop's") if png else "")
    parts.append(_config_block(d / "config.toml", "resolved ConvLSTM configuration"))
    return "".join(parts)


def budget_label(record: dict) -> str:
    """The rollout row's name in reports: the model, its size and its budget."""
    size = f"{record.get('layers')} x {record.get('hidden')}"
    spent = f"trained {record.get('trained_seconds', 0):,.0f} s, {record.get('epochs')} epochs"
    source = record.get("budget_from") or {}
    if source:
        names = " + ".join(Path(p).name for p in source)
        spent += f"; the budget of {names}, {record.get('budget_seconds', 0):,.0f} s"
    elif record.get("budget_seconds"):
        spent += f"; budget {record['budget_seconds']:,.0f} s"
    return f"ConvLSTM in pixels ({size}; {spent})"
