"""The offline ``digits`` dataset and the load_dataset boundary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsetopo.data import DATASET_NAMES, load_dataset
from sparsetopo.errors import ValidationError


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_digits_split_sizes_and_stratification(digits):
    assert DATASET_NAMES == ("cifar10", "cifar100", "tiny_imagenet32", "digits")
    assert (len(digits.train), len(digits.test), digits.num_classes) == (1437, 360, 10)
    assert digits.input_shape == (3, 32, 32)
    train_counts = np.bincount(digits.train.labels.numpy(), minlength=10)
    test_counts = np.bincount(digits.test.labels.numpy(), minlength=10)
    fraction = test_counts / (train_counts + test_counts)
    assert np.all(np.abs(fraction - 0.2) < 0.02)                # stratified 80/20


def test_digits_images_are_grey_32x32_and_real(digits):
    images = digits.train.images
    assert images.shape == (1437, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    assert images.max() == 255 and images.min() == 0
    means = [images[digits.train.labels == c].float().mean(0) for c in range(10)]
    assert (means[0] - means[1]).abs().max() > 50              # classes look different


def test_digits_normalised_with_train_statistics(digits):
    from sparsetopo.data.transforms import normalize

    x = normalize(digits.train.images, digits.train.mean, digits.train.std)
    assert abs(x.mean().item()) < 1e-4 and abs(x.std().item() - 1) < 1e-3
    assert digits.test.mean == digits.train.mean


def test_digits_train_is_augmented_test_is_not(digits):
    x1, y = digits.train[5]
    x2, _ = digits.train[5]
    assert x1.shape == (3, 32, 32) and x1.dtype == torch.float32 and isinstance(y, int)
    assert not torch.equal(x1, x2)                               # fresh random crop / flip
    assert torch.equal(digits.test[5][0], digits.test[5][0])


def test_digits_split_is_fixed():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=7)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.train.labels, b.train.labels)
    assert torch.equal(a.train[0][0], load_dataset("digits", seed=0).train[0][0])


def test_subset_and_bad_names(digits):
    small = digits.subset(100, 50, seed=1)
    assert (len(small.train), len(small.test), small.num_classes) == (100, 50, 10)
    assert small.train.augment and not small.test.augment
    with pytest.raises(ValidationError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ValidationError, match="tiny_test_split"):
        load_dataset("digits", tiny_test_split="train")


def test_subset_keeps_the_augmentation_seed():
    a = load_dataset("digits", seed=3).subset(50, 10, seed=0)
    b = load_dataset("digits", seed=3).subset(50, 10, seed=0)
    c = load_dataset("digits", seed=4).subset(50, 10, seed=0)
    assert torch.equal(a.train.images, c.train.images)                 # same items
    assert torch.equal(a.train[0][0], b.train[0][0]) and not torch.equal(a.train[0][0], c.train[0][0])
