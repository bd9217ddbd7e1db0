"""An object-slot VAE (``TrainVAEConfig.arch = "slots"``): a latent of K slots, one object each, kept
in the same slot from frame to frame.

Encoder: two convolutions give features at every second pixel, a linear embedding of each
position is added, and Slot Attention (Locatello et al. 2020, "Object-centric learning with Slot
Attention", Algorithm 1) lets K slots compete for them: the softmax over slots makes each pixel's
attention a share among the slots, each slot takes the attention-weighted mean of the values and
a GRU and a residual MLP update it. Keys and values are read in each slot's own frame of
reference (Biza et al. 2023, "Invariant Slot Attention", Algorithm 1, translation only): a slot
has a position, sees the pixels at their positions relative to it, and moves to the centroid of
its attention after each iteration. A linear head gives each slot's D means and log-variances:
the first two means are its position (x, y) in [-1, 1] frame units (the centroid plus a learned
shift), the other D - 2 its appearance; q(z|x) = prod_k N(z_k; mu_k, diag exp(logvar_k)), with
the latent flattened object-major: slot k holds dimensions [k D, (k + 1) D) of the d = K D
columns of a latents file, and the file's ``latent_shape`` is (K, D).

Slots carried over time (SAVi, Kipf et al. 2022, "Conditional object-centric learning from
video", Sec. 3): the initial slots of frame t are made from the previous frame's posterior
means, init_t = g(mu_{t-1}) (an MLP shared by the slots), and the first frame's from K learned
latent vectors, init_0 = g(q) (learned initial slots in place of Algorithm 1's random draw, as
Jia et al. 2023, BO-QSA, do: q(z|x) is then a function of the frames, with no noise of its own).
Slot k starts where slot k ended and attends to the pixels of the object it held, so it keeps
that object. ``encode_sequence`` runs the frames of each sequence in order (batched over
sequences); a frame encoded alone (``encode``) starts from g(q). Training reads clips of
``CLIP`` consecutive frames and back-propagates through the carry; the model is selected on the
val split's clips encoded the same way (``latentdyn.vae.train``).

Decoder: the spatial broadcast decoder (Watters et al. 2019, "Spatial broadcast decoder") applied
to each slot: the slot's appearance is tiled over the frame, an embedding of each pixel's position
relative to the slot's is added (Biza et al. 2023), and a per-pixel MLP gives the likelihood's
maps and a mask logit; the masks are a softmax over slots, and the slots' maps
are composed through them, sum_k m_k(p) out_k(p) (Locatello et al. 2020, Sec. 2.2), into one
output map (P * C, H, W) that the model's likelihood scores as usual. With ``slot_decoder = "sprite"``
(``SpriteDecoder``) a slot is drawn instead as a sprite whose shape does not depend on where it is:
a small convolutional decoder draws maps and an opacity from the appearance, a spatial
transformer (Jaderberg et al. 2015, as AIR's "what" and "where", Eslami et al. 2016) pastes them
at the slot's position, and the opacities compose the slots over a learned background.

Objective: the beta-VAE's (``latentdyn.vae.model``) with p(z) = N(0, I) over all K D dimensions,
so beta weights every slot's KL alike and the KL is the sum of the slots'. p(x|z) is the
configured likelihood with parameters a deterministic function of z, so the ELBO (beta = 1) and
the importance-weighted bound are true bounds on log p(x) of each frame, whether its posterior
was made from the frame alone or carried from the frames before it (any q gives a bound).
Prior and decoder are symmetric in the slots: permuting the slots of z leaves p(z) and p(x|z)
unchanged, and permuting the initial slots permutes the encoder's output alike.

Written here rather than taken from PyPI's ``slot-attention`` package: that one draws its
initial slots from the global random state with no way to pass them in (no carry-over, no
seed), and brings einops, einx and vector-quantize-pytorch for a 40-line loop.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from latentdyn.core.errors import LatentdynError
from latentdyn.vae.config import check_slots
from latentdyn.vae.model import BetaVAE, _fp32, decoder_maps

CLIP = 4  # consecutive frames per training clip: the carry is trained over 3 hand-overs
ITERS_FIRST = 3  # attention iterations on a frame started from the learned slots (Locatello et al. 2020: 3)
ITERS_CARRIED = 1  # on a frame started from the previous frame's slots (SAVi, Kipf et al. 2022: 1 per frame);
# the encoder must run the count it was trained with (measured: 2 or 3 on a model trained with 1 lose every ball)
LIGHT_FLOOR = 1e-3  # slot_centroid light: the weight of a black pixel, so a slot over darkness still has a centroid
DELTA = 0.25  # relative positions are read in units of an eighth of the frame (Biza et al. 2023's delta)


def auto_slot_width(shape: tuple[int, int, int]) -> int:
    """The slot model's width (features, slot and hidden units) when ``width`` = 0: 32, measured on
    three_balls (docs/results.md, "Object slots")."""
    return 32


def grid(h: int, w: int) -> torch.Tensor:
    """(h * w, 2): each pixel centre's (x, y) in [-1, 1] (the first and last pixel centres at -1 and 1), row-major."""
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return torch.stack([xs, ys], -1).reshape(h * w, 2)


