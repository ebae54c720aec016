"""Layer-wise random pruners: Uniform, ER (Erdős–Rényi) and ERK (Erdős–Rényi-Kernel).

Spec models-and-pruning.md §2 and paper Table 7. Each layer l (N_l weights, shape (C_out, C_in, k_h,
k_w) or (out, in)) gets a density d_l; counts k_l = largest-remainder rounding of d_l·N_l with
Σ k_l = n_keep = floor(d·N + 0.5) exactly (never above N_l); positions uniform without replacement.

* Uniform: d_l = d for every layer.
* ER:  raw score r_l = (C_in + C_out) / (C_in·C_out) (first two dims only; Linear the same).
* ERK: raw score r_l = (Σ of all dims) / (Π of all dims).
* ER/ERK density d_l = ε·r_l, with the dense-layer loop (power scale 1): D = ∅; repeat
  { ε = (d·N − Σ_{l∈D} N_l) / Σ_{l∉D} r_l·N_l; if max_{l∉D} ε·r_l > 1, move every l∉D whose r_l equals
  that max into D and repeat; else stop }; d_l = 1 on D.

Variants (options):

* Uniform ``uniform_variant``: ``"largest_remainder"`` (default, above); ``"per_layer"`` = the spec's
  literal k_l = floor(d·N_l + 0.5) (Σ k_l may differ from n_keep by up to half the number of layers);
  ``"global_random"`` = n_keep positions uniform over all weights jointly (per-layer counts
  hypergeometric; like the official torch ``global_unstructured(RandomUnstructured)``, but biases
  are never in the pool here, so exactly n_keep weights are kept).
* ER/ERK ``bernoulli=True``: each weight kept independently with probability d_l (official ERK
  sampling; counts random).
* ER ``er_variant="official"``: the authors' ER (``sparselearning/core.py``), which is not the
  paper's: ERK score Σdims/Πdims, ε found by a multiplicative search (ε₀ = 10, factor g = 0.5,
  ε ← ε·(1 ∓ g) then g ← 0.95·g, until |ε·Σ_l Σdims_l − d·N| < 5 — tested one step late, so the ε
  used is one update past the one that met the tolerance), no cap at 1, Bernoulli(min(1, d_l))
  masks. Its achieved density misses d (ResNet-20 C10 s = 0.6: ≈ 0.345).
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..errors import ValidationError
from .core import (MaskDict, PruneContext, keep_count, largest_remainder_counts, random_layer_masks, split_flat,
                   weights_of)

OPTIONS_UNIFORM = {"uniform_variant": "largest_remainder"}
OPTIONS_ER = {"bernoulli": False, "er_variant": "paper"}
OPTIONS_ERK = {"bernoulli": False}
ER_VARIANTS = ("paper", "official")
UNIFORM_VARIANTS = ("largest_remainder", "per_layer", "global_random")


def er_score(shape: torch.Size) -> float:
    """ER raw score (C_in + C_out)/(C_in·C_out) from the first two dims (out, in) of ``shape``."""
    c_out, c_in = int(shape[0]), int(shape[1])
    return (c_in + c_out) / (c_in * c_out)


def erk_score(shape: torch.Size) -> float:
    """ERK raw score (Σ dims)/(Π dims) of ``shape``."""
    return sum(int(v) for v in shape) / math.prod(int(v) for v in shape)


def scaled_densities(raw: Mapping[str, float], sizes: Mapping[str, int], density: float) -> dict[str, float]:
    """d_l = ε·r_l with the dense-layer loop (spec §2); layers whose ε·r_l would exceed 1 are dense."""
    dense: set[str] = set()
    budget = density * sum(sizes.values())
    while True:
        free = [n for n in raw if n not in dense]
        eps = (budget - sum(sizes[n] for n in dense)) / sum(raw[n] * sizes[n] for n in free)
        top = max(raw[n] for n in free)
        if eps * top > 1 and len(free) > 1:
            dense.update(n for n in free if raw[n] == top)
            continue
        return {n: 1.0 if n in dense else min(1.0, eps * raw[n]) for n in raw}


def layer_densities(kind: str, shapes: Mapping[str, torch.Size], density: float) -> dict[str, float]:
    """Target density per layer for ``kind`` in {"uniform", "er", "erk"} (before rounding)."""
    if kind == "uniform":
        return {n: density for n in shapes}
    score = er_score if kind == "er" else erk_score
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    return scaled_densities({n: score(s) for n, s in shapes.items()}, sizes, density)


def layer_counts(kind: str, shapes: Mapping[str, torch.Size], density: float,
                 rounding: str = "largest_remainder") -> dict[str, int]:
    """Exact kept weights per layer: largest-remainder rounding of d_l·N_l to Σ k_l = n_keep."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    if rounding == "per_layer":
        return {n: keep_count(density, size) for n, size in sizes.items()}
    quotas = {n: d * sizes[n] for n, d in layer_densities(kind, shapes, density).items()}
    return largest_remainder_counts(quotas, sizes, keep_count(density, sum(sizes.values())))


