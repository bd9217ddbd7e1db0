"""Which slot of an object-slot VAE (``latentdyn.vae.slots``) shows which object: slots matched to
true objects by position, frame by frame, and the codes reordered by object.

A slot's position is the centroid of the light it draws (``SlotVAE.slot_positions``); in each
frame the slots are assigned to the true objects by the Hungarian algorithm on the distance
(Kuhn 1955; scipy's ``linear_sum_assignment``), as object-centric models are scored against
ground truth (Locatello et al. 2020, Sec. 4; Kipf et al. 2022). From the assignment:
``consistency`` (does slot k keep its object over a sequence) for the rollout, and
``codes_by_object`` (each object's slot's D numbers; the K D codes with the objects' slots first)
for the per-slot analysis and latent maps, which then score a slot's dimensions against its own
object's factors.
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError


def match_slots(positions: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each true object's slot in every frame by Hungarian assignment (scipy's
    ``linear_sum_assignment``) of slot positions (S, T, K, 2) to true positions (S, T, n, 2), n <= K,
    minimising the summed distance; a slot with no position (NaN) is assigned last.
    Returns the slot of each object (S, T, n) and its distance (S, T, n)."""
    from scipy.optimize import linear_sum_assignment

    S, T, K = positions.shape[:3]
    n = truth.shape[2]
    if n > K:
        raise LatentdynError(f"{n} objects but {K} slots: train the slot VAE with slots >= {n}")
    cost = np.linalg.norm(positions[:, :, :, None] - truth[:, :, None], axis=-1)  # (S, T, K, n)
    big = np.nan_to_num(cost, nan=0.0).max() * 10 + 1e6
    cost = np.where(np.isfinite(cost), cost, big)
    slot, dist = np.zeros((S, T, n), np.int64), np.zeros((S, T, n))
    for s in range(S):
        for t in range(T):
            rows, cols = linear_sum_assignment(cost[s, t])  # rows: slots, cols: objects
            slot[s, t, cols], dist[s, t, cols] = rows, cost[s, t, rows, cols]
    return slot, dist


def consistency(slot: np.ndarray) -> float:
    """The fraction of sequences in which every object keeps the slot it had in the first frame,
    ``slot`` (S, T, n) from ``match_slots``; 1 for slots that never swap objects."""
    return float(np.mean(np.all(slot == slot[:, :1], axis=(1, 2)))) if len(slot) else float("nan")


def slot_consistency(model, mu: np.ndarray, states: np.ndarray, batch: int = 2048) -> dict:
    """Whether slot k is the same object in every frame: the slots' positions (``slot_positions``) of
    posterior means ``mu`` (S, T, K D) matched to the true positions ``states[..., :2]`` (S, T, n, >=2)
    per frame (``match_slots``). Returns the fraction of sequences with no swap (``consistency``),
    the fraction of frames whose assignment is the first frame's, and the matched distance (px)."""
    S, T = mu.shape[:2]
    pos = slot_positions_np(model, np.asarray(mu).reshape(S * T, -1), batch)  # (S*T, K, 2)
    slot, dist = match_slots(pos.reshape(S, T, *pos.shape[1:]), np.asarray(states[..., :2], np.float64))
    return {"consistency": consistency(slot), "frames_kept": float(np.mean(np.all(slot == slot[:, :1], axis=2))),
            "matched_distance_px": float(np.mean(dist)), "sequences": int(S), "frames": int(T),
            "positions": "centroid of each slot's light in the decoded mean image, m_k x_k"}


def slot_positions_np(model, mu: np.ndarray, batch: int = 2048) -> np.ndarray:
    """``SlotVAE.slot_positions`` of posterior means ``mu`` (N, K D) in batches: (N, K, 2) float64, pixels."""
    import torch

    dev = next(model.parameters()).device
    flat = torch.as_tensor(np.asarray(mu), dtype=torch.float32).reshape(len(mu), -1)
    parts = [model.slot_positions(flat[i : i + batch].to(dev)).cpu().double().numpy() for i in range(0, len(flat), batch)]
    K = model.latent_shape[0]
    return np.concatenate(parts) if parts else np.zeros((0, K, 2))


def codes_by_object(codes: np.ndarray, positions: np.ndarray, xy: np.ndarray, latent_shape: tuple[int, int]) -> dict:
    """Codes (N, K D) of frames reordered by the objects they show, given the slots' positions (N, K, 2)
    and the true objects' positions ``xy`` (N, n, 2), n <= K, in the order the factors name them.

    Returns ``slot`` (N, n): the slot matched to each object (``match_slots``); ``distance`` (N, n)
    in pixels; ``order`` (N, K): the objects' slots first, then the spare slots by index;
    ``objects`` (N, n, D): each object's slot's numbers; ``flat`` (N, K D): the codes in ``order``,
    so columns [b D, (b + 1) D) belong to object b in every frame.
    """
    K, D = latent_shape
    N, n = len(codes), xy.shape[1]
    z = np.asarray(codes).reshape(N, K, D)
    slot, dist = match_slots(np.asarray(positions, np.float64)[:, None], np.asarray(xy, np.float64)[:, None])
    slot, dist = slot[:, 0], dist[:, 0]  # (N, n)
    taken = np.zeros((N, K), bool)
    np.put_along_axis(taken, slot, True, axis=1)
    spare = np.argsort(taken, axis=1, kind="stable")[:, : K - n]  # (N, K - n): untaken slots, by index
    order = np.concatenate([slot, spare], axis=1)  # (N, K)
    ordered = np.take_along_axis(z, order[..., None], axis=1)  # (N, K, D)
    return {"slot": slot, "distance": dist, "order": order, "objects": ordered[:, :n], "flat": ordered.reshape(N, K * D)}
