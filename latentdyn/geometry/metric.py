"""Latent geometry under the decoder's pull-back metric.

A decoder f: R^d -> R^D makes the latent space a Riemannian manifold with the pull-back metric
M(z) = J(z)^T J(z), J the Jacobian of f (Arvanitidis, Hansen and Hauberg 2018, "Latent space
oddity: on the curvature of deep generative models"; Shao, Kumar and Fletcher 2018, "The
Riemannian geometry of deep generative models"). For a curve c: [0, T] -> R^d,

    length L(c) = int_0^T sqrt(c'(t)^T M(c(t)) c'(t)) dt = int_0^T |d/dt f(c(t))| dt,
    energy E(c) = 1/2 int_0^T |d/dt f(c(t))|^2 dt  >=  L(c)^2 / (2 T)   (Cauchy-Schwarz),

with equality exactly at constant speed. Length does not depend on the parametrisation; energy
does, so energies of two curves compare only at the same speed profile.

*Measuring* (``measure_curves``, used for every number ``connecting_geodesic`` reports, for the
geodesic and the straight line alike): a curve given by points c_0..c_{n-1} is the piecewise-
linear latent curve through them; each of its segments is cut into ``refine`` equal pieces, the
pieces' end points are decoded, and L is the sum of the chords |f(p_{j+1}) - f(p_j)| (a lower
bound of the true length converging as refine^-2; exact for a linear decoder). The curve is
then resampled at equal arc length (constant speed under the metric) and its energy over unit
time is reported as E = L^2 / 2, the value the bound reaches at constant speed.

*Solving*: a geodesic minimises E between fixed ends. ``connecting_geodesic`` minimises the
discrete energy (n - 1) / 2 * sum_i |f(c_{i+1}) - f(c_i)|^2 of n points for a batch of end-point
pairs at once: descent on the interior points along the Laplacian-preconditioned (Sobolev)
gradient with a per-pair backtracking (Armijo) line search, so each pair's energy never rises;
coarse-to-fine refinement of the curve (few points first, then doubled); and per-pair
convergence, so finished pairs leave the batch and stop costing decoder passes. Gradients are
vector-Jacobian products through the decoder; no full Jacobian is ever formed.
"""

from __future__ import annotations

from typing import Callable

import torch

from latentdyn.core.errors import LatentdynError

Decoder = Callable[[torch.Tensor], torch.Tensor]


def _flat(decode: Decoder, z: torch.Tensor) -> torch.Tensor:
    """decode(z) for z (..., d) as (..., D)."""
    lead = z.shape[:-1]
    out = decode(z.reshape(-1, z.shape[-1]))
    return out.reshape(*lead, -1)


def jacobian(decode: Decoder, z: torch.Tensor) -> torch.Tensor:
    """J(z) (B, D, d) of the decoder at each of z (B, d), by torch.func.jacfwd (d is small)."""
    from torch.func import jacfwd, vmap

    def single(v):  # (d,) -> (D,)
        return decode(v[None]).reshape(-1)

    return vmap(jacfwd(single))(z)  # (B, D, d)


def pullback_metric(decode: Decoder, z: torch.Tensor) -> torch.Tensor:
    """M(z) = J^T J, (B, d, d)."""
    J = jacobian(decode, z)  # (B, D, d)
    return J.transpose(1, 2) @ J  # (B, d, d)


