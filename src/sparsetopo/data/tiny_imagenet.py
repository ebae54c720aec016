"""Tiny-ImageNet (cs231n ``tiny-imagenet-200.zip``, 64×64) downsampled to 32×32 with the Box filter.

Spec models-and-pruning.md §4. Archive layout (read in place, no extraction)::

    tiny-imagenet-200/wnids.txt                          200 class ids, one a line
    tiny-imagenet-200/train/<wnid>/images/<name>.JPEG    500 per class
    tiny-imagenet-200/val/images/<name>.JPEG             50 per class
    tiny-imagenet-200/val/val_annotations.txt            "<name>\\t<wnid>\\t<box...>" per line

Classes are the sorted wnids (label = index). Images are converted to RGB (some JPEGs are grey) and
downsampled with :func:`~sparsetopo.data.transforms.box_downsample_2x` (bit-exact PIL BOX). The
labelled val images are split per class by sorted file name (plain string order): the first 25 form
``val`` (the official evaluation split), the rest ``test``. Decoding uses Pillow.
"""
from __future__ import annotations

import io
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .transforms import box_downsample_2x

TOP = "tiny-imagenet-200/"
VAL_PER_CLASS = 25
MEAN = (0.4802, 0.4481, 0.3975)
STD = (0.2770, 0.2691, 0.2821)


def convert_tiny_imagenet_archive(archive: Path, val_per_class: int = VAL_PER_CLASS) -> dict[str, np.ndarray]:
    """Decode a verified ``tiny-imagenet-200.zip`` into 32×32 uint8 arrays.

    Returns ``train_images`` (N, 3, 32, 32) uint8 and ``train_labels`` (N,) int64 (classes in sorted
    wnid order, files in sorted name order), ``val_images`` / ``val_labels`` (all labelled val
    images, same order) and ``val_first`` (bool: among the first ``val_per_class`` of its class),
    plus ``wnids`` (str array). Raises :class:`DatasetError` naming the archive member at fault.
    """
    try:
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            wnids = sorted(_read_text(zf, archive, TOP + "wnids.txt").split())
            label_of = {w: i for i, w in enumerate(wnids)}
            train = _train_files(names, wnids, archive)
            val = _val_files(_read_text(zf, archive, TOP + "val/val_annotations.txt"), label_of, archive)
            train_images = _decode_all(zf, archive, [f for f, _ in train])
            val_images = _decode_all(zf, archive, [TOP + "val/images/" + f for f, _ in val])
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DatasetError(f"cannot read Tiny-ImageNet archive {str(archive)!r} ({exc}); delete it and "
                           f"download it again") from exc
    val_labels = np.array([lab for _, lab in val], dtype=np.int64)
    return {
        "train_images": train_images,
        "train_labels": np.array([lab for _, lab in train], dtype=np.int64),
        "val_images": val_images,
        "val_labels": val_labels,
        "val_first": _first_per_class(val_labels, val_per_class),
        "wnids": np.array(wnids),
    }


def _read_text(zf: zipfile.ZipFile, archive: Path, member: str) -> str:
    try:
        return zf.read(member).decode("utf-8")
    except KeyError:
        raise DatasetError(f"archive {str(archive)!r} has no member {member!r}; is it tiny-imagenet-200.zip?"
                           ) from None


def _train_files(names: set[str], wnids: list[str], archive: Path) -> list[tuple[str, int]]:
    by_class: dict[str, list[str]] = defaultdict(list)
    for name in names:
        parts = name[len(TOP):].split("/") if name.startswith(TOP + "train/") else []
        if len(parts) == 4 and parts[2] == "images" and parts[3].upper().endswith(".JPEG"):
            by_class[parts[1]].append(name)
    unknown = sorted(set(by_class) - set(wnids))
    if unknown:
        raise DatasetError(f"archive {str(archive)!r} has train images of classes not in wnids.txt: {unknown[:5]}")
    missing = [w for w in wnids if not by_class[w]]
    if missing:
        raise DatasetError(f"archive {str(archive)!r} has no train images for classes {missing[:5]}")
    return [(f, label) for label, w in enumerate(wnids) for f in sorted(by_class[w])]


def _val_files(annotations: str, label_of: dict[str, int], archive: Path) -> list[tuple[str, int]]:
    rows = []
    for line_no, line in enumerate(annotations.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in label_of:
            raise DatasetError(f"val/val_annotations.txt line {line_no} in {str(archive)!r} is malformed or "
                               f"names an unknown class: {line!r}")
        rows.append((fields[0], label_of[fields[1]]))
    return sorted(rows, key=lambda r: (r[1], r[0]))


def _decode_all(zf: zipfile.ZipFile, archive: Path, members: list[str]) -> np.ndarray:
    out = np.empty((len(members), 3, 32, 32), dtype=np.uint8)
    for i, member in enumerate(members):
        out[i] = box_downsample_2x(_decode_jpeg(zf, archive, member)).transpose(2, 0, 1)
    return out


def _decode_jpeg(zf: zipfile.ZipFile, archive: Path, member: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(zf.read(member))) as img:
            rgb = np.asarray(img.convert("RGB"))
    except KeyError:
        raise DatasetError(f"archive {str(archive)!r} has no member {member!r}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"{member!r} in {str(archive)!r} is not a readable image ({exc})") from exc
    if rgb.shape != (64, 64, 3):
        raise DatasetError(f"{member!r} in {str(archive)!r} is {rgb.shape[1]}x{rgb.shape[0]}, expected 64x64")
    return rgb


def _first_per_class(labels: np.ndarray, k: int) -> np.ndarray:
    """bool (N,): item is among the first ``k`` of its label (``labels`` grouped, in order)."""
    rank = np.zeros(labels.shape, dtype=np.int64)
    for label in np.unique(labels):
        where = np.flatnonzero(labels == label)
        rank[where] = np.arange(where.size)
    return rank < k
