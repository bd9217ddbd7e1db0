"""Pictures and films: video grids (MP4, GIF) and matplotlib figures.

``from latentdyn.viz import write_video, scene_video, save_figure``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.viz`` loads no torch.
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.viz.figures": ["class_grid", "save_figure", "save_figures"],
    "latentdyn.viz.video": ["count_frames", "grid", "scene_video", "write_video"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "class_grid", "count_frames", "grid", "save_figure", "save_figures", "scene_video", "write_video",
]