def magnification(decode: Decoder, z: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Magnification factor sqrt(det M(z)) (Bishop, Svensen and Williams 1997), (B,).

    Values only: computed without an autograd graph (the Jacobians are forward-mode, which
    no_grad leaves on), so memory stays at one batch however many points are asked for.
    """
    out = []
    with torch.no_grad():
        for s in range(0, len(z), batch):
            M = pullback_metric(decode, z[s : s + batch])  # (b, d, d)
            out.append(torch.linalg.det(M).clamp_min(0).sqrt())
    return torch.cat(out)


def curve_length_energy(decode: Decoder, curve: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Discrete length and energy (each (B,)) of curves (B, n, d) *as parametrised*: chords between
    the n decoded points, sum_i |f(c_{i+1}) - f(c_i)| and (n - 1) / 2 * sum_i |f(c_{i+1}) - f(c_i)|^2
    (unit time). This is what the solver minimises; to compare curves use ``measure_curves``."""
    x = _flat(decode, curve)  # (B, n, D)
    step = (x[:, 1:] - x[:, :-1]).pow(2).sum(-1)  # (B, n-1) squared output-space steps
    n = curve.shape[1]
    return step.sqrt().sum(1), 0.5 * (n - 1) * step.sum(1)


def measure_curves(decode: Decoder, curve: torch.Tensor, n: int | None = None, refine: int = 4,
                   max_points: int = 8192) -> dict:
    """Length under the pull-back metric and a constant-speed resampling of curves (B, k, d).

    The curve is the piecewise-linear latent curve through its k points; each segment is cut into
    ``refine`` pieces, decoded, and its length is the sum of the (k - 1) * refine output-space
    chords (see the module docstring). The returned curve has ``n`` (default k) points at equal
    arc length on it (its ends exact), i.e. constant speed under the metric, and the energy is
    that of the constant-speed parametrisation over unit time, L^2 / 2 (the lower bound of every
    parametrisation's energy). Decodes ``max_points`` points at a time, without a graph.
    Returns {'length' (B,), 'energy' (B,), 'curve' (B, n, d), 'discrete_energy' (B,): the energy
    of the k points as given, ``curve_length_energy``'s, from the same decoded points}.
    """
    B, k, d = curve.shape
    n = n or k
    if refine < 1 or k < 2 or n < 2:
        raise LatentdynError(f"measure_curves: need refine >= 1 and curves of at least 2 points; got refine {refine}, {k} and {n} points")
    m = (k - 1) * refine + 1  # the k points are among the m
    chunk = max(1, max_points // m)
    lengths, curves, given = [], [], []
    with torch.no_grad():
        for b in range(0, B, chunk):
            fine = _refine(curve[b : b + chunk], m)  # (b, m, d), on the polyline
            x = _flat(decode, fine)  # (b, m, D)
            s = torch.cat([torch.zeros_like(x[:, :1, 0]), (x[:, 1:] - x[:, :-1]).norm(dim=-1).cumsum(1)], 1)  # (b, m) arc length
            lengths.append(s[:, -1])
            curves.append(_resample(fine, s, n))
            xk = x[:, ::refine]  # (b, k, D): the given points
            given.append(0.5 * (k - 1) * (xk[:, 1:] - xk[:, :-1]).pow(2).sum((1, 2)))
    length = torch.cat(lengths)  # (B,)
    out = torch.cat(curves)  # (B, n, d)
    out[:, 0], out[:, -1] = curve[:, 0], curve[:, -1]
    return {"length": length, "energy": 0.5 * length**2, "curve": out, "discrete_energy": torch.cat(given)}


def _resample(fine: torch.Tensor, s: torch.Tensor, n: int) -> torch.Tensor:
    """Points (b, n, d) at equal arc length along the polyline ``fine`` (b, m, d) whose cumulative
    arc length at its points is ``s`` (b, m)."""
    total = s[:, -1:].clamp_min(1e-12)
    targets = torch.linspace(0, 1, n, dtype=fine.dtype, device=fine.device)[None] * total  # (b, n)
    idx = torch.searchsorted(s.contiguous(), targets.contiguous()).clamp(1, fine.shape[1] - 1)  # (b, n)
    s0, s1 = s.gather(1, idx - 1), s.gather(1, idx)
    w = ((targets - s0) / (s1 - s0).clamp_min(1e-12)).clamp(0, 1)[..., None]  # (b, n, 1)
    g = lambda j: fine.gather(1, j[..., None].expand(-1, -1, fine.shape[-1]))  # noqa: E731
    return g(idx - 1) * (1 - w) + g(idx) * w  # (b, n, d)


def straight_line(z0: torch.Tensor, z1: torch.Tensor, n: int) -> torch.Tensor:
    """(B, d), (B, d) -> (B, n, d) evenly spaced points from z0 to z1."""
    t = torch.linspace(0.0, 1.0, n, dtype=z0.dtype, device=z0.device)[None, :, None]  # (1, n, 1)
    return z0[:, None] + t * (z1 - z0)[:, None]


def _refine(curve: torch.Tensor, n: int) -> torch.Tensor:
    """Resample curves (B, m, d) to n points by linear interpolation in the curve parameter."""
    m = curve.shape[1]
    t = torch.linspace(0, m - 1, n, dtype=curve.dtype, device=curve.device)
    i0 = t.floor().long().clamp(max=m - 2)
    w = (t - i0)[None, :, None]
    return curve[:, i0] * (1 - w) + curve[:, i0 + 1] * w  # (B, n, d)


def reparametrize(decode: Decoder, curve: torch.Tensor, n: int | None = None, refine: int = 4) -> torch.Tensor:
    """Resample curves (B, k, d) to n (default k) points at constant speed under the pull-back
    metric (equal decoded steps); ``measure_curves``'s curve."""
    return measure_curves(decode, curve, n, refine)["curve"]


def connecting_geodesic(
    decode: Decoder, z0: torch.Tensor, z1: torch.Tensor, n_points: int = 32, max_iter: int = 300,
    tol: float = 1e-3, coarse: int = 8, constant_speed: bool = True, history: bool = False, refine: int = 4,
) -> dict:
    """Energy-minimising curves between z0[k] and z1[k] (each (B, d)) under the pull-back metric.

    A pair has converged when an accepted step lowers its discrete energy by less than ``tol``
    (relative). The geodesic and the straight line z0 -> z1 are then measured the same way, by
    ``measure_curves`` with the same ``refine``: 'length' and 'line_length' are lengths under the
    metric of the two piecewise-linear curves, 'energy' and 'line_energy' the energies of their
    constant-speed parametrisations over unit time (L^2 / 2), so energy ratios are length ratios
    squared. A pair whose solution measures longer than its straight line (a solver stopped on a
    plateau, or a discrete solution cutting a corner between its points) gets the straight line,
    flagged in 'fallback'.

    Returns {'curve' (B, n, d) (at constant speed if ``constant_speed``, else the solver's points),
    'line' (B, n, d) (the straight line, at constant speed if ``constant_speed``), 'length',
    'energy', 'line_length', 'line_energy', 'solver_energy' (the discrete energy the solver reached,
    see ``curve_length_energy``) (B,), 'converged', 'fallback' (B,) bool, 'iterations' (B,),
    'decoder_passes' int, and 'energy_history' (list of (B,) discrete energies, when ``history``)}.
    ``decode`` is any differentiable torch callable (B, d) -> (B, ...).
    """
    z0 = torch.as_tensor(z0)
    z1 = torch.as_tensor(z1, dtype=z0.dtype, device=z0.device)
    if z0.ndim == 1:
        z0, z1 = z0[None], z1[None]
    if z0.ndim != 2 or z0.shape != z1.shape:
        raise LatentdynError(f"end points must both be (B, d); got {tuple(z0.shape)} and {tuple(z1.shape)}")
    if n_points < 3:
        raise LatentdynError(f"n_points = {n_points}: a curve needs at least 3 points (2 ends and 1 to move)")
    probe = z0[:1].detach().clone().requires_grad_(True)
    try:
        out = decode(probe)
    except Exception as e:  # a decoder for other latent sizes
        raise LatentdynError(f"the decoder cannot take end points of dimension {z0.shape[1]}: {str(e).splitlines()[0][:100]}") from None
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        raise LatentdynError("the decoder is not differentiable (its output does not depend on z through autograd)")
    B, d = z0.shape
    passes = [0]

    def decode_counted(z):  # (b, k, d) -> (b, k, D)
        passes[0] += z.shape[0] * z.shape[1]
        return _flat(decode, z)

    levels, m = [], max(3, min(coarse, n_points))
    while m < n_points:
        levels.append(m)
        m = 2 * m
    levels.append(n_points)  # e.g. 8 -> 16 -> 32 points
    line = straight_line(z0, z1, n_points)
    line_m = measure_curves(decode, line, n_points, refine)
    curve = straight_line(z0, z1, levels[0])
    converged = torch.zeros(B, dtype=torch.bool, device=z0.device)
    iters = torch.zeros(B, dtype=torch.long, device=z0.device)
    hist: list[torch.Tensor] = []
    for level, m in enumerate(levels):
        if level:
            curve = _refine(curve, m)
        final = level == len(levels) - 1
        budget = max_iter if final else max(20, max_iter // 4)
        restart = line_m["discrete_energy"] if final and level else None
        curve, conv, it, h, solver_e = _descend(decode_counted, curve, budget, tol, history and final, restart)
        iters += it
        hist += h
        if final:
            converged = conv
    geo_m = measure_curves(decode, curve, n_points, refine)
    if constant_speed:
        curve, line = geo_m["curve"], line_m["curve"]
    length, en = geo_m["length"], geo_m["energy"]
    # never report a curve longer than the straight line, measured the same way
    worse = length > line_m["length"]
    if worse.any():
        curve = torch.where(worse[:, None, None], line, curve)
        length, en = torch.where(worse, line_m["length"], length), torch.where(worse, line_m["energy"], en)
    out = {"curve": curve.detach(), "line": line, "length": length, "energy": en, "line_length": line_m["length"],
           "line_energy": line_m["energy"], "solver_energy": solver_e, "converged": converged, "fallback": worse,
           "iterations": iters, "decoder_passes": passes[0]}
    if history:
        out["energy_history"] = hist
    return out


def _laplacian_inverse(k: int, dtype, device) -> torch.Tensor:
    """Inverse of the k x k discrete Laplacian tridiag(-1, 2, -1) (Dirichlet ends)."""
    L = 2 * torch.eye(k, dtype=dtype, device=device) - torch.diag(torch.ones(k - 1, dtype=dtype, device=device), 1)
    L = L - torch.diag(torch.ones(k - 1, dtype=dtype, device=device), -1)
    return torch.linalg.inv(L)


def _descend(decode, curve: torch.Tensor, max_iter: int, tol: float, history: bool, restart: torch.Tensor | None = None):
    """Preconditioned descent on the interior points, per pair, with an Armijo line search.

    The energy's Hessian in the interior points is close to (n - 1) L (x) M, L the discrete
    Laplacian along the curve: stepping along L^-1 g (a Sobolev gradient) instead of g removes
    the curve's stiffness, so a few dozen steps do what plain gradient descent needs thousands
    for. The line search accepts a step only if the energy falls enough (Armijo), so each pair's
    energy never rises; converged pairs leave the batch. ``restart``, the straight lines' discrete
    energies (B,) at m points: a pair whose line is lower than ``curve`` (a coarse solution that
    hopped over a ridge its few points did not see) starts from the line instead. Returns the curves (B, m, d),
    converged (B,), iterations (B,), the energy history and the final discrete energies (B,).
    """
    B, m, d = curve.shape
    ends0, ends1 = curve[:, :1].detach(), curve[:, -1:].detach()
    inner = curve[:, 1:-1].detach().clone()  # (B, m-2, d)
    Linv = _laplacian_inverse(m - 2, curve.dtype, curve.device)  # (m-2, m-2)
    active = torch.arange(B, device=curve.device)
    conv = torch.zeros(B, dtype=torch.bool, device=curve.device)
    iters = torch.zeros(B, dtype=torch.long, device=curve.device)
    hist = []

    def full(idx, x):
        return torch.cat([ends0[idx], x, ends1[idx]], 1)

    with torch.no_grad():  # the fixed ends are decoded once, not at every step
        f0, f1 = decode(ends0), decode(ends1)  # (B, 1, D)

    def energy(idx, x):  # interior points (b, m-2, d) -> energies (b,)
        fx = torch.cat([f0[idx], decode(x), f1[idx]], 1)  # (b, m, D)
        return 0.5 * (m - 1) * (fx[:, 1:] - fx[:, :-1]).pow(2).sum((1, 2))

    def direction(g):  # (b, m-2, d) -> preconditioned descent direction
        return -(Linv @ g) / (m - 1)

    x = inner.clone().requires_grad_(True)
    e = energy(active, x)
    g = torch.autograd.grad(e.sum(), x)[0]  # vector-Jacobian product through the decoder
    x, e = x.detach(), e.detach()
    if restart is not None:
        line = straight_line(ends0[:, 0], ends1[:, 0], m)[:, 1:-1]  # (B, m-2, d)
        better = restart.to(e) < e  # (B,)
        if better.any():
            xb = line[better].clone().requires_grad_(True)
            eb = energy(active[better], xb)
            x[better], e[better], g[better] = xb.detach(), eb.detach(), torch.autograd.grad(eb.sum(), xb)[0]
    cur_e = e.clone()
    step = torch.ones(B, dtype=curve.dtype, device=curve.device)
    # first step: the length of the curve's metric scale, from the line's energy per latent distance
    scale = (ends1 - ends0).norm(dim=-1).squeeze(1).clamp_min(1e-9)  # (B,)
    step = step * (scale**2 / (2 * e.clamp_min(1e-12)))  # about 1 / c for a metric c I
    for _ in range(max_iter):
        if active.numel() == 0:
            break
        p = direction(g)  # (b, m-2, d)
        slope = (g * p).sum((1, 2))  # (b,) < 0
        a = step[active]
        trial = (x + a[:, None, None] * p).requires_grad_(True)
        et = energy(active, trial)
        ok = et.detach() <= e + 1e-4 * a * slope  # Armijo condition
        gt = torch.autograd.grad(et.sum(), trial)[0]
        rel = (e - et.detach()) / e.clamp_min(1e-12)
        iters[active] += 1
        x = torch.where(ok[:, None, None], trial.detach(), x)
        g = torch.where(ok[:, None, None], gt, g)
        e_new = torch.where(ok, et.detach(), e)
        step[active] = torch.where(ok, a * 2.0, a * 0.25)
        inner[active] = x
        cur_e[active] = e_new
        if history:
            hist.append(cur_e.clone())
        done = (ok & (rel < tol)) | (-slope < 1e-16) | (step[active] < 1e-10 * scale[active] ** 2 / e.clamp_min(1e-12))
        conv[active[done]] = True
        keep = ~done
        active, x, g, e = active[keep], x[keep], g[keep], e_new[keep]
    return full(torch.arange(B, device=curve.device), inner), conv, iters, hist, cur_e


def rbf_sigma(centers: torch.Tensor, bandwidth: float, zeta: float = 1e-2, scale: float = 1.0) -> Callable:
    """sigma(z) (B, 1) of an RBF precision network (Arvanitidis, Hansen and Hauberg 2018, Sec. 4):

        beta(z) = scale * sum_k exp(-|z - c_k|^2 / (2 h^2)) + zeta,   sigma(z) = beta(z)^(-1/2),

    one value shared by all output dimensions, h = ``bandwidth``; the paper's weights W v(z) are
    here all ``scale``. sigma is small near the centres (which should be *training* latents) and
    tends to zeta^(-1/2) away from them; its gradient, which is what enters the metric, peaks in
    a band about h * sqrt(2 ln(scale / zeta)) from an isolated centre and vanishes both at the
    centre and far beyond the band."""
    c = torch.as_tensor(centers)

    def sigma(z):  # (B, d) -> (B, 1)
        d2 = (z[:, None, :] - c[None].to(z)).pow(2).sum(-1)  # (B, K)
        beta = scale * torch.exp(-d2 / (2 * bandwidth**2)).sum(-1, keepdim=True) + zeta  # (B, 1)
        return beta.rsqrt()

    return sigma


def variance_aware(decode: Decoder, sigma: Callable, weight: float = 1.0) -> Decoder:
    """A decoder whose pull-back metric is the expected metric of the Gaussian decoder
    x ~ N(mu(z), diag(sigma_1(z)^2, ..., sigma_D(z)^2)) (Arvanitidis et al. 2018, Thm. 1):

        M(z) = J_mu^T J_mu + w^2 J_sigma^T J_sigma,     J_sigma the (D, d) Jacobian of (sigma_j)_j,

    w = ``weight`` (1 in the paper). Its output is [mu(z), w * sigma(z)] (B, 2D), so chords and
    Jacobians of it measure exactly this metric. ``sigma`` returns (B, D) (one per output
    dimension) or (B, 1), one value s(z) shared by all D outputs: then J_sigma has D equal rows
    grad s^T and J_sigma^T J_sigma = D grad s grad s^T, so the shared value is output once,
    scaled by sqrt(D) (not once unscaled, which would weigh the uncertainty D times too little)."""

    def f(z):  # (B, d) -> (B, D + D or 1)
        mu = decode(z).reshape(z.shape[0], -1)  # (B, D)
        s = sigma(z).reshape(z.shape[0], -1)  # (B, D) or (B, 1)
        if s.shape[1] == 1:
            s = s * mu.shape[1] ** 0.5
        elif s.shape[1] != mu.shape[1]:
            raise LatentdynError(f"variance_aware: sigma gives {s.shape[1]} values per point; give 1 (shared) or D = {mu.shape[1]}")
        return torch.cat([mu, weight * s], -1)

    return f
