"""Checks shared by every public entry point (validation at the boundary, then trusted code)."""
from __future__ import annotations

from typing import Iterable, Sequence

from .errors import ValidationError


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as a float if it lies strictly inside (0, 1); otherwise raise.

    Sparsity is the fraction of prunable weights removed; 0 and 1 are rejected (README of the spec).
    """
    return check_scalar(sparsity, name, float, min_val=0.0, max_val=1.0, include_boundaries="neither")


def check_choice(value: str, choices: Iterable[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``; otherwise raise naming the valid ones."""
    choices = list(choices)
    if value not in choices:
        raise ValidationError(f"unknown {what} {value!r}; choose one of: {', '.join(choices)}")
    return value


def check_input_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """Return an input shape (C, H, W) of positive ints, or raise naming the bad value."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValidationError(f"input_shape must be (C, H, W), got {shape!r}")
    c, h, w = (check_scalar(v, f"input_shape {tuple(shape)!r}: each size", int, min_val=1) for v in shape)
    return c, h, w


def check_device(device, default: str = "cpu", *, available: bool = True):
    """``device`` as a ``torch.device``; raises naming an unknown or (``available=True``) unavailable device.

    ``None`` means ``default``: ``"cpu"``, or ``"auto"`` for CUDA when available, else CPU.
    ``available=False`` checks the spelling only (a study file read where its device is absent).
    """
    import torch

    if device is None:
        device = ("cuda" if torch.cuda.is_available() else "cpu") if default == "auto" else default
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValidationError(f"unknown device {device!r} ({exc})") from None
    if not available:
        return dev
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError(f"device {device!r} requested but CUDA is not available")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValidationError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValidationError(f"device {device!r} requested but MPS is not available")
    return dev


#: seeds are 63-bit: ``torch.Generator.manual_seed`` and numpy both take them, and a signed int64 holds them
SEED_BOUND = 2 ** 63


def check_scalar(value, name: str, target_type, *, min_val=None, max_val=None,
                 include_boundaries: str = "both", error=ValidationError):
    """Return ``value`` (as ``target_type``) if it is a scalar of that type within the bounds; else raise.

    One rule for the CLI, study files and the library (in the manner of scikit-learn's
    ``check_scalar``): ``target_type`` is ``int``, ``float`` or ``bool``; a bool is not an int or a
    float, a string is never a number, numpy scalars count as their Python kind, an int is accepted
    where a float is wanted, NaN is never in range. ``include_boundaries`` is "both", "left",
    "right" or "neither" (which of ``min_val`` / ``max_val`` are allowed). ``error`` is the
    :class:`~sparsetopo.errors.ValidationError` subclass raised (``StudyConfigError`` for study files).
    """
    if not _is_kind(value, target_type):
        kind = {int: "an integer", float: "a number", bool: "true or false"}[target_type]
        raise error(f"{name} must be {kind}, got {value!r} ({type(value).__name__})")
    value = target_type(value)
    if target_type is bool:
        return value
    low_ok = min_val is None or value > min_val or (value == min_val and include_boundaries in ("both", "left"))
    high_ok = max_val is None or value < max_val or (value == max_val and include_boundaries in ("both", "right"))
    if not (low_ok and high_ok) or value != value:
        raise error(f"{name} must be in {_interval(min_val, max_val, include_boundaries)}, got {value!r}")
    return value


def _is_kind(value, target_type) -> bool:
    import numbers

    if target_type is bool:
        return isinstance(value, (bool, _numpy_bools()))
    if isinstance(value, (bool, str, bytes)) or isinstance(value, _numpy_bools()):
        return False
    if target_type is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real)


def _numpy_bools() -> tuple[type, ...]:
    """numpy's bool scalar type (a numpy bool is not a number either)."""
    import numpy as np

    return (np.bool_,)


def _interval(low, high, include: str) -> str:
    left = "[" if include in ("both", "left") and low is not None else "("
    right = "]" if include in ("both", "right") and high is not None else ")"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def check_seed(seed, name: str = "seed", error=ValidationError) -> int:
    """A random seed: an integer in [0, 2**63) (what torch and numpy generators accept alike)."""
    return check_scalar(seed, name, int, min_val=0, max_val=SEED_BOUND, include_boundaries="left", error=error)
