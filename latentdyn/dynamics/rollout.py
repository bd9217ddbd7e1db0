"""Rollouts (``latentdyn rollout``): predicted latents decoded to frames, scored and filmed.

For each test sequence: encode the frames, warm the GRU up on the first K latents, roll it
forward H steps on its own predictions (the mean, or S sampled futures), decode every predicted
latent. The same measures are computed for the baselines, in the same run:

- ``copy_last``: the last observed frame, repeated;
- ``linear_pixels``: per-pixel linear extrapolation clip(2 x_t - x_{t-1}), fed its own output;
- ``constant_velocity_latent``: z_{t+1} = 2 z_t - z_{t-1} in latent space, decoded;
- ``reconstruction``: the **ceiling**: the true future latents (the encoder's posterior means of
  the true future frames) decoded, the best any predictor in this VAE's latent space can reach
  (``metrics.json`` names it under ``"ceiling"``);
- ``convlstm`` (``pixel_baseline``): a pixel-space ConvLSTM trained on the frames for the same wall time
  (``latentdyn.dynamics.convlstm``; ``metrics.json`` records its budget under ``"pixel_baseline"``).

and the one-step-ahead error (every prediction made from the true past, as the RTRBM/TSBN
papers measured it) for the model, ``copy_last``, ``linear_pixels`` and ``reconstruction``.

Measures (``score``; defined in docs/formats.md, "Rollout metrics"): squared and absolute error,
PSNR and SSIM per frame, and object measures that count failures: with ground-truth states, each true ball's
presence, centroid error and motion direction (``objects``), and the number of ball-shaped
objects each predicted frame shows, read without the states (``counting``); without states, the
region detector (``metrics``); each reported beside its reading of the true frames
(``describe_objects``). A file with states but no scene definition gets the balls' shape from its
attributes or its true frames (``shapes``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from latentdyn.dynamics import counting as C
from latentdyn.dynamics import metrics as M
from latentdyn.dynamics import objects as O
from latentdyn.dynamics import shapes as SH
from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path
from latentdyn.dynamics.config import RolloutConfig
from latentdyn.viz.video import rollout_frames, write_rollout_video  # noqa: F401 (re-exported: the rollout's film)


def copy_last(frames: np.ndarray, K: int, H: int) -> np.ndarray:
    """Open loop: the last observed frame (index K-1) repeated H times; (S, T, ...) -> (S, H, ...)."""
    return np.repeat(frames[:, K - 1 : K], H, axis=1)


def linear_pixels(frames: np.ndarray, K: int, H: int) -> np.ndarray:
    """Open loop: x_{t+1} = clip(2 x_t - x_{t-1}, 0, 1) per pixel, fed its own output; (S, H, ...)."""
    out = np.empty((frames.shape[0], H, *frames.shape[2:]), frames.dtype)
    a, b = frames[:, K - 2], frames[:, K - 1]
    for j in range(H):
        a, b = b, np.clip(2 * b - a, 0.0, 1.0)
        out[:, j] = b
    return out


def one_step_linear(frames: np.ndarray) -> np.ndarray:
    """One step from the true past: predictions of frames 2..T-1, clip(2 x_t - x_{t-1}); (S, T-2, ...)."""
    return np.clip(2 * frames[:, 1:-1] - frames[:, :-2], 0.0, 1.0)


def constant_velocity(mu: np.ndarray, K: int, H: int) -> np.ndarray:
    """Open loop in latent space: z_{K-1+j} = mu_{K-1} + j (mu_{K-1} - mu_{K-2}); (S, H, d)."""
    steps = np.arange(1, H + 1)[None, :, None]
    return mu[:, K - 1 : K] + steps * (mu[:, K - 1 : K] - mu[:, K - 2 : K - 1])


def decode_latents(vae, z, batch: int = 2048) -> np.ndarray:
    """Latents (..., d) -> frames (..., H, W, C) float32 in [0, 1], batched on the VAE's device."""
    import torch

    dev = next(vae.parameters()).device
    z = torch.as_tensor(z, dtype=torch.float32)
    lead, d = z.shape[:-1], z.shape[-1]
    flat = z.reshape(-1, d)
    outs = []
    with torch.no_grad():
        for s in range(0, len(flat), batch):
            outs.append(vae.decode(flat[s : s + batch].to(dev)).float())  # (B, C, H, W)
    x = torch.cat(outs) if outs else torch.zeros(0, *vae.shape)
    return x.permute(0, 2, 3, 1).reshape(*lead, *x.shape[2:], x.shape[1]).cpu().numpy()  # (..., H, W, C)


