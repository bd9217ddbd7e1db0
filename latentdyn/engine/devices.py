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
