"""How many examples and importance samples an evaluation takes at once, from the memory they need.

The importance-weighted bound decodes ``batch * chunk`` latents in one pass (``BetaVAE.log_px_iw``),
so its memory is about ``batch * chunk`` times the decoder's activations for one image: 500 frames
of 30x30 with all 64 samples at once took 7.5 GB. ``plan_memory`` measures, for one example, the
bytes alive at the peak of a no-grad forward pass of the encoder and of the decoder (forward hooks:
the input and output of the running layer plus the inputs its enclosing modules still hold, an
upper bound of what the allocator holds under ``torch.no_grad``), adds the likelihood's copies of
the output and the input, and picks the largest example batch (up to ``max_batch``), then the
largest number of samples per pass, whose estimate stays within the budget: ``max_memory_mb`` less
the data held in memory and the model's weights. The interpreter and torch's libraries (a few
hundred MB of resident code) are not counted.

Chunking changes only how many samples are decoded at once, not which: ``log_px_iw`` draws the
chunks in turn from one generator. On CPU torch's normal sampler then gives the same draws, hence
the same numbers, whenever ``batch * latent_dim`` is a multiple of 16 (otherwise, and on CUDA, a
different draw of the same estimator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from latentdyn.core.errors import LatentdynError

SAFETY = 1.25  # headroom over the estimate: allocator rounding, cuDNN workspaces, small temporaries
LIKELIHOOD_COPIES = 4  # float32 maps of the output's size made by log p(x|z) (parameters, terms, sums)
MB = 2**20


@dataclass
class MemoryPlan:
    """The chosen sizes and what they were chosen from (bytes)."""

    batch: int  # examples per pass
    chunk: int  # importance samples decoded at once per example
    fixed: int  # the data held in memory and the model's weights
    held: int  # per example, for the whole pass: its float copy
    per_example: int  # per example, passing: the encoder, or the decoder and likelihood of the one-sample ELBO
    per_sample: int  # per example and importance sample decoded at once: the decoder and the likelihood

    def peak_bytes(self, batch: int | None = None, chunk: int | None = None) -> int:
        """The estimated peak for ``batch`` examples and ``chunk`` samples (default: the plan's)."""
        b, c = batch or self.batch, chunk or self.chunk
        return self.fixed + b * (self.held + max(self.per_example, c * self.per_sample))

    def summary(self, max_memory_mb: int) -> dict:
        """For the evaluation's JSON: the limit, the sizes and the estimated peak in MB."""
        return {"max_memory_mb": max_memory_mb, "batch": self.batch, "iw_chunk": self.chunk,
                "estimated_peak_mb": round(self.peak_bytes() / MB, 1),
                "per_sample_bytes": self.per_sample}


def _nbytes(obj) -> int:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, (tuple, list)):
        return sum(_nbytes(o) for o in obj)
    return 0


def activation_bytes(module, x) -> int:
    """Peak bytes alive during a no-grad forward pass of ``module`` on ``x`` (excluding the weights).

    At each leaf layer: its input and output, plus the inputs of every module still running around
    it (a residual block keeps its input for the skip connection; counted even where shared, so the
    figure is an upper bound)."""
    import torch

    held: list[int] = []  # bytes of the inputs of the modules now running, outermost first
    peak = [0]

    def pre(mod, inputs):
        held.append(_nbytes(inputs))

    def post(mod, inputs, output):
        own = held.pop()
        if next(mod.children(), None) is None:  # a leaf: one op, its input and output both alive
            peak[0] = max(peak[0], sum(held) + own + _nbytes(output))

    handles = [h for m in module.modules() for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    try:
        with torch.no_grad():
            out = module(x)
    finally:
        for h in handles:
            h.remove()
    return max(peak[0], _nbytes(x) + _nbytes(out))


def plan_memory(model, k: int, data_bytes: int, max_memory_mb: int, max_batch: int = 500) -> MemoryPlan:
    """Examples per pass and importance samples per pass keeping ``model``'s evaluation under
    ``max_memory_mb``, given ``data_bytes`` of data held in memory; a one-line error if not even one
    example with one sample fits."""
    import torch

    p = next(model.parameters())
    C, H, W = model.shape
    x = torch.zeros((1, C, H, W), device=p.device)  # (1, C, H, W): one example
    z = torch.zeros((1, model.latent_dim), device=p.device)  # (1, d)
    x_bytes = _nbytes(x)  # the float copy of a batch, and of each sample's expanded input
    with torch.no_grad():
        out_bytes = _nbytes(model.decode_logits(z).float())  # (1, P * C, H, W)
    decode = activation_bytes(model.decoder, z) + LIKELIHOOD_COPIES * out_bytes + x_bytes
    encode = activation_bytes(model.encoder, x)
    held, per_sample = math.ceil(SAFETY * x_bytes), math.ceil(SAFETY * decode)
    per_example = math.ceil(SAFETY * max(encode, decode))
    fixed = int(data_bytes) + sum(_nbytes(t) for t in model.state_dict().values())  # the data and the weights
    budget = max_memory_mb * MB - fixed
    need = held + max(per_example, per_sample)  # one example with one sample
    batch = min(max_batch, budget // need) if budget > 0 else 0
    if batch < 1:
        raise LatentdynError(
            f"max_memory_mb {max_memory_mb}: the data and the model take {fixed / MB:.0f} MB and one example needs "
            f"{need / MB:.1f} MB more; raise --max-memory-mb to at least {math.ceil((fixed + need) / MB)}"
        )
    chunk = max(1, min(k, (budget // batch - held) // per_sample)) if k else 1
    return MemoryPlan(int(batch), int(chunk), fixed, held, per_example, per_sample)
