"""latentdyn: learn and predict dynamics in the latent space of a beta-VAE.

The package is a library first; ``latentdyn.cli`` is a thin click layer over it. Subpackages
follow the pipeline: ``scenes`` and ``datasets`` (the data), ``vae``, ``dynamics``, ``geometry``
(the models and what they learned), ``engine`` (the training loop every trainer shares),
``viz`` (videos and figures), ``pipeline`` (experiment files, run folders, the report). The
Python API is re-exported here: ``latentdyn.generate``, ``train_vae``, ``evaluate``, ``encode``,
``sample``, ``train_dynamics``, ``rollout``, ``latent_map``, ``interpolate``, ``analyze``, ``steer``,
``import_video`` and ``run_experiment``, each
taking its stage config (``latentdyn.TrainVAEConfig``, ...) or keyword overrides of it.
"""

from latentdyn.core.version import __version__  # noqa: F401

# The API is imported on first use (PEP 562): `import latentdyn` and a command such as
# `latentdyn generate` then load only what they need, not torch and scikit-learn (seconds).
_EXPORTS = {
    "latentdyn.core.errors": ["LatentdynError"],
    "latentdyn.analysis.config": ["AnalyzeConfig", "SteerConfig"],
    "latentdyn.api": ["Result", "analyze", "encode", "evaluate", "generate", "import_video", "interpolate",
                      "latent_map", "rollout", "sample", "steer", "train_dynamics", "train_vae"],
    "latentdyn.dynamics.config": ["RolloutConfig", "TrainDynamicsConfig"],
    "latentdyn.geometry.config": ["InterpolateConfig", "LatentMapConfig"],
    "latentdyn.pipeline.runner": ["run_experiment"],
    "latentdyn.scenes.config": ["GenerateConfig", "ImportVideoConfig"],
    "latentdyn.vae.config": ["EncodeConfig", "EvaluateConfig", "SampleConfig", "TrainVAEConfig"],
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'latentdyn' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "LatentdynError", "Result", "generate", "import_video", "train_vae", "evaluate", "encode", "sample", "train_dynamics",
    "rollout", "latent_map", "interpolate", "analyze", "steer", "run_experiment", "GenerateConfig", "ImportVideoConfig",
    "TrainVAEConfig", "EvaluateConfig", "EncodeConfig", "SampleConfig", "TrainDynamicsConfig", "RolloutConfig",
    "LatentMapConfig", "InterpolateConfig", "AnalyzeConfig", "SteerConfig",
]
