"""Latent geometry: the decoder's pull-back metric, geodesics, interpolation and latent maps.

``from latentdyn.geometry import connecting_geodesic`` takes any differentiable decoder
(docs/architecture.md, "Geometry"); the stages are ``latentdyn.interpolate`` and ``latentdyn.latent_map``.

Its names are imported on first use (``latentdyn.core.lazy``): ``import latentdyn.geometry`` loads no
torch. A submodule keeps its name (``latentdyn.geometry.interpolate`` is the module, never a function).
"""

from latentdyn.core.lazy import lazy_exports

_EXPORTS = {
    "latentdyn.geometry.config": ["InterpolateConfig", "LatentMapConfig"],
    "latentdyn.geometry.interpolate": ["data_aware_decoder"],
    "latentdyn.geometry.latent_map": ["inverse_cdf_grid", "magnification_map"],
    "latentdyn.geometry.metric": ["connecting_geodesic", "curve_length_energy", "jacobian", "magnification", "measure_curves", "pullback_metric", "rbf_sigma", "reparametrize", "straight_line", "variance_aware"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())

__all__ = [
    "InterpolateConfig", "LatentMapConfig", "connecting_geodesic", "curve_length_energy", "data_aware_decoder",
    "inverse_cdf_grid", "jacobian", "magnification", "magnification_map", "measure_curves", "pullback_metric",
    "rbf_sigma", "reparametrize", "straight_line", "variance_aware",
]
