"""Per-pixel observation models p(x|z) of the beta-VAE, and which of them score data honestly.

Every model takes the decoder's output map ``params`` (B, P * C, H, W), P = ``n_params`` maps
per image channel, and gives

- ``log_prob(x, params)``: log p(x|z) per example (B,), summed over the C * H * W pixels, in
  nats, computed in float32 whatever the dtype of the inputs;
- ``mean(params)``: the mean image (B, C, H, W) in [0, 1] (differentiable);
- ``sample(params, generator)``: one draw (B, C, H, W) in [0, 1].

The models (``NAMES``):

- ``bernoulli``: p(x) = p^x (1 - p)^(1 - x), p = sigmoid(logit). A probability only for x in
  {0, 1}; on grey intensities in (0, 1) it is the "Bernoulli cross-entropy" training loss, whose
  value is no log-probability of anything (Loaiza-Ganem and Cunningham 2019, the continuous Bernoulli).
- ``discretized-logistic``: the 8-bit discretised logistic of Salimans et al. (2017, PixelCNN++,
  Eq. 2), one component per pixel, location and log-scale per pixel: level k in 0..255 has
  P(k) = F(c_k + 1/510) - F(c_k - 1/510) with c_k = k / 255 and F the logistic CDF, except the
  edges, P(0) = F(c_0 + 1/510) and P(255) = 1 - F(c_255 - 1/510), so the 256 probabilities sum
  to one (PixelCNN++'s treatment of 0 and 255). Equivalently x = round(255 clamp(y, 0, 1)) / 255
  with y ~ Logistic(loc, s) (see ``sample``).
- ``discretized-gaussian``: the same construction with the normal CDF (the discretised Gaussian
  of Ho et al. 2020, Sec. 3.3, over 256 levels in [0, 1] units).
- ``gaussian``: the continuous density N(x; sigmoid(m), sigma^2). A density, not a probability:
  on 8-bit data it is only a training loss (its value grows without bound as sigma shrinks;
  Theis et al. 2016, on dequantisation). log sigma is bounded below by log(1 / (255 sqrt(2 pi))), where
  the density times the bin width 1/255 cannot exceed 1.

Scales are bounded. The discretised models map the raw log-scale r to
``LOG_SCALE_MIN + (LOG_SCALE_MAX - LOG_SCALE_MIN) * sigmoid(r)``; ``LOG_SCALE_MIN`` = -7 - ln 2
is PixelCNN++'s floor of -7 (``pixel_cnn_pp/nn.py``, in [-1, 1] units) converted to [0, 1] units,
``LOG_SCALE_MAX`` = 0 (a scale of the whole intensity range). The location of the discretised
models is the raw output itself (unbounded, as in PixelCNN++), so all mass can go to level 0 or
255.

Data protocols (``PROTOCOLS``): ``binary-static`` (pixels thresholded once, x = [u8 > 127]),
``binary-dynamic`` (x ~ Bernoulli(u8 / 255), drawn afresh; Salakhutdinov and Murray 2008) and
``8bit`` (x = u8 / 255, the raw levels). ``is_log_probability`` says which pairs give a true
log-probability; ``bits_per_dim`` converts an 8-bit negative log-likelihood to bits per
dimension (van den Oord et al. 2016, Pixel RNN, Sec. 5).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from latentdyn.core.errors import LatentdynError

N_LEVELS = 256
HALF_BIN = 0.5 / (N_LEVELS - 1)  # half the distance between neighbouring levels, [0, 1] units
LOG_SCALE_MIN = -7.0 - math.log(2.0)  # PixelCNN++'s -7 in [-1, 1] units, in [0, 1] units
LOG_SCALE_MAX = 0.0
LOG_SIGMA_MIN = -math.log((N_LEVELS - 1) * math.sqrt(2 * math.pi))  # continuous Gaussian: density * bin <= 1
LOG_SIGMA_MAX = 0.0
LOG_2PI = math.log(2 * math.pi)

PROTOCOLS = ("binary-static", "binary-dynamic", "8bit")
_BINARIZE_TO_PROTOCOL = {"static": "binary-static", "dynamic": "binary-dynamic", "none": "8bit"}

# (likelihood, data protocol) -> is log_prob a true log-probability of the data as evaluated?
TRUE_LOG_PROBABILITY = {
    ("bernoulli", "binary-static"): True,
    ("bernoulli", "binary-dynamic"): True,  # of the binarised sample scored
    ("bernoulli", "8bit"): False,  # cross-entropy on grey values: a training loss only
    ("gaussian", "binary-static"): False,  # densities, not probabilities
    ("gaussian", "binary-dynamic"): False,
    ("gaussian", "8bit"): False,
    ("discretized-logistic", "8bit"): True,
    ("discretized-gaussian", "8bit"): True,
}
# the JSON key under which a likelihood that is no log-probability reports E_q[-log p(x|z)]
TRAINING_LOSS_KEY = {"bernoulli": "bernoulli_ce", "gaussian": "gaussian_density_nll"}


def data_protocol(binarize: str) -> str:
    """The protocol of ``DataConfig.binarize`` ("static", "dynamic", "none") -> one of ``PROTOCOLS``."""
    if binarize not in _BINARIZE_TO_PROTOCOL:
        raise LatentdynError(f"binarize {binarize!r}: use static, dynamic or none")
    return _BINARIZE_TO_PROTOCOL[binarize]


def is_log_probability(likelihood: str, data: str) -> bool:
    """Whether ``likelihood`` scores data of protocol ``data`` with a true log-probability."""
    get(likelihood)
    if data not in PROTOCOLS:
        raise LatentdynError(f"data protocol {data!r}: use one of {', '.join(PROTOCOLS)}")
    return TRUE_LOG_PROBABILITY.get((likelihood, data), False)


def default_likelihood(binarize: str, colour: bool) -> str:
    """The ``auto`` likelihood: Bernoulli for binarised data ("static", "dynamic"), else the
    discretised logistic over the 256 levels, for grey and colour images alike (``colour`` is
    accepted for the callers' sake and does not change the choice): both are true likelihoods
    of the data they see."""
    return "bernoulli" if data_protocol(binarize) != "8bit" else "discretized-logistic"


def bits_per_dim(nll_nats, n_dims: int):
    """Negative log-likelihood in nats per example -> bits per dimension, nll / (n_dims ln 2)
    (van den Oord et al. 2016, Pixel RNN, Sec. 5). Works on floats, arrays and tensors."""
    if n_dims < 1:
        raise LatentdynError(f"n_dims {n_dims}: must be at least 1")
    return nll_nats / (n_dims * math.log(2.0))


def _levels(x: torch.Tensor) -> torch.Tensor:
    """x = u8 / 255 floats -> the integer level k in 0..255 (nearest), as float32."""
    return (x.float() * (N_LEVELS - 1)).round().clamp(0, N_LEVELS - 1)


def _bounded_log_scale(raw: torch.Tensor) -> torch.Tensor:
    """Raw map -> log-scale in [LOG_SCALE_MIN, LOG_SCALE_MAX] (smooth; sigmoid(0) is the midpoint)."""
    return LOG_SCALE_MIN + (LOG_SCALE_MAX - LOG_SCALE_MIN) * torch.sigmoid(raw)


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(a)) for a < 0, accurate everywhere (Maechler 2012, "Accurately computing
    log(1 - exp(-|a|))"). Each branch is fed a finite stand-in where the other one is chosen, so
    the branch ``where`` discards has a finite gradient (no 0 * inf)."""
    a = a.clamp(max=-1e-12)
    near = a > -math.log(2.0)
    a_near = torch.where(near, a, torch.full_like(a, -1.0))
    a_far = torch.where(near, torch.full_like(a, -1.0), a)
    return torch.where(near, torch.log(-torch.expm1(a_near)), torch.log1p(-torch.exp(a_far)))


def _log_ndtr(u: torch.Tensor) -> torch.Tensor:
    """log Phi(u) with a float32 gradient that holds in the far lower tail: ``log_ndtr`` for
    u >= -20, below it the asymptotic series Phi(u) = phi(u) / -u * (1 - u^-2 + 3 u^-4 - 15 u^-6 + ...)
    (Abramowitz and Stegun 1964, 26.2.12), relative error < 1e-8 there. (torch's float32
    ``log_ndtr`` gradient overflows below about -3000.)"""
    far = u < -20.0
    u_far = torch.where(far, u, torch.full_like(u, -20.0))
    u_near = torch.where(far, torch.full_like(u, -20.0), u)
    r = 1.0 / (u_far * u_far)
    series = -0.5 * u_far * u_far - torch.log(-u_far) - 0.5 * LOG_2PI + torch.log1p(r * (-1.0 + r * (3.0 - 15.0 * r)))
    return torch.where(far, series, torch.special.log_ndtr(u_near))


class Bernoulli:
    """Independent Bernoulli pixels with logits; a probability for x in {0, 1} only."""

    name, n_params = "bernoulli", 1

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        lp = -F.binary_cross_entropy_with_logits(params.float(), x.float(), reduction="none")  # (B, C, H, W)
        return lp.flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)  # (B, C, H, W)

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params.float()), generator=generator)


