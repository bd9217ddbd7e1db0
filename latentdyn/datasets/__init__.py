"""Image datasets: MNIST, Fashion-MNIST and CIFAR-10 (RGB and grayscale), plus scene files.

``load("fashion-mnist", "train")`` returns an ``ImageData`` with uint8 images (N, H, W, C),
int64 labels and class names. Files are looked for, in order, in

1. ``data_dir`` (the ``--data-dir`` option), directly or in ``data_dir/<files>/``;
2. the cache: ``$LATENTDYN_DATA/<files>/``, else the repository's ``data/<files>/``;
3. a system-wide copy (Debian's ``dataset-fashion-mnist`` installs /usr/share/datasets/fashion-mnist/);
4. a download from the official locations into the cache (checksum-verified, atomic).

Offline with no copy anywhere, the error says which files to put where.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from latentdyn.datasets import cifar, idx
from latentdyn.datasets.downloads import download
from latentdyn.datasets.transforms import to_float, to_gray
from latentdyn.core.errors import LatentdynError

REPO_DATA = Path(__file__).resolve().parents[2] / "data"
SYSTEM_DIRS = [Path("/usr/share/datasets"), Path("/usr/local/share/datasets")]
SPLITS = ("train", "test")

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Spec:
    """What a dataset is and where its files come from."""

    name: str
    files: str  # folder name of its files in the cache (cifar10 and cifar10-gray share one)
    kind: str  # "idx" or "cifar"
    shape: tuple[int, int, int]  # (H, W, C) of the images as loaded
    sizes: dict[str, int]  # images per split
    class_names: list[str]
    urls: list[str] = field(default_factory=list)  # base URLs, tried in order
    md5: dict[str, str] = field(default_factory=dict)  # distributed file name -> MD5
    gray: bool = False


FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

DATASETS: dict[str, Spec] = {
    "mnist": Spec(
        "mnist", "mnist", "idx", (28, 28, 1), {"train": 60000, "test": 10000}, [str(i) for i in range(10)],
        ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
         "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
         "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
         "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    ),
    "fashion-mnist": Spec(
        "fashion-mnist", "fashion-mnist", "idx", (28, 28, 1), {"train": 60000, "test": 10000}, FASHION_CLASSES,
        ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
         "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
         "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
         "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    ),
    "cifar10": Spec(
        "cifar10", "cifar10", "cifar", (32, 32, 3), {"train": 50000, "test": 10000}, cifar.CLASS_NAMES,
        ["https://www.cs.toronto.edu/~kriz/"], {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
    ),
    "cifar10-gray": Spec(
        "cifar10-gray", "cifar10", "cifar", (32, 32, 1), {"train": 50000, "test": 10000}, cifar.CLASS_NAMES,
        ["https://www.cs.toronto.edu/~kriz/"], {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}, gray=True,
    ),
}


@dataclass
class ImageData:
    """Images of one split: uint8 (N, H, W, C), int64 labels (N,), class names, where they came from."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def floats(self) -> np.ndarray:
        """float32 in [0, 1], (N, H, W, C)."""
        return to_float(self.images)

    def tensor(self, device=None, dtype=None):
        """torch float tensor (N, C, H, W) in [0, 1], on ``device``: ready for training."""
        import torch

        x = torch.from_numpy(self.images).to(device)  # uint8 (N, H, W, C), converted on the device
        return x.permute(0, 3, 1, 2).to(dtype or torch.float32).div_(255.0).contiguous()  # (N, C, H, W)


def cache_dir() -> Path:
    """$LATENTDYN_DATA, else the repository's data/ folder."""
    env = os.environ.get("LATENTDYN_DATA")
    return Path(env) if env else REPO_DATA


def get_spec(name: str) -> Spec:
    try:
        return DATASETS[name]
    except KeyError:
        raise LatentdynError(f"unknown dataset {name!r}; use one of {', '.join(DATASETS)} or a scene file (.h5)") from None


