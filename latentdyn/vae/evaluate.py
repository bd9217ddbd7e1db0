"""Evaluating a trained beta-VAE (``latentdyn evaluate``).

Reports, in nats per example: the ELBO and its reconstruction and KL terms (one sample), the
importance-weighted estimate of log p(x) with K samples (Burda et al. 2016, Eq. 8; always at
least the ELBO in expectation, and tighter as K grows), the number of active latent units
(dimensions whose posterior mean varies over the data, Cov_x E_q[z_u] > 0.01; Burda et al.
2016, Sec. 5.2) and the KL of each latent dimension (``kl_per_dim``). With a flow prior or an IAF
posterior the KL is the one-sample estimate log q(z|x) - log p(z), the bounds use the flows'
densities, the means are in the decoder's space (``BetaVAE.summarize``) and, there being no
per-dimension KL, ``base_kl_per_dim`` (the base Gaussian's closed form against N(0, 1), a proxy)
replaces ``kl_per_dim`` (docs/flows.md).

Memory: the examples per pass and the importance samples decoded at once are sized so that the
estimated peak stays under ``max_memory_mb`` (``latentdyn.vae.memory``); a scene file larger than a
quarter of it is streamed. The result reports the sizes chosen (``memory``) and the wall time
(``seconds``).

Every result names its protocol, ``protocol = {"likelihood", "data", "is_log_probability"}``
(``data``: "binary-static", "binary-dynamic" or "8bit"; see ``latentdyn.vae.likelihoods``).
Only when the likelihood is a true log-probability of the data as scored are the bounds
reported as ``elbo`` and ``log_px_iw`` (and, for 8-bit data, as ``elbo_bits_per_dim`` and
``iwae_bits_per_dim``). Otherwise (a Bernoulli on grey intensities, a continuous Gaussian
density) the reconstruction term is reported only as a training loss, E_q[-log p(x|z)] under
``bernoulli_ce`` or ``gaussian_density_nll``, with ``training_loss`` = that + KL, and no
importance-weighted estimate is computed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.vae import likelihoods as lik

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016


def active_units(mu: np.ndarray, threshold: float = ACTIVE_THRESHOLD) -> tuple[int, np.ndarray]:
    """Number of dimensions of posterior means ``mu`` (N, d) whose variance over N exceeds threshold."""
    var = mu.var(axis=0) if len(mu) > 1 else np.zeros(mu.shape[1])
    return int((var > threshold).sum()), var


def evaluate_run(
    run_dir: str | Path, source: str | None = None, split: str = "test", iw_samples: int = 64,
    data_dir: str | None = None, device: str = "auto", limit: int = 0, batch: int = 500, which: str = "best",
    progress: bool | None = None, out: str | Path | None = None, config: dict | None = None,
    max_memory_mb: int = 4096,
) -> dict:
    """Evaluate a run's checkpoint on a split; writes the JSON to ``out`` (default: the run
    folder's ``eval_<split>.json``). ``batch``: the most examples per pass; fewer, and fewer
    importance samples at once, when ``max_memory_mb`` asks for it."""
    import torch
    from tqdm.auto import tqdm

    from latentdyn.engine.devices import pick_device
    from latentdyn.core.rng import epoch_seed, torch_generator
    from latentdyn.vae.data import MemoryFrames, batch_floats, open_frames
    from latentdyn.vae.memory import plan_memory
    from latentdyn.vae.train import kl_dims_key, load_vae, model_hwc

    if iw_samples < 0:
        raise LatentdynError(f"--iw-samples {iw_samples}: must be 0 (skip) or more")
    t0 = time.perf_counter()
    dev = pick_device(device)
    model, cfg, ck = load_vae(run_dir, which, dev)
    source = str(source or cfg.data)
    cfg.data, cfg.data_dir = source, data_dir or cfg.data_dir
    cfg.max_memory_mb = min(cfg.max_memory_mb, max(1, max_memory_mb // 4))  # larger scene files stream in blocks
    frames, shape = open_frames(cfg, split, dev, limit)
    want = model_hwc(model)
    if tuple(shape) != want:
        raise LatentdynError(f"{source} has images {tuple(shape)} but the model in {run_dir} takes {want}; evaluate on matching data")
    if len(frames) == 0:
        raise LatentdynError(f"the {split!r} split of {source} is empty")
    protocol = lik.data_protocol(cfg.binarize)
    honest = lik.is_log_probability(cfg.likelihood, protocol)
    iw_samples = iw_samples if honest else 0
    held = frames.x.numel() if isinstance(frames, MemoryFrames) else 2 * 64 * 2**20  # uint8; a stream: two blocks
    plan = plan_memory(model, iw_samples, held, max_memory_mb, max_batch=min(batch, len(frames)))
    batch = plan.batch
    g = torch_generator(epoch_seed(cfg.seed, 0, 31), dev)
    g_bin = torch_generator(epoch_seed(cfg.seed, 0, 13), dev)
    elbo, rec, kl, iw, mus, kl_dims = [], [], [], [], [], []
    with torch.no_grad():
        for x_u8 in tqdm(frames.batches(batch), total=-(-len(frames) // batch), desc="evaluate", unit="batch",
                         disable=None if progress is None else not progress):
            xb = batch_floats(x_u8, cfg.binarize, g_bin)
            t = model(xb, generator=g)
            mu0, logvar0, ctx = model.posterior(xb)  # the (base) Gaussian
            mu, _ = model.summarize(mu0, logvar0, ctx)  # posterior means in the decoder's space
            elbo.append(t["elbo"]), rec.append(t["rec"]), kl.append(t["kl"])
            mus.append(mu.float()), kl_dims.append(model.kl_per_dim(mu0.float(), logvar0.float()))
            if iw_samples:
                iw.append(model.log_px_iw(xb, iw_samples, generator=g, chunk=plan.chunk))  # (B,)
    cat = lambda parts: torch.cat(parts).double().cpu().numpy()  # noqa: E731
    mu = cat(mus)
    n_active, var = active_units(mu)
    result = {
        "run": str(run_dir), "checkpoint": which, "epoch": ck["epoch"], "data": str(source), "split": split,
        "n": len(frames), "binarize": cfg.binarize, "likelihood": cfg.likelihood,
        "protocol": {"likelihood": cfg.likelihood, "data": protocol, "is_log_probability": honest},
    }
    n_dims = int(np.prod(model.shape))
    rec_mean, kl_mean = float(cat(rec).mean()), float(cat(kl).mean())
    if honest:
        result.update({"elbo": float(cat(elbo).mean()), "rec": rec_mean, "kl": kl_mean, "iw_samples": iw_samples,
                       "log_px_iw": float(cat(iw).mean()) if iw_samples else None})
        if protocol == "8bit":
            result["elbo_bits_per_dim"] = float(lik.bits_per_dim(-result["elbo"], n_dims))
            result["iwae_bits_per_dim"] = float(lik.bits_per_dim(-result["log_px_iw"], n_dims)) if iw_samples else None
    else:
        result.update({lik.TRAINING_LOSS_KEY[cfg.likelihood]: -rec_mean, "kl": kl_mean,
                       "training_loss": kl_mean - rec_mean, "iw_samples": 0,
                       "note": f"{cfg.likelihood} on {protocol} data is no log-probability: a training loss, "
                               "no ELBO or log p(x)"})
    result.update({"n_dims": n_dims, "active_units": n_active, "latent_dim": model.latent_dim,
                   "prior": cfg.prior, "posterior": cfg.posterior,
                   "kl_estimate": "one-sample Monte Carlo" if model.has_flow else "closed form",
                   "posterior_mean_variance": var.tolist(), kl_dims_key(model): cat(kl_dims).mean(0).tolist()})
    result.update({"memory": plan.summary(max_memory_mb), "seconds": round(time.perf_counter() - t0, 3)})
    if config is not None:
        result["config"] = config  # `latentdyn evaluate --config FILE.json` reruns it
    with atomic_path(out if out is not None else Path(run_dir) / f"eval_{split}.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    return result
