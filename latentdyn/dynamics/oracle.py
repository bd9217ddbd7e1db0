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
    elif balls is not None:  # no definition: the radii and light the metrics use (estimated or from attributes)
        from latentdyn.scenes.render import Renderer

        gains = np.ones(balls.n) if balls.gains is None else np.asarray(balls.gains, np.float64)
        profile = {1: "gaussian", 4: "disk"}.get(int(balls.power), "disk")
        renderer = Renderer(h, w, balls.radii, gains[:, None].repeat(C, 1), profile)
    else:
        raise LatentdynError(f"{sf.path} has no scene definition and its balls' shape is unknown; the state oracle "
                             "cannot draw its predictions")

    def draw(states):
        st = np.asarray(states, np.float32)
        S, L, n = st.shape[:3]
        fr = renderer(st[..., :2].reshape(S * L, n, 2))  # (S*L, h, w[, C])
        return fr.reshape(S, L, h, w, -1).astype(np.float32) / 255.0

    return draw


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
