"""``digits``: scikit-learn's 8×8 handwritten digits as a tiny offline stand-in for CIFAR-10.

1,797 real images (UCI optdigits test set, bundled with scikit-learn: no download), 10 classes.
Pixel values 0..16 are scaled to uint8 by ``round(v · 255 / 16)``, enlarged to 32×32 by bilinear
interpolation (half-pixel centres, rounded to uint8) and the grey channel is replicated ×3.
Split: stratified 80/20 with ``sklearn.model_selection.train_test_split(random_state=0)``
(1,437 train / 360 test), fixed whatever the run seed. Mean/std (per channel, identical across the
three channels) are computed on the train split after ToTensor (÷255).
"""
from __future__ import annotations

import numpy as np

from .transforms import resize_bilinear

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def digits_arrays() -> dict[str, np.ndarray]:
    """``train_images`` / ``test_images`` uint8 (N, 3, 32, 32), ``*_labels`` int64 (N,), and the
    train-split ``mean`` / ``std`` float64 (3,)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    grey = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)          # (1797, 8, 8)
    big = resize_bilinear(grey, 32)                                            # (1797, 32, 32)
    images = np.repeat(big[:, None], 3, axis=1)                                # (1797, 3, 32, 32)
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(np.arange(labels.size), test_size=TEST_FRACTION,
                                           random_state=SPLIT_SEED, stratify=labels)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    train_pixels = images[train_idx].astype(np.float64) / 255.0
    return {
        "train_images": images[train_idx], "train_labels": labels[train_idx],
        "test_images": images[test_idx], "test_labels": labels[test_idx],
        "mean": train_pixels.mean(axis=(0, 2, 3)), "std": train_pixels.std(axis=(0, 2, 3)),
    }
