"""Writers of small dataset files in the exact official formats, independent of our readers.

IDX: http://yann.lecun.com/exdb/mnist/ (magic 0x00000803 for images, 0x00000801 for labels,
big-endian int32 sizes). CIFAR-10 binary: 1 label byte + 1024 R + 1024 G + 1024 B per record,
in cifar-10-binary.tar.gz under cifar-10-batches-bin/.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np


def idx_images(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.astype(np.uint8).tobytes()


def write_mnist(folder: Path, n_train=50, n_test=20, gz=True, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, stem, n in [("train", "train", n_train), ("test", "t10k", n_test)]:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        for name, data in [(f"{stem}-images-idx3-ubyte", idx_images(images)), (f"{stem}-labels-idx1-ubyte", idx_labels(labels))]:
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out[split] = (images, labels)
    return out


def cifar_records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """images (N, 32, 32, 3) uint8 -> the binary version's records."""
    planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # (N, 3072) R plane, G plane, B plane
    return np.concatenate([labels.astype(np.uint8)[:, None], planes], 1).tobytes()


def write_cifar(folder: Path, per_batch=6, as_tar=True, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files, out = {}, {"train": [], "test": []}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).astype(np.uint8)
        files[name] = cifar_records(images, labels)
        out["test" if name.startswith("test") else "train"].append((images, labels))
    files["batches.meta.txt"] = "\n".join(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]).encode()
    if as_tar:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        (folder / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    else:
        sub = folder / "cifar-10-batches-bin"
        sub.mkdir(exist_ok=True)
        for name, data in files.items():
            (sub / name).write_bytes(data)
    return {k: (np.concatenate([a for a, _ in v]), np.concatenate([b for _, b in v])) for k, v in out.items()}
