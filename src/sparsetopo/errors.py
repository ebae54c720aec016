"""Errors raised by sparsetopo.

Every error a user can trigger with bad input is a :class:`SparsetopoError`, and its message names
the offending thing (parameter, column, fx node, file). Validation happens at the boundary (public
API, CLI); inner code trusts its inputs.
"""
from __future__ import annotations


class SparsetopoError(Exception):
    """Base class of every error sparsetopo raises on purpose."""


class ValidationError(SparsetopoError, ValueError):
    """An argument is out of range, of the wrong shape, or unknown."""


class MaskError(ValidationError):
    """A mask does not fit its model (unknown parameter, shape mismatch, non-binary values)."""


class UnsupportedOpError(SparsetopoError):
    """The encoder met an operation it does not know; the message names the fx node and module."""


class AttentionError(UnsupportedOpError):
    """The model mixes tokens with data-dependent weights (attention): no fixed edge set to encode;
    the message names the fx node, the module path and this reason."""


class DatasetError(SparsetopoError):
    """A dataset is missing or corrupted; the message says where to put it."""


class CheckpointError(SparsetopoError):
    """A checkpoint or results file is corrupted or does not match its run."""


class OutputError(SparsetopoError, OSError):
    """A file or folder could not be written (disk full, read-only, permissions, a file where a folder
    is meant); the message names the path and the operating system's reason."""


class FullyPrunedWarning(SparsetopoError, UserWarning):
    """A layer keeps no weight at all (layer collapse); the message names the layers. A warning by
    default; to refuse such networks turn it into an error: ``warnings.simplefilter("error",
    FullyPrunedWarning)`` (CLI: ``--refuse-fully-pruned``), which the CLI reports as one line."""


class PoolError(ValidationError):
    """A pool table is malformed (missing column, duplicate key, accuracy out of range)."""


class StudyConfigError(ValidationError):
    """A study description is invalid; the message names the offending key."""


class MemoryEstimateError(SparsetopoError, MemoryError):
    """A run would need more memory than the machine has (or than ``max_memory`` allows); raised
    before the run starts, with the estimate, instead of being killed half-way."""
