"""Small file helpers: atomic writes, output folders and content hashes.

Every output of the toolkit is written to a temporary file beside its destination and renamed
into place only when complete, so a crash, Ctrl-C or bad input never leaves a half-written file.
The destination's missing folders are made as it is written (``data/new/tb.h5`` works in an empty
folder); a file standing where a folder should be is a one-line error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from latentdyn.core.errors import LatentdynError


def _nearest_existing(folder: Path) -> Path:
    """``folder`` or its closest ancestor that exists (as a file or a folder)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_writable_dir(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path after checking that it can be written: its folder exists and is
    writable, or can be made (``make_parent`` makes it when the file is written).

    Nothing is created here, so a command can check its outputs before long work and leave no
    empty folder behind when it fails. A missing folder is fine; a file in the folder's place, or
    a folder that cannot be written, is a one-line error.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    base = _nearest_existing(parent)
    if not base.is_dir():
        raise LatentdynError(f"cannot write {path}: {base} is a file, not a folder; choose another --out")
    if not os.access(base, os.W_OK | os.X_OK):
        raise LatentdynError(f"cannot write {path}: folder {base} is not writable; choose another --out")
    if path.is_dir():
        raise LatentdynError(f"cannot write {path}: it is a folder; give a file name")
    return path


def make_parent(path: str | os.PathLike) -> Path:
    """Make the folder of ``path`` (and its parents) if missing, after ``check_writable_dir``; returns ``path``."""
    path = check_writable_dir(path)
    make_folder(path.parent if str(path.parent) else Path("."))
    return path


def make_folder(folder: str | os.PathLike) -> Path:
    """Make ``folder`` and its parents if missing; a one-line error when a file is in the way or
    the disk refuses."""
    folder = Path(folder)
    base = _nearest_existing(folder)
    if not base.is_dir():
        raise LatentdynError(f"cannot make folder {folder}: {base} is a file, not a folder; choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentdynError(f"cannot make folder {folder}: {e.strerror or e}") from None
    return folder


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file keeps the destination's suffix (writers such as ffmpeg pick the format
    from it). Missing folders of ``path`` are made first (``make_parent``). On any exception,
    KeyboardInterrupt included, the temporary file is removed and the destination is left as it was.
    """
    path = make_parent(path)
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


KNOWN_FORMATS = {"latentdyn-scenes": "a scene file", "latentdyn-latents": "a latents file"}


def format_found(h5file) -> str:
    """What an open HDF5 file says it is, for an error naming what was found instead of what was
    wanted: "format 'latentdyn-scenes': a scene file", or "no 'format' attribute; top level: x, y"."""
    fmt = h5file.attrs.get("format")
    if fmt is not None:
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        known = KNOWN_FORMATS.get(str(fmt))
        return f"format {str(fmt)!r}" + (f": {known}" if known else "")
    names = sorted(h5file.keys())
    held = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "") if names else "nothing"
    return f"no 'format' attribute; top level: {held}"
