"""Disentanglement scores of codes against ground-truth factors: MIG, SAP, DCI, probes.

Pure numpy + scikit-learn; every function takes ``codes`` (n, k) (posterior means, one row per
image) and ``factors`` (n, m) (one column per ground-truth factor) and follows the structure of
disentanglement_lib (Locatello et al. 2019, ``evaluation/metrics/{mig,sap_score,dci,utils}.py``):
small ``_compute_*`` cores on arrays, wrapped by validating public functions.

Continuous and discrete factors. ``continuous`` is None (infer: an integer or bool array is
discrete, a float array continuous), a bool, or a bool mask (m,). Discrete factors (integer
labels) are used as they are: never re-binned (MIG), classified rather than regressed (SAP, DCI,
probes). disentanglement_lib only has discrete factors (dSprites, Shapes3D); the continuous
branches (histogram-binned factors in MIG, regressors in DCI and the probes) are ours.

- MIG (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", Eq. 5), as
  disentanglement_lib's ``_compute_mig``: each code, and each continuous factor, is discretised
  into ``bins`` = 20 equal-width bins (``np.digitize(x, np.histogram(x, bins)[1][:-1])``, as
  ``utils._histogram_discretize``); I(v_j; z_i) = ``sklearn.metrics.mutual_info_score`` (nats);
  H(v_j) = the MI of the factor with itself; per factor the gap between the two largest MIs over
  the codes divided by H(v_j); MIG is the mean over factors. A constant factor (H = 0) has no gap
  (NaN) and is left out of the mean.
- SAP (Kumar et al. 2018, Sec. 3), as ``sap_score._compute_score_matrix``: score(i, j) = R^2 of
  a 1-D linear fit of factor j on code i (the squared correlation, on the fitting data, as the lib)
  for a continuous factor; for a discrete one the test accuracy of
  ``LinearSVC(C=0.01, class_weight="balanced")`` fitted on the one code. SAP = mean over factors
  of the gap between the two best codes.
- DCI (Eastwood and Williams 2018), as ``dci.py``: an importance matrix R (k, m) from a
  regressor/classifier of each factor on all codes: ``GradientBoosting{Regressor,Classifier}``
  feature importances (``method="gbt"``, the lib's choice) or |coefficients| of a Lasso on
  standardised codes and factor (``method="lasso"``, the paper's linear choice; L1 logistic
  regression for a discrete factor). Disentanglement = sum_i rho_i (1 - H_m(R_i.)) with rho_i the
  code's share of all importance, H_m the entropy in base m of the code's normalised row;
  completeness = sum_j rho_j (1 - H_k(R_.j)); informativeness = mean over factors of the
  accuracy (discrete; the lib) or R^2 (continuous; ours) on the train and on the test codes.
- Probes: per factor a linear (LinearRegression / LogisticRegression) and nonlinear
  (HistGradientBoosting, or an MLP) model fitted on train codes; R^2 (accuracy for labels) on
  the test codes. A factor a linear probe reads is linearly decodable; the gap to the nonlinear
  probe says how much is there but curved.

One set or two: SAP (discrete factors), DCI and the probes fit on train and score on test. Given
one set only, they split it once, at random with ``seed`` (``test_fraction`` held out).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from latentdyn.core.errors import LatentdynError

BINS = 20  # disentanglement_lib's histogram_discretizer.num_bins in its MIG configs


def limit_threads(n: int | None = 1):
    """Cap OpenMP/BLAS threads during fits (None: no cap). On a shared 2-core machine
    HistGradientBoosting on 4,000 rows took 19 s with the default threads and 1.1 s with one, and
    a LogisticRegression on 400 images 34 s against 0.8 s (oversubscription)."""
    import contextlib

    if not n:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


# ---- inputs ---------------------------------------------------------------------------------
def _as_2d(x, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise LatentdynError(f"{what} must be an array (n, columns), got shape {x.shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise LatentdynError(f"{what} has NaN or infinite values; drop those rows first")
    return x


def _check(codes, factors, min_codes: int = 1) -> tuple[np.ndarray, np.ndarray]:
    codes, factors = _as_2d(codes, "codes"), _as_2d(factors, "factors")
    if len(codes) != len(factors):
        raise LatentdynError(f"codes have {len(codes)} rows but factors {len(factors)}; give one code per factor row")
    if len(codes) < 4:
        raise LatentdynError(f"{len(codes)} rows are too few to score codes; give at least 4")
    if codes.shape[1] < min_codes:
        raise LatentdynError(f"codes have {codes.shape[1]} dimension(s); this score compares the best two, so it needs {min_codes}")
    return codes.astype(np.float64), factors


def continuous_mask(factors: np.ndarray, continuous=None) -> np.ndarray:
    """(m,) bool: which factor columns are continuous (see the module docstring)."""
    m = factors.shape[1]
    if continuous is None:
        return np.full(m, factors.dtype.kind == "f")
    mask = np.asarray(continuous, bool)
    if mask.ndim == 0:
        return np.full(m, bool(mask))
    if mask.shape != (m,):
        raise LatentdynError(f"continuous has {mask.size} entries but there are {m} factors; give one bool per factor")
    return mask


def _labels(y: np.ndarray) -> np.ndarray:
    """A discrete factor column as integer labels 0..L-1 (its values as they are, renamed)."""
    return np.unique(y, return_inverse=True)[1].reshape(-1)


def split(codes, factors, test_fraction: float = 0.25, seed: int = 0):
    """(codes_train, factors_train, codes_test, factors_test): one seeded random split of the rows."""
    if not 0 < test_fraction < 1:
        raise LatentdynError(f"test_fraction {test_fraction}: must be in (0, 1)")
    n = len(codes)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    te, tr = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return codes[tr], factors[tr], codes[te], factors[te]


def _pair(codes_train, factors_train, codes_test, factors_test, test_fraction, seed, min_codes=1):
    c, f = _check(codes_train, factors_train, min_codes)
    if (codes_test is None) != (factors_test is None):
        raise LatentdynError("give both codes_test and factors_test, or neither (then one seeded split is made)")
    if codes_test is None:
        return split(c, f, test_fraction, seed)
    ct, ft = _check(codes_test, factors_test, min_codes)
    if ct.shape[1] != c.shape[1] or ft.shape[1] != f.shape[1]:
        raise LatentdynError(f"train arrays have {c.shape[1]} codes and {f.shape[1]} factors, test {ct.shape[1]} and {ft.shape[1]}")
    return c, f, ct, ft


# ---- MIG ------------------------------------------------------------------------------------
def histogram_discretize(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each column of x (n, c) into ``bins`` equal-width bins, labels 1..bins (``_histogram_discretize``)."""
    x = np.asarray(x, np.float64)
    out = np.zeros(x.shape, np.int64)
    for i in range(x.shape[1]):
        out[:, i] = np.digitize(x[:, i], np.histogram(x[:, i], bins)[1][:-1])
    return out


