"""What the latent space learned: disentanglement scores, traversals, steering directions.

``from latentdyn.analysis import mig, sap, dci`` score codes (n, k) against factors (n, m)
(numpy + scikit-learn, following disentanglement_lib); ``analyze`` and ``steer`` run the whole
recipe on a trained VAE (docs/analysis.md). May import core, engine, viz, datasets, scenes, vae,
dynamics; never pipeline or cli.
"""

from latentdyn.core.lazy import lazy_exports

# imported on first use (PEP 562): the stage configs in latentdyn.analysis.config are read by
# every command line, which should not pay for scikit-learn and torch (seconds) to parse options
_EXPORTS = {
    "latentdyn.analysis.directions": ["Direction", "conditional_edit", "edit", "fit_direction", "orthogonalize"],
    "latentdyn.analysis.disentanglement": ["dci", "mi_matrix", "mig", "mig_per_factor", "probes", "sap", "sap_matrix"],
    "latentdyn.analysis.factors": ["ball_permutation", "read_positions", "scene_factors"],
    "latentdyn.analysis.run": ["analyze", "steer"],
    "latentdyn.vae.evaluate": ["active_units"],  # Burda et al. 2016: variance of the posterior mean > 0.01
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "Direction", "active_units", "analyze", "ball_permutation", "conditional_edit", "dci", "edit", "fit_direction",
    "mi_matrix", "mig", "mig_per_factor", "orthogonalize", "probes", "read_positions", "sap", "sap_matrix",
    "scene_factors", "steer",
]
