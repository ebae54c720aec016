"""Checks shared by every public entry point (validation at the boundary, then trusted code)."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

from .errors import ValidationError


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as a float if it lies strictly inside (0, 1); otherwise raise.

    Sparsity is the fraction of prunable weights removed; 0 and 1 are rejected (README of the spec).
    """
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number in (0, 1), got {sparsity!r}") from None
    if not (0.0 < value < 1.0) or math.isnan(value):
        raise ValidationError(f"{name} must lie strictly between 0 and 1, got {sparsity!r}")
    return value


def check_choice(value: str, choices: Iterable[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise naming the valid ones."""
    choices = list(choices)
    if value not in choices:
        raise ValidationError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def check_input_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """Return an input shape (C, H, W) of positive ints, or raise naming the bad value."""
    try:
        c, h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValidationError(f"input_shape must be (C, H, W), got {shape!r}") from None
    if min(c, h, w) <= 0:
        raise ValidationError(f"input_shape must be positive, got {tuple(shape)!r}")
    return c, h, w


def check_device(device, default: str = "cpu"):
    """``device`` as a ``torch.device``; raises naming an unknown or unavailable device.

    ``None`` means ``default``: ``"cpu"``, or ``"auto"`` for CUDA when available, else CPU.
    """
    import torch

    if device is None:
        device = ("cuda" if torch.cuda.is_available() else "cpu") if default == "auto" else default
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"unknown device {device!r} ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device {device!r} requested but CUDA is not available")
    return dev
