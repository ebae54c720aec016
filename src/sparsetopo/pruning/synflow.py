"""SynFlow (Tanaka et al. 2020): iterative synaptic-flow pruning, data-free.

Spec models-and-pruning.md §2: the scoring copy is put in **eval** mode, cast to **float64**, and
every floating state entry (weights, biases, BN γ/β/running stats) is replaced by its absolute value.
R = Σ model(1), the input being ones of shape (1, *input_shape); score = |w ⊙ ∂R/∂w| with the current
mask applied to w. ``iterations`` = 100 rounds on an exponential schedule: after round k exactly
``floor(N·d^(k/100) + 0.5)`` weights are kept (round 100 → ``n_keep``), the top scores among the
weights still kept. Global pool = prunable weights only (never biases).
Cost: ``iterations`` forward + backward passes of one input.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from tqdm.auto import tqdm

from .core import (MaskDict, PruneContext, ScoreDict, check_finite_scores, global_topk, gradients, keep_count,
                   weights_of)

OPTIONS = {"iterations": 100}


def synflow_schedule(total: int, density: float, iterations: int) -> list[int]:
    """Keep counts after each round: ``floor(N·d^(k/iterations) + 0.5)``, k = 1..iterations."""
    counts = [int(math.floor(total * density ** (k / iterations) + 0.5)) for k in range(1, iterations + 1)]
    counts[-1] = keep_count(density, total)
    return counts


@torch.no_grad()
def linearize(model: nn.Module, power: int = 1) -> nn.Module:
    """Eval mode, float64, every floating state entry x replaced by |x|^power (in place)."""
    model.eval().double()
    for tensor in model.state_dict().values():
        if tensor.is_floating_point():
            tensor.abs_()
            if power != 1:
                tensor.pow_(power)
    return model


def synflow_scores(model: nn.Module, ones: torch.Tensor) -> ScoreDict:
    """``{name: |w ⊙ ∂R/∂w|}``, R = Σ model(ones), for a linearised (``linearize``) model."""
    weights = weights_of(model)
    total = model(ones).sum()
    grads = gradients(total, list(weights.values()))
    return {name: (w.detach() * g).abs() for (name, w), g in zip(weights.items(), grads)}


def prune_synflow(model: nn.Module, ctx: PruneContext, power: int = 1) -> MaskDict:
    """SynFlow masks: ``iterations`` rounds of rescoring and global top-k among the kept weights.

    ``power`` = 2 gives SynFlow-L2 (:mod:`.synflow_l2`): the state is squared instead of |·|."""
    linearize(model, power)
    weights = weights_of(model)
    originals = {name: w.detach().clone() for name, w in weights.items()}
    masks = {name: torch.ones(w.shape, dtype=torch.bool) for name, w in weights.items()}
    ones = torch.ones((1, *ctx.input_shape), dtype=torch.float64, device=ctx.device)
    total = sum(w.numel() for w in weights.values())
    schedule = synflow_schedule(total, ctx.density, int(ctx.options["iterations"]))
    for count in tqdm(schedule, desc=ctx.pruner, disable=None if ctx.progress else True, leave=False):
        with torch.no_grad():
            for name, w in weights.items():
                w.copy_(originals[name] * masks[name].to(w.device))
        scores = synflow_scores(model, ones)
        check_finite_scores(scores, ctx.pruner)
        masks = global_topk(scores, count, eligible=masks)
    return masks
