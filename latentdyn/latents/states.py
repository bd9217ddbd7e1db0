"""State latents: a scene file's true states written as a latents file, the state oracle's input.

Every predictor trains on them with the same code as on a VAE's latents, so the rollout can put
"perfect perception" beside the model: its predicted states are drawn by the scene's own renderer
and scored by the same metrics (``latentdyn.dynamics.oracle``). The file is an ordinary
``sequences`` latents file (``latentdyn.latents.file``, docs/formats.md) with::

    attrs   latents = "states", latent_shape = [n, 4], vae_run = vae_sha256 = "" (no VAE),
            scene (the definition, if the scene file has one), source, source_splits
    /mu     float32 (N, T, n * 4): the states (x, y, vx, vy in pixels), object-major
    /logvar float32 zeros (the states are known exactly)
    /states, /splits as in the scene file
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.latents.file import write_sequences

KIND = "states"  # the value of the ``latents`` attribute of a state-latents file (VAE latents: absent or "vae")
FEATURES = 4  # x, y, vx, vy per object


def is_states(attrs) -> bool:
    """Whether a latents file's attributes (or a predictor checkpoint's ``data``) describe state latents."""
    if "latents_kind" in attrs:  # a checkpoint's data (its "latents" is the file's path)
        return str(attrs["latents_kind"]) == KIND
    return str(attrs.get("latents", "vae")) == KIND


def write_states(source: str | Path, out: str | Path, block: int = 512, config: dict | None = None) -> Path:
    """Write the true states of every sequence of the scene file ``source`` as a latents file ``out``."""
    from latentdyn.scenes.file import open_scenes

    with open_scenes(source) as sf:
        if sf.states is None:
            raise LatentdynError(f"{source} has no states (frames only, e.g. an imported video); the state oracle needs "
                                 "a scene file with ground-truth states")
        N, T, n, k = sf.states.shape
        if k < FEATURES:
            raise LatentdynError(f"{source} stores {k} numbers per object; state latents need x, y, vx, vy")
        attrs = {"latents": KIND, "latent_shape": json.dumps([n, FEATURES]), "vae_run": "", "vae_checkpoint": "",
                 "vae_sha256": "", "vae_config": "{}", "config": json.dumps(config or {}),
                 "source": str(Path(source).resolve()), "source_format": "latentdyn-scenes",
                 "source_splits": json.dumps(sorted(sf.splits)), "scene": json.dumps(sf.scene or {})}
        with write_sequences(out, attrs, N, T, n * FEATURES, sf.states, sf.splits) as f:
            for s in range(0, N, block):
                st = np.asarray(sf.states[s : s + block], np.float32)[..., :FEATURES]  # (k, T, n, 4)
                f["mu"][s : s + len(st)] = st.reshape(len(st), T, n * FEATURES)
                f["logvar"][s : s + len(st)] = 0.0
    return Path(out)
