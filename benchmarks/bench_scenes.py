"""Benchmark: `latentdyn generate` end to end against the classic per-frame loop, same run.

    python benchmarks/bench_scenes.py [--frames 500000] [--memory-frames 10000000]

1. Yardstick: the classic RTRBM generator (benchmarks/classic_bouncing_balls.py, a Python loop
   per frame, sub-step and ball, dense render), timed on a sample of sequences and saved with
   np.save, so both sides end with a file.
2. Ours: `python -m latentdyn generate three_balls -n N` in a subprocess, timed from the command
   to the finished, compressed HDF5 file (interpreter start and imports included).
3. Peak memory (max RSS of the main process and of the largest worker) for a tenth of
   ``--memory-frames`` and for all of them: it must not grow with N.
Prints frames per second for both and their ratio. Machines here are shared: compare the ratio.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classic_bouncing_balls as classic  # noqa: E402

T = 100  # frames per sequence in the three_balls setting


def time_classic(n_sequences: int, folder: Path) -> float:
    t0 = time.perf_counter()
    data = classic.generate(n_sequences, T=T, res=30, n=3, seed=0)  # (N, T, 30, 30) uint8
    np.save(folder / "classic.npy", data)
    return n_sequences * T / (time.perf_counter() - t0)


_CHILD = """
import resource, sys
from latentdyn.cli.main import cli
try:
    cli.main(sys.argv[1:], standalone_mode=False)
finally:
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"RSS {me} {kids}", file=sys.stderr)
"""


def run_generate(n_sequences: int, out: Path) -> tuple[float, float, float]:
    """Wall seconds of one `latentdyn generate` process, and the peak RSS (MiB) of its main
    process and of its largest worker process (ru_maxrss, KiB on Linux)."""
    args = ["generate", "three_balls", "--out", str(out), "-n", str(n_sequences), "--no-progress"]
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _CHILD, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    me, kids = (int(x) for x in r.stderr.strip().splitlines()[-1].split()[1:])
    return wall, me / 1024, kids / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=500_000, help="frames for the speed run (three_balls)")
    ap.add_argument("--classic-frames", type=int, default=20_000, help="frames for the yardstick")
    ap.add_argument("--memory-frames", type=int, default=10_000_000, help="frames for the peak-memory run (0: skip)")
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats of each side; the best is reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as d:
        folder = Path(d)
        classic_fps = max(time_classic(args.classic_frames // T, folder) for _ in range(args.repeats))
        walls = [run_generate(args.frames // T, folder / "ours.h5")[0] for _ in range(args.repeats)]
        ours_fps = args.frames / min(walls)
        size = (folder / "ours.h5").stat().st_size / 2**20
        print(f"classic per-frame loop : {classic_fps:12,.0f} frames/s  ({args.classic_frames:,} frames, np.save)")
        print(f"latentdyn generate     : {ours_fps:12,.0f} frames/s  ({args.frames:,} frames end to end, "
              f"best of {args.repeats}: {min(walls):.2f} s; file {size:.0f} MiB)")
        print(f"ratio                  : {ours_fps / classic_fps:12.1f} x  (target >= 50 x)")
        if args.memory_frames:
            (folder / "ours.h5").unlink()
            for frames in (args.memory_frames // 10, args.memory_frames):
                wall, main_rss, worker_rss = run_generate(frames // T, folder / "big.h5")
                size = (folder / "big.h5").stat().st_size / 2**30
                print(f"peak memory            : main {main_rss:6.0f} MiB, largest worker {worker_rss:6.0f} MiB for "
                      f"{frames:>12,} frames ({frames * 900 / 2**30:.2f} GiB raw, {size:.2f} GiB file, {frames / wall:,.0f} frames/s)")
                (folder / "big.h5").unlink()

if __name__ == "__main__":
    main()