def _gray(frames: np.ndarray) -> np.ndarray:
    """(..., H, W, C) -> (..., H, W): brightness used to find balls."""
    return frames.max(-1)


def score(pred: np.ndarray, truth: np.ndarray, states: np.ndarray | None, threshold: float,
          balls: O.Balls | None = None, n_balls: int | None = None) -> dict:
    """Per-step measures of predictions (S, H, h, w, C) against the truth; states (S, H, n, 4) or None.

    Always: the squared and absolute errors per frame (Sutskever et al. 2009; their means over
    steps are OpenSTL's MSE and MAE, Tan et al. 2023), PSNR and SSIM (Wang et al. 2004) per frame (``metrics``), means over sequences. Then the object measures, which count
    failures (docs/formats.md, "Rollout metrics"): with states and the scene's ``balls``, the
    state-based readings of ``objects.score_states`` and, for balls (not sprites), the count of
    ball-shaped objects per frame (``counting.count_scores``: 'count_exact', 'count_mean');
    otherwise, with states or a known ``n_balls``, the region detector (``_score_regions``); with
    neither, none.
    """
    se = M.squared_error(pred, truth)  # (S, H)
    out = {"se_per_frame": se.mean(0).tolist(), "se_per_pixel": (se / np.prod(truth.shape[-3:])).mean(0).tolist(),
           "ae_per_frame": M.absolute_error(pred, truth).mean(0).tolist(),
           "psnr": M.psnr(pred, truth).mean(0).tolist(), "ssim": M.ssim(pred, truth).mean(0).tolist()}
    if states is not None and balls is not None:
        out.update(O.score_states(pred, truth, states, balls, threshold))
        if balls.name == "ball":
            out.update(C.count_scores(pred, balls.n, balls))
    elif states is not None or n_balls:
        out.update(_score_regions(pred, truth, states, threshold, n_balls))
    return out


def _score_regions(pred: np.ndarray, truth: np.ndarray, states: np.ndarray | None, threshold: float,
                   n_balls: int | None) -> dict:
    """Region-detector measures per step (``metrics.region_scores``) against the states' positions,
    or, without states, against the regions of the true frames; the penalty is the frame diagonal / 4."""
    S, H, h, w = pred.shape[:4]
    penalty = _region_penalty(h, w)
    if states is not None:
        ref = np.asarray(states[..., :2], np.float64).reshape(S * H, -1, 2)
        n_balls = states.shape[2]
    else:
        ref = M.regions(_gray(truth).reshape(S * H, h, w), threshold)
    r = M.region_scores(_gray(pred).reshape(S * H, h, w), ref, penalty, n_balls, threshold)
    present = r["present"].reshape(S, H)
    return {"all_present": present.mean(0).tolist(), "position_error_px": r["error"].reshape(S, H).mean(0).tolist(),
            "vanished_frames": int((~present).sum()), "split_frames": int(r["split"].sum()), "frames": int(S * H)}


def _region_penalty(h: int, w: int) -> float:
    return float(np.hypot(h, w) / 4)


