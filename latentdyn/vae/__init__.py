"""The beta-VAE: model, training, evaluation (ELBO, IWAE) and encoding to latents.

``from latentdyn.vae import BetaVAE, load_vae`` (a trained run's model), ``open_latents`` (a latents
file), ``evaluate_run``; the stages themselves are ``latentdyn.train_vae``, ``evaluate``, ``encode``, ``sample``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.vae`` loads no
torch. A submodule keeps its name (``latentdyn.vae.evaluate`` is the module, never a function).
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.latents.file": ["LatentFile", "open_latents"],  # the latents file (latentdyn.latents)
    "latentdyn.vae.config": ["EncodeConfig", "EvaluateConfig", "SampleConfig", "TrainVAEConfig"],
    "latentdyn.vae.data": ["open_frames"],
    "latentdyn.vae.encode": ["encode_frames", "encode_sequences"],
    "latentdyn.vae.evaluate": ["active_units", "evaluate_run"],
    "latentdyn.vae.likelihoods": ["bits_per_dim", "data_protocol", "is_log_probability"],
    "latentdyn.vae.memory": ["plan_memory"],
    "latentdyn.vae.factory": ["make_vae"],
    "latentdyn.vae.model": ["BetaVAE"],
    "latentdyn.vae.posteriors": ["IAFPosterior"],
    "latentdyn.vae.priors": ["FlowPrior", "GaussianPrior"],
    "latentdyn.vae.sample": ["sample_images"],
    "latentdyn.vae.slots": ["SlotVAE"],
    "latentdyn.vae.train": ["load_vae", "train_vae"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "BetaVAE", "EncodeConfig", "EvaluateConfig", "FlowPrior", "GaussianPrior", "IAFPosterior", "LatentFile",
    "SampleConfig", "SlotVAE", "TrainVAEConfig", "active_units", "bits_per_dim", "data_protocol", "encode_frames", "encode_sequences",
    "evaluate_run", "is_log_probability", "load_vae", "make_vae", "open_frames", "open_latents", "plan_memory",
    "sample_images", "train_vae",
]
