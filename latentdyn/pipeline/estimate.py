"""How long an experiment's training will take on this machine, from a short timing of its first steps.

For each train-vae and train-dynamics stage that would run, the stage's own model is built from its
config on its device and a few optimiser steps are timed on random data of the stage's shapes (frames of the
scene the experiment generates, latents of the VAE's size); the stage's time is that step time
times its steps (epochs x batches), plus ``VALIDATION`` for its validation passes. A train-convlstm
stage takes its wall-time budget (the estimates of the stages it matches, when they run too). Stages without
training (generation, encoding, rollouts, maps, the report) add ``OTHER`` seconds each, the
measured time of the demo's such stages here (docs/results.md) scaled by how much slower this
machine's VAE steps are than that machine's. The figure is a rough guide (within a factor of about
1.5 on an idle machine), printed by ``latentdyn demo`` before it starts.
"""

from __future__ import annotations

import math
import time

VALIDATION = 0.1  # validation and checkpoints, as a fraction of a training stage's steps' time
OTHER = 4.0  # seconds per non-training stage on the project's 2-core machine (measured: the demo's)
REF_VAE_STEP = 0.02  # seconds per step of the demo's VAE (mlp, batch 128, 28 x 28) there, two idle cores


def _time_steps(step, n: int = 12) -> float:
    """Seconds per call of ``step`` after two warm-up calls (the median of ``n`` timings)."""
    step()
    step()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _vae_step(cfg, shape):
    import torch

    from latentdyn.engine.devices import pick_device
    from latentdyn.vae.factory import make_vae

    dev = pick_device(cfg.device)
    model = make_vae(cfg, shape).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = torch.rand(cfg.batch_size, *shape, generator=torch.Generator().manual_seed(0)).to(dev)

    def step():
        loss = model(x)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(dev)

    return step


def _gru_step(cfg, d: int):
    import torch

    from latentdyn.dynamics.model import make_predictor
    from latentdyn.dynamics.train import window_loss
    from latentdyn.engine.devices import pick_device

    dev = pick_device(cfg.device)
    model = make_predictor(cfg, (d,)).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(cfg.batch_size, cfg.context + cfg.horizon, d, generator=g).to(dev)
    lv = torch.full_like(mu, -4.0)

    def step():
        loss = window_loss(model, mu, lv, cfg.context, cfg.horizon, cfg.open_loop_weight)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        _sync(dev)

    return step


def unrolled_epochs(cfg) -> float:
    """A predictor's epochs in full-horizon units: a step unrolls context + the epoch's horizon
    (``horizon_at``: shorter while a horizon curriculum grows), so it costs that share of a full one."""
    from latentdyn.dynamics.train import horizon_at

    full = cfg.context + cfg.horizon
    return sum((cfg.context + horizon_at(cfg, e)) / full for e in range(1, cfg.epochs + 1))


def estimate(exp, actions) -> dict | None:
    """Estimated seconds of the stages that would run (``actions`` from ``plan``): {"seconds", "parts"},
    or None when the experiment has no scene-generating stage to size the training from."""
    from dataclasses import replace

    from latentdyn.scenes import generate as scenes
    from latentdyn.scenes.splits import parse_splits

    gen = next((s for s in exp.stages if s.kind == "generate"), None)
    if gen is None:
        return None
    g = gen.settings
    scene = scenes.load_scene(g.scene, g.set)
    length = g.length or scene.scene.length
    frame = scene.frame_shape if hasattr(scene, "frame_shape") else (scene.render.height, scene.render.width)
    shape = (frame[2] if len(frame) == 3 else 1, frame[0], frame[1])
    n_train = max(1, round(g.sequences * parse_splits(g.split).get("train", 1.0)))
    vae_dims = [s.settings.latent_dim for s in exp.stages if s.kind == "train-vae"]  # skipped ones too
    parts, vae_step_s = {}, None
    for s, action in actions:
        cfg = s.settings
        if action not in ("run", "resume"):
            continue
        if s.kind == "train-vae":
            lik = "discretized-logistic" if cfg.likelihood == "auto" else cfg.likelihood
            cfg = replace(cfg, likelihood=lik)
            per = _time_steps(_vae_step(cfg, shape))
            vae_step_s = vae_step_s or per
            parts[s.name] = per * cfg.epochs * math.ceil(n_train * length / cfg.batch_size) * (1 + VALIDATION)
        elif s.kind == "train-dynamics":
            d = vae_dims[0] if vae_dims else 8
            per = _time_steps(_gru_step(cfg, d))
            n_seq = cfg.fresh_sequences or n_train  # the steps only, not the making of fresh sequences
            parts[s.name] = per * unrolled_epochs(cfg) * math.ceil(n_seq * cfg.windows / cfg.batch_size) * (1 + VALIDATION)
        elif s.kind == "train-convlstm":  # its wall-time budget: that of the stages it matches, or its own
            budget = sum(parts.get(n, 0.0) for n in s.refs.get("budget_from", [])) or cfg.budget_seconds
            if budget:
                parts[s.name] = budget
    slower = (vae_step_s / REF_VAE_STEP) if vae_step_s else 1.0
    others = [s.name for s, action in actions if action in ("run", "resume") and s.name not in parts]
    parts["other stages"] = OTHER * len(others) * max(1.0, slower)
    return {"seconds": sum(parts.values()), "parts": parts}
