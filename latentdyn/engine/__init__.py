"""What every trainer shares: the epoch loop, checkpoints and resume, devices, torchrun/DDP.

``from latentdyn.engine import Fit, run_epochs`` (docs/architecture.md, "The one epoch loop").

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.engine`` loads no torch.
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.engine.checkpoint": ["MetricsLog", "load_checkpoint", "save_checkpoint"],
    "latentdyn.engine.devices": ["pick_device"],
    "latentdyn.engine.distributed": ["Dist", "session"],
    "latentdyn.engine.loop": ["Fit", "run_epochs"],
    "latentdyn.engine.progress": ["Progress"],
    "latentdyn.engine.tracking": ["Tracker"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "Dist", "Fit", "MetricsLog", "Progress", "Tracker", "load_checkpoint", "pick_device", "run_epochs",
    "save_checkpoint", "session",
]
