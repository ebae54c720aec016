"""ERK+ (Liu et al. 2022, "The Unreasonable Effectiveness of Random Pruning", ICLR): ERK with the
classifier kept dense.

Rules of the reference code (VITA-Group/Random_Pruning, ImageNet ``--sparse_init ERK_plus
--fc_density 1.0``): the **last** prunable layer (the classifier, ``named_modules()`` order) gets
density ``fc_density`` (default 1.0: dense); the parameter budget it takes is removed from the
others, which get ERK densities (raw score Σdims/Πdims, the capped dense-layer loop of
:mod:`.layerwise`) for the remaining budget, so the network keeps exactly ``n_keep = floor(d·N + 0.5)``
weights (the reference samples Bernoulli masks; here counts are exact, largest remainder,
positions uniform per layer). Data-free. A density below what the classifier alone takes is a
:class:`~sparsetopo.errors.ValidationError`.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..errors import ValidationError
from ..validation import check_scalar
from .core import MaskDict, PruneContext, weights_of
from .layerwise import erk_score, masks_from_densities, scaled_densities

OPTIONS = {"fc_density": 1.0}


def erk_plus_densities(shapes: Mapping[str, torch.Size], density: float, fc_density: float = 1.0) -> dict[str, float]:
    """Layer densities of ERK+: classifier at ``fc_density``, ERK on the rest of the budget."""
    names = list(shapes)
    if len(names) < 2:
        raise ValidationError("erk_plus needs at least two prunable layers (a classifier and one more)")
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    last, others = names[-1], names[:-1]
    budget = density * sum(sizes.values()) - fc_density * sizes[last]
    if budget < 0:
        raise ValidationError(f"erk_plus: density {density:g} keeps {density * sum(sizes.values()):.0f} weights, "
                              f"fewer than the classifier alone at fc_density {fc_density:g} "
                              f"({fc_density * sizes[last]:.0f})")
    rest = {n: sizes[n] for n in others}
    out = scaled_densities({n: erk_score(shapes[n]) for n in others}, rest, budget / sum(rest.values()))
    out[last] = fc_density
    return out


def prune_erk_plus(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """ERK+ masks: exact per-layer counts from :func:`erk_plus_densities`."""
    fc = ctx.options["fc_density"]
    fc = check_scalar(fc, "option fc_density of erk_plus", float, min_val=0.0, max_val=1.0)
    shapes = {n: w.shape for n, w in weights_of(model).items()}
    return masks_from_densities(erk_plus_densities(shapes, ctx.density, fc), shapes, ctx.n_keep, ctx.generator)
