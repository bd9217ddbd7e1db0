"""Downloads that are checked before they are kept.

A file is streamed to a temporary name in the cache folder with a progress bar, its MD5 (the
checksum the dataset authors publish) is compared with the expected one, and only then is it
renamed into place. A failed, interrupted or mismatching download leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from latentdyn.core.errors import LatentdynError
from latentdyn.core.fileio import atomic_path

CHUNK = 1 << 16


def md5_file(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def download(urls: list[str], dest: Path, md5: str, progress: bool | None = None, timeout: float = 60.0) -> Path:
    """Fetch the first of ``urls`` that works into ``dest``, verifying ``md5``; atomic."""
    from tqdm.auto import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:
                h = hashlib.md5(usedforsecurity=False)
                with urllib.request.urlopen(url, timeout=timeout) as resp, open(tmp, "wb") as out:
                    total = int(resp.headers.get("Content-Length") or 0) or None
                    with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name,
                              disable=None if progress is None else not progress) as bar:
                        while block := resp.read(CHUNK):
                            out.write(block)
                            h.update(block)
                            bar.update(len(block))
                if h.hexdigest() != md5:
                    raise LatentdynError(f"{url} gave a file with MD5 {h.hexdigest()}, expected {md5}; nothing was kept")
            return dest
        except LatentdynError as e:
            errors.append(str(e))
        except (urllib.error.URLError, OSError, ValueError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
    raise LatentdynError(f"could not download {dest.name}: " + "; ".join(errors))
