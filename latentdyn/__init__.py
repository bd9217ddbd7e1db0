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

from latentdyn.core.lazy import lazy_exports
from latentdyn.core.version import __version__  # noqa: F401

# The API is imported on first use (PEP 562): `import latentdyn` and a command such as
# `latentdyn generate` then load only what they need, not torch and scikit-learn (seconds).
_EXPORTS = {
    "latentdyn.core.errors": ["LatentdynError"],
    "latentdyn.analysis.config": ["AnalyzeConfig", "SteerConfig"],
    "latentdyn.api": ["Result", "analyze", "encode", "encode_states", "evaluate", "generate", "import_video", "interpolate",
                      "latent_map", "rollout", "sample", "steer", "train_dynamics", "train_vae"],
    "latentdyn.dynamics.config": ["RolloutConfig", "TrainDynamicsConfig"],
    "latentdyn.geometry.config": ["InterpolateConfig", "LatentMapConfig"],
    "latentdyn.latents.config": ["EncodeStatesConfig"],
    "latentdyn.pipeline.runner": ["run_experiment"],
    "latentdyn.scenes.config": ["GenerateConfig", "ImportVideoConfig"],
    "latentdyn.vae.config": ["EncodeConfig", "EvaluateConfig", "SampleConfig", "TrainVAEConfig"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "LatentdynError", "Result", "generate", "import_video", "train_vae", "evaluate", "encode", "encode_states", "sample",
    "train_dynamics", "rollout", "latent_map", "interpolate", "analyze", "steer", "run_experiment", "GenerateConfig", "ImportVideoConfig",
    "TrainVAEConfig", "EvaluateConfig", "EncodeConfig", "EncodeStatesConfig", "SampleConfig", "TrainDynamicsConfig", "RolloutConfig",
    "LatentMapConfig", "InterpolateConfig", "AnalyzeConfig", "SteerConfig",
]
