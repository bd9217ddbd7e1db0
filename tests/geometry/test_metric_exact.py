"""Lengths, energies and the variance-aware metric against closed forms."""

import math

import pytest
import torch
from scipy.integrate import quad

from latentdyn.core.errors import LatentdynError
from latentdyn.geometry import metric as G
from tests.geometry.conftest import sphere

pytestmark = pytest.mark.usefixtures("float64")  # geodesic accuracy tests run in double precision






def test_flat_metric_lengths_are_exact():
    """f(z) = A z + b: the metric A^T A is constant, the geodesic is the straight line and both
    lengths are ||A (z1 - z0)||; at constant speed the energy is L^2 / 2."""
    g = torch.Generator().manual_seed(0)
    A, b = torch.randn(30, 3, generator=g), torch.randn(30, generator=g)
    z0, z1 = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g) * 3
    out = G.connecting_geodesic(lambda z: z @ A.T + b, z0, z1, n_points=32)
    exact = ((z1 - z0) @ A.T).norm(dim=-1)  # (6,)
    torch.testing.assert_close(out["length"] / out["line_length"], torch.ones(6), rtol=0, atol=1e-3)
    torch.testing.assert_close(out["length"], exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(out["line_length"], exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(out["line_energy"], exact**2 / 2, rtol=1e-4, atol=0)


def test_sphere_line_and_geodesic_lengths_match_closed_forms():
    """Round metric of the angle chart. The straight chart line's length against quadrature of
    sqrt(dtheta^2 + sin^2(theta(t)) dphi^2); the geodesic's against the great-circle distance."""
    za, zb = (0.4, 0.3), (1.4, 2.6)
    z0, z1 = torch.tensor([za]), torch.tensor([zb])
    dt, dp = zb[0] - za[0], zb[1] - za[1]
    line_exact = quad(lambda t: math.sqrt(dt**2 + math.sin(za[0] + t * dt) ** 2 * dp**2), 0, 1, epsabs=1e-12)[0]
    great_circle = math.acos(float((sphere(z0) * sphere(z1)).sum()))
    assert great_circle < 0.95 * line_exact  # the case is not degenerate: the geodesic is clearly shorter
    out = G.connecting_geodesic(sphere, z0, z1, n_points=32, max_iter=1000, tol=1e-8)
    assert abs(out["line_length"].item() / line_exact - 1) < 0.005
    assert abs(out["length"].item() / great_circle - 1) < 0.005
    assert not out["fallback"].item()
    # both are reported at constant speed: equal decoded steps, energies L^2 / 2 (not the energy of
    # the chart line at uniform latent speed, which is larger)
    for c, length, energy in ((out["line"], out["line_length"], out["line_energy"]), (out["curve"], out["length"], out["energy"])):
        steps = sphere(c[0]).diff(dim=0).norm(dim=-1)  # (31,)
        assert steps.std() / steps.mean() < 1e-2
        torch.testing.assert_close(energy, length**2 / 2)
    assert G.curve_length_energy(sphere, G.straight_line(z0, z1, 32))[1] > 1.01 * out["line_energy"]
    # the returned curve lies on the great circle: each point is in the plane of the two ends
    normal = torch.linalg.cross(sphere(z0), sphere(z1))[0]
    assert (sphere(out["curve"][0]) @ normal).abs().max() < 5e-3


def test_length_is_parametrisation_free_energy_is_not():
    """The same segment sampled at uniform latent speed and at constant metric speed: equal lengths;
    the uniform-latent discrete energy exceeds L^2 / 2 (what the old line-versus-geodesic energy
    ratio compared against a constant-speed geodesic), the constant-speed one reaches it."""
    z0, z1 = torch.tensor([[0.05, 0.0]]), torch.tensor([[1.5, 3.0]])
    line = G.straight_line(z0, z1, 64)
    m = G.measure_curves(sphere, line)
    torch.testing.assert_close(G.measure_curves(sphere, m["curve"])["length"], m["length"], rtol=1e-4, atol=0)
    uniform_e = G.curve_length_energy(sphere, line)[1]
    torch.testing.assert_close(m["discrete_energy"], uniform_e)
    even_len, even_e = G.curve_length_energy(sphere, m["curve"])
    assert uniform_e > 1.05 * m["energy"]
    torch.testing.assert_close(even_e, even_len**2 / 2, rtol=1e-3, atol=0)  # equal steps: Cauchy-Schwarz is tight


def _two_centres():
    c = torch.tensor([[0.0, 0.0], [0.8, 0.3]])
    h, zeta, scale, w = 0.6, 1e-2, 1.5, 0.7
    return c, h, zeta, scale, w


def _grad_sigma(z, c, h, zeta, scale):
    """Closed form of grad sigma for sigma = beta^(-1/2), beta = scale sum_k exp(-|z - c_k|^2 / 2h^2) + zeta."""
    k = torch.exp(-((z - c) ** 2).sum(-1) / (2 * h**2))  # (K,)
    beta = scale * k.sum() + zeta
    grad_beta = scale * (k[:, None] * (-(z - c) / h**2)).sum(0)  # (d,)
    return -0.5 * beta**-1.5 * grad_beta


def test_variance_aware_metric_at_a_centre_is_the_analytic_one():
    """M = J_mu^T J_mu + w^2 D grad s grad s^T for sigma s shared by the D = 5 outputs, equal to the
    metric with sigma given per output dimension; the D matters (the term is not w^2 grad s grad s^T)."""
    c, h, zeta, scale, w = _two_centres()
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0], [2.0, 0.0], [1.0, 1.0]])  # D = 5, d = 2
    D = A.shape[0]
    mean = lambda z: z @ A.T  # noqa: E731
    sig = G.rbf_sigma(c, bandwidth=h, zeta=zeta, scale=scale)
    z = c[:1]  # at the first centre: the second one's pull makes grad sigma non-zero
    gs = _grad_sigma(z[0], c, h, zeta, scale)
    assert gs.norm() > 0.05
    extra = G.pullback_metric(G.variance_aware(mean, sig, w), z)[0] - A.T @ A
    torch.testing.assert_close(extra, w**2 * D * torch.outer(gs, gs), rtol=1e-6, atol=1e-9)
    per_output = G.variance_aware(mean, lambda v: sig(v).expand(-1, D), w)  # sigma_j = s for every j
    torch.testing.assert_close(G.pullback_metric(per_output, z), A.T @ A + extra[None], rtol=1e-6, atol=1e-9)
    with pytest.raises(LatentdynError, match="give 1 \\(shared\\) or D = 5"):
        G.variance_aware(mean, lambda v: sig(v).expand(-1, 3))(z)


