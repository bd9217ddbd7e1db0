"""Per-slot analysis of an object-slot VAE (``arch = "slots"``, ``latentdyn.vae.slots``) on a scene
file: each slot's dimensions scored against its own object's factors.

A slot VAE's K slots are exchangeable (its prior and decoder are symmetric in them), so "slot 2"
means nothing across frames until the slots are matched to the objects: in every frame each true
ball is assigned the slot whose drawn light is nearest its position (Hungarian assignment,
``latentdyn.vae.slot_match.codes_by_object``), and the codes are reordered so that columns
[b D, (b + 1) D) hold ball b's slot, the spare slots last (as object-centric models are scored
against ground truth: Locatello et al. 2020, Sec. 4; Kipf et al. 2022, SAVi, Sec. 4). The decoder
draws a reordered code exactly as the original (same frame), so traversals of the reordered codes
move one ball's slot. Two views of the scores:

- **matched**: the K D reordered codes against all factors (x0, y0, vx0, vy0, x1, ...): MIG, the
  normalised MI matrix and DCI, as ``analyze`` computes them on a flat latent. A slot model that
  keeps one ball per slot has its MI in D x 4 blocks down the diagonal.
- **per object**: every (frame, ball) a sample, the ball's slot's D numbers against that ball's
  x, y, vx, vy (pooled over the balls, since the slots share their weights): MIG, MI (4 x D) and
  DCI of one slot's dimensions, the slot-level disentanglement (e.g. whether position and
  appearance dimensions separate; Greff et al. 2019's per-object view).

Also: the matched distance (slot centroid to its ball, pixels), and the traversals of every slot's
D dimensions on the reordered codes, over the data's spread of each (``traversals_slots.png``,
``.mp4``, ``.gif``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.analysis import disentanglement as dis
from latentdyn.analysis.factors import COLUMNS


def reorder(vae, split: dict) -> dict:
    """The codes of a split (``load_split``'s dict with ``mu``, ``logvar``, ``xy``) matched to its balls:
    ``codes_by_object``'s dict plus ``logvar_flat`` (N, K D) reordered the same way."""
    from latentdyn.vae.slot_match import codes_by_object, slot_positions_np

    K, D = vae.latent_shape
    pos = slot_positions_np(vae.model, split["mu"])  # (N, K, 2) pixels
    by = codes_by_object(split["mu"], pos, split["xy"], (K, D))
    lv = np.asarray(split["logvar"]).reshape(len(pos), K, D)
    by["logvar_flat"] = np.take_along_axis(lv, by["order"][..., None], axis=1).reshape(len(pos), K * D)
    return by


def slot_column_names(K: int, D: int, n: int) -> list[str]:
    """Names of the reordered columns: ``b0.z1`` ... for the balls' slots, ``spare1.z1`` ... after them."""
    who = [f"b{k}" if k < n else f"spare{k - n + 1}" for k in range(K)]
    return [f"{w}.z{j + 1}" for w in who for j in range(D)]


def per_object(by: dict, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples (N n, D) of each ball's slot and (N n, 4) of that ball's x, y, vx, vy."""
    N, n, D = by["objects"].shape
    f = np.asarray(factors).reshape(N, n, len(COLUMNS))  # factors are named x0, y0, vx0, vy0, x1, ...
    return by["objects"].reshape(N * n, D), f.reshape(N * n, len(COLUMNS))


def analyze_slots(vae, tr: dict, te: dict, out: Path, bins: int, dci_method: str, dci_estimators: int, seed: int,
                  traversal_codes: int, steps: int, span: float, fps: float, title: str, heatmap) -> dict:
    """The per-slot section of ``analysis.json`` (``"slots"``) and its figures in ``out``; the
    traversals sweep ``span`` times each column's spread over the test codes (the data scale).
    ``heatmap(mi, row_names, path, title, columns)`` draws an MI heat map (``run._mi_heatmap``)."""
    from latentdyn.analysis import traversals as trv

    K, D = vae.latent_shape
    n = te["xy"].shape[1]
    btr, bte = reorder(vae, tr), reorder(vae, te)
    names, cont = te["names"], te["continuous"]
    cols = slot_column_names(K, D, n)
    mi = dis.mi_matrix(bte["flat"], te["factors"], bins, cont, normalize=True)  # (4 n, K D)
    otr, ftr = per_object(btr, tr["factors"])
    ote, fte = per_object(bte, te["factors"])
    omi = dis.mi_matrix(ote, fte, bins, True, normalize=True)  # (4, D)
    res = {
        "latent_shape": [K, D], "balls": n, "columns": cols,
        "matching": "per frame, each ball's slot by Hungarian assignment of the slots' light centroids to the true "
                    "positions (latentdyn.vae.slot_match); codes reordered: ball b's slot in columns [b D, (b+1) D)",
        "matched_distance_px": {"train": float(np.mean(btr["distance"])), "test": float(np.mean(bte["distance"])),
                                "test_p95": float(np.percentile(bte["distance"], 95))},
        "matched": {
            "test": {"mig": dis.mig(bte["flat"], te["factors"], bins, cont),
                     "mig_per_factor": dict(zip(names, dis.mig_per_factor(bte["flat"], te["factors"], bins, cont).tolist())),
                     "mi_normalized": mi.tolist()},
            "fit train, score test": {"dci": dis.dci(btr["flat"], tr["factors"], bte["flat"], te["factors"], method=dci_method,
                                                     continuous=cont, n_estimators=dci_estimators, seed=seed)},
        },
        "per_object": {
            "factors": list(COLUMNS), "samples": {"train": len(otr), "test": len(ote)},
            "test": {"mig": dis.mig(ote, fte, bins, True),
                     "mig_per_factor": dict(zip(COLUMNS, dis.mig_per_factor(ote, fte, bins, True).tolist())),
                     "mi_normalized": omi.tolist()},
            "fit train, score test": {"dci": dis.dci(otr, ftr, ote, fte, method=dci_method, continuous=True,
                                                     n_estimators=dci_estimators, seed=seed)},
        },
    }
    heatmap(mi, names, out / "mi_heatmap_slots.png", "normalised MI, slots matched to balls, " + title, cols)
    heatmap(omi, list(COLUMNS), out / "mi_heatmap_per_slot.png", "normalised MI, each ball's slot, " + title,
            [f"z{j + 1}" for j in range(D)])
    pick = np.sort(np.random.default_rng(seed).choice(len(bte["flat"]), min(traversal_codes, len(bte["flat"])), replace=False))
    # the data's spread of each column: a slot's posterior is so sharp (position sd ~0.01 frame) that
    # +-3 posterior sd moves a ball by under a pixel, while the data's spread sweeps the frame
    lv = np.broadcast_to(np.log(np.maximum(bte["flat"].var(0), 1e-12)), (len(pick), K * D))
    dims = list(range(K * D))
    images, t = trv.traverse(vae.decode, bte["flat"][pick], lv, dims, steps, span, "posterior")  # (K D, codes, steps, H, W, C)
    kl = trv.kl_per_dim(bte["flat"], bte["logvar_flat"])
    trv.traversal_figure(images, t, dims, kl, out / "traversals_slots.png", "traversals of each ball's slot, " + title,
                         labels=cols)
    trv.traversal_video(images, t, dims, out / "traversals_slots", fps, labels=cols)
    res["traversal"] = {"dims": cols, "codes": pick.tolist(), "offsets": t.tolist(), "scale": "data",
                        "kl_per_dim": kl.tolist()}
    res["figures"] = {"mi_heatmap_slots": "mi_heatmap_slots.png", "mi_heatmap_per_slot": "mi_heatmap_per_slot.png",
                      "traversals_slots": "traversals_slots.png",
                      "traversal_slots_videos": ["traversals_slots.mp4", "traversals_slots.gif"]}
    return res
