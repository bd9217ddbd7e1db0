"""Run tracking in TensorBoard (``--tensorboard``; ``pip install "latentdyn[tensorboard]"``).

``metrics.jsonl`` stays the source of truth: the tracker is handed the same per-epoch rows that
are written there (and that the report reads), so TensorBoard can never show other numbers.
Scalars go under ``train/`` and ``val/`` (a list-valued entry such as the KL of each latent
dimension becomes one scalar per dimension); images and videos are uint8 arrays. Events go to
``RUN/tensorboard/``. Uses ``torch.utils.tensorboard``, which needs the ``tensorboard`` package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError


class Tracker:
    """Writes scalars, images and videos to TensorBoard when enabled; does nothing otherwise."""

    def __init__(self, run_dir: Path | None, enabled: bool):
        self.writer = None
        if not enabled or run_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise LatentdynError('--tensorboard needs the tensorboard package: pip install "latentdyn[tensorboard]"') from None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    @property
    def enabled(self) -> bool:
        return self.writer is not None

    def row(self, row: dict, step: int) -> None:
        """One metrics.jsonl row: ``train_x`` -> ``train/x``, ``val_x`` -> ``val/x``; lists per index."""
        if self.writer is None:
            return
        for key, value in row.items():
            if key == "epoch":
                continue
            head, _, rest = key.partition("_")
            tag = f"{head}/{rest}" if head in ("train", "val") and rest else f"other/{key}"
            if isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, (int, float)):
                        self.writer.add_scalar(f"{tag}/{i}", float(v), step)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def image(self, tag: str, image_u8: np.ndarray, step: int) -> None:
        """``image_u8``: (H, W, 3) or (H, W) uint8."""
        if self.writer is None:
            return
        img = image_u8 if image_u8.ndim == 3 else image_u8[..., None]
        self.writer.add_image(tag, img, step, dataformats="HWC")

    def video(self, tag: str, frames_u8: np.ndarray, step: int, fps: float = 8.0) -> None:
        """``frames_u8``: (T, H, W, 3) uint8 (TensorBoard wants (N, T, C, H, W) floats in [0, 1])."""
        if self.writer is None:
            return
        import torch

        v = torch.from_numpy(np.ascontiguousarray(frames_u8)).permute(0, 3, 1, 2)[None].float() / 255.0  # (1, T, C, H, W)
        try:
            self.writer.add_video(tag, v, step, fps=max(1, round(fps)))
        except ImportError:  # add_video needs moviepy; the MP4 beside the run is the record then
            self.image(tag + "/first_frame", frames_u8[0], step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
