"""Text drawn into videos and per-epoch images is large enough to read where the report shows them
at their own size, and the per-epoch prediction matrix names the split of its ELBO."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentdyn.viz import video


def _text_height(band: np.ndarray) -> int:
    """Rows spanned by light text (pixels above 150) in an (h, w, 3) band."""
    rows = np.flatnonzero((band > 150).any(axis=(1, 2)))
    return int(rows.max() - rows.min() + 1) if len(rows) else 0


def test_label_size_follows_the_frames():
    assert video.label_size(28) == video.MIN_LABEL
    assert video.label_size(112) == 19
    assert video.label_size(1000) == 24
    assert video.fitted_size("a long label for a small tile", 20, 60) < 20  # shrunk to fit its tile
    assert video.text_width("seq 0", 20) > video.text_width("seq 0", 12)


def test_grid_labels_and_title_are_readable():
    panels = [np.zeros((2, 28, 28), np.uint8)] * 2
    g = video.grid(panels, labels=["seq 0 (train)", "seq 1 (test)"], scale=3, columns=2, title=["step 1/2  observed"] * 2)
    size = video.label_size(84)
    head = size + 8 + 4
    assert _text_height(g[0, :head]) >= 12  # the title: "step 1/2" has an ascender and a descender
    assert _text_height(g[0, head : head + size + 6]) >= 10  # the labels: "seq 0 (train)"
    assert g.shape[1] % 2 == 0 and g.shape[2] % 2 == 0


def test_rollout_film_labels_are_readable():
    from latentdyn.dynamics.rollout import rollout_frames

    truth = np.zeros((2, 6, 28, 28, 1), np.float32)
    frames = rollout_frames(truth, truth[:, 3:], 3, [4, 9])
    assert _text_height(frames[0, : video.label_size(88) + 8]) >= 12


def test_rollout_film_shows_other_predictors_side_by_side():
    from latentdyn.dynamics.rollout import rollout_frames

    truth = np.zeros((1, 6, 28, 28, 1), np.float32)
    truth[:, :, 10:18, 10:18] = 1.0  # a square that stays put
    model = truth[:, 3:].copy()  # a perfect prediction: its error column stays black
    lost = np.zeros_like(model)  # a predictor that loses the square

    def squares(frame):  # white squares along the row through the squares' middle, left to right
        white = (frame[len(frame) // 2 :].min(-1) > 200).astype(int)  # (H/2, W): white pixels below the text
        row = white[white.sum(1).argmax()]
        return int((np.diff(row) == 1).sum())

    two = rollout_frames(truth, model, 3, [0])
    three = rollout_frames(truth, model, 3, [0], {"ConvLSTM": lost})
    assert three.shape[:2] == two.shape[:2] and three.shape[2] > two.shape[2]  # one column more
    assert squares(two[5]) == 2 and squares(three[2]) == 3  # observed: truth | prediction | ConvLSTM show it
    assert squares(three[5]) == 2  # predicted: the ConvLSTM lost it, the perfect model's error is black
    swapped = rollout_frames(truth, lost, 3, [0], {"ConvLSTM": model})
    assert squares(swapped[5]) == 3  # ConvLSTM's column shows it, and the lost model's error column too


def _recorder(tmp_path, rows, val_split="val"):
    from latentdyn.vae.config import TrainVAEConfig
    from latentdyn.vae.flow import FlowRecorder

    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rec = FlowRecorder.__new__(FlowRecorder)  # no model needed to title a matrix
    rec.run_dir, rec.cfg = tmp_path, TrainVAEConfig(val_split=val_split)
    return rec


@pytest.mark.parametrize("row, split", [({"epoch": 3, "train_elbo": -900.0, "val_elbo": -1436.0}, "val"),
                                        ({"epoch": 3, "train_elbo": -1436.0}, "train")])
def test_flow_title_names_the_split_of_its_elbo(tmp_path, monkeypatch, row, split):
    from PIL import ImageDraw

    rec = _recorder(tmp_path, [{"epoch": 2, "train_elbo": -1.0}, row])
    assert rec._score_split(3, -1436.0) == split
    drawn = []
    real = ImageDraw.ImageDraw.text
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", lambda self, xy, text, *a, **k: drawn.append(text) or real(self, xy, text, *a, **k))
    img = np.asarray(rec._labelled(np.zeros((3 * 84, 8 * 84, 3), np.uint8), 84, 3, -1436.0, split))
    assert drawn[0] == f"epoch 3    {split} ELBO -1436.0 nats"
    assert drawn[1] == f"input ({split})"
    top = img.shape[0] - 3 * 84
    assert _text_height(img[:top]) >= 12  # the title reads at the image's own size