def _discrete_factors(factors: np.ndarray, mask: np.ndarray, bins: int) -> np.ndarray:
    out = np.zeros(factors.shape, np.int64)
    for j in range(factors.shape[1]):
        out[:, j] = histogram_discretize(factors[:, j : j + 1], bins)[:, 0] if mask[j] else _labels(factors[:, j])
    return out


def _compute_mi(codes_d: np.ndarray, factors_d: np.ndarray) -> np.ndarray:
    """MI matrix (k, m) in nats of discrete codes (n, k) and factors (n, m) (``utils.discrete_mutual_info``)."""
    from sklearn.metrics import mutual_info_score

    k, m = codes_d.shape[1], factors_d.shape[1]
    return np.array([[mutual_info_score(factors_d[:, j], codes_d[:, i]) for j in range(m)] for i in range(k)]).reshape(k, m)


def _compute_entropy(factors_d: np.ndarray) -> np.ndarray:
    """H(v_j) in nats (m,) as the lib's ``discrete_entropy``: the MI of each factor with itself."""
    from sklearn.metrics import mutual_info_score

    return np.array([mutual_info_score(factors_d[:, j], factors_d[:, j]) for j in range(factors_d.shape[1])])


def _compute_mig(mi: np.ndarray, entropy: np.ndarray) -> np.ndarray:
    """Per-factor normalised gap (m,) from the MI matrix (k, m); NaN for a constant factor."""
    top = np.sort(mi, axis=0)[::-1]  # (k, m), largest first
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(entropy > 0, (top[0] - top[1]) / np.where(entropy > 0, entropy, 1.0), np.nan)


