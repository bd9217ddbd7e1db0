"""What every latent predictor shares (``_Predictor``): input and output scales, inputs, outputs and
the open-loop rollout. The cells derive from it: ``LatentGRU`` and ``LatentConvGRU``
(``latentdyn.dynamics.model``) and ``LatentInteraction`` (``latentdyn.dynamics.interaction``)."""

from __future__ import annotations

import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError


class _Predictor(nn.Module):
    """What both cells share: the input and output scales, the inputs, the outputs and the rollout.
    A subclass sets ``self.core`` ((B, T, n_in) inputs and a state -> (B, T, F) features and the new
    state) and ``self.head`` / ``self.var_head`` ((B, T, F) -> (B, T, 2d) and (B, T, d))."""

    def __init__(self, cfg, latent_dim: int):
        super().__init__()
        if latent_dim < 1:
            raise LatentdynError(f"latent_dim {latent_dim}: must be at least 1")
        self.cfg = cfg
        self.latent_dim = d = int(latent_dim)
        self.n_in = d * (1 + int(cfg.use_logvar) + int(cfg.velocity_input))
        # input and output scales, from the training latents (``fit_scales``); saved with the weights
        self.register_buffer("mu_mean", torch.zeros(d))
        self.register_buffer("mu_std", torch.ones(d))
        self.register_buffer("step_std", torch.ones(d))

    @torch.no_grad()
    def fit_scales(self, mu: torch.Tensor) -> None:
        """Standardise inputs by the training latents mu (N, T, d): means, spreads, and step sizes."""
        flat = mu.reshape(-1, mu.shape[-1])
        self.mu_mean.copy_(flat.mean(0))
        self.mu_std.copy_(flat.std(0).clamp_min(1e-6) if len(flat) > 1 else torch.ones_like(self.mu_std))
        steps = (mu[:, 1:] - mu[:, :-1]).reshape(-1, mu.shape[-1])
        self.step_std.copy_(steps.pow(2).mean(0).sqrt().clamp_min(1e-6) if len(steps) else torch.ones_like(self.step_std))

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor | None = None, h: torch.Tensor | None = None,
                prev: torch.Tensor | None = None):
        """Teacher-forced: inputs (B, T, d); returns next mean, predictive log-variance and next
        posterior log-variance, each (B, T, d) (entry t predicts t+1), and the hidden state.
        ``prev`` (B, 1, d) is the latent before ``mu[:, 0]`` (for the velocity input; None: at rest)."""
        parts = [(mu - self.mu_mean) / self.mu_std]
        if self.cfg.use_logvar:
            parts.append(0.1 * logvar if logvar is not None else torch.zeros_like(mu))
        if self.cfg.velocity_input:
            before = torch.cat([mu[:, :1] if prev is None else prev, mu[:, :-1]], 1)  # (B, T, d)
            parts.append((mu - before) / self.step_std)
        out, h = self.core(torch.cat(parts, -1), h)  # (B, T, F)
        step, lv_step = self.head(out).chunk(2, -1)  # (B, T, d) each
        delta = step * self.step_std if self.cfg.residual else step * self.mu_std + self.mu_mean
        lv_next = (logvar if logvar is not None else torch.zeros_like(mu)) + lv_step  # log-variances change slowly too
        s = self.var_head(out.detach())  # (B, T, d): the uncertainty never pulls on the mean's features
        mean = mu + delta if self.cfg.residual else delta
        return mean, s.clamp(-12.0, 6.0), lv_next.clamp(-30.0, 20.0), h

    def rollout(self, mu: torch.Tensor, logvar: torch.Tensor | None, horizon: int, samples: int = 0,
                generator: torch.Generator | None = None, project=None) -> dict:
        """Warm up on the context (B, K, d), then feed back predictions for ``horizon`` steps.

        Returns {'mu': (B, H, d) means, 'logvar': (B, H, d) predictive log-variances} for
        ``samples == 0``; otherwise 'mu' is (S, B, H, d): S futures sampled from the predictive
        Gaussians, each fed back as it is drawn. ``project`` (optional) maps each step's latent
        (B', 1, d) to (latent, posterior log-variance), each (B', 1, d), before it is recorded and
        fed back: the rollout's re-encoding (decode, then encode), see ``RolloutConfig.reencode``.
        """
        lv = logvar if logvar is not None else torch.zeros_like(mu)
        if samples:
            S, B, d = samples, mu.shape[0], mu.shape[2]
            mu = mu.repeat(S, 1, 1)  # (S*B, K, d)
            lv = lv.repeat(S, 1, 1)
        mean, s, lv_next, h = self(mu, lv)  # warm-up on the context
        m, v, lvn = mean[:, -1:], s[:, -1:], lv_next[:, -1:]  # (B', 1, d)
        prev = mu[:, -1:]
        outs, vs = [], []
        for _ in range(horizon):
            z = m + (0.5 * v).exp() * torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype) if samples else m
            if project is not None:
                z, lvn = project(z)  # (B', 1, d) each: back where the encoder puts decoded frames
            outs.append(z)
            vs.append(v)
            m, v, lvn, h = self(z, lvn, h, prev)  # one step on its own prediction
            prev = z
        mu_out = torch.cat(outs, 1)  # (B', H, d)
        lv_out = torch.cat(vs, 1)
        if samples:
            return {"mu": mu_out.view(S, B, horizon, d), "logvar": lv_out.view(S, B, horizon, d)}
        return {"mu": mu_out, "logvar": lv_out}
