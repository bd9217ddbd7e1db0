"""Training windows: random (sequence, start) draws and the windows they cut from (N, T, ...) tensors,
shared by the trainer (``latentdyn.dynamics.train``) and the fresh-sequence stream (``latentdyn.dynamics.fresh``)."""

from __future__ import annotations

import torch


def sample_windows(N: int, T: int, length: int, per_seq: int, generator):
    """Random window starts: (N * per_seq,) sequence ids and starts, seeded."""
    seq = torch.arange(N).repeat(per_seq)
    start = torch.randint(0, T - length + 1, (N * per_seq,), generator=generator)
    perm = torch.randperm(len(seq), generator=generator)
    return seq[perm], start[perm]


def gather_windows(x, seq, start, length: int):
    """x (N, T, d) -> windows (B, length, d) at (seq, start)."""
    idx = start[:, None] + torch.arange(length, device=start.device)  # (B, L)
    return x[seq[:, None], idx]  # (B, L, d)
