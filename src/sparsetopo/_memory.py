"""Memory estimates before a big run: a named error instead of the out-of-memory killer.

The encoder and the metrics know their sizes before they allocate (|V| and |E| come from the
masks and shapes, :func:`sparsetopo.encoding.count_mge`), so they check
``estimate <= limit`` first, where the limit is ``max_memory`` or what the machine has
(:func:`machine_memory`: physical memory, or the cgroup limit when lower). Bytes per edge /
node are the measured peaks of each stage (documented where they are defined), rounded up.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import MemoryEstimateError, ValidationError

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(value) -> int | None:
    """Bytes from an int or a string like ``"16G"``, ``"512M"``, ``"2.5GiB"`` (binary units);
    None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(f"max_memory must be a byte count or a size like '16G', got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", str(value), re.IGNORECASE)
        if match is None:
            raise ValidationError(f"max_memory must be a byte count or a size like '16G', got {value!r}")
        number, unit = float(match.group(1)), match.group(2).upper()
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValidationError(f"max_memory must be positive, got {value!r}")
    return size


def machine_memory() -> int:
    """Bytes of memory this process may use: physical memory, or the cgroup limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB"


def check_memory(estimate: int, max_memory, what: str) -> None:
    """Raise :class:`MemoryEstimateError` if ``estimate`` bytes exceed ``max_memory`` (bytes or a
    size string) or, when that is None, what the machine has."""
    limit = parse_memory(max_memory)
    source = "max_memory" if limit is not None else "this machine's memory"
    limit = machine_memory() if limit is None else limit
    if estimate > limit:
        raise MemoryEstimateError(f"{what} needs about {gib(estimate)}, more than {source} ({gib(limit)}); "
                                  f"use a smaller input shape or a sparser mask, or raise --max-memory / max_memory")
