"""CIFAR-10 readers (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html).

The binary version (preferred) is a sequence of 3073-byte records: one label byte, then the
32x32 red, green and blue planes, each row-major. It comes as ``cifar-10-binary.tar.gz``
holding ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``.

The "python version" is pickled. It is never read with ``pickle.load``: ``read_python_batch``
uses an unpickler that can build only the few things the real files contain (a dict, lists,
strings, numbers and uint8/int numpy arrays) and rejects every other global, so a crafted file
cannot run code.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Iterable

import numpy as np

from latentdyn.core.errors import LatentdynError

RECORD = 1 + 32 * 32 * 3
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILES = ["test_batch.bin"]
PY_TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
PY_TEST_FILES = ["test_batch"]
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def parse_binary(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Records -> images (N, 32, 32, 3) uint8 and labels (N,) int64."""
    if len(data) == 0 or len(data) % RECORD:
        raise LatentdynError(
            f"{name} is not a CIFAR-10 binary batch: {len(data)} bytes is not a whole number of {RECORD}-byte records"
            + (" (truncated?)" if len(data) > RECORD else "")
        )
    rec = np.frombuffer(data, np.uint8).reshape(-1, RECORD)  # (N, 3073)
    labels = rec[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise LatentdynError(f"{name} has label {labels.max()}: not a CIFAR-10 binary batch (CIFAR-100 or corrupt?)")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return np.ascontiguousarray(images), labels


def _concat(parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    parts = list(parts)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def read_binary_files(paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Read extracted ``*.bin`` batch files."""
    def one(p: Path):
        try:
            return parse_binary(p.read_bytes(), str(p))
        except OSError as e:
            raise LatentdynError(f"cannot read {p}: {e.strerror}") from None

    return _concat(one(p) for p in paths)


def _safe_members(tar: tarfile.TarFile, wanted: set[str], archive: Path) -> dict[str, tarfile.TarInfo]:
    """Regular-file members whose base name is wanted; links, devices and odd paths are ignored."""
    found = {}
    for m in tar.getmembers():
        base = m.name.rsplit("/", 1)[-1]
        if base in wanted and m.isreg() and not m.name.startswith("/") and ".." not in m.name.split("/"):
            found[base] = m
    missing = wanted - set(found)
    if missing:
        raise LatentdynError(f"{archive} lacks {', '.join(sorted(missing))}; it is not the CIFAR-10 archive it should be")
    return found


def read_tar(archive: Path, names: list[str], python: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read batches straight out of the distributed tar.gz (nothing is extracted to disk)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = _safe_members(tar, set(names), archive)
            parts = []
            for n in names:
                data = tar.extractfile(members[n]).read()
                parts.append(read_python_batch(data, f"{archive}:{n}") if python else parse_binary(data, f"{archive}:{n}"))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise LatentdynError(f"{archive} is a corrupt or truncated archive ({e}); delete it and fetch it again") from None
    return _concat(parts)


def extract_members(archive: Path, names: list[str], dest: Path) -> list[Path]:
    """Copy the named regular files out of the archive into ``dest`` (flat), atomically each."""
    from latentdyn.core.fileio import atomic_path

    out = []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = _safe_members(tar, set(names), archive)
            for n in names:
                with atomic_path(dest / n) as tmp, tar.extractfile(members[n]) as src:
                    tmp.write_bytes(src.read())
                out.append(dest / n)
    except (tarfile.TarError, EOFError) as e:
        raise LatentdynError(f"{archive} is a corrupt or truncated archive ({e}); delete it and fetch it again") from None
    return out


# ---- the python version, through a restricted unpickler ----------------------------------------

_ALLOWED_DTYPES = {"u1", "|u1", "uint8", "i8", "<i8", "i4", "<i4", "int64", "int32", "O8"}


def _safe_dtype(spec, align=False, copy=False):
    name = spec if isinstance(spec, str) else getattr(spec, "str", str(spec))
    if name not in _ALLOWED_DTYPES:
        raise pickle.UnpicklingError(f"dtype {name!r} is not allowed in a CIFAR batch")
    return np.dtype("u1" if name == "O8" else name)


def _safe_reconstruct(cls, shape, dtype):
    if cls is not np.ndarray:
        raise pickle.UnpicklingError("only numpy arrays may be reconstructed")
    return np.ndarray.__new__(np.ndarray, shape, np.dtype(np.uint8) if dtype in (b"b", "b") else dtype)


def _latin1_encode(text, encoding="latin1"):
    """How Python 3 writes bytes at pickle protocol 2: _codecs.encode(str, "latin1")."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError("only latin1 byte strings may be encoded")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, strings, numbers and plain numpy arrays; any other global is refused."""

    _GLOBALS = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module, name):
        try:
            return self._GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch") from None


def read_python_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch of the pickled "python version", read safely; returns images and labels."""
    try:
        obj = _CifarUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise LatentdynError(f"{name} was refused: {e}; use the binary version (cifar-10-binary.tar.gz)") from None
    if not isinstance(obj, dict):
        raise LatentdynError(f"{name} is not a CIFAR-10 python batch (no dict inside)")
    get = lambda k: obj.get(k.encode(), obj.get(k))  # noqa: E731 - py2 files have bytes keys
    data_arr, labels = get("data"), get("labels")
    if not isinstance(data_arr, np.ndarray) or data_arr.dtype != np.uint8 or data_arr.ndim != 2 or data_arr.shape[1] != 3072:
        raise LatentdynError(f"{name} is not a CIFAR-10 python batch (its 'data' is not uint8 (N, 3072))")
    labels = np.asarray(labels, np.int64)
    if labels.shape != (len(data_arr),) or labels.min() < 0 or labels.max() > 9:
        raise LatentdynError(f"{name} is not a CIFAR-10 python batch (bad 'labels')")
    images = data_arr.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return np.ascontiguousarray(images), labels
