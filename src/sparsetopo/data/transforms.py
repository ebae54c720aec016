"""Image transforms on uint8 tensors, written in torch (no torchvision).

Conventions: a batch of images is a ``uint8`` tensor of shape (B, C, H, W) holding pixel values
0..255 (the layout of the CIFAR binary files); :func:`normalize` turns it into the float32 input
of the networks. Randomness comes only from the ``torch.Generator`` passed in (never the global RNG),
so an augmentation is a pure function of (images, generator state).

Training augmentation (spec models-and-pruning.md §4): RandomCrop(32, padding 4, zero fill) then
RandomHorizontalFlip(0.5) then ToTensor (÷255) then Normalize; test: ToTensor then Normalize.
The zero fill happens on raw pixels (before normalisation), as in torchvision.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(B, C, H, W) uint8 0..255 -> float32 ``(x / 255 - mean[c]) / std[c]`` (ToTensor + Normalize)."""
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.to(torch.float32) / 255.0 - mean_t) / std_t


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, *, size: int = 32,
                     padding: int = 4, flip_p: float = 0.5) -> torch.Tensor:
    """RandomCrop(size, padding, zero fill) then RandomHorizontalFlip(flip_p), batched.

    ``images``: (B, C, H, W) tensor of any dtype, on CPU (``generator`` is a CPU generator).
    Each image gets its own crop offset, uniform in [0, H + 2·padding − size] per axis, and is
    flipped left-right with probability ``flip_p``. Random numbers drawn, in order: B row offsets,
    B column offsets, B flip draws. Cost O(B·C·size²). Returns a new (B, C, size, size) tensor.
    """
    b, c, h, w = images.shape
    padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))  # zeros
    rows0 = torch.randint(0, h + 2 * padding - size + 1, (b,), generator=generator)
    cols0 = torch.randint(0, w + 2 * padding - size + 1, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < flip_p
    offsets = torch.arange(size)
    rows = (rows0[:, None] + offsets)[:, :, None]                   # (B, size, 1)
    cols = cols0[:, None] + offsets                                 # (B, size)
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # flipped = reversed columns
    batch = torch.arange(b)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows, cols]             # (B, size, size, C)
    return out.permute(0, 3, 1, 2).contiguous()


def box_downsample_2x(images: np.ndarray) -> np.ndarray:
    """Halve height and width with the Box filter, bit-exact with PIL ``resize(..., Image.BOX)``.

    ``images``: uint8 array (..., H, W, C) with even H, W. Each output pixel averages a 2×2 block:
    first horizontal pairs ``(a + b + 1) // 2`` (rounded half up to uint8), then vertical pairs of
    those the same way (spec §4; PIL's BOX 64→32 works in this order). Returns uint8
    (..., H/2, W/2, C). Cost O(H·W·C) per image.
    """
    x = images.astype(np.uint16)
    horizontal = (x[..., :, 0::2, :] + x[..., :, 1::2, :] + 1) >> 1
    vertical = (horizontal[..., 0::2, :, :] + horizontal[..., 1::2, :, :] + 1) >> 1
    return vertical.astype(np.uint8)


def resize_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W) uint8 -> (N, size, size) uint8 by bilinear interpolation (half-pixel centres,
    ``align_corners=False``, no antialiasing), rounded to nearest. Used to enlarge 8×8 digits."""
    x = torch.from_numpy(images.astype(np.float32))[:, None]
    y = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return y[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
