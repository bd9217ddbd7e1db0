"""Dataset loaders on the real Fashion-MNIST and on small files in the exact official formats."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import need_fashion_mnist as _need_fashion_mnist

from latentdyn import datasets as ds
from latentdyn.datasets import cifar, downloads, idx, transforms
from latentdyn.core.errors import LatentdynError

from tests.dataset_files import cifar_records, idx_images, write_cifar, write_mnist

from tests.helpers import FMNIST




@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    """Each test gets its own empty cache, so nothing leaks between tests or into data/."""
    monkeypatch.setenv("LATENTDYN_DATA", str(tmp_path / "cache"))


# ---- real Fashion-MNIST ---------------------------------------------------------------------------

def test_real_fashion_mnist():
    _need_fashion_mnist()
    train = ds.load("fashion-mnist", "train", download=False)
    test = ds.load("fashion-mnist", "test", download=False)
    assert train.images.shape == (60000, 28, 28, 1) and test.images.shape == (10000, 28, 28, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)
    x = train.images / 255.0
    assert abs(x.mean() - 0.2860) < 5e-4 and abs(x.std() - 0.3530) < 5e-4  # the published statistics
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.class_names[9] == "Ankle boot" and train.source.startswith(str(FMNIST))
    t = test.tensor()
    assert tuple(t.shape) == (10000, 1, 28, 28) and float(t.max()) == 1.0


def test_data_dir_comes_before_system_copy(tmp_path):
    _need_fashion_mnist()
    write_mnist(tmp_path / "fm", n_train=30, n_test=10)
    got = ds.load("fashion-mnist", "test", data_dir=tmp_path / "fm", check_size=False)
    assert len(got) == 10 and got.source.startswith(str(tmp_path))


# ---- MNIST in the official IDX format --------------------------------------------------------------

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_files(tmp_path, gz):
    truth = write_mnist(tmp_path / "mnist", gz=gz)
    for split in ("train", "test"):
        got = ds.load("mnist", split, data_dir=tmp_path, check_size=False, download=False)
        np.testing.assert_array_equal(got.images[..., 0], truth[split][0])
        np.testing.assert_array_equal(got.labels, truth[split][1])
        assert got.class_names == [str(i) for i in range(10)]


def test_mnist_in_cache(tmp_path, monkeypatch):
    write_mnist(tmp_path / "cache" / "mnist")
    assert len(ds.load("mnist", "train", check_size=False, download=False)) == 50
    with pytest.raises(LatentdynError, match="has shape \\(50, 28, 28, 1\\), expected \\(60000"):
        ds.load("mnist", "train", download=False)  # the official count is checked by default


def test_missing_offline_says_what_to_put_where(tmp_path):
    with pytest.raises(LatentdynError) as e:
        ds.load("mnist", "train", download=False)
    msg = str(e.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "cache" / "mnist") in msg and "\n" not in msg


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda b: b[:-100], "truncated"),
        (lambda b: b + b"\0" * 7, "longer than its header"),
        (lambda b: b"\x01\x02" + b[2:], "not an IDX file"),
        (lambda b: b[:6], "truncated inside its header"),
    ],
)
def test_corrupt_idx_one_line_errors(tmp_path, mutate, match):
    images = np.zeros((3, 28, 28), np.uint8)
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(mutate(idx_images(images)))
    with pytest.raises(LatentdynError, match=match) as e:
        idx.read_idx(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip_is_one_line_error(tmp_path):
    p = tmp_path / "x.gz"
    p.write_bytes(gzip.compress(idx_images(np.zeros((30, 28, 28), np.uint8)))[:-40])
    with pytest.raises(LatentdynError, match="corrupt or truncated gzip"):
        idx.read_idx(p)


def test_images_and_labels_must_agree(tmp_path):
    write_mnist(tmp_path, n_train=5)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big") + bytes(4)))
    with pytest.raises(LatentdynError, match="5 images but .* 4 labels"):
        ds.load("mnist", "train", data_dir=tmp_path, check_size=False)


# ---- CIFAR-10 binary -------------------------------------------------------------------------------

@pytest.mark.parametrize("as_tar", [True, False])
def test_cifar_binary(tmp_path, as_tar):
    truth = write_cifar(tmp_path / "c", as_tar=as_tar)
    for split in ("train", "test"):
        got = ds.load("cifar10", split, data_dir=tmp_path / "c", check_size=False, download=False)
        np.testing.assert_array_equal(got.images, truth[split][0])
        np.testing.assert_array_equal(got.labels, truth[split][1])
        assert got.images.shape[1:] == (32, 32, 3) and got.class_names[0] == "airplane"
    gray = ds.load("cifar10-gray", "test", data_dir=tmp_path / "c", check_size=False)
    assert gray.images.shape[1:] == (32, 32, 1)
    np.testing.assert_array_equal(gray.images, transforms.to_gray(truth["test"][0]))


def test_grayscale_is_itu_601_luma_like_pil(rng):
    from PIL import Image

    rgb = rng.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    ours = transforms.to_gray(rgb)[..., 0]
    pil = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    np.testing.assert_array_equal(ours, pil)
    assert transforms.to_gray(np.full((1, 1, 1, 3), [255, 0, 0], np.uint8))[0, 0, 0, 0] == 76  # round(0.299 * 255)


def test_corrupt_cifar_files(tmp_path):
    bad = tmp_path / "bad"
    write_cifar(bad, as_tar=False)
    p = bad / "cifar-10-batches-bin" / "test_batch.bin"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(LatentdynError, match="not a whole number of 3073-byte records"):
        ds.load("cifar10", "test", data_dir=bad, check_size=False)
    recs = bytearray(cifar_records(np.zeros((2, 32, 32, 3), np.uint8), np.array([1, 2])))
    recs[0] = 57
    p.write_bytes(bytes(recs))
    with pytest.raises(LatentdynError, match="label 57"):
        ds.load("cifar10", "test", data_dir=bad, check_size=False)
    tar_dir = tmp_path / "tar"
    write_cifar(tar_dir)
    t = tar_dir / "cifar-10-binary.tar.gz"
    t.write_bytes(t.read_bytes()[: len(t.read_bytes()) // 2])
    with pytest.raises(LatentdynError, match="corrupt or truncated archive"):
        ds.load("cifar10", "train", data_dir=tar_dir, check_size=False)


def test_tar_members_are_filtered(tmp_path):
    """Links and paths outside the archive are never followed or extracted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
        data = b"evil"
        info = tarfile.TarInfo("../../test_batch.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(LatentdynError, match="lacks test_batch.bin"):
        cifar.read_tar(tmp_path / "cifar-10-binary.tar.gz", ["test_batch.bin"])
    with pytest.raises(LatentdynError, match="lacks"):
        cifar.extract_members(tmp_path / "cifar-10-binary.tar.gz", ["test_batch.bin"], tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "test_batch.bin").exists()


# ---- CIFAR-10 python version: the restricted unpickler -------------------------------------------

def _python_batch(images, labels, protocol=2) -> bytes:
    batch = {b"batch_label": b"testing batch 1 of 1", b"labels": [int(x) for x in labels],
             b"data": images.transpose(0, 3, 1, 2).reshape(len(images), -1), b"filenames": [b"a.png"] * len(images)}
    return pickle.dumps(batch, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4])
