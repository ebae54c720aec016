"""CIFAR-10 / CIFAR-100 from the official *binary* archives (never the pickled python version).

Record format (https://www.cs.toronto.edu/~kriz/cifar.html): CIFAR-10 = 1 label byte + 3072 pixel
bytes; CIFAR-100 = 1 coarse + 1 fine label byte + 3072 pixel bytes (the fine label is used). Pixels
are three 32×32 planes R, G, B, row-major, i.e. already (3, 32, 32). Files inside the tar.gz:
``cifar-10-batches-bin/data_batch_{1..5}.bin`` + ``test_batch.bin``;
``cifar-100-binary/train.bin`` + ``test.bin``.
"""
from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarLayout:
    """Where the records of one CIFAR variant live inside its archive, and their format."""

    train_members: tuple[str, ...]
    test_members: tuple[str, ...]
    label_bytes: int      # bytes before the pixels in a record
    label_offset: int     # which of those bytes is the label used
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout(
        tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
        ("cifar-10-batches-bin/test_batch.bin",), 1, 0, 10,
        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": CifarLayout(
        ("cifar-100-binary/train.bin",), ("cifar-100-binary/test.bin",), 2, 1, 100,
        (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
}


def convert_cifar_archive(archive: Path, name: str) -> dict[str, np.ndarray]:
    """Decode a verified CIFAR binary archive into uint8 arrays.

    Returns ``train_images`` (N, 3, 32, 32) uint8, ``train_labels`` (N,) int64, and the same for
    ``test_``. Raises :class:`DatasetError` for a missing member, a truncated file or a label out
    of range, naming the archive member.
    """
    layout = LAYOUTS[name]
    out: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for split, members in (("train", layout.train_members), ("test", layout.test_members)):
                parts = [_read_records(tar, archive, m, layout) for m in members]
                out[f"{split}_images"] = np.concatenate([p[0] for p in parts])
                out[f"{split}_labels"] = np.concatenate([p[1] for p in parts])
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"cannot read CIFAR archive {str(archive)!r} ({exc}); delete it and download "
                           f"it again") from exc
    return out


def _read_records(tar: tarfile.TarFile, archive: Path, member: str, layout: CifarLayout
                  ) -> tuple[np.ndarray, np.ndarray]:
    try:
        fh = tar.extractfile(member)
    except KeyError:
        fh = None
    if fh is None:
        raise DatasetError(f"archive {str(archive)!r} has no member {member!r}; is it the binary version "
                           f"of {Path(member).parts[0]}?")
    raw = np.frombuffer(fh.read(), dtype=np.uint8)
    record = layout.label_bytes + PIXELS
    if raw.size == 0 or raw.size % record:
        raise DatasetError(f"{member!r} in {str(archive)!r} holds {raw.size} bytes, not a whole number of "
                           f"{record}-byte records")
    records = raw.reshape(-1, record)
    labels = records[:, layout.label_offset].astype(np.int64)
    if labels.max() >= layout.num_classes:
        raise DatasetError(f"{member!r} in {str(archive)!r} has label {labels.max()} >= "
                           f"{layout.num_classes} classes")
    images = records[:, layout.label_bytes:].reshape(-1, 3, 32, 32).copy()
    return images, labels