def test_variance_aware_metric_grows_off_the_data_and_saturates():
    """One centre, identity mean: at the centre the metric is the mean's (grad sigma = 0), it grows
    to a band about h sqrt(2 ln(scale / zeta)) out, and far beyond the band sigma saturates at
    zeta^(-1/2) and the metric returns to the mean's."""
    h, zeta = 0.5, 1e-3
    f = G.variance_aware(lambda z: z, G.rbf_sigma(torch.zeros(1, 2), bandwidth=h, zeta=zeta))
    r = torch.linspace(0, 8 * h, 161)
    z = torch.stack([r, torch.zeros_like(r)], -1)  # (161, 2) along a ray
    extra = G.pullback_metric(f, z)[:, 0, 0] - 1  # the radial term D (ds/dr)^2
    analytic = torch.stack([2 * _grad_sigma(v, torch.zeros(1, 2), h, zeta, 1.0)[0] ** 2 for v in z])
    torch.testing.assert_close(extra, analytic, rtol=1e-6, atol=1e-9)
    assert extra[0].abs() < 1e-12 and extra.max() > 100
    peak = r[extra.argmax()].item()
    assert abs(peak - h * math.sqrt(2 * math.log(1 / zeta))) < 0.25 * peak
    assert extra[-1] < 1e-3 * extra.max()
    assert (G.magnification(f, z) >= 1 - 1e-12).all()  # never below the mean's magnification (1)


def test_measure_curves_bad_input():
    with pytest.raises(LatentdynError, match="refine >= 1"):
        G.measure_curves(sphere, torch.zeros(1, 4, 2), refine=0)
    with pytest.raises(LatentdynError, match="at least 2 points"):
        G.measure_curves(sphere, torch.zeros(1, 1, 2))