class SlotAttention(nn.Module):
    """Slot Attention (Locatello et al. 2020, Algorithm 1) in slot-centric frames of reference
    (Biza et al. 2023, "Invariant Slot Attention", Algorithm 1, translation only): each slot has a
    position c_k, keys and values are read at the pixels' positions relative to it,
    k_kn = f(W_k x_n + g((p_n - c_k) / delta)) (v alike), and after each iteration c_k becomes the
    attention-weighted mean of the pixel positions."""

    def __init__(self, dim: int, hidden: int, eps: float = 1e-8):
        super().__init__()
        self.eps, self.scale = eps, dim ** -0.5
        self.norm_in, self.norm_slots, self.norm_mlp = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q, self.k, self.v = nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False), nn.Linear(dim, dim, bias=False)
        self.rel = nn.Linear(2, dim)  # g
        self.f = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.gru = nn.GRUCell(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, inputs: torch.Tensor, where: torch.Tensor, slots: torch.Tensor, pos: torch.Tensor, iters: int,
                light: torch.Tensor | None = None):
        """inputs (B, N, S) at positions ``where`` (N, 2); initial slots (B, K, S) at ``pos`` (B, K, 2)
        -> slots (B, K, S), positions (B, K, 2) and the last attention (B, K, N) (shares over slots).
        ``light`` (B, N) > 0: the positions become the centroids of each slot's attention times the light
        at each position (``slot_centroid = "light"``) rather than of its attention alone."""
        B, K, S = slots.shape
        x = self.norm_in(inputs)
        kx, vx = self.k(x)[:, None], self.v(x)[:, None]  # (B, 1, N, S) each
        for _ in range(iters):
            r = self.rel((where - pos[:, :, None]) / DELTA)  # (B, K, N, S)
            k, v = self.f(kx + r), self.f(vx + r)  # (B, K, N, S) each
            q = self.q(self.norm_slots(slots))  # (B, K, S)
            attn = torch.softmax(torch.einsum("bks,bkns->bkn", q, k) * self.scale, dim=1) + self.eps  # (B, K, N)
            w = attn / attn.sum(-1, keepdim=True)  # (B, K, N): a weighted mean over pixels
            updates = torch.einsum("bkn,bkns->bks", w, v)  # (B, K, S)
            if light is None:
                pos = w @ where  # (B, K, 2)
            else:
                wl = attn * light[:, None]  # (B, K, N)
                pos = (wl / wl.sum(-1, keepdim=True)) @ where  # (B, K, 2): the centroid of the slot's light
            slots = self.gru(updates.reshape(B * K, S), slots.reshape(B * K, S)).view(B, K, S)
            slots = slots + self.mlp(self.norm_mlp(slots))  # (B, K, S)
        return slots, pos, attn


