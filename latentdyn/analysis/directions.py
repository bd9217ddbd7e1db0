"""Steering directions in latent space (InterFaceGAN: Shen et al. 2020, CVPR, Sec. 2) and their scores.

Fit. For a continuous factor f, ``LinearRegression`` of f on the codes z (n, k) gives f ~ w.z + b;
the direction is n = w / |w| and the slope |w| is the change of the predicted factor per unit
step along n. For a label (two classes: ``positive`` vs the rest, or only two present), a
``LogisticRegression`` gives the separating hyperplane w.z + b = 0 (InterFaceGAN's boundary); n is
its unit normal and the "factor" is the logit, |w| per unit step.

Edit. ``edit(z, d, by) = z + (by / slope) n``: the predicted factor changes by exactly ``by``
units (pixels for a ball position, logits for a class). InterFaceGAN moves z + alpha n with a
fixed alpha; scaling alpha by the slope makes ``by`` mean the same for any VAE.

Conditional edit (InterFaceGAN Sec. 2.3, "conditional manipulation"): with condition directions
n_2, ..., the primary direction is projected onto the orthogonal complement of their span,
u = (n_1 - N N^+ n_1) / |.| (N = [n_2 ...]), which for one condition is Eq. (n_1 - (n_1^T n_2) n_2)
normalised. Moving along u leaves every condition's predicted factor unchanged; the step is
by / (w_1 . u) so the primary factor still changes by ``by``.

Scores with a reader that does not use the VAE:
- scenes: ball positions read from the decoded frames (``factors.read_positions``), before and
  after the edit; achieved = after - before for the edited coordinate, error = achieved - asked,
  leakage = the mean absolute move of every other ball coordinate;
- datasets: codes of class A are moved along the A-vs-B normal until the latent classifier's
  logit of B reaches a target (``edit_to``); a pixel-space probe (``LogisticRegression`` on
  flattened train images) labels the decoded images; success rate = share of edited images it
  labels as class B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentdyn.analysis.disentanglement import limit_threads
from latentdyn.analysis.factors import read_positions
from latentdyn.core.errors import LatentdynError


@dataclass
class Direction:
    """A unit direction in latent space and the linear read-out of its factor along it."""

    normal: np.ndarray  # (k,) unit vector
    slope: float  # change of the predicted factor per unit step along ``normal``
    weights: np.ndarray  # (k,) the fitted w: predicted factor = weights . z + intercept
    intercept: float
    kind: str  # "continuous" (factor units) or "label" (logit units)
    name: str = ""

    def predict(self, codes: np.ndarray) -> np.ndarray:
        """The fitted read-out (n,): the factor (continuous) or the logit of the positive class."""
        return np.asarray(codes, np.float64) @ self.weights + self.intercept

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "normal": self.normal.tolist(), "slope": self.slope,
                "intercept": self.intercept}


def fit_direction(codes: np.ndarray, factor: np.ndarray, continuous: bool = True, positive=None, name: str = "",
                  C: float = 1.0) -> Direction:
    """Direction of ``factor`` (n,) in codes (n, k): linear regression, or logistic for a label."""
    z = np.asarray(codes, np.float64)
    y = np.asarray(factor).reshape(-1)
    if z.ndim != 2 or len(z) != len(y):
        raise LatentdynError(f"codes {z.shape} and factor {y.shape} must be (n, k) and (n,)")
    if continuous:
        from sklearn.linear_model import LinearRegression

        with limit_threads():
            reg = LinearRegression().fit(z, y.astype(np.float64))
        w, b, kind = reg.coef_.astype(np.float64), float(reg.intercept_), "continuous"
    else:
        from sklearn.linear_model import LogisticRegression

        classes = np.unique(y)
        if positive is not None:
            target = y == positive
        elif len(classes) == 2:
            target = y == classes[1]
        else:
            raise LatentdynError(f"label factor {name or ''} has {len(classes)} classes; name the positive class")
        if target.all() or not target.any():
            raise LatentdynError(f"label factor {name or ''}: the positive class {positive!r} needs both members and others")
        with limit_threads():
            clf = LogisticRegression(C=C, max_iter=2000).fit(z, target)
        w, b, kind = clf.coef_[0].astype(np.float64), float(clf.intercept_[0]), "label"
    norm = float(np.linalg.norm(w))
    if norm < 1e-12:
        raise LatentdynError(f"factor {name or ''} has no linear direction in these codes (all weights zero)")
    return Direction(w / norm, norm, w, b, kind, name)


def orthogonalize(primary: Direction, conditions: list[Direction]) -> Direction:
    """The primary direction with the span of the condition directions projected out (InterFaceGAN Sec. 2.3)."""
    if not conditions:
        return primary
    N = np.stack([c.normal for c in conditions], 1)  # (k, c)
    u = primary.normal - N @ np.linalg.lstsq(N, primary.normal, rcond=None)[0]  # (k,)
    norm = float(np.linalg.norm(u))
    if norm < 1e-8:
        raise LatentdynError(f"{primary.name or 'the primary direction'} lies in the span of the conditions; nothing is left to move")
    u /= norm
    slope = float(primary.weights @ u)
    name = primary.name + " | " + ", ".join(c.name for c in conditions)
    return Direction(u, slope, primary.weights, primary.intercept, primary.kind, name)


def edit(codes: np.ndarray, direction: Direction, by: float) -> np.ndarray:
    """Codes (n, k) moved along the direction so its predicted factor changes by ``by`` units."""
    return np.asarray(codes, np.float64) + (by / direction.slope) * direction.normal[None, :]


def edit_to(codes: np.ndarray, direction: Direction, value: float) -> np.ndarray:
    """Codes (n, k) moved along the direction until its predicted factor equals ``value`` (each its own step)."""
    z = np.asarray(codes, np.float64)
    step = (value - direction.predict(z)) / (direction.weights @ direction.normal)  # (n,)
    return z + step[:, None] * direction.normal[None, :]


def conditional_edit(codes: np.ndarray, primary: Direction, conditions: list[Direction], by: float) -> np.ndarray:
    """``edit`` along the primary direction orthogonalised against the conditions."""
    return edit(codes, orthogonalize(primary, conditions), by)


def _nanstat(f, x) -> float | None:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(f(x)) if x.size else None


def score_position_edit(decode, codes: np.ndarray, reference: np.ndarray, ball: int, coord: int, by: float,
                        direction: Direction):
    """Edit codes (n, k) along ``direction`` by ``by`` pixels of ball ``ball``'s x (coord 0) or y (1)
    and read what the decoded frames did. ``reference`` (n, n_balls, 2): the true positions,
    named as the factors (used to name the balls read from the unedited decodes). Returns
    (scores, decoded before (n, H, W, C), decoded after)."""
    before_img, after_img = decode(codes), decode(edit(codes, direction, by))  # (n, H, W, C) each
    before = read_positions(before_img, reference)  # (n, b, 2)
    after = read_positions(after_img, np.where(np.isfinite(before), before, reference))
    moved = after - before  # (n, b, 2)
    achieved = moved[:, ball, coord]
    other = np.ones(moved.shape[1:], bool)
    other[ball, coord] = False
    names = [f"{'xy'[c]}{b}" for b in range(moved.shape[1]) for c in range(2)]
    leak = {nm: _nanstat(lambda a: np.mean(np.abs(a)), moved[:, b, c])
            for nm, (b, c) in zip(names, np.ndindex(*moved.shape[1:])) if other[b, c]}
    ok = np.isfinite(achieved)
    return {
        "asked": float(by), "achieved_mean": _nanstat(np.mean, achieved), "achieved_median": _nanstat(np.median, achieved),
        "achieved_std": _nanstat(np.std, achieved), "abs_error_mean": _nanstat(lambda a: np.mean(np.abs(a - by)), achieved),
        "leakage_mean_abs": _nanstat(np.mean, np.abs(moved[:, other])), "leakage_per_coordinate": leak,
        "n": int(len(codes)), "n_read": int(ok.sum()),
        "reconstruction_read_error_px": _nanstat(np.mean, np.linalg.norm(before - reference, axis=-1)),
        "predicted_change": float(by), "units": "pixels",
    }, before_img, after_img


def pixel_probe(images_u8: np.ndarray, labels: np.ndarray, max_train: int = 10000, seed: int = 0, C: float = 0.05):
    """A pixel-space classifier independent of the VAE: LogisticRegression on flattened images / 255."""
    from sklearn.linear_model import LogisticRegression

    n = len(images_u8)
    keep = np.sort(np.random.default_rng(seed).choice(n, min(n, max_train), replace=False))
    x = images_u8[keep].reshape(len(keep), -1).astype(np.float32) / 255.0
    with limit_threads():
        return LogisticRegression(C=C, max_iter=500).fit(x, labels[keep])


def probe_predict(probe, images: np.ndarray) -> np.ndarray:
    """Labels of float images (n, H, W, C) in [0, 1] (or uint8) by a ``pixel_probe``."""
    x = np.asarray(images)
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    with limit_threads():
        return probe.predict(x.reshape(len(x), -1))


def score_class_edit(decode, codes: np.ndarray, direction: Direction, to_logit: float, probe, source: int, target: int):
    """Move codes of class ``source`` across the boundary until the latent classifier's logit of
    ``target`` is ``to_logit`` (3: p = 0.95), decode, and let the pixel probe label the decodes.
    A fixed shift would leave codes far from the boundary on their side, so each code gets its
    own step along the normal. Returns (scores, decoded before, decoded after)."""
    before_img, after_img = decode(codes), decode(edit_to(codes, direction, to_logit))
    before, after = probe_predict(probe, before_img), probe_predict(probe, after_img)
    return {
        "asked_logit": float(to_logit), "source_class": int(source), "target_class": int(target), "n": int(len(codes)),
        "success_rate": float(np.mean(after == target)), "target_rate_before": float(np.mean(before == target)),
        "source_rate_before": float(np.mean(before == source)), "source_rate_after": float(np.mean(after == source)),
    }, before_img, after_img