def describe_objects(truth: np.ndarray, states: np.ndarray | None, threshold: float, balls: O.Balls | None = None,
                     n_balls: int | None = None) -> dict:
    """The object protocol that ``score`` applies to these frames, its rules, and its reading of
    the true frames (S, T, h, w, C) themselves, to be read beside every figure it gives."""
    h, w = truth.shape[2:4]
    if states is not None and balls is not None:
        desc = {"protocol": "states", "objects": balls.name, "shape_from": balls.source,
                "presence": f"light in the true {balls.name}'s disc >= {O.PRESENCE} x the truth's",
                "window_radii": O.WINDOW, "penalty_px": balls.penalty(h, w), "radii_px": balls.radii.tolist(),
                "profile_power": float(balls.power), "gains": None if balls.gains is None else np.asarray(balls.gains).tolist(),
                "direction": "180 deg if absent at t or t-1, 90 deg if the prediction does not move",
                "truth_reading": O.truth_reading(truth, states, balls)}
        if balls.name == "ball":  # the count of ball-shaped objects and its reading of the true frames
            desc["count"] = (f"the ball's template on a {C.MARGIN:g}-radius window matched with ncc >= {C.MIN_MATCH:g}, "
                             f"Pearson >= {C.MIN_PEARSON:g} and amplitude {C.GAIN_BAND[0]:g} to {C.GAIN_BAND[1]:g} x the "
                             "peak brightness, one ball per best match within one radius")
            desc["truth_reading"]["count_exact"] = C.truth_count(truth, balls.n, balls)
        return desc
    if states is None and not n_balls:
        return {"protocol": None}
    t = _score_regions(truth, truth, states, threshold, n_balls)
    return {"protocol": "regions", "presence": f"a bright region (pixels above {threshold:g}) matched to each ball",
            "threshold": threshold, "penalty_px": _region_penalty(h, w),
            "truth_reading": {"all_present": float(np.mean(t["all_present"])), "position_error_px": float(np.mean(t["position_error_px"])),
                              "vanished_frames": t["vanished_frames"], "split_frames": t["split_frames"], "frames": t["frames"]}}


def _summary(per_step: dict) -> dict:
    """Means over the predicted steps; counts as they are."""
    s = {k: float(np.mean(per_step[k])) for k in ("se_per_frame", "se_per_pixel", "ae_per_frame", "psnr", "ssim") if k in per_step}
    if "position_error_px" in per_step:
        s["position_error_px"] = float(np.mean(per_step["position_error_px"]))
        s["all_present"] = float(np.mean(per_step["all_present"]))
        if "direction_error_deg" in per_step:
            s["direction_error_deg"] = float(M.nanmean(per_step["direction_error_deg"]))
        for k in ("count_exact", "count_mean"):
            if k in per_step:
                s[k] = float(np.mean(per_step[k]))
        for k in ("vanished_frames", "split_frames", "frames"):
            s[k] = per_step[k]
    return s