def mi_matrix(codes, factors, bins: int = BINS, continuous=None, normalize: bool = False) -> np.ndarray:
    """Factor-by-latent mutual information (m, k) in nats (or divided by each factor's entropy
    with ``normalize``: the share of the factor's information in each code), for the heat map."""
    codes, factors = _check(codes, factors)
    fd = _discrete_factors(factors, continuous_mask(factors, continuous), bins)
    mi = _compute_mi(histogram_discretize(codes, bins), fd).T  # (m, k)
    if normalize:
        h = _compute_entropy(fd)
        with np.errstate(divide="ignore", invalid="ignore"):
            mi = np.where(h[:, None] > 0, mi / np.where(h[:, None] > 0, h[:, None], 1.0), np.nan)
    return mi


def mig_per_factor(codes, factors, bins: int = BINS, continuous=None) -> np.ndarray:
    """The normalised MI gap of each factor (m,); NaN for a constant factor."""
    codes, factors = _check(codes, factors, min_codes=2)
    fd = _discrete_factors(factors, continuous_mask(factors, continuous), bins)
    return _compute_mig(_compute_mi(histogram_discretize(codes, bins), fd), _compute_entropy(fd))


def mig(codes, factors, bins: int = BINS, continuous=None) -> float:
    """Mutual information gap (Chen et al. 2018) as disentanglement_lib computes it: in [0, 1]."""
    gaps = mig_per_factor(codes, factors, bins, continuous)
    if not np.isfinite(gaps).any():
        raise LatentdynError("every factor is constant over these rows; MIG is undefined")
    return float(np.nanmean(gaps))


# ---- SAP ------------------------------------------------------------------------------------
def _compute_sap_matrix(c, f, ct, ft, mask) -> np.ndarray:
    """Score matrix (k, m) of ``sap_score._compute_score_matrix``."""
    from sklearn.svm import LinearSVC

    k, m = c.shape[1], f.shape[1]
    s = np.zeros((k, m))
    for j in range(m):
        y, yt = (f[:, j].astype(np.float64), None) if mask[j] else (f[:, j], ft[:, j])
        for i in range(k):
            if mask[j]:
                cov = np.cov(c[:, i], y, ddof=1)
                s[i, j] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 and cov[1, 1] > 0 else 0.0
            elif len(np.unique(y)) < 2:
                s[i, j] = 0.0
            else:
                clf = LinearSVC(C=0.01, class_weight="balanced").fit(c[:, i : i + 1], y)
                s[i, j] = float(np.mean(clf.predict(ct[:, i : i + 1]) == yt))
    return s


def sap_matrix(codes, factors, codes_test=None, factors_test=None, continuous=None,
               test_fraction: float = 0.25, seed: int = 0) -> np.ndarray:
    """SAP's score matrix (k, m): R^2 on (codes, factors) for continuous factors, LinearSVC test
    accuracy for discrete ones (fitted on codes, scored on codes_test; one seeded split if absent)."""
    codes, factors = _check(codes, factors, min_codes=2)
    mask = continuous_mask(factors, continuous)
    if mask.all():  # the lib scores continuous factors on the fitting data only
        return _compute_sap_matrix(codes, factors, codes, factors, mask)
    c, f, ct, ft = _pair(codes, factors, codes_test, factors_test, test_fraction, seed, 2)
    if mask.any():  # continuous columns always on all of (codes, factors), as the lib
        s = _compute_sap_matrix(c, f, ct, ft, mask)
        s[:, mask] = _compute_sap_matrix(codes, factors, codes, factors, mask)[:, mask]
        return s
    return _compute_sap_matrix(c, f, ct, ft, mask)


