"""Observation models: normalisation over their support, oracles, edges, bits/dim, protocols,
the model wiring, float32 under bf16 autocast, and IWAE >= ELBO on a trained 8-bit model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from latentdyn.core.errors import LatentdynError
from latentdyn.vae import likelihoods as L
from latentdyn.vae.model import BetaVAE  # noqa: F401
from tests.helpers import make_vae

DISCRETE = ["discretized-logistic", "discretized-gaussian"]
LEVELS = torch.arange(256, dtype=torch.float32) / 255  # every value of an 8-bit pixel, as the model sees it
LOCS = [-40.0, -3.0, -0.01, 0.0, 0.001, 3.5 / 255, 0.3, 127.5 / 255, 0.5, 0.9977, 1.0, 1.5, 40.0]
RAWS = [-40.0, -5.0, 0.0, 5.0, 40.0]  # raw log-scales: both bounds and between


def _one_pixel(loc: float, raw: float, n: int = 256) -> torch.Tensor:
    """params (n, 2, 1, 1): the same location and raw log-scale for n one-pixel images."""
    return torch.tensor([loc, raw]).view(1, 2, 1, 1).expand(n, 2, 1, 1).contiguous()


@pytest.mark.parametrize("name", DISCRETE)
def test_discretized_probabilities_of_the_256_levels_sum_to_one_and_are_finite(name):
    m = L.get(name)
    worst = 0.0
    for loc in LOCS:
        for raw in RAWS:
            params = _one_pixel(loc, raw).requires_grad_(True)
            lp = m.log_prob(LEVELS.view(256, 1, 1, 1), params)  # (256,)
            assert torch.isfinite(lp).all(), (loc, raw)  # levels 0 and 255 included
            worst = max(worst, abs(lp.exp().sum().item() - 1.0))
            lp.sum().backward()
            assert torch.isfinite(params.grad).all(), (loc, raw)
    assert worst < 1e-5


def test_bernoulli_probabilities_of_0_and_1_sum_to_one():
    m = L.get("bernoulli")
    for logit in (-40.0, -5.0, 0.0, 0.3, 5.0, 40.0):
        params = torch.full((2, 1, 1, 1), logit)
        lp = m.log_prob(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1), params)
        assert torch.isfinite(lp).all() and abs(lp.exp().sum().item() - 1.0) < 1e-6
        assert math.isclose(lp[1].exp().item(), 1 / (1 + math.exp(-logit)), rel_tol=1e-5, abs_tol=1e-30)


def _oracle(dist, loc: float, raw: float) -> np.ndarray:
    """log P(k), k = 0..255, in float64 from scipy: F(b) - F(a) at the bin edges a, b, the upper
    tail by symmetry, the edges open (Salimans et al. 2017, Eq. 2)."""
    s = math.exp(L.LOG_SCALE_MIN + (L.LOG_SCALE_MAX - L.LOG_SCALE_MIN) / (1 + math.exp(-raw)))
    k = np.arange(256)
    a, b = (k - 0.5) / 255, (k + 0.5) / 255
    with np.errstate(divide="ignore"):
        lower = dist.logcdf(b, loc, s) + np.log1p(-np.exp(dist.logcdf(a, loc, s) - dist.logcdf(b, loc, s)))
        upper = dist.logsf(a, loc, s) + np.log1p(-np.exp(dist.logsf(b, loc, s) - dist.logsf(a, loc, s)))
    want = np.where(a > loc, upper, lower)
    want[0], want[255] = dist.logcdf(b[0], loc, s), dist.logsf(a[255], loc, s)
    return want


@pytest.mark.parametrize("name,dist", [("discretized-logistic", stats.logistic), ("discretized-gaussian", stats.norm)])
def test_discretized_log_probabilities_match_scipy_in_float64_in_the_tails_too(name, dist):
    # far in the tails F(b) - F(a) in float32 (or a naive float64) would be 0 - 0 or 1 - 1
    for loc, raw in [(0.4, -1.0), (0.5, -3.0), (-0.2, -2.0), (1.3, -2.0), (0.0, 30.0)]:
        want = _oracle(dist, loc, raw)
        lp = L.get(name).log_prob(LEVELS.view(256, 1, 1, 1), _one_pixel(loc, raw)).double().numpy()
        assert np.isfinite(lp).all() and np.isfinite(want).all()
        np.testing.assert_allclose(lp, want, rtol=1e-4, atol=1e-4)
    assert lp.min() > -10 and _oracle(dist, 0.5, -3.0).min() < -100  # wide and really-in-the-tail cases both ran


def test_continuous_gaussian_is_torch_normal_with_bounded_sigma():
    x = torch.rand(3, 2, 4, 4)
    m = torch.randn(3, 2, 4, 4)
    for ls, used in [(-0.7, -0.7), (-20.0, L.LOG_SIGMA_MIN), (3.0, L.LOG_SIGMA_MAX)]:
        params = torch.cat([m, torch.full_like(m, ls)], 1)
        want = torch.distributions.Normal(torch.sigmoid(m), math.exp(used)).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(L.get("gaussian").log_prob(x, params), want, rtol=1e-5, atol=1e-3)
    # at the lower bound the density times the bin width 1/255 is at most 1
    assert math.isclose(math.exp(-L.LOG_SIGMA_MIN) / math.sqrt(2 * math.pi) / 255, 1.0, rel_tol=1e-12)


@pytest.mark.parametrize("name", DISCRETE)
def test_mean_is_within_half_a_level_of_the_exact_mean_and_samples_follow_the_probabilities(name):
    m = L.get(name)
    for loc, raw in [(0.3, -3.0), (-0.01, -2.0), (0.99, 1.0), (0.5, -40.0), (-3.0, 0.0)]:
        p = m.log_prob(LEVELS.view(256, 1, 1, 1), _one_pixel(loc, raw)).exp()  # (256,)
        exact = (p * LEVELS).sum().item()
        assert abs(m.mean(_one_pixel(loc, raw, 1)).item() - exact) <= 0.5 / 255 + 1e-6
        x = m.sample(_one_pixel(loc, raw, 20000), torch.Generator().manual_seed(0)).flatten()  # (20000,)
        k = (x * 255).round()
        assert torch.equal(k / 255, x)  # on the grid
        freq = torch.bincount(k.long(), minlength=256).float() / len(k)
        assert (freq - p).abs().max().item() < 0.015


def test_bits_per_dim():
    assert math.isclose(L.bits_per_dim(784 * math.log(2) * 3.0, 784), 3.0)
    assert math.isclose(L.bits_per_dim(3072 * math.log(256), 3072), 8.0)  # uniform over 256 levels: 8 bits
    np.testing.assert_allclose(L.bits_per_dim(np.array([0.0, 2 * math.log(2)]), 2), [0.0, 1.0])
    with pytest.raises(LatentdynError, match="n_dims 0"):
        L.bits_per_dim(1.0, 0)


def test_protocol_table_and_default_likelihood():
    assert L.is_log_probability("bernoulli", "binary-static") and L.is_log_probability("bernoulli", "binary-dynamic")
    assert not L.is_log_probability("bernoulli", "8bit")  # cross-entropy on grey values: training loss
    assert not L.is_log_probability("gaussian", "8bit")  # a density
    assert L.is_log_probability("discretized-logistic", "8bit") and L.is_log_probability("discretized-gaussian", "8bit")
    assert not L.is_log_probability("discretized-logistic", "binary-static")
    assert [L.data_protocol(b) for b in ("static", "dynamic", "none")] == ["binary-static", "binary-dynamic", "8bit"]
    assert L.default_likelihood("static", False) == L.default_likelihood("dynamic", True) == "bernoulli"
    assert L.default_likelihood("none", False) == L.default_likelihood("none", True) == "discretized-logistic"
    with pytest.raises(LatentdynError, match="likelihood 'poisson'"):
        L.get("poisson")
    with pytest.raises(LatentdynError, match="data protocol '16bit'"):
        L.is_log_probability("bernoulli", "16bit")


@pytest.mark.parametrize("arch", ["tutorial", "mlp", "resnet"])
@pytest.mark.parametrize("name", DISCRETE)
def test_model_wiring_of_the_discretized_likelihoods(arch, name):
    torch.manual_seed(0)
    C, H, W = 3, 17, 23
    m = make_vae(arch=arch, latent_dim=3, channels=C, height=H, width_px=W, likelihood=name)
    x = torch.randint(0, 256, (4, C, H, W)).float() / 255
    z = torch.randn(4, 3)
    out = m.decode_logits(z)
    assert out.shape == (4, 2 * C, H, W)  # a location and a log-scale per pixel
    img = m.decode(z)
    assert img.shape == (4, C, H, W) and 0 <= img.min() and img.max() <= 1
    torch.testing.assert_close(img, L.get(name).mean(out))
    torch.testing.assert_close(m.log_px_z(x, out), L.get(name).log_prob(x, out))
    t = m(x)
    assert all(v.shape == (4,) and torch.isfinite(v).all() for v in t.values())
    assert (t["rec"] < 0).all()  # a log-probability of discrete data is at most 0


def test_reparameterisation_keeps_tiny_posterior_noise_under_bf16_autocast():
    torch.manual_seed(0)
    mu = (torch.rand(64, 8) + 0.5).bfloat16()  # (64, d) as a bf16 encoder returns it
    logvar = torch.full((64, 8), -20.0, dtype=torch.bfloat16)  # sigma = exp(-10) = 4.5e-5 < ulp_bf16(mu) / 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z, eps = BetaVAE.reparameterize(mu, logvar, torch.Generator().manual_seed(1))
    assert z.dtype == eps.dtype == torch.float32
    sigma = torch.exp(0.5 * logvar.float())
    # z - mu is eps * sigma to float32 rounding of z (|z| < 2: ulp 1.2e-7)
    torch.testing.assert_close(z - mu.float(), eps * sigma, rtol=0, atol=1.2e-7)
    assert (z - mu.float()).abs().mean() > 1e-5  # the noise is there (sigma E|eps| = 3.6e-5)
    naive = mu + (0.5 * logvar).exp() * eps.bfloat16()  # the same sum in bf16 drops it
    assert torch.equal(naive, mu)


def test_forward_and_iwae_are_float32_under_bf16_autocast():
    torch.manual_seed(0)
    m = make_vae(arch="tutorial", latent_dim=2, likelihood="discretized-logistic")
    x = torch.randint(0, 256, (8, 1, 28, 28)).float() / 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu, logvar = m.encode(x)
        t = m(x, generator=torch.Generator().manual_seed(0))
        iw = m.log_px_iw(x, 4, generator=torch.Generator().manual_seed(0))
    assert mu.dtype == torch.float32  # the encoder's output layer is a float32 island (model._run) ...
    with torch.no_grad():
        assert not torch.equal(mu, m.encode(x)[0])  # ... after a trunk that did run in bf16
    assert all(v.dtype == torch.float32 for v in t.values()) and iw.dtype == torch.float32
    torch.testing.assert_close(t["kl"], m.kl_per_dim(mu, logvar).sum(1))
    with torch.no_grad():
        ref = m(x, generator=torch.Generator().manual_seed(0))  # all float32
    torch.testing.assert_close(t["rec"], ref["rec"], rtol=0.02, atol=5.0)  # bf16 network, float32 sums


def test_iwae_bound_is_above_the_elbo_and_rises_with_k_on_fashion_mnist():
    from latentdyn.datasets import load
    from tests.helpers import need_fashion_mnist

    need_fashion_mnist()
    u8 = load("fashion-mnist", "train").images[:2048, ::2, ::2]  # (N, 14, 14, 1): every other pixel, still 8-bit
    x_all = torch.from_numpy(u8.copy()).permute(0, 3, 1, 2).float() / 255  # (N, 1, 14, 14)
    torch.manual_seed(0)
    m = make_vae(arch="mlp", latent_dim=2, likelihood="discretized-logistic", height=14, width_px=14)
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(200):
        xb = x_all[torch.randint(0, len(x_all), (64,), generator=g)]
        opt.zero_grad()
        m(xb, generator=g)["loss"].mean().backward()
        opt.step()
    m.eval()
    x = x_all[:128]
    with torch.no_grad():
        elbo = torch.stack([m(x, generator=g)["elbo"] for _ in range(64)]).mean().item()  # 64 samples, as IWAE(64)
        iw = {k: m.log_px_iw(x, k, generator=g).mean().item() for k in (1, 8, 64)}
    print(f"ELBO {elbo:.2f}, IWAE {iw}, bits/dim {-elbo / (196 * math.log(2)):.3f}")
    D = 14 * 14
    assert -elbo / (D * math.log(2)) < 8.0  # better than uniform over the 256 levels
    assert abs(iw[1] - elbo) < 1.0  # K = 1 is the ELBO
    assert iw[8] > iw[1] - 0.5 and iw[64] > iw[8] - 0.5  # rises with K, up to MC noise
    assert iw[64] > elbo + 1.0  # and is above the ELBO by more than the noise