def run_rollout(vae_run: str | Path, dynamics_run: str | Path, data: str | Path, out: str | Path,
                cfg: RolloutConfig | None = None, progress: bool | None = None) -> dict:
    """Roll the predictor out on a scene file's split; writes metrics.json, a plot and videos in ``out``."""
    import torch

    from latentdyn.engine.devices import pick_device
    from latentdyn.dynamics.model import load_dynamics
    from latentdyn.latents.file import check_vae_hash
    from latentdyn.vae.encode import encode_sequences
    from latentdyn.scenes.file import open_scenes
    from latentdyn.vae.train import load_vae, model_hwc

    cfg = cfg or RolloutConfig()
    dev = pick_device(cfg.device)
    vae, vcfg, _ = load_vae(vae_run, "best", dev)
    dyn, dcfg, dck = load_dynamics(dynamics_run, "best", dev)
    check_vae_hash(dck["data"]["vae_sha256"], vae_run, f"the predictor in {dynamics_run}")
    if dyn.latent_dim != vae.latent_dim:
        raise LatentdynError(f"the predictor has {dyn.latent_dim} latent dimensions, the VAE {vae.latent_dim}")
    if getattr(dyn, "latent_shape", vae.latent_shape) != vae.latent_shape:  # a ConvGRU reads maps; a GRU any layout
        raise LatentdynError(f"the predictor reads latent maps {dyn.latent_shape}, the VAE makes {vae.latent_shape}")
    K, H = cfg.context, cfg.horizon
    if H < 1:
        raise LatentdynError(f"--horizon {H}: must be at least 1")
    if K < 2:
        raise LatentdynError(f"--context {K}: must be at least 2 (the linear baselines need two frames)")
    if cfg.sequences < 1 or cfg.samples < 0:
        raise LatentdynError("--sequences must be at least 1 and --samples at least 0")
    with open_scenes(data) as sf:
        ids = np.sort(sf.split_indices(cfg.split if sf.splits else None))[: cfg.sequences]
        if len(ids) == 0:
            raise LatentdynError(f"the {cfg.split!r} split of {data} is empty; choose another --split")
        if K + H > sf.length:
            raise LatentdynError(f"--context {K} + --horizon {H} = {K + H} is longer than the sequences ({sf.length} frames)")
        frames_u8 = sf.read_frames(ids)  # (S, T, h, w[, C])
        states = sf.states[ids] if sf.states is not None else None  # (S, T, n, 4)
        scene = sf.scene
    if frames_u8.ndim == 4:
        frames_u8 = frames_u8[..., None]
    S, T = frames_u8.shape[:2]
    shape = frames_u8.shape[2:]
    if shape != model_hwc(vae):
        raise LatentdynError(f"{data} has frames {shape} but the VAE takes {model_hwc(vae)}")
    truth = frames_u8.astype(np.float32) / 255.0  # (S, T, h, w, C)
    mu, lv = encode_sequences(vae, frames_u8, dev, binarize=vcfg.binarize)  # (S, T, d) each; slots carried in order
    mu_t, lv_t = torch.from_numpy(mu).to(dev), torch.from_numpy(lv).to(dev)
    g = torch.Generator(device=dev if dev.type == "cuda" else "cpu").manual_seed(cfg.seed)
    project = reencoder(vae, vcfg.binarize) if cfg.reencode else None
    with torch.no_grad():
        z_pred = dyn.rollout(mu_t[:, :K], lv_t[:, :K], H, project=project)["mu"]  # (S, H, d)
        z_samples = dyn.rollout(mu_t[:, :K], lv_t[:, :K], H, cfg.samples, g, project)["mu"] if cfg.samples else None  # (s, S, H, d)
        z_one = dyn(mu_t[:, :-1], lv_t[:, :-1])[0]  # (S, T-1, d): predictions of 1..T-1 from the true past
    fut = slice(K, K + H)
    tr, st = truth[:, fut], (states[:, fut] if states is not None else None)
    balls, n_balls = _scene_balls(scene, states, truth, data)
    tuned = getattr(dyn, "tuned_vae", None)  # the decoder trained with the predictor (decoder_finetune)
    dec = tuned if tuned is not None else vae
    pred = decode_latents(dec, z_pred)  # (S, H, h, w, C)
    methods = {
        "model": pred,
        "copy_last": copy_last(truth, K, H),
        "linear_pixels": linear_pixels(truth, K, H),
        "constant_velocity_latent": decode_latents(vae, constant_velocity(mu, K, H)),
        "reconstruction": decode_latents(vae, mu[:, fut]),  # the ceiling: the true future latents, decoded
    }
    if tuned is not None:  # the same predictions through the frozen decoder, for comparison
        methods["model_frozen_decoder"] = decode_latents(vae, z_pred)
    oracle_one = None
    if cfg.oracle:
        from latentdyn.dynamics.oracle import oracle_frames

        methods["state_oracle"], oracle_one = oracle_frames(cfg, data, ids, states, scene, shape, balls, dev)
    pixel = None
    if cfg.pixel_baseline:  # the same-budget pixel-space ConvLSTM: (open loop, one step, its record)
        from latentdyn.dynamics.convlstm import pixel_rows

        pixel = pixel_rows(cfg.pixel_baseline, truth, K, H, dev)
        methods["convlstm"] = pixel[0]
    open_loop = {name: score(p, tr, st, cfg.threshold, balls, n_balls) for name, p in methods.items()}
    if z_samples is not None:
        samp = decode_latents(dec, z_samples)  # (s, S, H, h, w, C)
        per = [score(samp[k], tr, st, cfg.threshold, balls, n_balls) for k in range(cfg.samples)]
        open_loop["model_samples_mean"] = {k: np.mean([p[k] for p in per], 0).tolist() if isinstance(per[0][k], list) else
                                           int(np.sum([p[k] for p in per])) for k in per[0]}
    one_pred = decode_latents(dec, z_one)  # (S, T-1, h, w, C)
    ts = slice(K, T)  # one-step scores after the warm-up, over every remaining frame
    one_step = {
        "model": M.squared_error(one_pred[:, K - 1 :], truth[:, ts]),
        "copy_last": M.squared_error(truth[:, K - 1 : T - 1], truth[:, ts]),
        "linear_pixels": M.squared_error(one_step_linear(truth)[:, K - 2 :], truth[:, ts]),
        "reconstruction": M.squared_error(decode_latents(vae, mu[:, ts]), truth[:, ts]),
    }
    if oracle_one is not None:
        one_step["state_oracle"] = M.squared_error(oracle_one[:, K - 1 :], truth[:, ts])
    if pixel is not None:
        one_step["convlstm"] = M.squared_error(pixel[1][:, K - 1 :], truth[:, ts])
    result = {
        "split": cfg.split, "config": asdict(cfg), "vae": str(vae_run), "dynamics": str(dynamics_run), "data": str(data),
        "predictor": getattr(dcfg, "cell", "gru"), "latent_shape": list(vae.latent_shape),
        "sequences": [int(i) for i in ids], "frame_shape": list(shape),
        "one_step_se_per_frame": {k: float(v.mean()) for k, v in one_step.items()},
        "open_loop": {k: {"summary": _summary(v), "per_step": v} for k, v in open_loop.items()},
        "objects": describe_objects(tr, st, cfg.threshold, balls, n_balls),
        "ceiling": "reconstruction",  # the method that decodes the true future latents: the best any predictor can reach
    }
    if cfg.oracle:
        result["oracle"] = "state_oracle"  # the predictor trained on the true states, drawn by the scene's renderer
    if pixel is not None:
        result["pixel_baseline"] = pixel[2]  # the ConvLSTM's run, size, budget and seconds trained
    if getattr(vae, "carries_slots", False) and states is not None:
        from latentdyn.vae.slot_match import slot_consistency

        result["slots"] = slot_consistency(vae, mu, states)  # every frame of each sequence, encoded in order
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(_finite(result), indent=2, allow_nan=False) + "\n")  # strict JSON: NaN -> null
    plot_errors(result, out / "error_vs_horizon.png")
    if cfg.video_sequences:  # 0: no video (minimum=0 allows it)
        shown = {label: methods[name][: cfg.video_sequences] for name, label in FILMED.items() if name in methods}
        write_rollout_video(truth[: cfg.video_sequences, : K + H], pred[: cfg.video_sequences], K, ids, out, cfg.fps, shown)
    return result


