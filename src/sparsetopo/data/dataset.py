"""In-memory image datasets (uint8 arrays) and a seeded, batched iterator over them.

A whole dataset of the paper fits in memory as uint8 (CIFAR: 150 MB, Tiny-ImageNet-32: 300 MB), so
images are kept raw and transformed on the fly: per sample in ``__getitem__`` (any
``torch.utils.data.DataLoader`` works), or a batch at a time with :func:`iterate_batches`, which is
vectorised and makes the order and augmentation a function of one ``torch.Generator``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import ValidationError
from .transforms import normalize, random_crop_flip


class ImageArrayDataset(Dataset):
    """Images held as uint8 (N, 3, H, W), labels int64 (N,); items are normalised float32.

    ``dataset[i]`` -> ``(image float32 (3, H, W), label int)``. With ``augment=True`` each item is
    random-cropped (padding 4, zero fill) and flipped, drawing from this dataset's own generator
    (seeded with ``seed``; reseed with :meth:`reseed`), so a ``DataLoader`` with ``num_workers=0``
    is reproducible. Worker processes would each copy the generator: prefer :func:`iterate_batches`.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: Sequence[float],
                 std: Sequence[float], *, augment: bool = False, seed: int = 0) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValidationError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValidationError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images = images
        self.labels = labels.to(torch.int64)
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self.augment = bool(augment)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = range(len(self))[index]  # IndexError when out of range; negative indices allowed
        image = self.transform(self.images[index:index + 1], self.generator)
        return image[0], int(self.labels[index])

    def reseed(self, seed: int) -> None:
        """Restart this dataset's augmentation generator from ``seed``."""
        self.generator.manual_seed(int(seed))

    def transform(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> normalised float32 (B, 3, H, W), augmented when ``self.augment``."""
        if self.augment:
            images = random_crop_flip(images, generator if generator is not None else self.generator,
                                      size=images.shape[-1])
        return normalize(images, self.mean, self.std)

    def batch(self, indices: torch.Tensor, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` as one batch: (float32 (B, 3, H, W), int64 (B,)); augmentation draws
        from ``generator`` (default: the dataset's own)."""
        return self.transform(self.images[indices], generator), self.labels[indices]

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "ImageArrayDataset":
        """A new dataset with the items ``indices`` (same normalisation, augmentation and generator
        state)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        out = ImageArrayDataset(self.images[idx], self.labels[idx], self.mean, self.std, augment=self.augment)
        out.generator.set_state(self.generator.get_state())
        return out


def iterate_batches(dataset: ImageArrayDataset, batch_size: int, *, generator: torch.Generator | None = None,
                    shuffle: bool = True, drop_last: bool = False
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (images float32 (B, 3, H, W), labels int64 (B,)) batches over ``dataset``, on CPU.

    With ``shuffle`` the order is ``torch.randperm(N, generator=generator)``; augmentation then draws
    from the same generator batch after batch, so the whole epoch is a function of the generator's
    initial state. ``generator=None`` uses the dataset's own. The last batch may be smaller unless
    ``drop_last``. Vectorised: one gather + one arithmetic pass per batch.
    """
    gen = generator if generator is not None else dataset.generator
    n = len(dataset)
    order = torch.randperm(n, generator=gen) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield dataset.batch(order[start:start + batch_size], gen)
