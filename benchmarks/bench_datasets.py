"""Benchmark: loading Fashion-MNIST's 60000 training images from the gzipped IDX files.

    python benchmarks/bench_datasets.py [--data-dir DIR] [--repeats 5]

Yardstick, in the same run: the reader the Fashion-MNIST authors ship (utils/mnist_reader.py:
``gzip.open`` then ``np.frombuffer``), which checks nothing. Ours validates magic numbers,
counts and shapes and returns images (N, 28, 28, 1) and int64 labels. Prints the best time of
each and the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np

from latentdyn import datasets


def reference_reader(folder: Path):
    with gzip.open(folder / "train-labels-idx1-ubyte.gz", "rb") as f:
        labels = np.frombuffer(f.read(), dtype=np.uint8, offset=8)
    with gzip.open(folder / "train-images-idx3-ubyte.gz", "rb") as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(len(labels), 784)
    return images, labels


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="folder with the Fashion-MNIST .gz files (default: where latentdyn finds them)")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    hit = datasets.locate("fashion-mnist", "train", args.data_dir)
    if hit is None:
        raise SystemExit("Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or pass --data-dir")
    folder = hit[0]
    ours = best(lambda: datasets.load("fashion-mnist", "train", args.data_dir, download=False), args.repeats)
    ref = best(lambda: reference_reader(folder), args.repeats)
    print(f"files                       : {folder}")
    print(f"reference gzip+frombuffer   : {ref:.3f} s")
    print(f"latentdyn datasets.load     : {ours:.3f} s  (validated; 60000 images)")
    print(f"ratio (reference / ours)    : {ref / ours:.2f} x")


if __name__ == "__main__":
    main()
