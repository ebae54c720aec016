"""Uniform+ (Liu et al. 2022, "The Unreasonable Effectiveness of Random Pruning: Return of the Most
Naive Baseline for Sparse Training", ICLR; rule from Gale et al. 2019): random masks with

* the **first** prunable layer (``named_modules()`` order) kept **dense**;
* the **last** prunable layer (the classifier) at most 80 % sparse: density ≥ ``last_min_density``
  (default 0.2, the reference code's constant);
* every other layer at one uniform density, chosen so the network keeps exactly
  ``n_keep = floor(d·N + 0.5)`` weights.

Reference code (VITA-Group/Random_Pruning, ``sparselearning/core.py``, mode ``uniform_plus``):
first layer dense; if d < 0.2 the classifier gets Bernoulli(0.2) and the others Bernoulli(d'),
d' = (d·N − N_first − 0.2·N_last)/N — divided by the total N, so the network ends *below* d; if
d ≥ 0.2 the others get Bernoulli(d), so it ends *above* d. Here the same rules keep the requested
count exactly: if the uniform density of all non-first layers, (d·N − N_first)/(N − N_first), is ≥
``last_min_density`` every non-first layer gets it, else the classifier gets ``last_min_density``
and the middle layers share the rest. Counts: largest remainder, positions uniform per layer.
Data-free. A density too low to afford the dense first layer (and the classifier floor) is a
:class:`~sparsetopo.errors.ValidationError` naming the numbers.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..errors import ValidationError
from ..validation import check_scalar
from .core import MaskDict, PruneContext, weights_of
from .layerwise import masks_from_densities

OPTIONS = {"last_min_density": 0.2}


def uniform_plus_densities(shapes: Mapping[str, torch.Size], density: float,
                           last_min_density: float = 0.2) -> dict[str, float]:
    """Layer densities of Uniform+ (module docstring) for global density ``density``."""
    names = list(shapes)
    if len(names) < 2:
        raise ValidationError("uniform_plus needs at least two prunable layers (a first layer kept dense "
                              "and a classifier)")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    first, last, middle = names[0], names[-1], names[1:-1]
    budget = density * sum(sizes.values()) - sizes[first]
    rest = sum(sizes.values()) - sizes[first]
    uniform = budget / rest
    out = {first: 1.0}
    if uniform >= last_min_density or not middle:
        out.update({n: uniform for n in names[1:]})
    else:
        out[last] = last_min_density
        out.update({n: (budget - last_min_density * sizes[last]) / sum(sizes[m] for m in middle) for n in middle})
    if min(out.values()) < 0:
        raise ValidationError(f"uniform_plus: density {density:g} keeps {density * sum(sizes.values()):.0f} weights, "
                              f"fewer than the dense first layer ({sizes[first]}) plus the classifier floor "
                              f"({last_min_density:g} x {sizes[last]})")
    return out


def prune_uniform_plus(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """Uniform+ masks: exact per-layer counts from :func:`uniform_plus_densities`."""
    floor = ctx.options["last_min_density"]
    floor = check_scalar(floor, "option last_min_density of uniform_plus", float, min_val=0.0, max_val=1.0)
    shapes = {n: w.shape for n, w in weights_of(model).items()}
    return masks_from_densities(uniform_plus_densities(shapes, ctx.density, floor), shapes, ctx.n_keep,
                                ctx.generator)
