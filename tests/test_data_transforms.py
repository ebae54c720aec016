"""Transforms: Box downsampling (bit-exact PIL), seeded crop/flip, normalisation, batching."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sparsetopo.data import ImageArrayDataset, iterate_batches
from sparsetopo.data.transforms import box_downsample_2x, normalize, random_crop_flip, resize_bilinear


def test_box_hand_made_rounds_horizontal_then_vertical():
    image = np.zeros((2, 4, 1), dtype=np.uint8)
    image[:, :2, 0] = [[0, 1], [0, 0]]      # exact mean 0.25; pairs: (0+1+1)>>1 = 1, (0+0+1)>>1 = 0 -> 1
    image[:, 2:, 0] = [[255, 254], [10, 13]]  # rows -> 255, 12 (11.5 rounds up); columns -> (255+12+1)>>1 = 134
    out = box_downsample_2x(image)
    assert out.shape == (1, 2, 1) and out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [1, 134]


def test_box_matches_pil_on_random_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(16, 64, 64, 3), dtype=np.uint8)
    ours = box_downsample_2x(images)
    pil = np.stack([np.asarray(Image.fromarray(im).resize((32, 32), Image.BOX)) for im in images])
    assert ours.shape == (16, 32, 32, 3)
    np.testing.assert_array_equal(ours, pil)


def _brute_force_matches(src: torch.Tensor, out: torch.Tensor, padding: int = 4) -> bool:
    padded = torch.nn.functional.pad(src, (padding,) * 4)
    size = src.shape[-1]
    for i in range(2 * padding + 1):
        for j in range(2 * padding + 1):
            crop = padded[:, i:i + size, j:j + size]
            if torch.equal(crop, out) or torch.equal(crop.flip(-1), out):
                return True
    return False


def test_random_crop_flip_is_a_padded_crop_maybe_flipped():
    gen = torch.Generator().manual_seed(3)
    images = torch.randint(1, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=gen)
    out = random_crop_flip(images, torch.Generator().manual_seed(1))
    assert out.shape == images.shape and out.dtype == torch.uint8
    for src, dst in zip(images, out):
        assert _brute_force_matches(src, dst)
    # zero fill: with offsets drawn over many images some border pixels come from the padding
    many = random_crop_flip(torch.full((64, 3, 32, 32), 7, dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert (many == 0).any() and (many == 7).any()


def test_random_crop_flip_is_reproducible_and_seed_dependent():
    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a = random_crop_flip(images, torch.Generator().manual_seed(5))
    b = random_crop_flip(images, torch.Generator().manual_seed(5))
    c = random_crop_flip(images, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_probability_is_one_half():
    image = torch.arange(32, dtype=torch.uint8).repeat(2000, 3, 32, 1)   # columns 0..31
    out = random_crop_flip(image, torch.Generator().manual_seed(0), padding=0)
    flipped = (out[:, 0, 0, 0] == 31).float().mean().item()
    assert 0.45 < flipped < 0.55
    assert bool(((out[:, 0, 0, 0] == 0) | (out[:, 0, 0, 0] == 31)).all())


def test_normalize_values():
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).repeat(1, 3, 1, 1)
    y = normalize(x, (0.5, 0.0, 1.0), (0.5, 1.0, 2.0))
    assert y.dtype == torch.float32
    assert y[0, :, 0, 0].tolist() == [-1.0, 0.0, -0.5]
    assert y[0, :, 0, 1].tolist() == [1.0, 1.0, 0.0]


def test_resize_bilinear_constant_and_range():
    const = np.full((2, 8, 8), 200, dtype=np.uint8)
    assert (resize_bilinear(const, 32) == 200).all()
    ramp = np.tile(np.arange(0, 256, 32, dtype=np.uint8), (1, 8, 1))
    out = resize_bilinear(ramp, 32)
    assert out.shape == (1, 32, 32)
    assert (np.diff(out[0, 0].astype(int)) >= 0).all()  # monotone along the ramp


def _toy_dataset(n: int = 10, augment: bool = True) -> ImageArrayDataset:
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return ImageArrayDataset(images, torch.arange(n) % 3, (0.5,) * 3, (0.25,) * 3, augment=augment)


def test_dataset_items_and_test_transform():
    ds = _toy_dataset(augment=False)
    x, y = ds[-1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and isinstance(y, int) and y == 0
    torch.testing.assert_close(x, (ds.images[9].float() / 255 - 0.5) / 0.25)
    with pytest.raises(IndexError):
        ds[10]


def test_iterate_batches_covers_each_item_once_and_is_seeded():
    ds = _toy_dataset(n=23)
    batches = list(iterate_batches(ds, 5, generator=torch.Generator().manual_seed(2)))
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    labels = torch.cat([y for _, y in batches])
    assert sorted(labels.tolist()) == sorted(ds.labels.tolist())
    again = list(iterate_batches(ds, 5, generator=torch.Generator().manual_seed(2)))
    assert all(torch.equal(a[0], b[0]) for a, b in zip(batches, again))
    assert len(list(iterate_batches(ds, 5, shuffle=False, drop_last=True))) == 4