def test_python_version_reads_through_restricted_unpickler(tmp_path, rng, protocol):
    images = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 7)
    got_images, got_labels = cifar.read_python_batch(_python_batch(images, labels, protocol), "batch")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in cifar.PY_TRAIN_FILES + cifar.PY_TEST_FILES:
        (folder / name).write_bytes(_python_batch(images, labels, protocol))
    got = ds.load("cifar10", "test", data_dir=tmp_path, check_size=False)
    np.testing.assert_array_equal(got.images, images)


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_malicious_pickle_is_refused_and_does_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": _Payload(marker), b"labels": [0]}, protocol=2)
    with pytest.raises(LatentdynError, match="refused: global .*system is not allowed"):
        cifar.read_python_batch(evil, "evil_batch")
    assert not marker.exists()
    evil2 = pickle.dumps(np.array([_Payload(marker)], dtype=object), protocol=2)  # object arrays too
    with pytest.raises(LatentdynError, match="refused"):
        cifar.read_python_batch(evil2, "evil_batch")
    assert not marker.exists()


# ---- downloads --------------------------------------------------------------------------------------

def _file_url(p: Path) -> str:
    return p.resolve().as_uri()


def test_download_checksum_mismatch_leaves_nothing(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"payload" * 1000)
    dest = tmp_path / "cache" / "x" / "src.bin"
    with pytest.raises(LatentdynError, match="MD5 .* expected 0+; nothing was kept"):
        downloads.download([_file_url(src)], dest, "0" * 32, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*"))
    good = downloads.download([_file_url(tmp_path / "nope"), _file_url(src)], dest, downloads.md5_file(src), progress=False)
    assert good.read_bytes() == src.read_bytes()  # second mirror used after the first failed


def test_fetch_then_load_from_cache(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    truth = write_mnist(mirror, n_train=12, n_test=4)
    spec = ds.DATASETS["mnist"]
    md5 = {name: downloads.md5_file(mirror / name) for name in spec.md5}
    monkeypatch.setitem(ds.DATASETS, "mnist", dataclasses.replace(spec, urls=[_file_url(mirror) + "/"], md5=md5))
    got = ds.load("mnist", "test", check_size=False, progress=False)  # not found anywhere: downloaded
    np.testing.assert_array_equal(got.images[..., 0], truth["test"][0])
    assert got.source.startswith(str(tmp_path / "cache" / "mnist"))
    bad = {k: "f" * 32 for k in md5}
    monkeypatch.setitem(ds.DATASETS, "fashion-mnist", dataclasses.replace(ds.DATASETS["fashion-mnist"], urls=[_file_url(mirror) + "/"], md5=bad))
    monkeypatch.setattr(ds, "SYSTEM_DIRS", [])
    with pytest.raises(LatentdynError, match="expected f+; nothing was kept"):
        ds.fetch("fashion-mnist", progress=False)
    assert not (tmp_path / "cache" / "fashion-mnist").exists()


# ---- preprocessing and scene sources ---------------------------------------------------------------

def test_binarization(rng):
    import torch

    x = rng.random((200, 28, 28)).astype(np.float32)
    s = transforms.binarize_static(x)
    np.testing.assert_array_equal(s, (x > 0.5).astype(np.float32))
    a, b = transforms.binarize_dynamic(x, 1, 0), transforms.binarize_dynamic(x, 1, 0)
    c = transforms.binarize_dynamic(x, 1, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and set(np.unique(a)) <= {0.0, 1.0}
    assert abs(a.mean() - x.mean()) < 0.01
    t = torch.from_numpy(x)
    ta, tb = transforms.binarize_dynamic(t, 3, 2), transforms.binarize_dynamic(t, 3, 2)
    assert torch.equal(ta, tb) and abs(float(ta.mean()) - float(t.mean())) < 0.01
    assert torch.equal(transforms.binarize_static(t), (t > 0.5).float())


def test_resize_and_prepare(rng):
    img = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    data = ds.ImageData("x", "train", img, np.zeros(3, np.int64), [], "mem")
    out = ds.prepare(data, gray=True, size=(16, 16))
    assert out.images.shape == (3, 16, 16, 1) and out.images.dtype == np.uint8
    flat = np.full((1, 8, 8, 1), 77, np.uint8)
    assert (transforms.resize(flat, (20, 20)) == 77).all()  # a constant image stays constant


def test_scene_file_is_a_source(scene_file):
    data = ds.load_source(scene_file, "test")
    assert data.images.shape == (6 * 20, 30, 30, 1) and data.class_names == []
    assert len(np.unique(data.labels)) == 6
    seqs = ds.load_sequences(scene_file, "train")
    assert seqs.shape == (18, 20, 30, 30, 1)
    with pytest.raises(LatentdynError, match="unknown dataset 'nope'"):
        ds.load_source("nope")


def test_fetch_cifar_unpacks_the_batches(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    truth = write_cifar(mirror, per_batch=3)
    md5 = {"cifar-10-binary.tar.gz": downloads.md5_file(mirror / "cifar-10-binary.tar.gz")}
    monkeypatch.setitem(ds.DATASETS, "cifar10", dataclasses.replace(ds.DATASETS["cifar10"], urls=[_file_url(mirror) + "/"], md5=md5))
    monkeypatch.setattr(ds, "SYSTEM_DIRS", [])
    dest = ds.fetch("cifar10", progress=False)
    assert sorted(p.name for p in (dest / "cifar-10-batches-bin").iterdir()) == sorted(cifar.TRAIN_FILES + cifar.TEST_FILES)
    got = ds.load("cifar10", "train", check_size=False, download=False)
    assert got.source.endswith("cifar-10-batches-bin")
    np.testing.assert_array_equal(got.images, truth["train"][0])