def sap(codes, factors, codes_test=None, factors_test=None, continuous=None,
        test_fraction: float = 0.25, seed: int = 0) -> float:
    """Separated Attribute Predictability (Kumar et al. 2018): mean top-two gap of the score matrix."""
    s = np.sort(sap_matrix(codes, factors, codes_test, factors_test, continuous, test_fraction, seed), axis=0)
    return float(np.mean(s[-1] - s[-2]))


# ---- DCI ------------------------------------------------------------------------------------
def _fit_importance(c, y, yt_c, yt, continuous: bool, method: str, n_estimators: int, alpha: float, seed: int):
    """Importances (k,) of codes for one factor and its informativeness on train and test."""
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    if method == "gbt":
        from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

        cls = GradientBoostingRegressor if continuous else GradientBoostingClassifier
        model = cls(n_estimators=n_estimators, random_state=seed).fit(c, y)
        imp = np.abs(model.feature_importances_)
        pred_tr, pred_te = model.predict(c), model.predict(yt_c)
    else:
        sc = StandardScaler().fit(c)
        xs, xts = sc.transform(c), sc.transform(yt_c)
        if continuous:
            from sklearn.linear_model import Lasso

            mu, sd = y.mean(), y.std() or 1.0
            model = Lasso(alpha=alpha, random_state=seed).fit(xs, (y - mu) / sd)
            imp = np.abs(model.coef_)
            pred_tr, pred_te = model.predict(xs) * sd + mu, model.predict(xts) * sd + mu
        else:
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(penalty="l1", C=1.0 / max(alpha * len(c), 1e-12), solver="saga", max_iter=2000,
                                       random_state=seed).fit(xs, y)
            imp = np.abs(model.coef_).sum(0)
            pred_tr, pred_te = model.predict(xs), model.predict(xts)
    if continuous:
        return imp, float(r2_score(y, pred_tr)), float(r2_score(yt, pred_te))
    return imp, float(np.mean(pred_tr == y)), float(np.mean(pred_te == yt))


def _compute_disentanglement(R: np.ndarray) -> float:
    """``dci.disentanglement``: importance-weighted 1 - entropy (base m) of each code's row of R (k, m).
    NaN for one factor (an entropy in base 1 is 0 / 0: nothing to disentangle)."""
    if R.shape[1] < 2:
        return float("nan")
    per_code = 1.0 - stats.entropy(R.T + 1e-11, base=R.shape[1])
    if R.sum() == 0.0:
        R = np.ones_like(R)
    return float(np.sum(per_code * R.sum(1) / R.sum()))


def _compute_completeness(R: np.ndarray) -> float:
    """``dci.completeness``: importance-weighted 1 - entropy (base k) of each factor's column of R (k, m).
    NaN for one code."""
    if R.shape[0] < 2:
        return float("nan")
    per_factor = 1.0 - stats.entropy(R + 1e-11, base=R.shape[0])
    if R.sum() == 0.0:
        R = np.ones_like(R)
    return float(np.sum(per_factor * R.sum(0) / R.sum()))


def dci(codes_train, factors_train, codes_test=None, factors_test=None, method: str = "gbt", continuous=None,
        n_estimators: int = 100, max_train: int = 5000, alpha: float = 0.01, test_fraction: float = 0.25,
        seed: int = 0, threads: int | None = 1) -> dict:
    """Disentanglement, completeness, informativeness (Eastwood and Williams 2018), as disentanglement_lib.

    ``max_train`` caps the fitting rows (a seeded subsample) so GBT stays quick on 2 cores;
    ``n_estimators`` is the boosting rounds (the lib's sklearn default, 100); ``threads`` caps
    OpenMP/BLAS threads during the fits (None: the libraries' default). Returns
    ``disentanglement``, ``completeness``, ``informativeness_train``, ``informativeness_test``
    (means over factors), ``informativeness_test_per_factor`` and ``importance`` (k, m) as lists.
    """
    if method not in ("gbt", "lasso"):
        raise LatentdynError(f"DCI method {method!r}: use gbt or lasso")
    c, f, ct, ft = _pair(codes_train, factors_train, codes_test, factors_test, test_fraction, seed)
    mask = continuous_mask(f, continuous)
    if max_train and len(c) > max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(c), max_train, replace=False))
        c, f = c[keep], f[keep]
    k, m = c.shape[1], f.shape[1]
    R, tr, te = np.zeros((k, m)), np.zeros(m), np.zeros(m)
    with limit_threads(threads):
        for j in range(m):
            y, yt = (f[:, j].astype(np.float64), ft[:, j].astype(np.float64)) if mask[j] else (f[:, j], ft[:, j])
            R[:, j], tr[j], te[j] = _fit_importance(c, y, ct, yt, bool(mask[j]), method, n_estimators, alpha, seed)
    return {"disentanglement": _compute_disentanglement(R), "completeness": _compute_completeness(R),
            "informativeness_train": float(tr.mean()), "informativeness_test": float(te.mean()),
            "informativeness_test_per_factor": te.tolist(), "importance": R.tolist(), "method": method,
            "informativeness_metric": ["r2" if x else "accuracy" for x in mask]}


