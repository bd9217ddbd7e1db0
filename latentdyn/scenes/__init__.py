"""Bouncing-ball scenes: physics, rendering, the generator and the HDF5 scene-file format.

``from latentdyn.scenes import load_scene, sample, open_scenes``; ``latentdyn.scenes.generate`` is the
generator's module (``from latentdyn.scenes import generate as scenes``, as the README does), and the
generate stage is ``latentdyn.generate``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.scenes`` loads no
torch. A submodule keeps its name (``latentdyn.scenes.generate`` is the module, never a function).
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.scenes.config": ["GenerateConfig", "ImportVideoConfig"],
    "latentdyn.scenes.file": ["SceneFile", "SceneWriter", "open_scenes"],
    "latentdyn.scenes.generate": ["SceneConfig", "find_scene", "load_scene", "sample", "simulate_states"],
    "latentdyn.scenes.physics": ["simulate"],
    "latentdyn.scenes.render": ["Renderer"],
    "latentdyn.scenes.splits": ["assign_splits", "parse_splits"],
    "latentdyn.scenes.sprites": ["SpriteSceneConfig"],
    "latentdyn.scenes.stream": ["SceneStream"],
    "latentdyn.scenes.video_import": ["describe_splits", "import_video"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "GenerateConfig", "ImportVideoConfig", "Renderer", "SceneConfig", "SceneFile", "SceneStream", "SceneWriter",
    "SpriteSceneConfig", "assign_splits", "describe_splits", "find_scene", "import_video", "load_scene",
    "open_scenes", "parse_splits", "sample", "simulate", "simulate_states",
]
