"""Datasets of the paper (spec models-and-pruning.md §4) as in-memory uint8 arrays.

>>> bundle = load_dataset("digits")            # offline; cifar10 / cifar100 / tiny_imagenet32 need archives
>>> x, y = bundle.train[0]                     # float32 (3, 32, 32) normalised + augmented, int label
>>> for xb, yb in iterate_batches(bundle.train, 128, generator=torch.Generator().manual_seed(0)): ...

``train`` items are augmented (RandomCrop 32 / padding 4 / zero fill, then horizontal flip 0.5);
``test`` items are only normalised. CIFAR and Tiny-ImageNet are read from the official archives in
the data root (``root``, else ``$SPARSETOPO_DATA``, else ``~/.cache/sparsetopo/data``), verified by
MD5 and cached there as ``<name>.npz`` (uint8, no pickle).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..validation import check_choice, check_scalar, check_seed
from .cifar import LAYOUTS as CIFAR_LAYOUTS
from .cifar import convert_cifar_archive
from .dataset import ImageArrayDataset, iterate_batches
from .download import ARCHIVES, default_root, ensure_archive, load_or_convert, resolve_root
from .tiny_imagenet import MEAN as TINY_MEAN
from .tiny_imagenet import STD as TINY_STD
from .tiny_imagenet import convert_tiny_imagenet_archive

DATASET_NAMES: tuple[str, ...] = ("cifar10", "cifar100", "tiny_imagenet32", "digits")
TINY_TEST_SPLITS: tuple[str, ...] = ("val", "test", "all")


@dataclass
class DatasetBundle:
    """A dataset's train and test splits and what a model needs to know about them."""

    name: str
    train: ImageArrayDataset      # augmented
    test: ImageArrayDataset       # normalised only
    num_classes: int
    input_shape: tuple[int, int, int] = (3, 32, 32)

    def subset(self, num_train: int | None = None, num_test: int | None = None, seed: int = 0
               ) -> "DatasetBundle":
        """A smaller bundle (random items, drawn with ``seed``) for demos and tests; ``None`` keeps a
        split whole, a count above its size keeps all of it."""
        for what, count in (("num_train", num_train), ("num_test", num_test)):
            if count is not None:
                check_scalar(count, what, int, min_val=1)
        gen = torch.Generator().manual_seed(check_seed(seed))

        def pick(ds: ImageArrayDataset, n: int | None) -> ImageArrayDataset:
            if n is None or n >= len(ds):
                return ds
            return ds.subset(torch.randperm(len(ds), generator=gen)[:n].sort().values)

        return DatasetBundle(self.name, pick(self.train, num_train), pick(self.test, num_test),
                             self.num_classes, self.input_shape)


def load_dataset(name: str, root: str | os.PathLike | None = None, *, download: bool = False,
                 seed: int = 0, tiny_test_split: str = "val", official_cifar100_test_aug: bool = False
                 ) -> DatasetBundle:
    """Load dataset ``name`` (one of :data:`DATASET_NAMES`) into memory.

    ``download``: fetch a missing archive from its official URL (else a missing archive is a
    :class:`~sparsetopo.errors.DatasetError` saying where to put it and its MD5). ``seed`` seeds the
    per-item augmentation generator of ``train`` (``iterate_batches`` takes its own generator).
    ``tiny_test_split``: ``val`` (first 25 labelled val images per class, the official evaluation
    split), ``test`` (the other 25) or ``all``. ``official_cifar100_test_aug`` reproduces the official
    bug of augmenting the CIFAR-100 test split.
    """
    check_choice(name, DATASET_NAMES, "dataset")
    check_seed(seed)
    check_choice(tiny_test_split, TINY_TEST_SPLITS, "tiny_test_split")
    if name == "digits":
        return _digits_bundle(seed)
    root = resolve_root(root)
    keys = ("train_images", "train_labels") + (
        ("val_images", "val_labels", "val_first", "wnids") if name == "tiny_imagenet32" else ("test_images", "test_labels"))

    def convert() -> dict[str, np.ndarray]:
        archive = ensure_archive(ARCHIVES[name], root, download=download)
        if name == "tiny_imagenet32":
            return convert_tiny_imagenet_archive(archive)
        return convert_cifar_archive(archive, name)

    arrays = load_or_convert(root / f"{name}.npz", keys, convert)
    if name == "tiny_imagenet32":
        return _tiny_bundle(arrays, tiny_test_split, seed)
    layout = CIFAR_LAYOUTS[name]
    test_aug = official_cifar100_test_aug and name == "cifar100"
    return _bundle(name, arrays["train_images"], arrays["train_labels"], arrays["test_images"],
                   arrays["test_labels"], layout.mean, layout.std, layout.num_classes, seed, test_aug)


def check_dataset_available(name: str, root: str | os.PathLike | None = None, *, download: bool = False) -> None:
    """Raise :class:`~sparsetopo.errors.DatasetError` (where to put which file) if ``load_dataset``
    would find neither the converted cache nor the archive of ``name`` and may not download it.

    Cheap (two ``stat`` calls, no MD5): studies call it for every dataset before any cell runs.
    """
    check_choice(name, DATASET_NAMES, "dataset")
    if name == "digits" or download:
        return
    root = resolve_root(root)
    if not (root / f"{name}.npz").is_file() and not (root / ARCHIVES[name].filename).is_file():
        ensure_archive(ARCHIVES[name], root, download=False)  # raises: where to put which file


def _digits_bundle(seed: int) -> DatasetBundle:
    from .digits import digits_arrays

    a = digits_arrays()
    return _bundle("digits", a["train_images"], a["train_labels"], a["test_images"], a["test_labels"],
                   tuple(a["mean"]), tuple(a["std"]), 10, seed)


def _tiny_bundle(arrays: dict[str, np.ndarray], split: str, seed: int) -> DatasetBundle:
    keep = {"val": arrays["val_first"], "test": ~arrays["val_first"],
            "all": np.ones_like(arrays["val_first"])}[split]
    return _bundle("tiny_imagenet32", arrays["train_images"], arrays["train_labels"],
                   arrays["val_images"][keep], arrays["val_labels"][keep], TINY_MEAN, TINY_STD, len(arrays["wnids"]), seed)


def _bundle(name: str, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
            mean, std, num_classes: int, seed: int, test_aug: bool = False) -> DatasetBundle:
    def ds(x: np.ndarray, y: np.ndarray, augment: bool) -> ImageArrayDataset:
        return ImageArrayDataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)),
                                 mean, std, augment=augment, seed=seed)

    return DatasetBundle(name, ds(train_x, train_y, True), ds(test_x, test_y, test_aug), num_classes)


__all__ = ["DATASET_NAMES", "DatasetBundle", "ImageArrayDataset", "load_dataset", "check_dataset_available",
           "iterate_batches",
           "default_root", "ARCHIVES"]