class Gaussian:
    """Continuous N(x; sigmoid(m), exp(2 log_sigma)); params (B, 2C, H, W) = [m, log_sigma].

    A density: a training loss on 8-bit data, not a log-probability (module docstring).
    log_sigma is clamped to [LOG_SIGMA_MIN, LOG_SIGMA_MAX].
    """

    name, n_params = "gaussian", 2

    def _split(self, params):
        m, ls = params.float().chunk(2, dim=1)  # (B, C, H, W) each
        return torch.sigmoid(m), ls.clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        mean, ls = self._split(params)
        lp = -0.5 * (((x.float() - mean) * torch.exp(-ls)) ** 2 + LOG_2PI) - ls  # (B, C, H, W)
        return lp.flatten(1).sum(1)  # (B,)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params.chunk(2, dim=1)[0])

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean, ls = self._split(params)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device)  # (B, C, H, W)
        return mean + ls.exp() * eps


class _Discretized:
    """Shared parts of the 8-bit discretised models; params (B, 2C, H, W) = [loc, raw log-scale]."""

    n_params = 2

    def _split(self, params):
        loc, raw = params.float().chunk(2, dim=1)  # (B, C, H, W) each
        return loc, _bounded_log_scale(raw)

    def _log_cdf_pair(self, plus, minus, inv_s):
        """(log F(plus), log(1 - F(minus)), log(F(plus) - F(minus))), each like ``plus``;
        plus - minus = 2 HALF_BIN inv_s."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log P(level of x) summed over pixels (B,); x = u8 / 255, rounded to the nearest level."""
        loc, log_s = self._split(params)
        k = _levels(x)  # (B, C, H, W) levels 0..255
        inv_s = torch.exp(-log_s)
        # standardised bin edges; (k +- 0.5) / 255 is formed directly so that the upper edge of level k
        # is, bit for bit, the lower edge of level k + 1 (the 256 probabilities then telescope to 1)
        plus = ((k + 0.5) / (N_LEVELS - 1) - loc) * inv_s
        minus = ((k - 0.5) / (N_LEVELS - 1) - loc) * inv_s
        log_lo, log_hi, log_mid = self._log_cdf_pair(plus, minus, inv_s)
        lp = torch.where(k == 0, log_lo, torch.where(k == N_LEVELS - 1, log_hi, log_mid))  # (B, C, H, W)
        return lp.flatten(1).sum(1)  # (B,)

    def _std_sample(self, shape, generator, device):
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """E[clamp(y, 0, 1)] = 1 - int_0^1 F(t) dt for the continuous y (closed form); the midpoint
        rule applied to this integral is the exact mean of the 256 levels, so the two differ by
        less than half a level."""
        loc, log_s = self._split(params)
        s = log_s.exp()
        return (1.0 - s * (self._int_cdf((1.0 - loc) / s) - self._int_cdf(-loc / s))).clamp(0.0, 1.0)

    def _int_cdf(self, u):
        """An antiderivative of the standard CDF."""
        raise NotImplementedError

    def sample(self, params: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """round(255 clamp(loc + s * noise, 0, 1)) / 255: a draw of the 256-level model."""
        loc, log_s = self._split(params)
        y = loc + log_s.exp() * self._std_sample(loc.shape, generator, loc.device)  # (B, C, H, W)
        return (y.clamp(0.0, 1.0) * (N_LEVELS - 1)).round() / (N_LEVELS - 1)


class DiscretizedLogistic(_Discretized):
    """PixelCNN++'s discretised logistic (Salimans et al. 2017, Eq. 2), one component.

    Interior bins use log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log sigmoid(-b) +
    log(1 - exp(b - a)), exact in every tail, in place of PixelCNN++'s fall-back to the density
    at the bin centre.
    """

    name = "discretized-logistic"

    def _log_cdf_pair(self, plus, minus, inv_s):
        log_lo = -F.softplus(-plus)  # log F(plus)
        log_hi = -F.softplus(minus)  # log(1 - F(minus))
        log_mid = log_lo + log_hi + _log1mexp(-2 * HALF_BIN * inv_s)  # minus - plus = -2 HALF_BIN / s
        return log_lo, log_hi, log_mid

    def _int_cdf(self, u):
        return F.softplus(u)  # d/du softplus(u) = sigmoid(u)

    def _std_sample(self, shape, generator, device):
        u = torch.rand(shape, generator=generator, device=device).clamp(1e-7, 1 - 1e-7)
        return torch.log(u) - torch.log1p(-u)  # standard logistic noise (inverse CDF)


class DiscretizedGaussian(_Discretized):
    """The 256-level discretised Gaussian (Ho et al. 2020, Sec. 3.3), PixelCNN++ edges.

    Interior bins: log(Phi(a) - Phi(b)) from ``log_ndtr`` in the lower half and by symmetry,
    log(Phi(-b) - Phi(-a)), in the upper, so neither tail cancels.
    """

    name = "discretized-gaussian"

    def _log_cdf_pair(self, plus, minus, inv_s):
        ln = _log_ndtr
        log_lo, log_hi = ln(plus), ln(-minus)  # log Phi(plus), log(1 - Phi(minus))
        lower = log_lo + _log1mexp(ln(minus) - log_lo)
        upper = log_hi + _log1mexp(ln(-plus) - log_hi)
        return log_lo, log_hi, torch.where(minus > 0, upper, lower)

    def _int_cdf(self, u):
        return u * torch.special.ndtr(u) + torch.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)  # d/du = Phi(u)

    def _std_sample(self, shape, generator, device):
        return torch.randn(shape, generator=generator, device=device)


_MODELS = {m.name: m for m in (Bernoulli(), Gaussian(), DiscretizedLogistic(), DiscretizedGaussian())}
NAMES = tuple(_MODELS)


def get(name: str):
    """The observation model called ``name`` (one of ``NAMES``)."""
    if name not in _MODELS:
        raise LatentdynError(f"likelihood {name!r}: use one of {', '.join(NAMES)}")
    return _MODELS[name]
