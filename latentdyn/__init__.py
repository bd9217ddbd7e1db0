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

from latentdyn.core.version import __version__  # noqa: E402,F401

from latentdyn.core.errors import LatentdynError  # noqa: E402
from latentdyn.analysis.config import AnalyzeConfig, SteerConfig  # noqa: E402
from latentdyn.api import (  # noqa: E402
    Result, analyze, encode, evaluate, generate, import_video, interpolate, latent_map, rollout, sample, steer,
    train_dynamics, train_vae,
)
from latentdyn.dynamics.config import RolloutConfig, TrainDynamicsConfig  # noqa: E402
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig  # noqa: E402
from latentdyn.pipeline.runner import run_experiment  # noqa: E402
from latentdyn.scenes.config import GenerateConfig, ImportVideoConfig  # noqa: E402
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, SampleConfig, TrainVAEConfig  # noqa: E402

__all__ = [
    "LatentdynError", "Result", "generate", "import_video", "train_vae", "evaluate", "encode", "sample", "train_dynamics",
    "rollout", "latent_map", "interpolate", "analyze", "steer", "run_experiment", "GenerateConfig", "ImportVideoConfig",
    "TrainVAEConfig", "EvaluateConfig", "EncodeConfig", "SampleConfig", "TrainDynamicsConfig", "RolloutConfig",
    "LatentMapConfig", "InterpolateConfig", "AnalyzeConfig", "SteerConfig",
]
