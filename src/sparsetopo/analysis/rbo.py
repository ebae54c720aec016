"""Rank-biased overlap (Webber, Moffat & Zobel 2010), extrapolated form (their eq. 32).

``RBO_ext(a, b, α) = (1-α) Σ_{d=1..k} α^{d-1} X_d/d + (X_k/k) α^k`` with ``X_d = |a[:d] ∩ b[:d]|``
and k the (common) list length; 1 for identical lists. The paper averages over α ∈ {.25, .5, .75}.
Cost O(k) with a running overlap count.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ValidationError

ALPHAS = (0.25, 0.5, 0.75)


def _overlaps(a: Sequence, b: Sequence) -> np.ndarray:
    """X_d for d = 1..k, incrementally: an item joins the overlap when seen in both prefixes."""
    seen_a, seen_b, count, out = set(), set(), 0, []
    for x, y in zip(a, b):
        if x == y:
            count += 1
        else:
            count += (x in seen_b) + (y in seen_a)
        seen_a.add(x)
        seen_b.add(y)
        out.append(count)
    return np.asarray(out, dtype=float)


def rbo_ext(a: Sequence, b: Sequence, alpha: float) -> float:
    """Extrapolated RBO of two rankings of the same k distinct items at persistence ``alpha``."""
    if not 0.0 < alpha < 1.0:
        raise ValidationError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    if len(a) != len(b) or set(a) != set(b) or len(set(a)) != len(a):
        raise ValidationError("RBO needs two rankings of the same distinct items")
    k = len(a)
    if k == 0:
        raise ValidationError("RBO of empty rankings is undefined")
    depth = np.arange(1, k + 1)
    agreement = _overlaps(a, b) / depth
    return float((1 - alpha) * np.sum(alpha ** (depth - 1) * agreement) + agreement[-1] * alpha ** k)


def rbo(a: Sequence, b: Sequence, alphas: Sequence[float] = ALPHAS) -> float:
    """Mean of :func:`rbo_ext` over ``alphas`` (default {0.25, 0.5, 0.75}, as in the paper)."""
    return float(np.mean([rbo_ext(a, b, alpha) for alpha in alphas]))
