"""Disentanglement scores against oracles: codes = factors, rotated factors, independent codes,
and MIG against a literal re-implementation of disentanglement_lib's ``_compute_mig``."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.metrics
from scipy.linalg import hadamard
from scipy.stats import special_ortho_group

from latentdyn.analysis import dci, mi_matrix, mig, probes, sap
from latentdyn.analysis.disentanglement import histogram_discretize, mig_per_factor, sap_matrix
from latentdyn.analysis.factors import auto_order, ball_permutation, centroid, scene_factors
from latentdyn.core.errors import LatentdynError

N, M = 5000, 4


@pytest.fixture(scope="module")
def factors():
    return np.random.default_rng(0).uniform(size=(N, M))  # independent uniform factors


def rotations():
    return [special_ortho_group.rvs(M, random_state=s) for s in range(5)]


# ---- disentanglement_lib, literally (evaluation/metrics/mig.py and utils.py at 76f41e3) ----------
def _lib_histogram_discretize(target, num_bins):
    discretized = np.zeros_like(target)
    for i in range(target.shape[0]):
        discretized[i, :] = np.digitize(target[i, :], np.histogram(target[i, :], num_bins)[1][:-1])
    return discretized


def _lib_discrete_mutual_info(mus, ys):
    m = np.zeros([mus.shape[0], ys.shape[0]])
    for i in range(mus.shape[0]):
        for j in range(ys.shape[0]):
            m[i, j] = sklearn.metrics.mutual_info_score(ys[j, :], mus[i, :])
    return m


def _lib_discrete_entropy(ys):
    h = np.zeros(ys.shape[0])
    for j in range(ys.shape[0]):
        h[j] = sklearn.metrics.mutual_info_score(ys[j, :], ys[j, :])
    return h


def _lib_compute_mig(mus_train, ys_train):  # (num_codes, n) and (num_factors, n), as the lib
    discretized_mus = _lib_histogram_discretize(mus_train, 20)
    m = _lib_discrete_mutual_info(discretized_mus, ys_train)
    entropy = _lib_discrete_entropy(ys_train)
    sorted_m = np.sort(m, axis=0)[::-1]
    return np.mean(np.divide(sorted_m[0, :] - sorted_m[1, :], entropy[:]))


def test_mig_equals_disentanglement_lib_on_discrete_factors():
    rng = np.random.default_rng(1)
    ys = rng.integers(0, [3, 6, 40, 32], size=(3000, 4))  # dSprites-like label factors
    codes = np.c_[ys[:, :2] + 0.3 * rng.normal(size=(3000, 2)), rng.normal(size=(3000, 3)), ys[:, 3] * 0.1]
    want = _lib_compute_mig(codes.T, ys.T)
    assert mig(codes, ys) == pytest.approx(want, abs=1e-12)
    assert 0.1 < want < 0.9  # a case with something to get wrong


def test_mig_equals_disentanglement_lib_with_binned_continuous_factors(factors):
    codes = np.c_[factors[:, :2] ** 3, np.random.default_rng(2).normal(size=(N, 2))]
    binned = _lib_histogram_discretize(factors.T, 20)  # continuous factors binned as the codes are
    assert mig(codes, factors) == pytest.approx(_lib_compute_mig(codes.T, binned), abs=1e-12)
    assert np.array_equal(histogram_discretize(factors), binned.T.astype(np.int64))


def test_mig_oracles(factors):
    ident = mig(factors, factors)
    assert ident > 0.95  # measured 0.985: 20x20 bins on 5000 points leave a little MI between others
    rot = [mig((factors - 0.5) @ q.T, factors) for q in rotations()]
    assert max(rot) < 0.35 and ident - max(rot) > 0.6  # measured 0.06..0.29
    assert mig((factors - 0.5) @ hadamard(M).T / 2, factors) < 0.02  # every code mixes every factor equally
    assert mig(np.random.default_rng(3).uniform(size=(N, M)), factors) < 0.02
    extra = np.c_[np.random.default_rng(4).normal(size=(N, 3)), factors]  # noise codes do not hurt the gap
    assert mig(extra, factors) == pytest.approx(ident, abs=0.01)


def test_mi_matrix_is_factor_by_code_and_normalised(factors):
    codes = np.c_[factors[:, [2, 0]], np.zeros(N)]
    mi = mi_matrix(codes, factors, normalize=True)
    assert mi.shape == (M, 3)
    assert mi[2, 0] == pytest.approx(1.0) and mi[0, 1] == pytest.approx(1.0)
    assert mi[1].max() < 0.05 and np.all(mi[:, 2] == 0)  # a constant code carries nothing
    raw = mi_matrix(codes, factors)
    assert raw[2, 0] == pytest.approx(np.log(20), abs=0.01)  # uniform factor in 20 bins: H = log 20 nats


def test_constant_factor_is_left_out_and_bad_input_refused(factors):
    f = np.c_[factors[:, :2], np.ones(N)]
    gaps = mig_per_factor(factors[:, :3], f)
    assert np.isnan(gaps[2]) and np.isfinite(gaps[:2]).all()
    assert mig(factors[:, :3], f) == pytest.approx(np.mean(gaps[:2]))
    with pytest.raises(LatentdynError, match="2"):
        mig(factors[:, :1], factors)
    with pytest.raises(LatentdynError, match="rows"):
        mig(factors[:10], factors)
    with pytest.raises(LatentdynError, match="NaN"):
        mig(np.full((N, 2), np.nan), factors)


def test_sap_oracles(factors):
    assert sap(factors, factors) > 0.99  # R^2 1 for the own code, about 0 for the others
    rot = [sap((factors - 0.5) @ q.T, factors) for q in rotations()]
    assert max(rot) < 0.75 and min(rot) < 0.3  # measured 0.20..0.70
    assert sap((factors - 0.5) @ hadamard(M).T / 2, factors) < 0.03
    assert sap(np.random.default_rng(3).uniform(size=(N, M)), factors) < 0.01
    s = sap_matrix(factors, factors)
    np.testing.assert_allclose(s, np.eye(M), atol=2e-3)  # the squared correlations


def test_sap_discrete_uses_a_held_out_classifier():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, size=(2000, 2))
    codes = np.c_[y[:, 0] + 0.1 * rng.normal(size=2000), rng.normal(size=2000)]
    s = sap_matrix(codes, y, codes[:1000], y[:1000])
    assert s[0, 0] > 0.99 and abs(s[1, 0] - 0.5) < 0.05  # chance for the noise code
    assert abs(s[0, 1] - 0.5) < 0.05 and abs(s[1, 1] - 0.5) < 0.05  # factor 1 is in no code
    assert sap(codes, y) == pytest.approx(np.mean(np.sort(sap_matrix(codes, y), 0)[-1] - np.sort(sap_matrix(codes, y), 0)[-2]))


def test_dci_oracles(factors):
    f, tr, te = factors, slice(0, 800), slice(800, 1100)  # GBT on small n: quick

    def run(c):
        return dci(c[tr], f[tr], c[te], f[te], n_estimators=30)

    ident = run(f)
    assert ident["disentanglement"] > 0.99 and ident["completeness"] > 0.99 and ident["informativeness_test"] > 0.98
    rot = run((f - 0.5) @ rotations()[1].T)
    assert rot["disentanglement"] < 0.7 and rot["informativeness_test"] > 0.9  # measured 0.56 and 0.99
    had = run((f - 0.5) @ hadamard(M).T / 2)
    assert had["disentanglement"] < 0.05 and had["completeness"] < 0.05
    ind = run(np.random.default_rng(3).uniform(size=(N, M)))
    assert ind["disentanglement"] < 0.1 and ind["informativeness_test"] < 0.05
    lasso = dci(f[:2000], f[:2000], method="lasso")  # one set: a seeded split inside
    assert lasso["disentanglement"] > 0.99 and lasso["informativeness_test"] > 0.99
    np.testing.assert_allclose(np.array(ident["importance"]), np.eye(M), atol=0.01)


def test_dci_label_factor_uses_a_classifier():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 3, size=(900, 1))
    codes = np.c_[y[:, 0] + 0.05 * rng.normal(size=900), rng.normal(size=900)]
    out = dci(codes, y, n_estimators=20)
    assert out["informativeness_metric"] == ["accuracy"] and out["informativeness_test"] > 0.99
    assert out["importance"][0][0] > 0.9
    assert np.isnan(out["disentanglement"]) and out["completeness"] > 0.5  # one factor: D is 0 / 0


def test_probes_linear_nonlinear_and_labels():
    rng = np.random.default_rng(7)
    z = rng.uniform(-1, 1, size=(2000, 3))
    f = np.c_[2 * z[:, 0] - z[:, 1], np.sin(3 * np.pi * z[:, 2])]
    out = probes(z[:1500], f[:1500], z[1500:], f[1500:], kinds=("linear", "hgb"), names=["lin", "sin"])
    lin, sin = out["factors"]["lin"], out["factors"]["sin"]
    assert lin["linear"] > 0.999 and lin["metric"] == "r2"
    assert sin["linear"] < 0.2 and sin["hgb"] > 0.9  # a curved factor: there, but not linearly
    labels = (z[:, 1] > 0).astype(np.int64)[:, None]
    acc = probes(z[:1500], labels[:1500], z[1500:], labels[1500:], kinds=("linear",))
    row = acc["factors"]["factor 0"]
    assert row["metric"] == "accuracy" and row["linear"] > 0.97
    with pytest.raises(LatentdynError, match="probe kind"):
        probes(z, f, kinds=("svm",))


def test_scene_factors_orders():
    rng = np.random.default_rng(8)
    st = rng.uniform(0, 28, size=(5, 6, 3, 4))  # (S, T, n, 4)
    swapped = st[:, :, [2, 0, 1]]  # the same scene with the balls stored in another order
    for order in ("sort-x", "match"):
        a, names = scene_factors(st, order)
        b, _ = scene_factors(swapped, order)
        np.testing.assert_array_equal(a, b)  # invariant to the stored order
    assert names[:5] == ["x0", "y0", "vx0", "vy0", "x1"]
    fx, _ = scene_factors(st, "sort-x")
    assert np.all(np.diff(fx[:, [0, 4, 8]], axis=1) >= 0)  # x0 <= x1 <= x2 at every frame
    perm = ball_permutation(st, "match")
    assert (perm == perm[:, :1]).all()  # identities kept over each sequence
    np.testing.assert_array_equal(scene_factors(st, "stored")[0].reshape(5, 6, 3, 4), st)
    assert auto_order({"render": {"colors": [[1, 0, 0], [0, 0, 1]]}}, 2) == "stored"
    assert auto_order({"physics": {"radius": 1.2}}, 3) == "sort-x"
    with pytest.raises(LatentdynError, match="ball order"):
        ball_permutation(st, "by-colour")


def test_centroid_reads_a_rendered_ball():
    from latentdyn.scenes.render import Renderer

    r = Renderer(28, 28, np.array([2.5]), np.array([[1.0]]))
    xy = np.array([[[7.3, 20.1]], [[14.0, 5.6]]])  # (F, 1, 2)
    frames = r(xy).astype(np.float64) / 255.0
    np.testing.assert_allclose(centroid(frames), xy[:, 0], atol=0.05)