# ---- probes ---------------------------------------------------------------------------------
PROBES = ("linear", "hgb", "mlp")


def _probe(kind: str, continuous: bool, seed: int):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "linear":
        from sklearn.linear_model import LinearRegression, LogisticRegression

        return make_pipeline(StandardScaler(), LinearRegression() if continuous else LogisticRegression(max_iter=2000))
    if kind == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if continuous else HistGradientBoostingClassifier
        return cls(max_iter=200, random_state=seed)
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if continuous else MLPClassifier
    net = make_pipeline(StandardScaler(), cls(hidden_layer_sizes=(64, 64), max_iter=500, early_stopping=True, random_state=seed))
    return TransformedTargetRegressor(net, transformer=StandardScaler()) if continuous else net


def _probe_factor(c, y, ct, yt, continuous: bool, kinds, seed: int) -> dict:
    from sklearn.metrics import r2_score

    row: dict = {"metric": "r2" if continuous else "accuracy"}
    if continuous:
        y, yt = y.astype(np.float64), yt.astype(np.float64)
    for kind in kinds:
        if not continuous and len(np.unique(y)) < 2:  # one class: every probe says it
            row[kind] = float(np.mean(yt == y[0]))
            row[kind + "_train"] = 1.0
            continue
        model = _probe(kind, continuous, seed).fit(c, y)
        score = (lambda a, b: float(r2_score(a, b))) if continuous else (lambda a, b: float(np.mean(a == b)))
        row[kind], row[kind + "_train"] = score(yt, model.predict(ct)), score(y, model.predict(c))
    return row


def probes(codes_train, factors_train, codes_test=None, factors_test=None, kinds=("linear", "hgb"), continuous=None,
           names=None, test_fraction: float = 0.25, seed: int = 0, threads: int | None = 1) -> dict:
    """Per-factor probe scores fitted on train codes, scored on test codes.

    ``kinds``: ``linear`` (LinearRegression / LogisticRegression on standardised codes), ``hgb``
    (HistGradientBoosting{Regressor,Classifier}, 200 rounds) or ``mlp`` (two hidden layers of 64,
    early stopping; codes and a continuous target standardised). Score: R^2 for a continuous
    factor, accuracy for a discrete one. ``threads``: as in ``dci``. Returns
    ``{"factors": {name: {"metric", kind: test score, kind + "_train": train score}},
    "mean": {kind: mean test score over factors}}``.
    """
    bad = [k for k in kinds if k not in PROBES]
    if bad:
        raise LatentdynError(f"probe kind {bad[0]!r}: use one of {', '.join(PROBES)}")
    c, f, ct, ft = _pair(codes_train, factors_train, codes_test, factors_test, test_fraction, seed)
    mask = continuous_mask(f, continuous)
    names = list(names) if names is not None else [f"factor {j}" for j in range(f.shape[1])]
    if len(names) != f.shape[1]:
        raise LatentdynError(f"{len(names)} names for {f.shape[1]} factors")
    out: dict = {}
    with limit_threads(threads):
        for j, name in enumerate(names):
            out[name] = _probe_factor(c, f[:, j], ct, ft[:, j], bool(mask[j]), kinds, seed)
    return {"factors": out, "mean": {k: float(np.mean([r[k] for r in out.values()])) for k in kinds}}
