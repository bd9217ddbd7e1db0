"""A pixel-space yardstick: the ConvLSTM video predictor (Shi et al. 2015), trained on frames.

Our predictors work in a beta-VAE's latent space; this one predicts the frames themselves, in the
encoder-forecaster shape OpenSTL benchmarks as ConvLSTM (Tan et al. 2023; "ConvLSTM-S" at four
layers of 128 channels, ``openstl/models/convlstm_model.py``), written here and sized by options:

- each frame (C, h, w) in [0, 1] is cut into p x p patches stacked as channels (space to depth,
  ``pixel_unshuffle``: (C p^2, h/p, w/p)), OpenSTL's ``patch_size``;
- ``layers`` ConvLSTM cells with ``hidden`` channels and k x k kernels, each reading the state of
  the one below (the first reads the patches);
- a 1 x 1 convolution of the top state back to C p^2 channels, depth to space, and a sigmoid
  (OpenSTL's output is linear; frames here live in [0, 1]).

Frames are read one step at a time. The first ``context`` steps read the true frames; after that
each step reads the true frame with probability ``truth_prob`` (drawn per sequence and step), else
the model's own prediction of it (scheduled sampling, Bengio et al. 2015, as OpenSTL trains
ConvLSTM on Moving MNIST); an open-loop rollout is ``truth_prob = 0``. Training (the loss, the
wall-time budget) is ``latentdyn.dynamics.convlstm_train``; the rollout scores this model's frames
beside ours with the same code (``RolloutConfig.pixel_baseline``, ``pixel_rows``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from latentdyn.core.errors import LatentdynError

CHECKPOINT_KIND = "convlstm"


class ConvLSTMCell(nn.Module):
    """The convolutional LSTM of Shi et al. 2015 ("Convolutional LSTM network: a machine learning
    approach for precipitation nowcasting"), Eq. 3 without its peephole terms W_c o C (as OpenSTL's
    ``ConvLSTMCell`` and most later work), * a convolution and o the elementwise product:

        i = sigmoid(W_xi * X_t + W_hi * H_{t-1} + b_i)     f = sigmoid(W_xf * X_t + W_hf * H_{t-1} + b_f)
        g = tanh(W_xc * X_t + W_hc * H_{t-1} + b_c)        C_t = f o C_{t-1} + i o g
        o = sigmoid(W_xo * X_t + W_ho * H_{t-1} + b_o)     H_t = o o tanh(C_t)

    One convolution over [X_t, H_{t-1}] gives the four sums (its weight is [W_x. | W_h.]); the
    forget bias starts at 1 (Jozefowicz et al. 2015), so the cell keeps its memory at first."""

    def __init__(self, in_channels: int, hidden: int, kernel: int):
        super().__init__()
        if kernel % 2 == 0:
            raise LatentdynError(f"--kernel {kernel}: use an odd size (the maps keep their size)")
        self.hidden = hidden
        self.conv = nn.Conv2d(in_channels + hidden, 4 * hidden, kernel, padding=kernel // 2)
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[hidden : 2 * hidden] = 1.0  # the forget gate's

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, in, H, W), h and c (B, hidden, H, W) -> the new (h, c)."""
        z = self.conv(torch.cat([x, h], 1))  # (B, 4 hidden, H, W)
        i, f, g, o = z.chunk(4, 1)  # (B, hidden, H, W) each
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class ConvLSTMPredictor(nn.Module):
    """Frames (B, T, C, h, w) in [0, 1] -> predictions of the next frames, in [0, 1] (see the module)."""

    def __init__(self, frame_shape: tuple[int, int, int], layers: int, hidden: int, kernel: int, patch: int):
        super().__init__()
        C, h, w = frame_shape
        if h % patch or w % patch:
            raise LatentdynError(f"--patch {patch} does not divide the {h} x {w} frames; use a divisor of both")
        self.frame_shape, self.patch = (C, h, w), patch
        depth = C * patch * patch
        self.cells = nn.ModuleList(ConvLSTMCell(depth if k == 0 else hidden, hidden, kernel) for k in range(layers))
        self.out = nn.Conv2d(hidden, depth, 1)

    @torch.no_grad()
    def start_at(self, mean_intensity: float) -> None:
        """Start the output at the training frames' mean intensity (logit of it as the bias)."""
        m = min(max(float(mean_intensity), 1e-3), 1 - 1e-3)
        self.out.bias.fill_(math.log(m / (1 - m)))

    def init_state(self, B: int, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
        _, h, w = self.frame_shape
        p = self.patch
        zeros = torch.zeros(B, self.cells[0].hidden, h // p, w // p, device=device)  # (B, hidden, h/p, w/p)
        return [(zeros, zeros) for _ in self.cells]

    def step(self, x: torch.Tensor, state: list) -> tuple[torch.Tensor, list]:
        """One frame x (B, C, h, w) -> the prediction of the next (B, C, h, w) and the new state."""
        z = F.pixel_unshuffle(x, self.patch)  # (B, C p^2, h/p, w/p)
        new = []
        for cell, (h, c) in zip(self.cells, state):
            h, c = cell(z, h, c)  # (B, hidden, h/p, w/p) each
            new.append((h, c))
            z = h
        y = F.pixel_shuffle(self.out(z), self.patch)  # (B, C, h, w)
        return torch.sigmoid(y), new

    def forward(self, frames: torch.Tensor, context: int, truth_prob: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Predictions (B, T-1, C, h, w) of frames 1..T-1 of frames (B, T, C, h, w): steps before
        ``context`` read the true frame, later ones the true frame with probability ``truth_prob``
        (a draw per sequence and step from ``generator``, on the CPU), else the previous prediction."""
        B, T = frames.shape[:2]
        n_free = max(0, T - 1 - context)
        use_truth = torch.ones(B, n_free, dtype=torch.bool)
        if n_free and truth_prob < 1.0:
            use_truth = torch.rand(B, n_free, generator=generator) < truth_prob  # (B, T-1-context)
        use_truth = use_truth.to(frames.device)
        state = self.init_state(B, frames.device)
        preds: list[torch.Tensor] = []
        for t in range(T - 1):
            x = frames[:, t]  # (B, C, h, w)
            if t >= context:
                keep = use_truth[:, t - context].view(B, 1, 1, 1)
                x = torch.where(keep, x, preds[-1])
            y, state = self.step(x, state)
            preds.append(y)
        return torch.stack(preds, 1)  # (B, T-1, C, h, w)

    @torch.no_grad()
    def rollout(self, frames: torch.Tensor, horizon: int) -> torch.Tensor:
        """Open loop: warm up on frames (B, K, C, h, w), then ``horizon`` predictions, each fed
        back; (B, horizon, C, h, w)."""
        state = self.init_state(frames.shape[0], frames.device)
        for t in range(frames.shape[1]):
            y, state = self.step(frames[:, t], state)
        out = [y]
        for _ in range(horizon - 1):
            y, state = self.step(y, state)
            out.append(y)
        return torch.stack(out, 1)  # (B, H, C, h, w)


def make_convlstm(cfg, frame_shape: tuple[int, int, int]) -> ConvLSTMPredictor:
    """The model of a ``TrainConvLSTMConfig`` for frames (C, h, w)."""
    return ConvLSTMPredictor(tuple(frame_shape), cfg.layers, cfg.hidden, cfg.kernel, cfg.patch)


def load_convlstm(run_dir: str | Path, which: str = "best", device="cpu"):
    """(model in eval mode, config, checkpoint) of a ``latentdyn train convlstm`` run folder."""
    from latentdyn.core.config import from_dict
    from latentdyn.dynamics.config import TrainConvLSTMConfig
    from latentdyn.engine.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist; train one with `latentdyn train convlstm`")
    ck = load_checkpoint(run_dir / f"{which}.pt", CHECKPOINT_KIND, map_location="cpu")
    cfg = from_dict(TrainConvLSTMConfig, ck["config"])
    model = make_convlstm(cfg, tuple(ck["data"]["frame_shape"]))
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise LatentdynError(f"{run_dir / (which + '.pt')} does not match its own config ({str(e).splitlines()[0][:100]})") from None
    return model.to(device).eval().requires_grad_(False), cfg, ck


def budget_record(run_dir: str | Path) -> dict:
    """What a ConvLSTM run was given and used: its budget (seconds, and the runs it was matched to),
    the seconds it trained (its epochs' ``seconds`` in metrics.jsonl), its epochs, why it stopped."""
    run_dir = Path(run_dir)
    path = run_dir / "budget.json"
    if path.is_file():
        return json.loads(path.read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"trained_seconds": float(sum(r.get("seconds", 0.0) for r in rows)), "epochs": len(rows), "stopped_by": None}


def pixel_rows(run_dir: str | Path, truth: np.ndarray, K: int, H: int, device, batch: int = 32):
    """The ConvLSTM run's frames for a rollout's sequences truth (S, T, h, w, C) float in [0, 1]:
    open loop after K observed frames (S, H, h, w, C), one step from the true past (S, T-1, h, w, C),
    and its record (``budget_record``, the model's size and run folder)."""
    model, cfg, ck = load_convlstm(run_dir, "best", device)
    S, T, h, w, C = truth.shape
    if tuple(ck["data"]["frame_shape"]) != (C, h, w):
        raise LatentdynError(f"--pixel-baseline {run_dir} was trained on frames {tuple(ck['data']['frame_shape'])} "
                             f"(C, h, w), the rollout's data has {(C, h, w)}; train it on this scene")
    x = torch.from_numpy(np.ascontiguousarray(truth.transpose(0, 1, 4, 2, 3)))  # (S, T, C, h, w)
    opens, ones = [], []
    with torch.no_grad():
        for s in range(0, S, batch):
            xb = x[s : s + batch].to(device)  # (b, T, C, h, w)
            opens.append(model.rollout(xb[:, :K], H).cpu())  # (b, H, C, h, w)
            ones.append(model(xb, T).cpu())  # (b, T-1, C, h, w): every step from the true past
    to_hwc = (0, 1, 3, 4, 2)
    record = {"run": str(run_dir), **budget_record(run_dir), "best_epoch": int(ck["epoch"]),
              "layers": cfg.layers, "hidden": cfg.hidden, "kernel": cfg.kernel, "patch": cfg.patch,
              "parameters": int(sum(p.numel() for p in model.parameters()))}
    return (torch.cat(opens).permute(*to_hwc).numpy(), torch.cat(ones).permute(*to_hwc).numpy(), record)

