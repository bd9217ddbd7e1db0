"""The latent predictor: GRU and convolutional GRU cells, training, rollouts and their metrics.

``from latentdyn.dynamics import predict, load_dynamics`` (a trained predictor and its open loop),
``train_dynamics``, ``run_rollout``; the stages themselves are ``latentdyn.train_dynamics`` and
``latentdyn.rollout``. Names are imported on first use (``latentdyn.core.lazy``): ``import
latentdyn.dynamics`` loads no torch. A submodule keeps its name.
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.dynamics.config": ["RolloutConfig", "TrainDynamicsConfig"],
    "latentdyn.dynamics.metrics": ["match_positions"],
    "latentdyn.dynamics.model": ["LatentConvGRU", "LatentGRU", "load_dynamics", "make_predictor", "predict"],
    "latentdyn.dynamics.rollout": ["run_rollout"],
    "latentdyn.dynamics.train": ["train_dynamics"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = ["LatentConvGRU", "LatentGRU", "RolloutConfig", "TrainDynamicsConfig", "load_dynamics", "make_predictor",
           "match_positions", "predict", "run_rollout", "train_dynamics"]
