"""Device choice: CUDA, then Apple's MPS, then the CPU, with an explicit override."""

from __future__ import annotations

from latentdyn.core.errors import LatentdynError


def pick_device(name: str | None = "auto"):
    """``"auto"`` (or None) picks cuda, mps, cpu in that order; anything else is checked."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LatentdynError(f"--device {name}: not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LatentdynError(f"--device {name}: no CUDA GPU is visible here; use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise LatentdynError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA devices")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LatentdynError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise LatentdynError(f"--device {name}: unsupported device type {dev.type}; use cpu, cuda or mps")
    return dev


PRECISIONS = ("auto", "float32", "bfloat16")


def fast_bf16(device) -> bool:
    """Whether ``device`` runs bfloat16 matrix arithmetic natively: a CUDA GPU that supports it, or a
    CPU with AVX-512 BF16 or AMX instructions (elsewhere bf16 is emulated and slower than float32)."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                    or getattr(cpu, "_is_amx_tile_supported", lambda: False)())
    return False


def autocast_for(device, precision: str = "auto"):
    """The autocast context for inference at ``precision``: bfloat16 when asked, or on ``auto`` where
    ``fast_bf16``; otherwise a no-op (float32)."""
    import contextlib

    import torch

    if precision not in PRECISIONS:
        raise LatentdynError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    dev = torch.device(device)
    if precision == "bfloat16" or (precision == "auto" and fast_bf16(dev)):
        if dev.type == "mps":
            return contextlib.nullcontext()
        return torch.autocast(dev.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
