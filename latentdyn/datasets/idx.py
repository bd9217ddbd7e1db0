"""The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/).

A file is a magic number (two zero bytes, a type code, the number of dimensions), the sizes
of the dimensions as big-endian int32, then the data, row-major, big-endian. The distributed
files are gzipped; both forms are read. Every check failure is a one-line LatentdynError that
names the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from latentdyn.core.errors import LatentdynError

_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

try:  # ISA-L's inflate is several times faster than zlib's on the 26 MB training images
    from isal.isal_zlib import decompress as _inflate
    from isal.isal_zlib import error as _InflateError
except ImportError:  # pragma: no cover - isal is a declared dependency
    from zlib import decompress as _inflate
    from zlib import error as _InflateError


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by its magic bytes, not its name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise LatentdynError(f"cannot read {path}: {e.strerror}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return _inflate(raw, 31)  # wbits 31: gzip container
        except (_InflateError, ValueError) as e:
            raise LatentdynError(f"{path} is a corrupt or truncated gzip file ({e}); delete it and fetch it again") from None
    return raw


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes into an array (native byte order)."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES or not 1 <= data[3] <= 4:
        head = data[:4].hex() or "empty"
        raise LatentdynError(f"{name} is not an IDX file (magic bytes {head}); expected MNIST-style IDX data")
    dtype, ndim = _TYPES[data[2]], data[3]
    if len(data) < 4 + 4 * ndim:
        raise LatentdynError(f"{name} is truncated inside its header")
    dims = tuple(int(x) for x in np.frombuffer(data, ">i4", ndim, 4))
    expected = int(np.prod(dims)) * dtype.itemsize
    have = len(data) - 4 - 4 * ndim
    if have != expected:
        what = "truncated" if have < expected else "longer than its header says"
        raise LatentdynError(f"{name} is {what}: header says {dims} ({expected} bytes of data), found {have} bytes")
    arr = np.frombuffer(data, dtype, offset=4 + 4 * ndim).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable copy in native byte order


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzipped or not."""
    return parse_idx(read_bytes(path), str(path))


def idx_header(path: str | Path) -> tuple[int, ...]:
    """The dimensions in an IDX file's header (cheap: reads only the start of the file)."""
    import gzip

    path = Path(path)
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    try:
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
            head = f.read(4 + 4 * 4)
    except (OSError, EOFError) as e:
        raise LatentdynError(f"{path} is corrupt: {e}") from None
    if len(head) < 4 or head[:2] != b"\0\0" or not 1 <= head[3] <= 4 or len(head) < 4 + 4 * head[3]:
        raise LatentdynError(f"{path} is not an IDX file")
    return tuple(int(x) for x in np.frombuffer(head, ">i4", head[3], 4))


def load_images_labels(images_path: Path, labels_path: Path, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 1) uint8 and labels (N,) int64 from a pair of IDX files, cross-checked."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise LatentdynError(f"{images_path} should hold uint8 images (N, H, W), has {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise LatentdynError(f"{labels_path} should hold labels (N,), has shape {labels.shape}")
    if len(images) != len(labels):
        raise LatentdynError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise LatentdynError(f"{labels_path} has labels outside 0..{n_classes - 1}")
    return images[..., None], labels.astype(np.int64)
