"""The classic bouncing-balls generator, written as a plain per-frame loop: the yardstick.

This follows the widely copied RTRBM generator (Sutskever, Hinton and Taylor 2009;
``bouncing_balls.py``): a Python loop over frames, sub-steps and balls for the physics, and a
dense numpy render of every ball on every frame with the super-Gaussian
``exp(-((d^2 / r^2)^4))``. It lives in benchmarks/ only, as the baseline that
``bench_scenes.py`` times in the same run as ``latentdyn generate``.
"""

from __future__ import annotations

import numpy as np

SIZE = 10.0


def _new_speeds(m1, m2, v1, v2):
    new_v2 = (2 * m1 * v1 + v2 * (m2 - m1)) / (m1 + m2)
    new_v1 = new_v2 + (v2 - v1)
    return new_v1, new_v2


def bounce_n(T, n, r, m, rng):
    X = np.zeros((T, n, 2))
    v = rng.standard_normal((n, 2))
    v = v / np.linalg.norm(v) * 0.5
    good = False
    while not good:
        x = 2 + rng.random((n, 2)) * 8
        good = True
        for i in range(n):
            for z in range(2):
                if x[i][z] - r[i] < 0 or x[i][z] + r[i] > SIZE:
                    good = False
        for i in range(n):
            for j in range(i):
                if np.linalg.norm(x[i] - x[j]) < r[i] + r[j]:
                    good = False
    eps = 0.5
    for t in range(T):
        for i in range(n):
            X[t, i] = x[i]
        for _ in range(int(1 / eps)):
            for i in range(n):
                x[i] += eps * v[i]
            for i in range(n):
                for z in range(2):
                    if x[i][z] - r[i] < 0:
                        v[i][z] = abs(v[i][z])
                    if x[i][z] + r[i] > SIZE:
                        v[i][z] = -abs(v[i][z])
            for i in range(n):
                for j in range(i):
                    if np.linalg.norm(x[i] - x[j]) < r[i] + r[j]:
                        w = x[i] - x[j]
                        w = w / np.linalg.norm(w)
                        v_i = np.dot(w, v[i])
                        v_j = np.dot(w, v[j])
                        new_v_i, new_v_j = _new_speeds(m[i], m[j], v_i, v_j)
                        v[i] += w * (new_v_i - v_i)
                        v[j] += w * (new_v_j - v_j)
    return X


def matricize(X, res, r):
    T, n = X.shape[:2]
    A = np.zeros((T, res, res))
    a = np.arange(0, 1, 1.0 / res) * SIZE + SIZE / res / 2
    I, J = np.meshgrid(a, a)
    for t in range(T):
        for i in range(n):
            A[t] += np.exp(-((((I - X[t, i, 0]) ** 2 + (J - X[t, i, 1]) ** 2) / (r[i] ** 2)) ** 4))
        A[t][A[t] > 1] = 1
    return A


def bounce_vec(res, n=3, T=100, r=None, m=None, rng=None):
    """One sequence (T, res, res) in [0, 1], as the classic code returns it."""
    r = np.array([1.2] * n) if r is None else r
    m = np.array([1.0] * n) if m is None else m
    return matricize(bounce_n(T, n, r, m, rng), res, r)


def generate(n_sequences, T=100, res=30, n=3, seed=0):
    """The classic generator's data set: (N, T, res, res) uint8 (quantised as latentdyn stores it)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_sequences, T, res, res), np.uint8)
    for k in range(n_sequences):
        out[k] = np.floor(bounce_vec(res, n, T, rng=rng) * 255 + 0.5)
    return out