def reencoder(vae, binarize: str = "none"):
    """The rollout's re-encoding step: latents (B, 1, d) -> the posterior (mean, log-variance) of
    their decoded mean images, quantised to 256 levels (as frames are stored), each (B, 1, d). A slot
    model starts the slots from the latents themselves, so each slot keeps its object."""
    import torch

    def project(z):
        x = vae.decode(z[:, 0].to(next(vae.parameters()).dtype)).float()  # (B, C, H, W) in [0, 1]
        x = torch.round(x.clamp(0, 1) * 255) / 255  # an 8-bit frame, as the encoder saw in training
        if binarize != "none":
            x = (x > 0.5).to(x.dtype)  # binarised data: the encoder saw binary images
        carried = (z[:, 0].float(),) if getattr(vae, "carries_slots", False) else ()
        mu, lv = vae.encode(x, *carried)  # (B, d) each
        return mu.float()[:, None], lv.float()[:, None]

    return project


def _scene_balls(scene: dict | None, states: np.ndarray | None, truth: np.ndarray | None = None,
                 data: str | Path | None = None) -> tuple[O.Balls | None, int | None]:
    """The balls' geometry for the state-based metrics and the number of balls (from the states,
    else the definition). Without states: None. With states: from the scene definition; without a
    definition this latentdyn reads, from the file ``data``'s attributes (``SceneFile.ball_shape``)
    and the true frames (S, T, h, w, C) (``shapes.balls_for_file``); without those frames, None."""
    n = states.shape[2] if states is not None else (scene or {}).get("physics", {}).get("n_balls")
    try:
        balls = O.balls_from_scene(scene) if states is not None else None
    except LatentdynError:
        balls = None  # a definition this latentdyn cannot read: the file's attributes or frames stand in
    if balls is None and states is not None and truth is not None:
        balls = SH.balls_for_file(SH.file_attrs(data), truth, states)
    if balls is not None and balls.n != n:
        raise LatentdynError(f"the data's scene definition has {balls.n} {balls.name}s but its states {n}; "
                             "the file's scene attribute does not describe its states")
    return balls, n


