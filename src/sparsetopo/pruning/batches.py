"""Batches for the data-driven pruners, from any data source, re-cut to the pruner's batch size.

Accepted sources:

* a dataset name (``str``): resolved lazily through ``sparsetopo.data.load_dataset(name, root=...)``;
  its ``.train`` split (augmented, normalised) is used as a Dataset, below;
* a ``torch.utils.data.Dataset`` (map-style, with ``__len__``): shuffled with
  ``torch.randperm(len, generator=g)``, epoch after epoch, cut into batches of exactly ``batch_size``;
  a dataset with a ``batch(indices, generator)`` method (``sparsetopo.data.ImageArrayDataset``) draws
  its augmentation from the same generator, so the batches are a function of the seed;
* a ``DataLoader`` or any iterable of ``(x, y)`` batches: consumed in order and re-cut into batches of
  exactly ``batch_size`` samples (a loader's own shuffling is its own business: seed it for
  reproducibility). A re-iterable source (a DataLoader, a list) is restarted when exhausted; a
  one-shot iterator ends the stream, the last batch possibly short.
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator

import torch
from torch.utils.data import Dataset

from ..errors import DatasetError, ValidationError

Batch = tuple[torch.Tensor, torch.Tensor]


def resolve_data(data: Any, data_root: str | None = None) -> Any:
    """A dataset name becomes the ``.train`` split of ``sparsetopo.data.load_dataset``; a one-shot
    iterator becomes a :class:`Replay` (so probing its first batch loses nothing); else unchanged."""
    if isinstance(data, str):
        return load_named_dataset(data, data_root).train
    if isinstance(data, Iterator):
        return Replay(data)
    return data


class Replay:
    """Re-iterable view of a one-shot iterator: every pass replays what was read, then reads on."""

    def __init__(self, iterator: Iterator) -> None:
        self._iterator = iterator
        self._seen: list = []

    def __iter__(self) -> Iterator:
        yield from self._seen
        for item in self._iterator:
            self._seen.append(item)
            yield item


def load_named_dataset(name: str, root: str | None = None):
    """``sparsetopo.data.load_dataset(name, root=root)`` imported lazily (the data stage is optional)."""
    try:
        from ..data import load_dataset
    except ImportError as exc:  # pragma: no cover - depends on the data stage being installed
        raise DatasetError(f"cannot load dataset {name!r}: sparsetopo.data.load_dataset is unavailable ({exc})")
    return load_dataset(name, root=root)


def batch_stream(data: Any, batch_size: int, generator: torch.Generator,
                 device: torch.device) -> Iterator[Batch]:
    """Yield (x float, y int64) batches of ``batch_size`` samples on ``device`` from ``data``."""
    if isinstance(data, Dataset) and hasattr(data, "__len__") and not _is_loader(data):
        source = _dataset_batches(data, batch_size, generator)
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, torch.Tensor)):
        source = _rebatch(_cycle(data), batch_size)
    else:
        raise ValidationError(f"data must be a dataset name, a torch Dataset, a DataLoader or an iterable of "
                              f"(x, y) batches, got {type(data).__name__}")
    for x, y in source:
        yield x.to(device), y.to(device)


def _is_loader(data: Any) -> bool:
    return isinstance(data, torch.utils.data.DataLoader)


def _dataset_batches(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
    """Endless seeded epochs over a map-style dataset, in full batches (one epoch may span batches)."""
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValidationError("data: the dataset is empty")
    pending: list[torch.Tensor] = []
    have = 0
    while True:
        order = torch.randperm(n, generator=generator)
        pending.append(order)
        have += n
        while have >= batch_size:
            flat = torch.cat(pending)
            idx, rest = flat[:batch_size], flat[batch_size:]
            pending, have = [rest], rest.numel()
            yield _gather(dataset, idx, generator)


def _gather(dataset: Dataset, idx: torch.Tensor, generator: torch.Generator) -> Batch:
    """Items ``idx`` as a batch; via ``dataset.batch(idx, generator)`` when the dataset offers it."""
    if callable(getattr(dataset, "batch", None)):
        x, y = dataset.batch(idx, generator)
    else:
        items = [dataset[int(i)] for i in idx]
        x = torch.stack([torch.as_tensor(it[0]) for it in items])
        y = torch.as_tensor([int(it[1]) for it in items])
    return _as_batch((x, y))


def _cycle(data: Iterable) -> Iterator:
    """Iterate ``data``; restart it when exhausted if it is re-iterable (not a one-shot iterator)."""
    while True:
        produced = False
        for item in data:
            produced = True
            yield item
        if iter(data) is data or isinstance(data, Replay) or not produced:
            return


def _rebatch(items: Iterator, batch_size: int) -> Iterator[Batch]:
    """Concatenate incoming (x, y) batches and cut them into exactly ``batch_size`` samples."""
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    have = 0
    for item in items:
        x, y = _as_batch(item)
        xs.append(x)
        ys.append(y)
        have += x.shape[0]
        while have >= batch_size:
            x_all, y_all = torch.cat(xs), torch.cat(ys)
            yield x_all[:batch_size], y_all[:batch_size]
            xs, ys, have = [x_all[batch_size:]], [y_all[batch_size:]], x_all.shape[0] - batch_size
    if have:
        yield torch.cat(xs), torch.cat(ys)


def _as_batch(item: Any) -> Batch:
    """Check one (x, y) item: x a float tensor with a batch dim, y integer labels of the same length."""
    try:
        x, y = item[0], item[1]
    except (TypeError, IndexError, KeyError):
        raise ValidationError(f"data must yield (x, y) pairs, got {type(item).__name__}") from None
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if not x.is_floating_point():
        raise ValidationError(f"data inputs must be floating-point tensors, got {x.dtype}")
    if y.ndim == 0:
        y = y.reshape(1)
    if x.ndim < 2 or x.shape[0] != y.shape[0]:
        raise ValidationError(f"data batch x of shape {tuple(x.shape)} does not match labels of shape "
                              f"{tuple(y.shape)}")
    return x, y.to(torch.int64) if not y.is_floating_point() else y
