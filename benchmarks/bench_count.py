"""Calibration and speed of the ball count (``latentdyn.dynamics.counting``).

    python benchmarks/bench_count.py [--sequences 100] [--seed 3] [--tb /work/runs/tb.h5]

For each ball scene (three_balls, light_ball, gravity_balls, five balls as disks and as gaussian
glows; ``--tb``: the first sequences of a three_balls scene file instead of generated ones) it
prints the fraction of true frames read with the right count (and read low / high), with the
balls from the scene definition, then the same true frames blurred (Gaussian, sigma = r / 2 and
sigma = r, r the smallest render radius), the balls rendered 2 px to the right (kept inside the
frame), flat frames, and the seconds to count 200 x 20 frames (best and median of 5). With ``--classic``, also the classic generator of benchmarks/classic_bouncing_balls.py
(another program's frames; balls estimated from its true frames, ``shapes.balls_from_frames``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from latentdyn.core.config import to_dict
from latentdyn.dynamics import counting as C
from latentdyn.dynamics import objects as O
from latentdyn.scenes import generate as G

SCENES = {  # label -> (scene, overrides)
    "three_balls": ("three_balls", []),
    "light_ball": ("light_ball", []),
    "gravity_balls": ("gravity_balls", []),
    "five disks": ("three_balls", ["physics.n_balls=5"]),
    "five glows": ("three_balls", ["physics.n_balls=5", "render.profile=gaussian"]),
}


def reading(c: np.ndarray, n: int) -> str:
    return f"exact {np.mean(c == n):.4f} (low {np.mean(c < n):.4f}, high {np.mean(c > n):.4f})"


def scene_frames(scene, sets, sequences, seed, tb):
    cfg = G.load_scene(scene, sets)
    balls = O.balls_from_scene(to_dict(cfg))
    if tb and scene == "three_balls" and not sets:
        from latentdyn.scenes.file import open_scenes

        with open_scenes(tb) as sf:
            fr, st = sf.read_frames(slice(0, sequences)), sf.states[:sequences]
    else:
        fr, st = G.sample(cfg, seed, np.arange(sequences))
    fr = fr if fr.ndim == 5 else fr[..., None]
    H, W = fr.shape[2:4]
    r = float(balls.radii.max())
    xy = np.clip(st[..., :2] + np.array([2.0, 0.0]), r, np.array([W, H]) - r)  # 2 px to the right, inside the frame
    shifted = cfg.renderer()(xy.reshape(-1, st.shape[2], 2).astype(np.float32))
    shifted = shifted if shifted.ndim == 4 else shifted[..., None]
    return O.brightness(fr / 255.0).reshape(-1, H, W), st.shape[2], balls, O.brightness(shifted / 255.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=100)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--tb", default=None, help="a three_balls scene file to read instead of generating")
    ap.add_argument("--classic", action="store_true", help="also the classic generator's frames, balls estimated")
    a = ap.parse_args()
    for label, (scene, sets) in SCENES.items():
        b, n, balls, shifted = scene_frames(scene, sets, a.sequences, a.seed, a.tb)
        print(f"{label:14s} {len(b)} true frames, {n} balls: {reading(C.count_balls(b, balls), n)}")
        r = float(balls.radii.min())
        for k in (0.5, 1.0):
            print(f"{'':14s} blurred sigma = {k:g} r: {reading(C.count_balls(ndimage.gaussian_filter(b, (0, k * r, k * r)), balls), n)}")
        print(f"{'':14s} shifted 2 px: {reading(C.count_balls(shifted, balls), n)}")
        print(f"{'':14s} flat light 0.3 / 0.6 / 1: {[int(C.count_balls(np.full((1, *b.shape[1:]), v), balls)[0]) for v in (0.3, 0.6, 1.0)]}")
    b, n, balls, _ = scene_frames("three_balls", [], 200, a.seed, None)
    frames = b.reshape(200, 100, 30, 30)[:, :20].reshape(-1, 30, 30)
    C.count_balls(frames[:10], balls)
    times = []
    for _ in range(5):
        t = time.perf_counter()
        C.count_balls(frames, balls)
        times.append(time.perf_counter() - t)
    print(f"count of 200 x 20 frames (30 x 30, three balls): best of 5 {min(times):.3f} s, median {np.median(times):.3f} s")
    if a.classic:
        classic(a.sequences, a.seed)


def classic(sequences: int, seed: int) -> None:
    """The RTRBM generator's own physics and render (box units x 3 = pixels), balls estimated."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from classic_bouncing_balls import bounce_n, matricize

    from latentdyn.dynamics import shapes

    rng = np.random.default_rng(seed)
    r, m = np.full(3, 1.2), np.ones(3)
    xs = np.stack([bounce_n(100, 3, r, m, rng) for _ in range(sequences)])  # (S, T, 3, 2) box units
    fr = np.stack([matricize(x, 30, r) for x in xs])[..., None]  # (S, T, 30, 30, 1) in [0, 1]
    fr = np.floor(fr * 255 + 0.5) / 255  # stored as uint8
    st = np.concatenate([xs * 3.0, np.gradient(xs * 3.0, axis=1)], -1)  # (S, T, 3, 4) pixels
    balls = shapes.balls_from_frames(fr, st)
    print(f"classic        estimated radii {np.round(balls.radii, 3)}, power {balls.power:.2f}, gains {np.round(balls.gains, 3)}")
    b = O.brightness(fr).reshape(-1, 30, 30)
    print(f"{'':14s} {len(b)} true frames: {reading(C.count_balls(b, balls), 3)}; "
          f"presence {O.truth_reading(fr, st, balls)['all_present']:.4f}")


if __name__ == "__main__":
    main()
