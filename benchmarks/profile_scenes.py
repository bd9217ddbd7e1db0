"""Where scene generation spends its time: simulation, rendering, compression, transfer, HDF5.

    python benchmarks/profile_scenes.py [--scenes three_balls moving_fashion] [--frames 200000]

For each scene, one process runs the generator's stages on blocks of the size ``generate``
uses (up to 131072 frames) and times each: simulate (physics or sprite motion), render, deflate (the zlib chunk per
sequence), transfer (pickling a block's result and unpickling it, what a worker process pays
to hand it to the writer) and the HDF5 writes (``SceneWriter.write``). Then ``generate`` is
timed end to end in this process with 1 worker and with the default workers. Prints seconds
and frames per second per stage. Machines here are shared: compare shares, not absolutes.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from latentdyn.scenes import generate as G
from latentdyn.scenes.file import SceneWriter, deflate


def stages(config, n_seq: int, folder: Path) -> dict[str, float]:
    """Seconds per stage for ``n_seq`` sequences of ``config``, in blocks of up to 131072 frames."""
    T = config.scene.length
    per_block = max(1, min(131072 // T, n_seq))
    sprites_kind = G._is_sprites(config)
    t = dict.fromkeys(["simulate", "render", "deflate", "transfer", "hdf5"], 0.0)
    if sprites_kind:
        from latentdyn.scenes import sprites

        bank = sprites.prepare(config, {"train": 1.0})
        n_obj = config.sprites.n_sprites
    else:
        renderer = config.renderer()
        n_obj = config.physics.n_balls
    with SceneWriter(folder / "p.h5", n_seq, T, config.frame_shape, n_obj, {}) as w:
        for s in range(0, n_seq, per_block):
            ids = np.arange(s, min(s + per_block, n_seq))
            t0 = time.perf_counter()
            if sprites_kind:
                states, pick = sprites.simulate(config, 0, ids)
                idx = np.minimum((pick * bank.pools[0][2]).astype(np.int64), bank.pools[0][2] - 1)
                sub = sprites.RENDER_SEQUENCES
            else:
                states = G.simulate_states(config, 0, ids)
                sub = max(1, 1024 // T)  # as generate's _block
            t["simulate"] += time.perf_counter() - t0
            chunks = []
            for k in range(0, len(ids), sub):  # render and compress a few sequences at a time, as generate does
                t1 = time.perf_counter()
                if sprites_kind:
                    frames = sprites.render(states[k : k + sub], bank.images["train"][idx[k : k + sub]],
                                            config.canvas.height, config.canvas.width)
                else:
                    st = states[k : k + sub]
                    frames = renderer(st[..., :2].reshape(len(st) * T, -1, 2)).reshape(len(st), T, *config.frame_shape)
                t2 = time.perf_counter()
                chunks += [deflate(seq.tobytes()) for seq in frames]
                t["render"] += t2 - t1
                t["deflate"] += time.perf_counter() - t2
            t3 = time.perf_counter()
            chunks, states = pickle.loads(pickle.dumps((chunks, states), protocol=pickle.HIGHEST_PROTOCOL))
            t4 = time.perf_counter()
            w.write(int(ids[0]), chunks, states)
            t5 = time.perf_counter()
            t["transfer"] += t4 - t3
            t["hdf5"] += t5 - t4
    (folder / "p.h5").unlink()
    return t


def end_to_end(config, n_seq: int, folder: Path, workers: int | None) -> float:
    t0 = time.perf_counter()
    G.generate(config, folder / "e.h5", n_seq, seed=0, splits={"train": 0.8, "val": 0.1, "test": 0.1},
               workers=workers, progress=False)
    wall = time.perf_counter() - t0
    (folder / "e.h5").unlink()
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="+", default=["three_balls", "moving_mnist", "moving_fashion"])
    ap.add_argument("--frames", type=int, default=200_000, help="frames per scene and measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        folder = Path(d)
        for name in args.scenes:
            config = G.load_scene(name, ["sprites.download=false"] if name.startswith("moving") else [])
            T = config.scene.length
            n_seq = max(1, args.frames // T)
            try:
                t = stages(config, n_seq, folder)
            except Exception as e:  # a missing dataset: report and go on
                print(f"{name}: skipped ({e})")
                continue
            total = sum(t.values())
            frames = n_seq * T
            print(f"{name}: {frames:,} frames of {'x'.join(map(str, config.frame_shape))}, one process, by stage:")
            for k, v in t.items():
                print(f"  {k:9s} {v:7.2f} s  {100 * v / total:5.1f} %  {frames / v:>12,.0f} frames/s")
            print(f"  {'sum':9s} {total:7.2f} s          {frames / total:>12,.0f} frames/s")
            for workers in (1, None):
                wall = end_to_end(config, n_seq, folder, workers)
                label = "1 worker" if workers == 1 else f"{min(os.cpu_count() or 1, 8)} workers"
                print(f"  generate ({label}): {wall:.2f} s, {frames / wall:,.0f} frames/s")


if __name__ == "__main__":
    main()
