"""The training flow: per-epoch prediction matrices of a VAE and their animation.

Every epoch of ``latentdyn train vae`` draws fixed inputs above their reconstructions, and
decodes of prior samples (fixed base noise u, z = g(u) through the model's prior, flow included:
the same draws every epoch), as ``flow/epoch_NNN.png``; at the end the PNGs become
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

    def snapshot(self, model, epoch: int, score: float, tracker=None) -> Path:
        """The prediction matrix of ``epoch`` as PNG (and in TensorBoard when tracking)."""
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
        model_height = model.shape[1]
        if tracker is not None:
            tracker.image("flow/inputs_reconstructions_prior_samples", arr, epoch)
        scale = max(1, round(84 / model_height))
        arr = upscale(arr[None], scale)[0]
        from PIL import Image, ImageDraw, ImageFont

        H = model_height * scale
        canvas = np.full((arr.shape[0] + 20, arr.shape[1] + 110, 3), 24, np.uint8)
        canvas[20:, 110:] = arr
        pil = Image.fromarray(canvas)
        draw, font = ImageDraw.Draw(pil), ImageFont.load_default()
        draw.text((4, 4), f"epoch {epoch}   ELBO {score:.1f} nats", fill=(235, 235, 235), font=font)
        for k, label in enumerate(["input", "reconstruction", "prior sample"]):
            draw.text((4, 20 + k * H + H // 2 - 6), label, fill=(235, 235, 235), font=font)
        path = self.dir / f"epoch_{epoch:03d}.png"
        from latentdyn.core.fileio import atomic_path

        with atomic_path(path) as tmp:
            pil.save(tmp, format="PNG")
        return path

    def animate(self, fps: float = 2.0) -> list[Path]:
        """flow.gif and flow.mp4 from every epoch's PNG, one frame per epoch."""
        from PIL import Image

        from latentdyn.viz.video import write_video

        pngs = sorted(self.dir.glob("epoch_*.png"))
        if not pngs:
            return []
        frames = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs])  # (E, H, W, 3)
        return [write_video(frames, self.run_dir / "flow.gif", fps), write_video(frames, self.run_dir / "flow.mp4", fps)]
