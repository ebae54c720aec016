"""Atomic file writes: a file is either absent or complete, never half written.

Write to a temporary file in the same directory, fsync, then ``os.replace`` (atomic on POSIX).
Every result, checkpoint, mask and report file of sparsetopo goes through here, so this is also the
one place where a failing write (disk full, read-only or vanished folder, permissions, quota) becomes
an :class:`~sparsetopo.errors.OutputError` naming the file and the reason: callers handle one error
class, and the file being replaced is never touched.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import OutputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit it replaces ``path`` atomically.

    A symbolic link is followed (its target is replaced; the link stays); a device, FIFO or socket
    is refused, as a directory is. The file gets the permissions a plain ``open()`` would give (0666 & ~umask), whatever the writer
    did to the temporary file. On an exception the temporary file is removed and ``path`` is left
    untouched; an ``OSError`` (of the writer too: it was writing this file) is raised as
    :class:`~sparsetopo.errors.OutputError`.
    """
    path = Path(path)
    if path.is_symlink():
        path = path.resolve()  # update the file the link points to, keep the link
    if path.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: it is a directory; give a file name inside it")
    if path.exists() and not path.is_file():
        # os.replace would swap the device / FIFO / socket itself for a plain file (as root: /dev/full)
        raise OutputError(f"cannot write {str(path)!r}: it is a device, FIFO or socket, not a regular file; "
                          "sparsetopo writes a file beside its output and renames it, so give a file path")
    tmp_path = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp (and some writers) create 0600
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
        _fsync_dir(path.parent)
    except BaseException as exc:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"cannot write {str(path)!r}: {describe_os_error(exc)}") from exc
        raise


def describe_os_error(exc: OSError) -> str:
    """``"No space left on device [ENOSPC]"``: the reason of a failed file operation, in one line."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason} [{name}]" if name else reason


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically (NaN written as null)."""
    atomic_write_text(path, json.dumps(_nan_to_none(obj), indent=2, sort_keys=True) + "\n")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj
