"""The state oracle in a rollout: a predictor trained on the true states, its predictions drawn.

A predictor trained on state latents (``latentdyn.latents.states``: x, y, vx, vy per object, the
perception a perfect encoder would give) is warmed up on the true states of the observed frames
and rolled forward like the model; its predicted positions are drawn by the scene's own renderer
(balls: ``SceneConfig.renderer``; sprite scenes: each sequence's own sprites pasted at the
predicted centres, ``latentdyn.scenes.sprites.render``; a scene file without a definition: the
balls' estimated radii and light, ``objects.Balls``) and scored by the rollout's metrics beside
the model, the ceiling and the baselines. Reading the three together tells perception from
dynamics: the ceiling bounds what the VAE can show, the oracle what the dynamics can predict.
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError


def state_renderer(scene: dict | None, sf, ids: np.ndarray, frame_shape: tuple[int, ...], balls=None):
    """A function drawing states (S, L, n, >=2) of the sequences ``ids`` of the open scene file
    ``sf`` to frames (S, L, h, w, C) float32 in [0, 1], by the scene's own renderer."""
    from latentdyn.core.config import from_dict

    h, w, C = frame_shape
    if scene and scene.get("kind") == "sprites":
        from latentdyn.scenes import sprites
        from latentdyn.scenes.sprites import SOURCES, SpriteSceneConfig

        cfg = from_dict(SpriteSceneConfig, scene)
        rec = sf.sprites
        if "index" not in rec:
            raise LatentdynError(f"{sf.path} is a sprite scene without its /sprites records; regenerate it")
        sel = np.sort(ids)
        index, source = np.asarray(rec["index"][sel]), np.asarray(rec["source_split"][sel])  # (S, n), (S,)
        bank = sprites.prepare(cfg, {SOURCES[int(k)]: 1.0 for k in np.unique(source)})  # the official splits used
        images = np.stack([bank.images[SOURCES[int(s)]][i] for s, i in zip(source, index)])  # (S, n, size, size, C')
        if images.ndim == 4:
            images = images[..., None]

        def draw(states):
            fr = sprites.render(np.asarray(states, np.float32), images, h, w)  # (S, L, h, w[, C])
            return (fr.reshape(*fr.shape[:4], -1).astype(np.float32) / 255.0)

        return draw
    if scene:
        from latentdyn.scenes.generate import SceneConfig

        renderer = from_dict(SceneConfig, scene).renderer()
    elif balls is not None:  # no definition: the radii, light and profile the metrics use (attributes or fitted)
        def renderer(centres):
            return draw_balls(centres, balls, h, w, C)
    else:
        raise LatentdynError(f"{sf.path} has no scene definition and its balls' shape is unknown; the state oracle "
                             "cannot draw its predictions")

    def draw(states):
        st = np.asarray(states, np.float32)
        S, L, n = st.shape[:3]
        fr = renderer(st[..., :2].reshape(S * L, n, 2))  # (S*L, h, w[, C])
        return fr.reshape(S, L, h, w, -1).astype(np.float32) / 255.0

    return draw


def draw_balls(centres: np.ndarray, balls, height: int, width: int, channels: int = 1) -> np.ndarray:
    """Balls (``objects.Balls``: radii r_i, peak light k_i, profile power q) at centres (F, n, 2) in
    pixels, drawn densely as sum_i k_i exp(-(|p - c_i|^2 / r_i^2)^q), clipped at 1 and stored as
    floor(255 v + 0.5), the scene renderer's formula (``latentdyn.scenes.render``) for any q:
    uint8 (F, H, W), or (F, H, W, C) for C > 1."""
    c = np.asarray(centres, np.float64)
    ys, xs = np.arange(height) + 0.5, np.arange(width) + 0.5
    d2 = (xs[None, None, None, :] - c[..., 0, None, None]) ** 2 + (ys[None, None, :, None] - c[..., 1, None, None]) ** 2
    k = np.ones(balls.n) if balls.gains is None else np.asarray(balls.gains, np.float64)
    r2 = np.asarray(balls.radii, np.float64)[None, :, None, None] ** 2
    light = (k[None, :, None, None] * np.exp(-((d2 / r2) ** balls.power))).sum(1)  # (F, H, W)
    out = np.floor(255.0 * np.clip(light, 0.0, 1.0) + 0.5).astype(np.uint8)
    return out if channels == 1 else np.repeat(out[..., None], channels, -1)


def oracle_predictions(dyn, states: np.ndarray, K: int, H: int, device) -> tuple[np.ndarray, np.ndarray]:
    """Open-loop predicted states (S, H, n, 4) after the first K true states of states (S, T, n, 4),
    and the one-step predictions of states 1..T-1 from the true past, (S, T-1, n, 4)."""
    import torch

    S, T, n = states.shape[:3]
    d = n * 4
    if dyn.latent_dim != d:
        raise LatentdynError(f"the state oracle reads {dyn.latent_dim} numbers per frame, the scene's states {d}; "
                             "train it on this scene's state latents (latentdyn encode --states)")
    x = torch.as_tensor(np.asarray(states[..., :4], np.float32).reshape(S, T, d), device=device)  # (S, T, d)
    lv = torch.zeros_like(x)
    dyn.eval()
    with torch.no_grad():
        z = dyn.rollout(x[:, :K], lv[:, :K], H)["mu"]  # (S, H, d)
        one = dyn(x[:, :-1], lv[:, :-1])[0]  # (S, T-1, d)
    return z.cpu().numpy().reshape(S, H, n, 4), one.cpu().numpy().reshape(S, T - 1, n, 4)


def oracle_frames(cfg, data, ids, states, scene, shape, balls, device):
    """The state oracle's open-loop frames (S, H, h, w, C) and one-step frames (S, T-1, h, w, C)
    of the sequences ``ids`` of the scene file ``data`` (true states (S, T, n, 4)), by ``cfg.oracle``
    (a ``RolloutConfig``'s); a one-line error when the scene has no states."""
    from latentdyn.dynamics.model import load_dynamics
    from latentdyn.latents.states import is_states
    from latentdyn.scenes.file import open_scenes

    if states is None:
        raise LatentdynError(f"--oracle needs ground-truth states, and {data} has none; drop --oracle")
    dyn, _, ck = load_dynamics(cfg.oracle, "best", device)
    if not is_states(ck["data"]):
        raise LatentdynError(f"--oracle {cfg.oracle} was trained on a VAE's latents, not on true states; train it on "
                             "`latentdyn encode --states` latents")
    z, one = oracle_predictions(dyn, states, cfg.context, cfg.horizon, device)  # (S, H, n, 4), (S, T-1, n, 4)
    with open_scenes(data) as sf:
        draw = state_renderer(scene, sf, ids, shape, balls)
    return draw(z), draw(one)