def masks_from_densities(densities: Mapping[str, float], shapes: Mapping[str, torch.Size], n_keep: int,
                         generator: torch.Generator) -> MaskDict:
    """Exact-count masks for target layer densities: largest-remainder counts of d_l·N_l summing to
    ``n_keep``, uniform positions per layer (the common last step of every layer-wise pruner)."""
    sizes = {n: math.prod(s) for n, s in shapes.items()}
    quotas = {n: densities[n] * sizes[n] for n in shapes}
    return random_layer_masks(largest_remainder_counts(quotas, sizes, n_keep), shapes, generator)


def official_er_densities(shapes: Mapping[str, torch.Size], density: float) -> dict[str, float]:
    """The authors' ER densities ε·Σdims/Πdims with their late-stopping ε search (uncapped)."""
    target = density * sum(math.prod(s) for s in shapes.values())
    dims_total = sum(sum(int(v) for v in s) for s in shapes.values())
    epsilon, factor, current = 10.0, 0.5, 0.0
    while not (current + 5 > target and current - 5 < target):
        current = epsilon * dims_total
        epsilon *= (1.0 - factor) if current > target else (1.0 + factor)
        factor *= 0.95
    return {n: epsilon * sum(int(v) for v in s) / math.prod(s) for n, s in shapes.items()}


def bernoulli_layer_masks(densities: Mapping[str, float], shapes: Mapping[str, torch.Size],
                          generator: torch.Generator) -> MaskDict:
    """Per layer, every weight kept independently with probability d_l (``torch.rand < d_l``)."""
    return {n: torch.rand(shape, generator=generator) < densities[n] for n, shape in shapes.items()}


def global_random_masks(shapes: Mapping[str, torch.Size], n_keep: int, generator: torch.Generator) -> MaskDict:
    """``n_keep`` positions uniform without replacement over all layers' weights jointly."""
    one = {"all": torch.Size([sum(math.prod(s) for s in shapes.values())])}
    return split_flat(random_layer_masks({"all": n_keep}, one, generator)["all"], shapes)


def make_layerwise_pruner(kind: str):
    """The pruner function of one layer-wise kind (uniform / er / erk)."""

    def prune_layerwise(model: nn.Module, ctx: PruneContext) -> MaskDict:
        shapes = {n: w.shape for n, w in weights_of(model).items()}
        variant = ctx.options.get("uniform_variant", "largest_remainder")
        if variant not in UNIFORM_VARIANTS:
            raise ValidationError(f"uniform_variant must be one of {', '.join(UNIFORM_VARIANTS)}, got {variant!r}")
        er_variant = ctx.options.get("er_variant", "paper")
        if er_variant not in ER_VARIANTS:
            raise ValidationError(f"er_variant must be one of {', '.join(ER_VARIANTS)}, got {er_variant!r}")
        if er_variant == "official":
            return bernoulli_layer_masks(official_er_densities(shapes, ctx.density), shapes, ctx.generator)
        if ctx.options.get("bernoulli", False):
            return bernoulli_layer_masks(layer_densities(kind, shapes, ctx.density), shapes, ctx.generator)
        if variant == "global_random":
            return global_random_masks(shapes, ctx.n_keep, ctx.generator)
        return random_layer_masks(layer_counts(kind, shapes, ctx.density, variant), shapes, ctx.generator)

    prune_layerwise.__name__ = f"prune_{kind}"
    prune_layerwise.__doc__ = f"{kind} masks: exact per-layer counts, uniform positions per layer."
    return prune_layerwise


def exact_count(options: Mapping[str, object]) -> bool:
    """Whether these options keep exactly n_keep weights (Bernoulli and per-layer rounding do not)."""
    return (not options.get("bernoulli", False) and options.get("uniform_variant") != "per_layer"
            and options.get("er_variant", "paper") == "paper")
