"""Small file helpers: atomic writes and content hashes.

Every output of the toolkit is written to a temporary file beside its destination and renamed
into place only when complete, so a crash, Ctrl-C or bad input never leaves a half-written file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from latentdyn.core.errors import LatentdynError


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path after checking its folder exists and can be written to."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise LatentdynError(f"cannot write {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LatentdynError(f"cannot write {path}: folder {parent} is not writable; choose another --out")
    if path.is_dir():
        raise LatentdynError(f"cannot write {path}: it is a folder; give a file name")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps the destination's suffix (writers such as ffmpeg pick the format
    from it). On any exception, KeyboardInterrupt included, the temporary file is removed and the
    destination is left as it was.
    """
    path = check_writable_dir(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent or ".")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in blocks (bounded memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()
