"""The latent predictors (a GRU, or a convolutional GRU over a spatial latent) and ``predict(context, horizon)``.

The model reads a sequence of posterior means mu_t (optionally also their log-variances lv_t and
the step mu_t - mu_{t-1}) of the beta-VAE and, after each step, outputs the distribution of the
next mean, N(m_{t+1}, exp(s_{t+1})), where m_{t+1} = mu_t + delta_t (``residual``) or the
network's output itself, and its guess of the next log-variance (fed back in open loop). The
mean is trained by squared error and the variance, on detached features, by the Gaussian
likelihood: a variance fit jointly with the mean by likelihood drowns the mean's gradient as it
shrinks (Seitzer et al. 2022, "On the pitfalls of heteroscedastic uncertainty estimation"). Training (``dynamics_training``)
combines teacher forcing with an open-loop loss over a horizon, so long rollouts stay stable.

Two cells (``TrainDynamicsConfig.cell``) share that contract: ``gru``, one GRU over the flat
latent vector, and ``convgru``, for a spatial latent (``TrainVAEConfig.latent_channels``): the
latent is read as its maps (c, h, w) and a convolutional GRU (Ballas et al. 2016, "Delving deeper
into convolutional networks for learning video representations", Eq. 4-7; the GRU form of Shi
et al. 2015's ConvLSTM) with ``hidden`` channels per position updates its state map, and
convolutions give the change of each map. Its weights are shared over positions, so a sprite's
motion is learned once for the whole frame rather than separately for every place it can be.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.predictor import _Predictor


class LatentGRU(_Predictor):
    """GRU over latents; (B, T, d) means [+ log-variances] -> next-step predictions (B, T, d) each."""

    def __init__(self, cfg, latent_dim: int):
        """``cfg``: a :class:`latentdyn.dynamics.config.TrainDynamicsConfig` (hidden, layers,
        use_logvar, residual, velocity_input); ``latent_dim``: that of the latents it reads."""
        super().__init__(cfg, latent_dim)
        d = self.latent_dim
        self.gru = nn.GRU(self.n_in, cfg.hidden, cfg.layers, batch_first=True)  # cuDNN on CUDA
        self.head = nn.Linear(cfg.hidden, 2 * d)  # change of mean, next posterior log-variance
        self.var_head = nn.Linear(cfg.hidden, d)  # predictive log-variance, fit on detached features
        nn.init.zeros_(self.head.weight)  # start as "nothing moves": a sane first rollout
        nn.init.zeros_(self.head.bias)

    def core(self, x, h):
        return self.gru(x, h)  # (B, T, hidden), (layers, B, hidden)


class ConvGRUCell(nn.Module):
    """One convolutional GRU step (Ballas et al. 2016, Eq. 4-7), x (B, C_in, h, w), state (B, F, h, w):
    z, r = sigmoid(W * [x, s]); n = tanh(W_x * x + r (W_s * s)); s' = (1 - z) n + z s."""

    def __init__(self, c_in: int, hidden: int, kernel: int):
        super().__init__()
        p = kernel // 2
        self.hidden = hidden
        self.gates = nn.Conv2d(c_in + hidden, 2 * hidden, kernel, padding=p)
        self.cand_x = nn.Conv2d(c_in, hidden, kernel, padding=p)
        self.cand_s = nn.Conv2d(hidden, hidden, kernel, padding=p, bias=False)

    def forward(self, x, s):
        z, r = torch.sigmoid(self.gates(torch.cat([x, s], 1))).chunk(2, 1)  # (B, F, h, w) each
        n = torch.tanh(self.cand_x(x) + r * self.cand_s(s))
        return (1 - z) * n + z * s


