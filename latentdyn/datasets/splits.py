"""Train, validation and test splits of the image datasets.

The official files have a training and a test set only. Model selection, early stopping and
learning-rate schedules must not read the test set, so latentdyn carves a validation split
out of the official training set: ``val`` is a seeded draw of ``val_size`` training images
(default 5,000, as is common for MNIST since Salakhutdinov and Murray 2008), ``train`` the
rest, ``test`` the official test set untouched, and ``train-full`` the whole official training
set. The draw depends only on the dataset's size, ``val_size`` and ``seed`` (never on the
model's seed), so every model of a study is selected on the same images.
"""

from __future__ import annotations

import numpy as np

from latentdyn.core.errors import LatentdynError

VAL_SIZE = 5000
SPLITS = ("train", "val", "test", "train-full")


def val_indices(n_train: int, val_size: int = VAL_SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) index arrays into the official training set, each sorted; seeded."""
    if not 0 <= val_size < n_train:
        raise LatentdynError(f"val_size {val_size}: must be in [0, {n_train}) (the training set has {n_train} images)")
    perm = np.random.default_rng([seed, 0x7A1]).permutation(n_train)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def load_split(name: str, split: str, data_dir=None, val_size: int = VAL_SIZE, seed: int = 0, download: bool = True):
    """One of :data:`SPLITS` of dataset ``name`` as :class:`latentdyn.datasets.ImageData`."""
    from latentdyn.datasets import load

    if split not in SPLITS:
        raise LatentdynError(f"split {split!r} of {name}: use one of {', '.join(SPLITS)}")
    if split == "test":
        return load(name, "test", data_dir, download)
    data = load(name, "train", data_dir, download)
    if split == "train-full":
        return data
    train, val = val_indices(len(data), val_size, seed)
    keep = train if split == "train" else val
    data.images, data.labels, data.split = data.images[keep], data.labels[keep], split
    return data
