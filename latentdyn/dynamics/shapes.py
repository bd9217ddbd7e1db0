"""The balls' shape for scene files with states but no scene definition (written by another program).

The state-based measures (``objects``) and the count (``counting``) need each ball's render radius
r_i (pixels), peak brightness k_i and the profile power q. A file from ``latentdyn generate``
carries them in its ``scene`` attribute (``objects.balls_from_scene``). Any other file with
``/states`` gets them, in this order (docs/formats.md, "Rollout metrics"):

1. **File attributes** ``radii`` (pixels, one value or one per ball), ``profile`` (``"gaussian"``,
   ``"disk"`` or a number q) and ``gains`` (peak brightness in [0, 1], one or one per ball), on
   ``/states`` or on the root (``SceneFile.ball_shape``);
2. **Estimated from the true frames** at the true states, for whatever the attributes leave out:
   the least-squares fit of the renderer's model ``min(1, sum_i k_i exp(-(|p - c_i|^2 / r_i^2)^q))``
   (``latentdyn.scenes.render``) to the brightness (mean over channels) of up to ``FIT_FRAMES``
   frames (fewer where many balls or big frames would pass ``FIT_VALUES``) drawn with a fixed seed, by ``scipy.optimize.least_squares`` (trust-region reflective, analytic
   Jacobian) from q = 1 and from q = 4, the better fit kept. q is fitted within ``POWER_BOUNDS``, so
   a hard-edged disk drawn by another program gets a large q. States that do not match the frames
   (the fit explains less than ``MIN_EXPLAINED`` of the light's variance: box units, not pixels, or
   another origin) are refused.
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError
from latentdyn.dynamics.objects import Balls, brightness
from latentdyn.scenes.render import PROFILE_POWER

FIT_FRAMES = 48  # frames in the fit: 48 x 900 pixels pin 7 parameters of three balls to 0.01 px
FIT_VALUES = 1 << 22  # at most this many (frame, ball, pixel) values: fewer frames for many balls or big frames
FIT_SEED = 0  # the frames drawn do not depend on the rollout's seed
POWER_BOUNDS = (0.5, 20.0)  # q: from a wide glow to a hard disk (q = 20: the edge within 0.1 r)
MIN_EXPLAINED = 0.5  # least fraction of the light's variance the fitted balls must explain


def shape_attrs(attrs: dict, n: int) -> dict:
    """The file attributes ``radii``, ``profile``, ``gains`` (``SceneFile.ball_shape``) checked and
    broadcast to n balls: {'radii': (n,), 'power': float, 'gains': (n,)}, the keys present only."""
    out = {}
    for key in ("radii", "gains"):
        if key in attrs:
            try:
                v = np.broadcast_to(np.asarray(attrs[key], np.float64).reshape(-1), (n,)).copy()
            except (ValueError, TypeError):
                raise LatentdynError(f"the scene file's {key!r} attribute {attrs[key]!r} is not one number or {n} numbers "
                                     "(one per ball of /states); see docs/formats.md") from None
            if not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise LatentdynError(f"the scene file's {key!r} attribute {attrs[key]!r} must be positive numbers")
            out[key] = v
    if "profile" in attrs:
        p = attrs["profile"]
        try:
            q = float(PROFILE_POWER[p]) if isinstance(p, str) and p in PROFILE_POWER else float(p)
        except (TypeError, ValueError):
            raise LatentdynError(f"the scene file's 'profile' attribute {p!r} is not 'gaussian', 'disk' or a number q > 0") from None
        if not q > 0:
            raise LatentdynError(f"the scene file's 'profile' attribute {p!r} must be 'gaussian', 'disk' or a number q > 0")
        out["power"] = q
    return out


def file_attrs(path) -> dict:
    """The ball-shape attributes of the scene file at ``path`` (``SceneFile.ball_shape``); {} for None."""
    if path is None:
        return {}
    from latentdyn.scenes.file import open_scenes

    with open_scenes(path) as sf:
        return sf.ball_shape


def balls_for_file(attrs: dict, frames: np.ndarray, states: np.ndarray) -> Balls:
    """The balls of a file without a scene definition: its attributes (``shape_attrs``), the rest
    estimated from its true frames (S, T, h, w, C) in [0, 1] at the states (S, T, n, 4)."""
    given = shape_attrs(attrs, states.shape[2])
    if len(given) == 3:
        return Balls(given["radii"], given["power"], given["gains"], source="file attributes")
    balls = balls_from_frames(frames, states, **given)
    if given:
        names = {"radii": "radii", "power": "profile", "gains": "gains"}  # Balls field -> attribute
        named = ", ".join(a for f, a in names.items() if f in given)
        fitted = ", ".join(a for f, a in names.items() if f not in given)
        return Balls(balls.radii, balls.power, balls.gains,
                     source=f"file attributes ({named}); estimated from the true frames ({fitted})")
    return balls


def balls_from_frames(frames: np.ndarray, states: np.ndarray, radii: np.ndarray | None = None,
                      power: float | None = None, gains: np.ndarray | None = None, seed: int = FIT_SEED) -> Balls:
    """Each ball's radius, peak brightness and the profile power fitted to true frames (S, T, h, w, C)
    in [0, 1] at the true states (S, T, n, 4), pixels (module docstring); given values stay fixed."""
    S, T, h, w = frames.shape[:4]
    n = states.shape[2]
    rng = np.random.default_rng(seed)
    m = int(np.clip(FIT_VALUES // (n * h * w), 4, FIT_FRAMES))
    pick = np.sort(rng.choice(S * T, min(m, S * T), replace=False))  # (m,) frames of the fit
    y = brightness(frames.reshape(S * T, h, w, -1)[pick])  # (m, h, w)
    c = np.asarray(states[..., :2], np.float64).reshape(S * T, n, 2)[pick]  # (m, n, 2)
    d2 = ((np.arange(w) + 0.5)[None, None, None, :] - c[..., 0, None, None]) ** 2 \
        + ((np.arange(h) + 0.5)[None, None, :, None] - c[..., 1, None, None]) ** 2  # (m, n, h, w)
    if float(y.sum()) <= 0:
        raise LatentdynError("the true frames are black: no ball shape can be estimated; give the scene file "
                             "'radii', 'profile' and 'gains' attributes (docs/formats.md)")
    fit = _Fit(y, d2, c, radii, power, gains)
    best = min((fit.solve(q0) for q0 in ((1.0, 4.0) if power is None else (power,))), key=lambda r: r.cost)
    r, k, q = fit.unpack(best.x)
    explained = 1.0 - 2 * best.cost / float(((y - y.mean()) ** 2).sum())
    if explained < MIN_EXPLAINED:
        raise LatentdynError(f"the states do not match the frames: balls fitted at the states explain {explained:.0%} of "
                             "the light; /states must hold x, y in pixels from the top-left corner (docs/formats.md)")
    return Balls(r, q, k, source="estimated from the true frames")


class _Fit:
    """Least squares of the render model to brightness y (m, h, w) given squared distances d2 (m, n, h, w).
    Free parameters, in order: log r (n, unless given), k (n, unless given), log q (unless given)."""

    def __init__(self, y, d2, c, radii, power, gains):
        m, h, w = y.shape
        self.y, self.d2, self.n = y.reshape(m, -1), d2.reshape(*d2.shape[:2], -1), d2.shape[1]  # (m, P), (m, n, P)
        self.radii, self.power, self.gains = radii, power, gains
        ix = np.clip(np.floor(c).astype(np.int64), 0, [w - 1, h - 1])  # (m, n, 2) the pixel holding each centre
        self.k0 = np.clip(np.median(y[np.arange(m)[:, None], ix[..., 1], ix[..., 0]], 0), 0.05, 1.0)  # (n,)
        self.r0 = float(np.sqrt(y.sum((1, 2)).mean() / (self.k0.sum() * np.pi)))  # a ball's area: its share of the light

    def unpack(self, x):
        """Parameters x -> radii (n,), gains (n,), q: the given ones, else the free ones in order."""
        x, n = list(x), self.n
        r = self.radii if self.radii is not None else np.exp(x[:n])
        x = x if self.radii is not None else x[n:]
        k = self.gains if self.gains is not None else np.asarray(x[:n])
        x = x if self.gains is not None else x[n:]
        q = self.power if self.power is not None else float(np.exp(x[0]))
        return np.asarray(r, np.float64), np.asarray(k, np.float64), float(q)

    def solve(self, q0: float):
        from scipy.optimize import least_squares

        n, lo, hi, x0 = self.n, [], [], []
        if self.radii is None:
            x0 += [np.log(max(self.r0, 0.5))] * n
            lo += [np.log(0.3)] * n
            hi += [np.log(max(self.y.shape[1], 4.0))] * n
        if self.gains is None:
            x0 += list(self.k0)
            lo += [0.01] * n
            hi += [1.5] * n
        if self.power is None:
            x0 += [np.log(q0)]
            lo += [np.log(POWER_BOUNDS[0])]
            hi += [np.log(POWER_BOUNDS[1])]
        return least_squares(self.residuals, np.asarray(x0), jac=self.jacobian, bounds=(lo, hi), method="trf", x_scale="jac")

    def _parts(self, x):
        r, k, q = self.unpack(x)
        u = self.d2 / r[None, :, None] ** 2  # (m, n, P) squared distance in radii
        uq = u**q
        prof = np.exp(-uq)  # (m, n, P)
        model = (k[None, :, None] * prof).sum(1)  # (m, P)
        return r, k, q, u, uq, prof, model

    def residuals(self, x):
        model = self._parts(x)[-1]
        return (np.minimum(model, 1.0) - self.y).ravel()

    def jacobian(self, x):
        r, k, q, u, uq, prof, model = self._parts(x)
        live = (model < 1.0)[:, None]  # (m, 1, P): clipped pixels do not move
        cols = []
        if self.radii is None:
            cols.append(np.where(live, k[None, :, None] * prof * 2 * q * uq, 0.0))  # d/d log r_i
        if self.gains is None:
            cols.append(np.where(live, prof, 0.0))  # d/d k_i
        if self.power is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                dq = -(k[None, :, None] * prof * uq * np.where(u > 0, np.log(u), 0.0) * q).sum(1, keepdims=True)
            cols.append(np.where(live, dq, 0.0))  # d/d log q
        J = np.concatenate(cols, 1)  # (m, p, P)
        return J.transpose(0, 2, 1).reshape(-1, J.shape[1])  # (m P, p)
