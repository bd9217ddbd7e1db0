"""What the latent space learned: disentanglement scores, traversals, steering directions.

``from latentdyn.analysis import mig, sap, dci`` score codes (n, k) against factors (n, m)
(numpy + scikit-learn, following disentanglement_lib); ``analyze`` and ``steer`` run the whole
recipe on a trained VAE (docs/analysis.md). May import core, engine, viz, datasets, scenes, vae,
dynamics; never pipeline or cli.
"""

from latentdyn.analysis.directions import Direction, conditional_edit, edit, fit_direction, orthogonalize
from latentdyn.analysis.disentanglement import dci, mi_matrix, mig, mig_per_factor, probes, sap, sap_matrix
from latentdyn.analysis.factors import ball_permutation, read_positions, scene_factors
from latentdyn.analysis.run import analyze, steer
from latentdyn.vae.evaluate import active_units  # Burda et al. 2016: variance of the posterior mean > 0.01

__all__ = [
    "Direction", "active_units", "analyze", "ball_permutation", "conditional_edit", "dci", "edit", "fit_direction",
    "mi_matrix", "mig", "mig_per_factor", "orthogonalize", "probes", "read_positions", "sap", "sap_matrix",
    "scene_factors", "steer",
]
