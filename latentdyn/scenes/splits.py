"""Named splits of a scene file's sequences: parsed from ``train=0.8,val=0.1,test=0.1`` and drawn at random (seeded)."""

from __future__ import annotations

import math
import re

import numpy as np

from latentdyn.core.errors import LatentdynError


def parse_splits(text: str | None) -> dict[str, float]:
    """'train=0.8,val=0.1,test=0.1' -> {'train': 0.8, ...}; fractions must sum to 1."""
    if not text:
        return {}
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, frac = part.partition("=")
        name = name.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_\-]+", name):
            raise LatentdynError(f"--split {text!r}: expected NAME=FRACTION pairs such as train=0.8,val=0.1,test=0.1")
        try:
            value = float(frac)
        except ValueError:
            raise LatentdynError(f"--split {text!r}: {frac!r} is not a number") from None
        if value < 0 or name in out:
            raise LatentdynError(f"--split {text!r}: fractions must be non-negative and names distinct")
        out[name] = value
    if not math.isclose(sum(out.values()), 1.0, abs_tol=1e-6):
        raise LatentdynError(f"--split {text!r}: fractions sum to {sum(out.values()):g}, not 1")
    return out


def assign_splits(n: int, fractions: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Split range(n) at random (seeded) into named parts of the given fractions (largest remainder)."""
    if not fractions:
        return {}
    names = list(fractions)
    exact = np.array([fractions[k] * n for k in names])
    counts = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[k] += 1
    perm = np.random.default_rng([seed, 0x5B117]).permutation(n)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    return {k: np.sort(perm[bounds[i] : bounds[i + 1]]) for i, k in enumerate(names)}