class SlotEncoder(nn.Module):
    """x (B, C, H, W) [and the previous frame's means (B, K D)] -> (B, 2 K D): the K slots' means,
    then their log-variances, each flattened object-major. A slot's first two dimensions are its
    position (x, y) in [-1, 1] frame units, the other D - 2 its appearance."""

    def __init__(self, shape: tuple[int, int, int], K: int, D: int, width: int, light: bool = False):
        super().__init__()
        C, H, W = shape
        S = width
        self.K, self.D, self.S, self.light = K, D, S, light
        # (B, C, H, W) -> (B, S, ceil(H/2), ceil(W/2)): features at every second pixel
        self.conv = nn.Sequential(nn.Conv2d(C, S, 5, padding=2), nn.ReLU(), nn.Conv2d(S, S, 3, 2, padding=1), nn.ReLU())
        h2, w2 = math.ceil(H / 2), math.ceil(W / 2)
        ys = torch.arange(h2) * 2 * (2 / max(1, H - 1)) - 1  # the stride-2 outputs' centres, pixel 2i, in frame units
        xs = torch.arange(w2) * 2 * (2 / max(1, W - 1)) - 1
        where = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(h2 * w2, 2)  # (N, 2) (x, y), row-major
        self.register_buffer("where", where, persistent=False)
        self.pos = nn.Linear(2, S)
        self.mlp = nn.Sequential(nn.LayerNorm(S), nn.Linear(S, S), nn.ReLU(), nn.Linear(S, S))
        self.attention = SlotAttention(S, 2 * S)
        start = torch.randn(K, D)
        start[:, :2] = torch.rand(K, 2) * 1.6 - 0.8  # positions spread over the frame
        self.start = nn.Parameter(start)  # q: the learned latents the first frame's slots are made from
        self.init = nn.Sequential(nn.Linear(D, S), nn.ReLU(), nn.Linear(S, S))  # g: latents -> initial slots
        self.head = nn.Sequential(nn.LayerNorm(S), nn.Linear(S, 2 * D))  # slot -> (shift, appearance, logvar)
        nn.init.zeros_(self.head[1].weight[:2])  # the position starts at the attention's centroid
        nn.init.zeros_(self.head[1].bias[:2])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> the attention's inputs (B, N, S) at ``self.where``."""
        f = self.conv(x).flatten(2).transpose(1, 2)  # (B, N, S)
        return self.mlp(f + self.pos(self.where))  # (B, N, S)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None, attention: bool = False):
        B = x.shape[0]
        K, D = self.K, self.D
        start = self.start.expand(B, K, D) if prev is None else prev.reshape(B, K, D)  # (B, K, D)
        start = start.to(x.dtype)
        light = None
        if self.light:  # each feature position's light, the frame's channels averaged over its 2 x 2 pixels
            light = nn.functional.avg_pool2d(x.mean(1, keepdim=True), 2, ceil_mode=True).flatten(1) + LIGHT_FLOOR
        slots, pos, attn = self.attention(self.features(x), self.where, self.init(start), start[..., :2],
                                          ITERS_FIRST if prev is None else ITERS_CARRIED, light)  # (B, K, S), (B, K, 2)
        h = self.head(slots)  # (B, K, 2D)
        mu = torch.cat([pos + h[..., :2], h[..., 2:D]], -1)  # (B, K, D): position, appearance
        out = torch.cat([mu.flatten(1), h[..., D:].flatten(1)], 1)  # (B, 2 K D)
        return (out, attn) if attention else out


