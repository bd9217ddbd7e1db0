"""The training flow: per-epoch prediction matrices of a VAE and their animation.

Every epoch of ``latentdyn train vae`` draws fixed inputs (from the validation split, or the
training split where the run has none) above their reconstructions, and decodes of prior
samples (fixed base noise u, z = g(u) through the model's prior, flow included: the same draws
every epoch), as ``flow/epoch_NNN.png``, titled with the epoch and the ELBO of the split it is
measured on ("val ELBO -798.2 nats"), in text sized to the frames; at the end the PNGs become
``flow.gif`` and ``flow.mp4``, an animation of how the model learned, epoch by epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.rng import epoch_seed, torch_generator
from latentdyn.vae.data import batch_floats


class FlowRecorder:
    """The per-epoch prediction matrix (inputs, reconstructions, prior samples) and its animation."""

    def __init__(self, run_dir: Path, x_u8, cfg, device, n: int = 8):
        """``x_u8``: the fixed inputs, uint8 (n, C, H, W) on the device."""
        import torch

        self.dir = run_dir / "flow"
        self.dir.mkdir(exist_ok=True)
        self.run_dir, self.cfg = run_dir, cfg
        n = min(n, len(x_u8))  # a small validation split may hold fewer frames
        self.x = batch_floats(x_u8[:n], cfg.binarize if cfg.binarize == "static" else "none")  # (n, C, H, W)
        g = torch_generator(epoch_seed(cfg.seed, 0, 21), "cpu")
        self.u = torch.randn((n, cfg.latent_dim), generator=g).to(device)  # fixed base noise of the prior samples

    def snapshot(self, model, epoch: int, score: float, tracker=None, split: str | None = None) -> Path:
        """The prediction matrix of ``epoch`` as PNG (and in TensorBoard when tracking), titled with
        ``score``, the ELBO of ``split`` ("val" or "train"; by default read off the epoch's row in
        metrics.jsonl: the validation ELBO where the run validates, else the training ELBO)."""
        import torch

        from latentdyn.viz.video import upscale

        model.eval()
        with torch.no_grad():
            mu, _ = model.encode(self.x)
            rec = model.decode(mu).float()  # (n, C, H, W)
            with torch.autocast(self.u.device.type, enabled=False):
                z = model.prior.from_base(self.u)  # (n, d): the prior as it is this epoch (the identity for N(0, I))
            gen = model.decode(z).float()
        rows = [self.x.float(), rec, gen]
        img = torch.cat([torch.cat(list(r), dim=-1) for r in rows], dim=-2)  # (C, 3H, nW)
        arr = (img.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()  # (3H, nW, C)
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, -1)
        if tracker is not None:
            tracker.image("flow/inputs_reconstructions_prior_samples", arr, epoch)
        scale = max(1, round(84 / model.shape[1]))
        arr = upscale(arr[None], scale)[0]  # (3H*s, nW*s, 3)
        split = split or self._score_split(epoch, score)
        path = self.dir / f"epoch_{epoch:03d}.png"
        from latentdyn.core.fileio import atomic_path

        with atomic_path(path) as tmp:
            self._labelled(arr, model.shape[1] * scale, epoch, score, split).save(tmp, format="PNG")
        return path

    def _labelled(self, arr: np.ndarray, H: int, epoch: int, score: float, split: str):
        """The matrix (3H, W, 3) under a title line, beside a column naming its rows; text sized to the rows."""
        from PIL import Image, ImageDraw

        from latentdyn.vae import likelihoods as lik
        from latentdyn.viz.video import fitted_size, label_font, label_size, text_width

        size = label_size(H)
        likelihood = self.cfg.likelihood if self.cfg.likelihood != "auto" else lik.default_likelihood(self.cfg.binarize, False)
        honest = lik.is_log_probability(likelihood, lik.data_protocol(self.cfg.binarize))
        name = "ELBO" if honest else "-(loss + KL)"  # as train vae prints it: not a likelihood
        labels = [f"input ({split})", "reconstruction", "prior sample"]
        left = max(text_width(t, size) for t in labels) + 16
        top = size + 12
        canvas = np.full((arr.shape[0] + top, arr.shape[1] + left, 3), 24, np.uint8)
        canvas[top:, left:] = arr
        pil = Image.fromarray(canvas)
        draw, font = ImageDraw.Draw(pil), label_font(size)
        title = f"epoch {epoch}    {split} {name} {score:.1f} nats"
        draw.text((6, 5), title, fill=(235, 235, 235), font=label_font(fitted_size(title, size, canvas.shape[1] - 12)))
        for k, label in enumerate(labels):
            draw.text((6, top + k * H + (H - size) // 2), label, fill=(235, 235, 235), font=font)
        return pil

    def _score_split(self, epoch: int, score: float) -> str:
        """The split whose ELBO ``score`` is: "val" where the epoch's row in metrics.jsonl holds it as val_elbo, else "train"."""
        import json

        log = self.run_dir / "metrics.jsonl"
        lines = log.read_text().splitlines() if log.is_file() else []
        for line in reversed(lines):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if row.get("epoch") == epoch:
                return "val" if row.get("val_elbo") is not None and np.isclose(row["val_elbo"], score) else "train"
        return "val" if self.cfg.val_split else "train"

    def animate(self, fps: float = 2.0) -> list[Path]:
        """flow.gif and flow.mp4 from every epoch's PNG, one frame per epoch."""
        from PIL import Image

        from latentdyn.viz.video import write_video

        pngs = sorted(self.dir.glob("epoch_*.png"))
        if not pngs:
            return []
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])  # (E, H, W, 3)
        return [write_video(frames, self.run_dir / "flow.gif", fps), write_video(frames, self.run_dir / "flow.mp4", fps)]
