"""Prune to a requested *effective* sparsity (Vysogorets & Kempe 2023): search the nominal count.

Effective weights (:mod:`sparsetopo.effective`) are never more than the kept ones, so a nominal
keep count n ≥ target T is needed. E(n) = number of effective weights of the pruner's masks at
nominal count n. The search evaluates E at n = T, then grows n by the observed ratio
T/E(n) until E(n) ≥ T (or n = N), then bisects the bracket on integers until E(n) = T or the
bracket closes. E is monotone for pruners whose masks are nested in n (single-shot score
rankings); for random pruners it is monotone only on average, so the result is the evaluated n
with the smallest |E(n) − T| (ties: the smaller n), after trying the neighbours n ± 1..8 of the
best one when it is not exact. Each evaluation runs the pruner once (on a
fresh copy with the same seed); at most ~2·log2(N) evaluations, usually a handful.
If even E(N) < T (a dense network already has ineffective weights, e.g. taps that only ever see
zero padding), the best masks found are returned with a :class:`PruningWarning`.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable

from torch import nn

from ..effective import effective_masks
from .core import MaskDict, PruningWarning

#: neighbours n ± 1..REFINE tried after the bisection when E(n) = T was not hit exactly
REFINE = 8


def count_effective(model: nn.Module, masks: MaskDict, input_shape: tuple[int, ...]) -> int:
    """Number of effective weights of ``masks`` on ``model`` (input ``input_shape``)."""
    return sum(int(m.sum()) for m in effective_masks(model, masks, input_shape).values())


def reach_effective_count(masks_at: Callable[[int], MaskDict], effective_count: Callable[[MaskDict], int],
                          target: int, total: int, pruner: str) -> MaskDict:
    """Masks of the nominal count whose effective count is closest to ``target`` (module docstring)."""
    seen: dict[int, tuple[int, MaskDict]] = {}

    def evaluate(n: int) -> int:
        if n not in seen:
            masks = masks_at(n)
            seen[n] = (effective_count(masks), masks)
        return seen[n][0]

    low = high = target
    reached = evaluate(target)
    while reached < target and high < total:  # grow the bracket: E(low) < T
        low, high = high, min(total, max(high + 1, math.ceil(high * target / max(reached, 1))))
        reached = evaluate(high)
    while reached > target and high - low > 1:  # bisect: E(low) < T < E(high)
        middle = (low + high) // 2
        if evaluate(middle) < target:
            low = middle
        else:
            high, reached = middle, evaluate(middle)
    best = min(seen, key=lambda n: (abs(seen[n][0] - target), n))
    for step in range(1, REFINE + 1):  # non-monotone E (random pruners): try the neighbours
        if seen[best][0] == target:
            break
        for n in (best - step, best + step):
            if target <= n <= total:
                evaluate(n)
        best = min(seen, key=lambda n: (abs(seen[n][0] - target), n))
    if seen[best][0] < target and total in seen:
        warnings.warn(f"{pruner}: effective sparsity target not reachable: even keeping all {total} weights "
                      f"leaves only {seen[total][0]} effective (target {target})", PruningWarning, stacklevel=3)
    return seen[best][1]
