"""The interaction predictor (``cell = "interaction"``): one state per object, pairwise messages.

It reads latents of ``latent_shape == (n, f)``: n objects of f features each, flattened object-major
(the state oracle's (x, y, vx, vy) per ball, ``latentdyn.latents.states``, or a slot VAE's slots).
Each step, every object i is encoded from its own inputs (standardised features, their change since
the last step, optionally its posterior log-variances), receives the sum of messages from every
other object j, computed by one network with shared weights from both encodings and their
differences, and updates a recurrent state of its own with a GRU cell shared by all objects; a head
reads the change of its features (a residual update) and its predictive and next posterior
log-variances from that state. Every weight is shared over objects and the messages are summed, so
permuting the objects permutes the predictions (permutation-equivariant, tested).

This is the Interaction Network of Battaglia et al. 2016 ("Interaction networks for learning about
objects, relations and physics", Eq. 1-2: relational model f_R on pairs, aggregation by sum, object
model f_O) with a recurrent object model, as Visual Interaction Networks (Watters et al. 2017) and
STOVE (Kossen et al. 2020) carry each object's state through time. Training adds noise to the
inputs (``latent_noise``; Sanchez-Gonzalez et al. 2020) and may grow the open-loop horizon over
the epochs (``horizon_curriculum``), both in ``latentdyn.dynamics.train``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.predictor import _Predictor


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out))


class _ObjectHead(nn.Module):
    """Per-object features (B, T, n * F) -> (B, T, k * n * f): k groups, each flattened object-major
    like the latent (group j at [j * n * f, (j + 1) * n * f))."""

    def __init__(self, hidden: int, n: int, f: int, k: int):
        super().__init__()
        self.n, self.f, self.k, self.hidden = n, f, k, hidden
        self.linear = nn.Linear(hidden, k * f)

    def forward(self, feats):
        B, T = feats.shape[:2]
        y = self.linear(feats.view(B, T, self.n, self.hidden))  # (B, T, n, k*f)
        y = y.view(B, T, self.n, self.k, self.f).transpose(2, 3)  # (B, T, k, n, f)
        return y.reshape(B, T, self.k * self.n * self.f)


class LatentInteraction(_Predictor):
    """Interaction network over n objects of f features; the same inputs and outputs as ``LatentGRU``
    ((B, T, d) flat, d = n * f), read as (B, T, n, f) inside. ``cfg.hidden`` is the width of each
    object's state and of the message network."""

    def __init__(self, cfg, latent_shape: tuple[int, ...]):
        if len(latent_shape) != 2:
            raise LatentdynError(f"cell interaction needs object-factored latents, latent_shape (objects, features), "
                                 f"not {tuple(latent_shape)}: use state latents (latentdyn encode --states) or a slot VAE's "
                                 "(or use cell = gru)")
        n, f = (int(v) for v in latent_shape)
        super().__init__(cfg, n * f)
        self.latent_shape = (n, f)
        self.groups = 1 + int(cfg.use_logvar) + int(cfg.velocity_input)  # input groups per object: mean, logvar, step
        F = cfg.hidden
        g = self.groups * f
        self.encode_object = _mlp(g, F, F)  # f_O's input encoder: one object's inputs -> (F,)
        # f_R: an MLP on (h_i, h_j, x_i - x_j) -> the message from j to i; its first layer is applied to
        # each object's encoding once and summed per pair (the same function, n times fewer products)
        self.rel_i, self.rel_j = nn.Linear(F, F), nn.Linear(F, F, bias=False)
        self.rel_d = nn.Linear(g, F, bias=False)
        self.relation = nn.Sequential(nn.SiLU(), nn.Linear(F, F), nn.SiLU(), nn.Linear(F, F))
        self.cell = nn.GRUCell(2 * F, F)  # each object's state, updated from its encoding and its summed messages
        self.head = _ObjectHead(F, n, f, 2)  # change of features, next posterior log-variance
        self.var_head = _ObjectHead(F, n, f, 1)  # predictive log-variance (detached features)
        nn.init.zeros_(self.head.linear.weight)  # start as "nothing moves", as the GRU does
        nn.init.zeros_(self.head.linear.bias)
        eye = torch.eye(n, dtype=torch.bool)
        self.register_buffer("pair_i", (~eye).nonzero()[:, 0], persistent=False)  # (n(n-1),) receivers
        self.register_buffer("pair_j", (~eye).nonzero()[:, 1], persistent=False)  # (n(n-1),) senders

    @torch.no_grad()
    def fit_scales(self, mu: torch.Tensor) -> None:
        """Scales shared by all objects (one per feature, pooled over objects), so that no object is
        told apart by its scale and the model stays permutation-equivariant."""
        n, f = self.latent_shape
        objs = mu.reshape(*mu.shape[:-1], n, f)  # (N, T, n, f)
        flat = objs.reshape(-1, f)
        self.mu_mean.copy_(flat.mean(0).repeat(n))
        self.mu_std.copy_((flat.std(0).clamp_min(1e-6) if len(flat) > 1 else torch.ones(f)).repeat(n))
        steps = (objs[:, 1:] - objs[:, :-1]).reshape(-1, f)  # (N*(T-1)*n, f)
        self.step_std.copy_((steps.pow(2).mean(0).sqrt().clamp_min(1e-6) if len(steps) else torch.ones(f)).repeat(n))

    def core(self, x, h):
        """x (B, T, groups * n * f) -> features (B, T, n * F) and the state (B, n, F)."""
        B, T = x.shape[:2]
        n, f = self.latent_shape
        F = self.cfg.hidden
        objs = x.view(B, T, self.groups, n, f).transpose(2, 3).reshape(B, T, n, self.groups * f)  # (B, T, n, g)
        s = h if h is not None else x.new_zeros(B, n, F)
        outs = []
        for t in range(T):
            xt = objs[:, t]  # (B, n, g)
            e = self.encode_object(xt)  # (B, n, F)
            pre = (self.rel_i(e)[:, self.pair_i] + self.rel_j(e)[:, self.pair_j]
                   + self.rel_d(xt[:, self.pair_i] - xt[:, self.pair_j]))  # (B, P, F): first layer on each pair
            msg = e.new_zeros(B, n, F).index_add_(1, self.pair_i, self.relation(pre))  # (B, n, F): sum over senders
            s = self.cell(torch.cat([e, msg], -1).reshape(B * n, 2 * F), s.reshape(B * n, F)).view(B, n, F)
            outs.append(s)
        return torch.stack(outs, 1).flatten(2), s  # (B, T, n*F), (B, n, F)