class _MapHead(nn.Module):
    """(B, T, F * h * w) features -> (B, T, k * c * h * w): a convolution from the F state maps to
    k groups of c maps, each group flattened channel-major like the latent."""

    def __init__(self, hidden: int, shape: tuple[int, int, int], k: int, kernel: int):
        super().__init__()
        self.shape, self.k, self.hidden = shape, k, hidden
        self.conv = nn.Conv2d(hidden, k * shape[0], kernel, padding=kernel // 2)

    def forward(self, f):
        B, T = f.shape[:2]
        c, h, w = self.shape
        y = self.conv(f.reshape(B * T, self.hidden, h, w))  # (B*T, k*c, h, w)
        return y.view(B, T, self.k, c * h * w).flatten(2)  # (B, T, k*d): group j's maps at [j*d, (j+1)*d)


class LatentConvGRU(_Predictor):
    """Convolutional GRU over a spatial latent's maps; the same inputs and outputs as ``LatentGRU``,
    (B, T, d) flat, read as (B, T, c, h, w) inside."""

    def __init__(self, cfg, latent_shape: tuple[int, ...]):
        if len(latent_shape) != 3:
            raise LatentdynError("cell convgru needs a spatial latent: train the VAE with latent_channels > 0 "
                                 "(or use cell = gru)")
        c, hh, ww = (int(v) for v in latent_shape)
        super().__init__(cfg, c * hh * ww)
        if cfg.kernel % 2 == 0:
            raise LatentdynError(f"kernel {cfg.kernel}: use an odd size")
        self.latent_shape = (c, hh, ww)
        self.groups = 1 + int(cfg.use_logvar) + int(cfg.velocity_input)  # input maps per latent channel group
        F = cfg.hidden
        self.cells = nn.ModuleList(ConvGRUCell(self.groups * c if i == 0 else F, F, cfg.kernel) for i in range(cfg.layers))
        self.head = _MapHead(F, self.latent_shape, 2, cfg.kernel)  # change of mean, next posterior log-variance
        self.var_head = _MapHead(F, self.latent_shape, 1, cfg.kernel)  # predictive log-variance (detached features)
        nn.init.zeros_(self.head.conv.weight)  # start as "nothing moves", as the GRU does
        nn.init.zeros_(self.head.conv.bias)

    def core(self, x, h):
        """x (B, T, groups * d) -> features (B, T, F * h * w) and the state (layers, B, F, h, w)."""
        B, T = x.shape[:2]
        c, hh, ww = self.latent_shape
        F = self.cfg.hidden
        maps = x.view(B, T, self.groups * c, hh, ww)  # the input groups (mean, logvar, step), c maps each
        s = list(h) if h is not None else [x.new_zeros(B, F, hh, ww) for _ in self.cells]
        outs = []
        for t in range(T):
            y = maps[:, t]
            for i, cell in enumerate(self.cells):
                s[i] = y = cell(y, s[i])  # (B, F, h, w)
            outs.append(y)
        return torch.stack(outs, 1).flatten(2), torch.stack(s)  # (B, T, F*h*w), (layers, B, F, h, w)


def make_predictor(cfg, latent_shape: tuple[int, ...]) -> _Predictor:
    """The predictor ``cfg.cell`` names for latents of ``latent_shape`` ((d,) flat, (c, h, w) spatial,
    (n, f) objects)."""
    cell = getattr(cfg, "cell", "gru")
    if cell == "convgru":
        return LatentConvGRU(cfg, latent_shape)
    if cell == "interaction":
        from latentdyn.dynamics.interaction import LatentInteraction

        return LatentInteraction(cfg, latent_shape)
    return LatentGRU(cfg, int(math.prod(latent_shape)))


def predict(model: _Predictor, context_latents, horizon: int, context_logvar=None, samples: int = 0, seed: int = 0):
    """Roll ``model`` forward ``horizon`` steps from context latents (B, K, d) (numpy or torch).

    Returns predicted means (B, H, d), or (S, B, H, d) sampled futures when ``samples > 0``; a
    numpy input gives numpy output. The library call behind ``latentdyn rollout``.
    """
    import numpy as np

    if horizon < 1:
        raise LatentdynError(f"horizon {horizon}: must be at least 1")
    as_numpy = isinstance(context_latents, np.ndarray)
    dev = next(model.parameters()).device
    mu = torch.as_tensor(context_latents, dtype=torch.float32, device=dev)
    if mu.ndim == 2:
        mu = mu[None]
    if mu.shape[-1] != model.latent_dim:
        raise LatentdynError(f"context latents have {mu.shape[-1]} dimensions, the predictor {model.latent_dim}")
    lv = torch.as_tensor(context_logvar, dtype=torch.float32, device=dev) if context_logvar is not None else None
    if lv is not None and lv.ndim == 2:
        lv = lv[None]
    if model.cfg.use_logvar and lv is None:
        raise LatentdynError("this predictor reads log-variances too: pass context_logvar")
    g = torch.Generator(device=dev if dev.type == "cuda" else "cpu").manual_seed(seed)
    model.eval()
    with torch.no_grad():
        out = model.rollout(mu, lv, horizon, samples, g)["mu"]
    return out.cpu().numpy() if as_numpy else out


def load_dynamics(run_dir: str | Path, which: str = "best", device="cpu"):
    """The predictor and config of a dynamics run folder."""
    from latentdyn.core.config import from_dict
    from latentdyn.dynamics.config import TrainDynamicsConfig
    from latentdyn.engine.checkpoint import load_checkpoint

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LatentdynError(f"run folder {run_dir} does not exist; train one with `latentdyn train dynamics`")
    ck = load_checkpoint(run_dir / f"{which}.pt", "dynamics")
    cfg = from_dict(TrainDynamicsConfig, ck["config"])
    model = make_predictor(cfg, tuple(ck["data"].get("latent_shape") or (int(ck["data"]["latent_dim"]),)))
    if ck["data"].get("tuned_vae"):  # the decoder trained with the predictor (latentdyn.dynamics.decoder_tuning)
        from latentdyn.dynamics.decoder_tuning import attach

        attach(model, ck["data"]["tuned_vae"])
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise LatentdynError(f"{run_dir / (which + '.pt')} does not match its own config ({str(e).splitlines()[0][:100]})") from None
    model = model.to(device).eval()
    if hasattr(model, "tuned_vae"):
        model.tuned_vae.requires_grad_(False)
    return model, cfg, ck


def start_from(model, cfg, vae_sha256: str, latent_shape) -> None:
    """Load the predictor weights of the run ``cfg.init`` (a ``TrainDynamicsConfig``) into ``model``;
    a one-line error when that run predicts another VAE's latents or has another cell or size."""
    from latentdyn.engine.checkpoint import load_checkpoint

    path = Path(cfg.init) / "best.pt"
    ck = load_checkpoint(path, "dynamics")
    data = ck.get("data", {})
    if data.get("vae_sha256") != vae_sha256 or list(data.get("latent_shape") or []) != list(latent_shape):
        raise LatentdynError(f"--init {cfg.init} predicts the latents of another VAE or latent shape than {cfg.latents}; "
                             f"start from a run trained on {cfg.latents}")
    weights = {k: v for k, v in ck["model"].items() if not k.startswith("tuned_vae.")}
    try:
        model.load_state_dict(weights)  # before a tuned decoder is attached: the predictor's weights alone
    except RuntimeError as e:
        first = str(e).splitlines()[0][:100]
        raise LatentdynError(f"--init {cfg.init} has another cell or size than this predictor ({first}); give the same "
                             f"--cell, --hidden, --kernel and --layers as that run") from None
