"""Official archives: where they live, download (urllib), checksum verification, uint8 cache.

Layout under the data root (``$SPARSETOPO_DATA``, else ``~/.cache/sparsetopo/data``)::

    <root>/cifar-10-binary.tar.gz          official archive (downloaded or put there by hand)
    <root>/cifar10.npz                     converted uint8 arrays (no pickle), rebuilt if corrupted

An archive is verified (MD5) before it is converted; the converted ``.npz`` is then trusted and the
archive is not read again. Conversion runs under a file lock so parallel runs convert once.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .._io import atomic_path
from ..errors import DatasetError


@dataclass(frozen=True)
class ArchiveSpec:
    """An official archive: file name, download URL and MD5 of the official file."""

    filename: str
    url: str
    md5: str


#: dataset name -> its official archive
ARCHIVES: dict[str, ArchiveSpec] = {
    "cifar10": ArchiveSpec("cifar-10-binary.tar.gz",
                           "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
                           "c32a1d4ab5d03f1284b67883e8d87530"),
    "cifar100": ArchiveSpec("cifar-100-binary.tar.gz",
                            "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
                            "03b5dce01913d631647c71ecec9e9cb8"),
    "tiny_imagenet32": ArchiveSpec("tiny-imagenet-200.zip",
                                   "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
                                   "90528d7ca1a48142e341f4ef8d21d0de"),
}


def default_root() -> Path:
    """``$SPARSETOPO_DATA`` if set, else ``~/.cache/sparsetopo/data``."""
    env = os.environ.get("SPARSETOPO_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sparsetopo" / "data"


def resolve_root(root: str | os.PathLike | None) -> Path:
    """The data root to use: ``root`` if given, else :func:`default_root`."""
    return Path(root).expanduser() if root is not None else default_root()


def file_md5(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_archive(path: Path, spec: ArchiveSpec) -> None:
    """Raise :class:`DatasetError` unless ``path`` has the official MD5 of ``spec``."""
    actual = file_md5(path)
    if actual != spec.md5:
        raise DatasetError(
            f"archive {str(path)!r} is corrupted or not the official file: MD5 is {actual}, expected "
            f"{spec.md5}. Delete it and download it again from {spec.url} into {str(path.parent)!r} "
            f"(or pass download=True / --download).")


def ensure_archive(spec: ArchiveSpec, root: Path, *, download: bool = False) -> Path:
    """Path of the verified archive ``root/spec.filename``, downloading it first if asked.

    Missing and ``download=False``: :class:`DatasetError` saying where to put the file and its MD5.
    A download is written atomically and verified; a mismatch deletes it and raises.
    """
    path = root / spec.filename
    if not path.is_file():
        if not download:
            raise DatasetError(
                f"dataset archive {str(path)!r} not found. Download {spec.url} (MD5 {spec.md5}) and put "
                f"it at that path, or pass download=True (CLI: --download), or choose another root "
                f"with --data-root / $SPARSETOPO_DATA.")
        _download(spec.url, path)
        try:
            verify_archive(path, spec)
        except DatasetError:
            path.unlink(missing_ok=True)  # never leave a bad download behind
            raise
        return path
    verify_archive(path, spec)
    return path


def _download(url: str, path: Path) -> None:
    try:
        with urllib.request.urlopen(url) as response, atomic_path(path) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, length=1 << 20)
    except OSError as exc:  # URLError is an OSError
        raise DatasetError(f"could not download {url} to {str(path)!r} ({exc}); download it by hand "
                           f"and put it at that path") from exc


def load_or_convert(cache: Path, keys: tuple[str, ...], convert: Callable[[], dict[str, np.ndarray]]
                    ) -> dict[str, np.ndarray]:
    """Arrays ``keys`` from the ``.npz`` cache, building it with ``convert()`` when absent or corrupted.

    The cache is written atomically (``np.savez``, no pickle) under a lock file beside it. A data
    root that cannot be written (read-only shared archives) is not an error: the arrays are then
    converted in memory, with a warning that the conversion is repeated on every load.
    """
    from filelock import FileLock

    arrays = _read_cache(cache, keys)
    if arrays is not None:
        return arrays
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(cache) + ".lock")
        lock.acquire()
    except OSError as exc:
        _warn_uncached(cache, exc)
        return convert()
    try:
        arrays = _read_cache(cache, keys)  # another process may have built it meanwhile
        if arrays is None:
            arrays = convert()
            try:
                with atomic_path(cache) as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, **arrays)
            except OSError as exc:
                _warn_uncached(cache, exc)
    finally:
        lock.release()
    return arrays


def _warn_uncached(cache: Path, exc: OSError) -> None:
    warnings.warn(f"cannot write the dataset cache {str(cache)!r} ({exc.strerror or exc}); the archive is "
                  f"converted in memory, again on every load (make the data root writable to cache it)",
                  stacklevel=3)


def _read_cache(cache: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        warnings.warn(f"cached dataset {str(cache)!r} is unreadable ({exc}); rebuilding it from the archive",
                      stacklevel=3)
        return None