def _idx_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in MNIST_FILES[split]:
        cands = [folder / stem, folder / f"{stem}.gz", folder / stem.replace("-idx", ".idx")]
        hit = next((c for c in cands if c.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _cifar_files(folder: Path, split: str) -> tuple[str, object] | None:
    names = cifar.TRAIN_FILES if split == "train" else cifar.TEST_FILES
    py_names = cifar.PY_TRAIN_FILES if split == "train" else cifar.PY_TEST_FILES
    for sub in (folder, folder / "cifar-10-batches-bin"):
        if all((sub / n).is_file() for n in names):
            return "bin", [sub / n for n in names]
    if (folder / "cifar-10-binary.tar.gz").is_file():
        return "bintar", folder / "cifar-10-binary.tar.gz"
    for sub in (folder, folder / "cifar-10-batches-py"):
        if all((sub / n).is_file() for n in py_names):
            return "py", [sub / n for n in py_names]
    if (folder / "cifar-10-python.tar.gz").is_file():
        return "pytar", folder / "cifar-10-python.tar.gz"
    return None


def candidate_dirs(spec: Spec, data_dir: str | Path | None = None) -> list[Path]:
    """Folders searched, in order."""
    dirs = []
    if data_dir is not None:
        dirs += [Path(data_dir), Path(data_dir) / spec.files]
    dirs.append(cache_dir() / spec.files)
    dirs += [d / spec.files for d in SYSTEM_DIRS]
    return dirs


def locate(name: str, split: str = "train", data_dir: str | Path | None = None):
    """Where ``name``'s ``split`` files are: (folder, kind, files) or None if nowhere."""
    spec = get_spec(name)
    if split not in SPLITS:
        raise LatentdynError(f"unknown split {split!r} for {name}; use train or test")
    finder: Callable = _idx_files if spec.kind == "idx" else _cifar_files
    if data_dir is not None and not Path(data_dir).is_dir():
        raise LatentdynError(f"--data-dir {data_dir} is not a folder")
    for d in candidate_dirs(spec, data_dir):
        if d.is_dir() and (hit := finder(d, split)) is not None:
            return d, hit
    return None


def source_files(name: str, data_dir: str | Path | None = None) -> list[Path] | None:
    """The files that hold ``name``'s train and test splits (for fingerprints), or None if missing."""
    files: list[Path] = []
    for split in SPLITS:
        hit = locate(name, split, data_dir)
        if hit is None:
            return None
        found = hit[1]
        items = found[1] if isinstance(found[0], str) else found  # CIFAR: (kind, files or archive)
        files += [Path(f) for f in (items if isinstance(items, (list, tuple)) else [items])]
    return sorted(set(files))


def require(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """``name``'s local files; the one-line "not available offline" error if they are missing."""
    spec = get_spec(name)
    files = source_files(spec.name, data_dir)
    if files is None:
        raise LatentdynError(_missing_message(spec, data_dir))
    return files


def _missing_message(spec: Spec, data_dir, suggest_fetch: bool = True) -> str:
    files = ", ".join(spec.md5)
    where = Path(data_dir) if data_dir is not None else cache_dir() / spec.files
    hint = f" (or run `latentdyn datasets fetch {spec.name}` online, or pass --data-dir)" if suggest_fetch else ""
    return f"{spec.name} is not available offline: put {files} in {where}{hint}"


def fetch(name: str, data_dir: str | Path | None = None, progress: bool | None = None) -> Path:
    """Download ``name``'s distributed files into ``data_dir`` or the cache; verified by MD5.

    CIFAR-10's batches are then unpacked beside the archive (cifar-10-batches-bin/).
    """
    spec = get_spec(name)
    dest = Path(data_dir) if data_dir is not None else cache_dir() / spec.files
    created = not dest.exists()
    for fname, md5 in spec.md5.items():
        target = dest / fname
        if target.is_file():
            from latentdyn.datasets.downloads import md5_file

            if md5_file(target) == md5:
                continue
            raise LatentdynError(f"{target} exists but its MD5 differs from the official file's; delete it and fetch again")
        try:
            download([base + fname for base in spec.urls], target, md5, progress=progress)
        except LatentdynError as e:
            if created and dest.is_dir() and not any(dest.iterdir()):
                dest.rmdir()  # leave no trace of a failed first fetch
            raise LatentdynError(f"{e}. {_missing_message(spec, data_dir, suggest_fetch=False)}") from None
    if spec.kind == "cifar":  # unpack the batches once (filtered members), so loads skip the gunzip
        binaries = dest / "cifar-10-batches-bin"
        wanted = [n for n in cifar.TRAIN_FILES + cifar.TEST_FILES if not (binaries / n).is_file()]
        if wanted:
            binaries.mkdir(exist_ok=True)
            cifar.extract_members(dest / "cifar-10-binary.tar.gz", wanted, binaries)
    return dest


def load(
    name: str, split: str = "train", data_dir: str | Path | None = None, download: bool = True,
    progress: bool | None = None, check_size: bool = True,
) -> ImageData:
    """Load one split of a dataset as uint8 images (N, H, W, C) with labels and class names.

    ``check_size`` also requires the official number of images (60000/10000, 50000/10000);
    turn it off to read smaller files in the same format.
    """
    spec = get_spec(name)
    hit = locate(name, split, data_dir)
    if hit is None:
        if not download:
            raise LatentdynError(_missing_message(spec, data_dir))
        fetch(name, data_dir, progress)
        hit = locate(name, split, data_dir)
        if hit is None:  # pragma: no cover - fetch succeeded, so the files are there
            raise LatentdynError(_missing_message(spec, data_dir))
    folder, found = hit
    if spec.kind == "idx":
        images, labels = idx.load_images_labels(*found)
        source = str(found[0])
    else:
        images, labels, source = _load_cifar(found, split)
    if spec.gray:
        images = to_gray(images)
    expect = (spec.sizes[split] if check_size else len(images), *spec.shape)
    if images.shape != expect:
        raise LatentdynError(f"{name} {split} from {source} has shape {images.shape}, expected {expect}; the files are not the official ones")
    return ImageData(name, split, images, labels, list(spec.class_names), source)


def _load_cifar(found, split: str):
    kind, where = found
    names = cifar.TRAIN_FILES if split == "train" else cifar.TEST_FILES
    py_names = cifar.PY_TRAIN_FILES if split == "train" else cifar.PY_TEST_FILES
    if kind == "bin":
        images, labels = cifar.read_binary_files(where)
        return images, labels, str(where[0].parent)
    if kind == "bintar":
        images, labels = cifar.read_tar(where, names)
        return images, labels, str(where)
    if kind == "py":
        parts = []
        for p in where:
            parts.append(cifar.read_python_batch(p.read_bytes(), str(p)))
        return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts]), str(where[0].parent)
    images, labels = cifar.read_tar(where, py_names, python=True)
    return images, labels, str(where)


def status(name: str, data_dir: str | Path | None = None) -> dict:
    """Cheap availability check for ``datasets list``: where the files are and the split sizes."""
    spec = get_spec(name)
    out = {"name": name, "shape": spec.shape, "classes": len(spec.class_names), "found": None, "sizes": {}}
    for split in SPLITS:
        hit = locate(name, split, data_dir)
        if hit is None:
            continue
        out["found"] = str(hit[0])
        if spec.kind == "idx":
            out["sizes"][split] = idx.idx_header(hit[1][1])[0]
        else:
            out["sizes"][split] = spec.sizes[split]
    return out


def prepare(data: ImageData, gray: bool = False, size: tuple[int, int] | None = None) -> ImageData:
    """Grayscale (ITU-R 601-2 luma) and/or resize a loaded split; returns a new ImageData."""
    from latentdyn.datasets.transforms import resize

    images = to_gray(data.images) if gray else data.images
    if size is not None:
        images = resize(images, tuple(size))
    return ImageData(data.name, data.split, images, data.labels, data.class_names, data.source)


def is_scene_source(source: str | Path) -> bool:
    """True if ``source`` names a scene file rather than a dataset."""
    return str(source) not in DATASETS and (str(source).endswith((".h5", ".hdf5")) or Path(source).is_file())


def load_source(
    source: str | Path, split: str | None = "train", data_dir: str | Path | None = None, download: bool = True,
    val_size: int = 5000,
) -> ImageData:
    """A dataset name or a scene file, as images: scene frames are flattened over time.

    For a dataset, ``split`` is train, val (``val_size`` images carved from the official
    training set, see ``latentdyn.datasets.splits``), test or train-full. For a scene file the
    labels are the sequence index of each frame and there are no class names; ``split`` names
    one of the file's splits (None or "all": every sequence).
    """
    if not is_scene_source(source):
        from latentdyn.datasets.splits import load_split

        return load_split(str(source), split or "train", data_dir, val_size, download=download)
    from latentdyn.scenes.file import open_scenes

    with open_scenes(source) as sf:
        seq = sf.split_indices(split)
        frames = sf.read_frames(np.sort(seq)) if len(seq) else np.zeros((0, sf.length, *sf.frame_shape), np.uint8)
    N, T = frames.shape[:2]
    images = frames.reshape(N * T, *frames.shape[2:])  # (N*T, H, W[, C])
    if images.ndim == 3:
        images = images[..., None]  # (N*T, H, W, 1)
    labels = np.repeat(np.sort(seq), T).astype(np.int64)
    return ImageData(Path(source).stem, split or "all", images, labels, [], str(source))


def load_sequences(path: str | Path, split: str | None = None) -> np.ndarray:
    """Frames of a scene file's split as sequences (N, T, H, W, C) uint8, for the predictor."""
    from latentdyn.scenes.file import open_scenes

    with open_scenes(path) as sf:
        seq = np.sort(sf.split_indices(split))
        frames = sf.read_frames(seq)
    return frames if frames.ndim == 5 else frames[..., None]
