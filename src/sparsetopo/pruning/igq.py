"""IGQ, Ideal Gas Quotas (Vysogorets & Kempe 2023, "Connectivity Matters: Neural Network Pruning
Through the Lens of Effective Sparsity", JMLR 24): layer-wise random pruning with quotas from an
ideal-gas analogy.

Each layer l (N_l weights) is a gas cylinder of length N_l and cross-section 1/N_l; one force f
compresses all of them, so layer l keeps ``N_l/(f·N_l + 1)`` weights, i.e. density
``d_l = 1/(1 + f·N_l)``: large layers are pruned harder, small ones stay dense-ish, no layer is
ever emptied. f ≥ 0 is the unique root of ``Σ_l N_l/(f·N_l + 1) = d·N`` (the left side decreases
from N to 0), found by bisection in float64 to machine precision (the reference code bisects
f ∈ [0, 1e20] to a tolerance of 1/N in sparsity). Counts: largest remainder to exactly
``n_keep = floor(d·N + 0.5)``, positions uniform per layer. Data-free, no options.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from .core import MaskDict, PruneContext, weights_of
from .layerwise import masks_from_densities

OPTIONS: dict = {}


def igq_densities(shapes: Mapping[str, torch.Size], density: float) -> dict[str, float]:
    """``{layer: 1/(1 + f·N_l)}`` with f solving Σ N_l/(f·N_l + 1) = d·N (bisection, ≤ 200 steps)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    target = density * sum(sizes.values())

    def kept(force: float) -> float:
        return sum(size / (force * size + 1.0) for size in sizes.values())

    low, high = 0.0, 1.0
    while kept(high) > target:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (mid, high) if kept(mid) > target else (low, mid)
    force = 0.5 * (low + high)
    return {n: 1.0 / (1.0 + force * size) for n, size in sizes.items()}


def prune_igq(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """IGQ masks: exact per-layer counts from :func:`igq_densities`."""
    shapes = {n: w.shape for n, w in weights_of(model).items()}
    return masks_from_densities(igq_densities(shapes, ctx.density), shapes, ctx.n_keep, ctx.generator)
