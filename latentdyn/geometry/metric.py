"""Latent geometry under the decoder's pull-back metric.

A decoder f: R^d -> R^D makes the latent space a Riemannian manifold with the pull-back metric
M(z) = J(z)^T J(z), J the Jacobian of f (Arvanitidis, Hansen and Hauberg 2018, "Latent space
oddity: on the curvature of deep generative models"; Shao, Kumar and Fletcher 2018, "The
Riemannian geometry of deep generative models"). Curves are measured in output space:

    length L(c) = sum_i |f(c_{i+1}) - f(c_i)|,
    energy E(c) = (n - 1) / 2 * sum_i |f(c_{i+1}) - f(c_i)|^2      (1/2 int |d/dt f(c(t))|^2 dt, dt = 1/(n-1))

so L^2 <= 2E, with equality for constant speed. A geodesic minimises E between fixed ends.
``connecting_geodesic`` does so for a batch of end-point pairs at once: descent on the interior
points along the Laplacian-preconditioned (Sobolev) gradient with a per-pair backtracking
(Armijo) line search, so each pair's energy never rises; coarse-to-fine refinement of the curve (few points first, then doubled); and per-pair
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
    """Length and energy (each (B,)) of curves (B, n, d) measured in output space."""
    x = _flat(decode, curve)  # (B, n, D)
    step = (x[:, 1:] - x[:, :-1]).pow(2).sum(-1)  # (B, n-1) squared output-space steps
    n = curve.shape[1]
    return step.sqrt().sum(1), 0.5 * (n - 1) * step.sum(1)


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


def reparametrize(decode: Decoder, curve: torch.Tensor, n: int | None = None) -> torch.Tensor:
    """Resample curves (B, n, d) to constant speed in output space (equal decoded steps)."""
    n = n or curve.shape[1]
    with torch.no_grad():
        fine = _refine(curve, max(4 * curve.shape[1], n))  # (B, m, d)
        x = _flat(decode, fine)  # (B, m, D)
        s = torch.cat([torch.zeros_like(x[:, :1, 0]), (x[:, 1:] - x[:, :-1]).norm(dim=-1).cumsum(1)], 1)  # (B, m)
        total = s[:, -1:].clamp_min(1e-12)
        targets = torch.linspace(0, 1, n, dtype=curve.dtype, device=curve.device)[None] * total  # (B, n)
        idx = torch.searchsorted(s.contiguous(), targets.contiguous()).clamp(1, fine.shape[1] - 1)  # (B, n)
        s0, s1 = s.gather(1, idx - 1), s.gather(1, idx)
        w = ((targets - s0) / (s1 - s0).clamp_min(1e-12)).clamp(0, 1)[..., None]  # (B, n, 1)
        g = lambda j: fine.gather(1, j[..., None].expand(-1, -1, fine.shape[-1]))  # noqa: E731
        out = g(idx - 1) * (1 - w) + g(idx) * w
        out[:, 0], out[:, -1] = curve[:, 0], curve[:, -1]
    return out


def connecting_geodesic(
    decode: Decoder, z0: torch.Tensor, z1: torch.Tensor, n_points: int = 32, max_iter: int = 300,
    tol: float = 1e-3, coarse: int = 8, constant_speed: bool = True, history: bool = False,
) -> dict:
    """Energy-minimising curves between z0[k] and z1[k] (each (B, d)) under the pull-back metric.

    A pair has converged when an accepted step lowers its energy by less than ``tol`` (relative).
    Returns {'curve' (B, n, d), 'length', 'energy', 'line_length', 'line_energy' (B,),
    'converged' (B,) bool, 'iterations' (B,), 'decoder_passes' int, and 'energy_history' (list of
    (B,) tensors, when ``history``)}. ``decode`` is any differentiable torch callable (B, d) -> (B, ...).
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
    line = straight_line(z0, z1, n_points)
    with torch.no_grad():
        line_len, line_en = curve_length_energy(decode, line)
    passes = [0]

    def decode_counted(z):  # (b, k, d) -> (b, k, D)
        passes[0] += z.shape[0] * z.shape[1]
        return _flat(decode, z)

    levels, m = [], max(3, min(coarse, n_points))
    while m < n_points:
        levels.append(m)
        m = 2 * m
    levels.append(n_points)  # e.g. 8 -> 16 -> 32 points
    curve = straight_line(z0, z1, levels[0])
    converged = torch.zeros(B, dtype=torch.bool, device=z0.device)
    iters = torch.zeros(B, dtype=torch.long, device=z0.device)
    hist: list[torch.Tensor] = []
    for level, m in enumerate(levels):
        if level:
            curve = _refine(curve, m)
        final = level == len(levels) - 1
        budget = max_iter if final else max(20, max_iter // 4)
        curve, conv, it, h = _descend(decode_counted, curve, budget, tol, history and final)
        iters += it
        hist += h
        if final:
            converged = conv
    with torch.no_grad():
        if constant_speed:
            curve = reparametrize(decode, curve, n_points)
        length, en = curve_length_energy(decode, curve)
        # a pair whose discretised solution came out longer than the straight line (a solver that
        # stopped on a plateau, or discretisation error) gets the straight line: never worse than it
        worse = length > line_len
        if worse.any():
            curve = torch.where(worse[:, None, None], line, curve)
            length, en = torch.where(worse, line_len, length), torch.where(worse, line_en, en)
    out = {"curve": curve.detach(), "length": length, "energy": en, "line_length": line_len, "line_energy": line_en,
           "converged": converged, "iterations": iters, "decoder_passes": passes[0]}
    if history:
        out["energy_history"] = hist
    return out


def _laplacian_inverse(k: int, dtype, device) -> torch.Tensor:
    """Inverse of the k x k discrete Laplacian tridiag(-1, 2, -1) (Dirichlet ends)."""
    L = 2 * torch.eye(k, dtype=dtype, device=device) - torch.diag(torch.ones(k - 1, dtype=dtype, device=device), 1)
    L = L - torch.diag(torch.ones(k - 1, dtype=dtype, device=device), -1)
    return torch.linalg.inv(L)


def _descend(decode, curve: torch.Tensor, max_iter: int, tol: float, history: bool):
    """Preconditioned descent on the interior points, per pair, with an Armijo line search.

    The energy's Hessian in the interior points is close to (n - 1) L (x) M, L the discrete
    Laplacian along the curve: stepping along L^-1 g (a Sobolev gradient) instead of g removes
    the curve's stiffness, so a few dozen steps do what plain gradient descent needs thousands
    for. The line search accepts a step only if the energy falls enough (Armijo), so each pair's
    energy never rises; converged pairs leave the batch.
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
    return full(torch.arange(B, device=curve.device), inner), conv, iters, hist


def rbf_sigma(centers: torch.Tensor, bandwidth: float, zeta: float = 1e-2, scale: float = 1.0) -> Callable:
    """sigma(z) of an RBF precision network: beta(z) = scale * sum_k exp(-|z - c_k|^2 / (2 h^2)) + zeta,
    sigma = beta^(-1/2): small near the data (the centres), large away from it (Arvanitidis et al.
    2018, Sec. 4)."""
    c = torch.as_tensor(centers)

    def sigma(z):  # (B, d) -> (B, 1)
        d2 = (z[:, None, :] - c[None].to(z)).pow(2).sum(-1)  # (B, K)
        beta = scale * torch.exp(-d2 / (2 * bandwidth**2)).sum(-1, keepdim=True) + zeta
        return beta.rsqrt()

    return sigma


def variance_aware(decode: Decoder, sigma: Callable, weight: float = 1.0) -> Decoder:
    """A decoder whose output is [mean(z), weight * sigma(z)]: its pull-back metric is the expected
    metric J_mu^T J_mu + J_sigma^T J_sigma of a Gaussian decoder, which grows where data are absent."""

    def f(z):
        mu = decode(z).reshape(z.shape[0], -1)
        return torch.cat([mu, weight * sigma(z).reshape(z.shape[0], -1)], -1)

    return f