class SlotDecoder(nn.Module):
    """z (B, K D) -> the composed output map (B, P C, H, W): a spatial broadcast decoder per slot
    (Watters et al. 2019) over the pixels' positions relative to the slot's (Biza et al. 2023),
    composed through masks softmax-normalised over the slots."""

    def __init__(self, shape: tuple[int, int, int], K: int, D: int, width: int, maps: int):
        super().__init__()
        C, H, W = shape
        F = width
        self.K, self.D, self.H, self.W, self.out = K, D, H, W, maps * C
        self.register_buffer("grid", grid(H, W), persistent=False)  # (H*W, 2)
        self.embed, self.rel = nn.Linear(D - 2, F), nn.Linear(2, F)
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(F, F), nn.ReLU(), nn.Linear(F, F), nn.ReLU(), nn.Linear(F, self.out + 1))

    def components(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, K D) -> each slot's maps (B, K, P C, H, W) and its mask (B, K, 1, H, W), summing to 1 over K."""
        B = z.shape[0]
        K, H, W = self.K, self.H, self.W
        zk = z.view(B, K, 1, self.D)
        e = self.embed(zk[..., 2:]) + self.rel((self.grid - zk[..., :2]) / DELTA)  # (B, K, H*W, F)
        y = self.mlp(e).view(B, K, H, W, self.out + 1).permute(0, 1, 4, 2, 3)  # (B, K, P*C+1, H, W)
        return y[:, :, :-1], torch.softmax(y[:, :, -1:], dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        maps, masks = self.components(z)  # (B, K, P*C, H, W), (B, K, 1, H, W)
        return (masks * maps).sum(1)  # (B, P*C, H, W)


class SpriteDecoder(nn.Module):
    """z (B, K D) -> the composed output map (B, P C, H, W), each slot drawn as a sprite: a small
    convolutional decoder turns the slot's appearance into maps and an opacity on a 32 x 32
    canvas, and a spatial transformer (Jaderberg et al. 2015; the "what" and "where" of AIR, Eslami
    et al. 2016) pastes it centred on the slot's position, covering ``scale`` of the frame's side.
    The slots' opacities a_k and a learned background weight compose them over a learned background
    map, m_k = a_k / (sum_j a_j + w_bg): where no sprite lies, the background shows. A slot's
    appearance does not depend on its position, so a slot that moves keeps its shape by construction."""

    def __init__(self, shape: tuple[int, int, int], K: int, D: int, width: int, maps: int, scale: float):
        super().__init__()
        C, H, W = shape
        F = width
        self.K, self.D, self.H, self.W, self.F, self.out, self.scale = K, D, H, W, F, maps * C, float(scale)
        self.fc = nn.Sequential(nn.Linear(D - 2, 2 * F), nn.ReLU(), nn.Linear(2 * F, F * 4 * 4))
        up = []
        for _ in range(3):  # a 4 x 4 seed -> the 32 x 32 canvas, resampled to the sprite's size in the frame
            up += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(F, F, 3, padding=1), nn.ReLU()]
        self.up = nn.Sequential(*up, nn.Conv2d(F, self.out + 1, 3, padding=1))
        # the background's maps, one value per map, starting dark (every latentdyn scene's background: the
        # likelihoods' means are sigmoids of their first maps, and a Gaussian's sigma small): at 0 they drew
        # grey, and Adam's steps of about lr per step took thousands of steps to darken them
        self.background = nn.Parameter(torch.full((self.out,), -4.0))
        self.bg_logit = nn.Parameter(torch.tensor(-3.0))  # log w_bg: an opaque sprite (a = 1) outweighs it 20:1

    def components(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, K D) -> each slot's maps (B, K, P*C, H, W) and its mask (B, K, 1, H, W); the masks sum to
        at most 1 over K, the background taking the rest."""
        B = z.shape[0]
        K, D, H, W, s = self.K, self.D, self.H, self.W, self.scale
        zk = z.reshape(B * K, D)
        canvas = self.up(self.fc(zk[:, 2:]).view(B * K, self.F, 4, 4))  # (B*K, P*C+1, 32, 32)
        # output pixel u (frame units, [-1, 1] at the first and last pixel centres, as ``grid``) reads the
        # sprite at (u - p) / s: theta = [[1/s, 0, -p_x/s], [0, 1/s, -p_y/s]]
        theta = torch.zeros(B * K, 2, 3, dtype=z.dtype, device=z.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / s
        theta[:, :, 2] = -zk[:, :2] / s
        where = nn.functional.affine_grid(theta, [B * K, 1, H, W], align_corners=True)  # (B*K, H, W, 2)
        maps = nn.functional.grid_sample(canvas[:, :-1], where, align_corners=True)  # (B*K, P*C, H, W)
        alpha = nn.functional.grid_sample(torch.sigmoid(canvas[:, -1:]), where, align_corners=True)  # 0 outside
        alpha = alpha.view(B, K, 1, H, W)
        return maps.view(B, K, self.out, H, W), alpha / (alpha.sum(1, keepdim=True) + self.bg_logit.exp())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        maps, masks = self.components(z)  # (B, K, P*C, H, W), (B, K, 1, H, W)
        bg = self.background.view(1, -1, 1, 1).to(maps.dtype)
        return (masks * maps).sum(1) + (1 - masks.sum(1)) * bg  # (B, P*C, H, W)


def build_slots(cfg, shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module]:
    """The slot encoder and decoder for input (C, H, W), each wrapped in a one-module ``nn.Sequential``
    (the form ``BetaVAE`` runs its halves in)."""
    check_slots(cfg)
    w = int(cfg.width) if cfg.width else auto_slot_width(shape)
    K, D = int(cfg.slots), int(cfg.slot_dim)
    encoder = SlotEncoder(shape, K, D, w, getattr(cfg, "slot_centroid", "attention") == "light")  # first: the
    # order the weights draw from the seed
    if getattr(cfg, "slot_decoder", "broadcast") == "sprite":
        decoder: nn.Module = SpriteDecoder(shape, K, D, w, decoder_maps(cfg.likelihood), cfg.sprite_scale)
    else:
        decoder = SlotDecoder(shape, K, D, w, decoder_maps(cfg.likelihood))
    return nn.Sequential(encoder), nn.Sequential(decoder)


class SlotVAE(BetaVAE):
    """The beta-VAE with a latent of K slots of D dimensions (``latent_shape`` = (K, D)); every
    BetaVAE method works on the flat (B, K D) latent, and frames may come as clips (B, L, C, H, W)."""

    carries_slots = True

    def build_networks(self, cfg, shape: tuple[int, int, int], context: int) -> tuple[nn.Module, nn.Module]:
        return build_slots(cfg, shape)

    @property
    def slot_encoder(self) -> SlotEncoder:
        return self.encoder[0]

    @property
    def slot_decoder(self) -> SlotDecoder | SpriteDecoder:
        return self.decoder[0]

    def posterior(self, x: torch.Tensor, prev: torch.Tensor | None = None):
        """x (B, C, H, W) -> mu, logvar (B, K D) each and None (no IAF context); ``prev``: the previous
        frame's posterior means (B, K D) the slots start from (None: the learned start)."""
        with _fp32(x):  # the whole encoder in float32, as BetaVAE runs its output layer
            h = self.slot_encoder(x.float(), prev.float() if prev is not None else None)  # (B, 2 K D)
        d = self.latent_dim
        return h[:, :d], h[:, d:].clamp(-30.0, 20.0), None

    def encode(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) -> posterior mean and log-variance (B, K D); ``prev`` as in ``posterior``."""
        mu, logvar, _ = self.posterior(x, prev)
        return mu, logvar

    def encode_sequence(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (B, T, C, H, W) in order, each frame's slots started from the previous frame's means
        -> mu, logvar (B, T, K D); ``prev`` (B, K D): the means before the first frame (None: learned)."""
        mus, lvs = [], []
        for t in range(x.shape[1]):
            mu, lv = self.encode(x[:, t], prev)  # (B, K D) each
            mus.append(mu)
            lvs.append(lv)
            prev = mu
        return torch.stack(mus, 1), torch.stack(lvs, 1)  # (B, T, K D) each

    def forward(self, x: torch.Tensor, beta: float | None = None, generator: torch.Generator | None = None) -> dict:
        """One-sample ELBO terms per frame, (B,) for frames (B, C, H, W), (B L,) for clips (B, L, C, H, W)
        encoded in order with the slots carried (gradients flow through the carry)."""
        if x.ndim == 4:
            return super().forward(x, beta, generator)
        mu, logvar = self.encode_sequence(x)  # (B, L, K D) each
        mu, logvar = mu.flatten(0, 1), logvar.flatten(0, 1)  # (B*L, K D)
        z, _ = self.reparameterize(mu, logvar, generator)
        rec = self.log_px_z(x.flatten(0, 1), self.decode_logits(z))  # (B*L,)
        kl = self.kl_per_dim(mu, logvar).sum(1)  # (B*L,)
        b = self.cfg.beta if beta is None else beta
        return {"loss": -(rec - b * kl), "elbo": rec - kl, "rec": rec, "kl": kl}

    @torch.no_grad()
    def slot_frames(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, K D) -> each slot's mean image weighted by its mask, m_k x_k (B, K, C, H, W): what the
        slot draws (the composed image is the likelihood's mean of the composed maps, close to their sum)."""
        maps, masks = self.slot_decoder.components(z.float())  # (B, K, P*C, H, W), (B, K, 1, H, W)
        B, K = maps.shape[:2]
        means = self.lik.mean(self.likelihood_params(maps.flatten(0, 1)))  # (B*K, C, H, W)
        return masks * means.view(B, K, *means.shape[1:])

    @torch.no_grad()
    def slot_positions(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, K D) -> the centroid (x, y) in pixels of each slot's light ``slot_frames`` (B, K, 2),
        pixel (row, col) centred at (col + 0.5, row + 0.5) as in the scene states (NaN for a slot that draws nothing)."""
        light = self.slot_frames(z).mean(2)  # (B, K, H, W)
        H, W = light.shape[-2:]
        ys = torch.arange(H, dtype=light.dtype, device=light.device) + 0.5  # pixel centres, as the states (docs/formats.md)
        xs = torch.arange(W, dtype=light.dtype, device=light.device) + 0.5
        total = light.sum((-2, -1))  # (B, K)
        x = (light.sum(-2) * xs).sum(-1) / total  # (B, K)
        y = (light.sum(-1) * ys).sum(-1) / total
        return torch.stack([x, y], -1)


class ClipFrames:
    """Training frames as clips of ``length`` consecutive frames of one sequence, uint8
    (n_clips, length, C, H, W) on the device; ``batches`` yields (b, length, C, H, W) with
    b = batch_size // length clips (so a batch holds about batch_size frames), and ``len`` counts frames."""

    def __init__(self, x_u8, sequence_length: int, length: int):
        import torch

        N, T, L = len(x_u8), int(sequence_length), int(length)
        starts = torch.arange(0, N, T)[:, None] + torch.arange(0, T - L + 1, L)[None]  # (sequences, clips): first frames
        starts = starts.flatten()
        starts = starts[starts + L <= N]  # a limit may cut the last sequence short
        self.length = L
        self.x = x_u8[(starts[:, None] + torch.arange(L)).to(x_u8.device)]  # (n_clips, L, C, H, W)

    def __len__(self) -> int:
        return len(self.x) * self.length

    def batches(self, batch_size: int, generator=None):
        import torch

        b = max(1, batch_size // self.length)
        order = torch.randperm(len(self.x), generator=generator).to(self.x.device) if generator is not None else None
        for s in range(0, len(self.x), b):
            yield self.x[order[s : s + b]] if order is not None else self.x[s : s + b]

    def head(self, n: int):
        return self.x.flatten(0, 1)[:n]  # (n, C, H, W)


def training_clips(cfg, frames):
    """A scene file's training frames as ``ClipFrames`` of ``CLIP`` frames (the slots are carried
    through each clip); a dataset's images (no sequences) as they are."""
    from latentdyn import datasets
    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.data import MemoryFrames

    if not datasets.is_scene_source(cfg.data):
        return frames
    if not isinstance(frames, MemoryFrames):
        raise LatentdynError(f"arch slots trains from memory, and {cfg.data}'s training frames exceed max_memory_mb "
                             f"{cfg.max_memory_mb}; raise max_memory_mb or set limit")
    with open_scenes(cfg.data) as sf:
        T = sf.length
    if T < CLIP:
        return frames
    clips = ClipFrames(frames.x, T, CLIP)
    if len(clips) == 0:
        raise LatentdynError(f"limit {cfg.limit}: arch slots trains on clips of {CLIP} frames; set limit >= {CLIP}")
    return clips
