"""Counter-based random numbers: a pure function of (seed, item index, stream, draw).

Scene generation must give sequence ``i`` the same start state whatever the chunk size or the
number of sequences asked for, and must do so vectorised over millions of sequences. A stateful
generator cannot (its output depends on what was drawn before), so each number is a hash of its
coordinates instead, as in counter-based generators (Salmon et al. 2011, "Parallel random
numbers: as easy as 1, 2, 3"). The mixer is SplitMix64's finaliser (Steele, Lea and Flood 2014,
"Fast splittable pseudorandom number generators"), which passes BigCrush when fed a counter.
"""

from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def counter_bits(seed: int, items: np.ndarray, stream: int, n: int) -> np.ndarray:
    """uint64 bits of shape (len(items), n): draw k of stream ``stream`` for each item."""
    if not 0 <= seed < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    with np.errstate(over="ignore"):
        key = _mix(np.asarray([seed], np.uint64) * _GOLDEN + np.uint64(1))  # (1,)
        key = _mix(key ^ (np.uint64(stream) * _GOLDEN))  # (1,)
        base = _mix(key + np.asarray(items, np.uint64) * _GOLDEN)  # (B,)
        draws = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN  # (n,)
        return _mix(base[:, None] ^ draws[None, :])  # (B, n)


def uniform(seed: int, items: np.ndarray, stream: int, n: int) -> np.ndarray:
    """float64 uniform on [0, 1), shape (len(items), n), 53 random bits each."""
    bits = counter_bits(seed, items, stream, n)
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def normal(seed: int, items: np.ndarray, stream: int, n: int) -> np.ndarray:
    """Standard normal, shape (len(items), n), by the Box-Muller transform of two uniforms."""
    u = uniform(seed, items, stream, 2 * n)  # (B, 2n)
    u1, u2 = 1.0 - u[:, :n], u[:, n:]  # u1 in (0, 1]: log is finite
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A well-mixed 63-bit seed for (seed, epoch, stream): the randomness of one epoch."""
    return int(np.random.SeedSequence([seed, epoch, stream]).generate_state(1, np.uint64)[0]) & (2**63 - 1)


def torch_generator(seed: int, device):
    """A torch generator seeded with ``seed`` on ``device`` (CUDA generators on CUDA, else CPU)."""
    import torch

    dev = device if isinstance(device, torch.device) else torch.device(device)
    g = torch.Generator(device=dev if dev.type in ("cuda",) else "cpu")
    g.manual_seed(seed)
    return g
