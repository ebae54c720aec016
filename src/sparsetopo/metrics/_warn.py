"""NaN results with a warning that names the metric (``metrics.md`` §1 NaN policy)."""
from __future__ import annotations

import warnings


class MetricWarning(UserWarning):
    """A metric returned NaN (empty divisor, too few nodes, non-finite weights, no convergence)."""


def nan_warning(metric: str, reason: str) -> float:
    """Warn that ``metric`` is NaN because of ``reason``; return NaN."""
    warnings.warn(f"{metric} is NaN: {reason}", MetricWarning, stacklevel=3)
    return float("nan")
