"""latentdyn: learn and predict dynamics in the latent space of a beta-VAE.

The package is a library first; ``latentdyn.cli`` is a thin click layer over it. Subpackages
follow the pipeline: ``scenes`` and ``datasets`` (the data), ``vae``, ``dynamics``, ``geometry``
(the models and what they learned), ``engine`` (the training loop every trainer shares),
``viz`` (videos and figures), ``pipeline`` (experiment files, run folders, the report). The
Python API is re-exported here: ``latentdyn.generate``, ``train_vae``, ``evaluate``, ``encode``, ``sample``,
``train_dynamics``, ``rollout``, ``latent_map``, ``interpolate`` and ``run_experiment``, each
taking its stage config (``latentdyn.TrainVAEConfig``, ...) or keyword overrides of it.
"""

__version__ = "0.2.0"

from latentdyn.core.errors import LatentdynError  # noqa: E402
from latentdyn.api import (  # noqa: E402
    Result, encode, evaluate, generate, interpolate, latent_map, rollout, sample, train_dynamics, train_vae,
)
from latentdyn.dynamics.config import RolloutConfig, TrainDynamicsConfig  # noqa: E402
from latentdyn.geometry.config import InterpolateConfig, LatentMapConfig  # noqa: E402
from latentdyn.pipeline.runner import run_experiment  # noqa: E402
from latentdyn.scenes.config import GenerateConfig  # noqa: E402
from latentdyn.vae.config import EncodeConfig, EvaluateConfig, SampleConfig, TrainVAEConfig  # noqa: E402

__all__ = [
    "LatentdynError", "Result", "generate", "train_vae", "evaluate", "encode", "sample", "train_dynamics", "rollout",
    "latent_map", "interpolate", "run_experiment", "GenerateConfig", "TrainVAEConfig", "EvaluateConfig", "EncodeConfig",
    "SampleConfig",
    "TrainDynamicsConfig", "RolloutConfig", "LatentMapConfig", "InterpolateConfig",
]