def _finite(x):
    """Replace NaN and infinities (undefined measures, e.g. no motion at step 1) by None, recursively."""
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


FILMED = {"convlstm": "ConvLSTM", "state_oracle": "state oracle"}  # rows filmed beside the model, when scored
FIGURE_WIDTH = 10.5  # inches: the report shows figures at 96 px per inch, and its column holds about 11


def plot_errors(result: dict, path: Path) -> Path:
    """Per-step curves of the model, the ceiling (true latents decoded) and the baselines: squared
    error, SSIM, the fraction of frames with every ball present, the failure-counting position
    error and the fraction of frames showing the true number of ball-shaped objects. Two panels a
    row and one legend for all, so the figure reads at the report's width (``FIGURE_WIDTH``); the
    title names the split."""
    from latentdyn.viz.figures import _plt, save_figure

    plt = _plt()
    ol = result["open_loop"]
    thing = ((result.get("objects") or {}).get("objects")) or "ball"
    names = {"se_per_frame": "squared error per frame", "ssim": "SSIM (higher is better)",
             "all_present": f"fraction of frames with every {thing}", "position_error_px": f"{thing} position error (px; lost: penalty)",
             "count_exact": f"fraction of frames showing the true number of {thing}s"}
    keys = [k for k in names if k in ol["model"]["per_step"]]
    cols = min(2, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(FIGURE_WIDTH, 0.7 + 3.3 * rows), squeeze=False, layout="constrained")
    for ax, key in zip(axes.flat, keys):
        for name, v in ol.items():
            y = np.asarray([np.nan if x is None else x for x in v["per_step"][key]], float)
            label = {"reconstruction": "ceiling (true latents decoded)",
                     "state_oracle": "state oracle (true states in)", "convlstm": "ConvLSTM in pixels (same budget)"}.get(
                         name, name.replace("_", " "))
            ax.plot(np.arange(1, len(y) + 1), y, label=label, lw=2.2 if name == "model" else 1.2,
                    ls="--" if name == "reconstruction" else "-")
        ax.set_xlabel("predicted step")
        ax.set_title(names[key], fontsize=11)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize=10, frameon=False)
    n = len(result.get("sequences", []))
    fig.suptitle(f"open-loop rollout after {result['config']['context']} observed frames: "
                 f"{result.get('split', 'test')} split" + (f", {n} sequences" if n else ""), fontsize=12)
    return save_figure(fig, path)
