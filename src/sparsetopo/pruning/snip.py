"""SNIP (Lee et al. 2019): connection sensitivity |∂L/∂m| at m = 1, i.e. |w ⊙ ∇_w L|.

Spec models-and-pruning.md §2: one batch (the first ``batch_size`` = 128 samples of the shuffled,
augmented training stream), model in train mode (BN batch statistics), L = cross-entropy on the
logits, the actual (Kaiming) init is scored, global top-``n_keep``. Single shot.
``snip_xavier_reinit=True`` re-initialises the scoring copy's conv/linear weights with Xavier normal
(from the seeded generator) as mil-ad/snip did (their NLL on log-softmax outputs equals this CE).
Cost: one forward + backward of one batch.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .core import (MaskDict, PruneContext, ScoreDict, check_finite_scores, global_topk, gradients, reinit_weights,
                   take_batches, weights_of)

OPTIONS = {"batch_size": 128, "snip_xavier_reinit": False}


def snip_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> ScoreDict:
    """``{name: |w ⊙ ∂CE(model(x), y)/∂w|}`` for every prunable weight (model used in its current mode)."""
    weights = weights_of(model)
    loss = F.cross_entropy(model(x), y)
    grads = gradients(loss, list(weights.values()))
    return {name: (w.detach() * g).abs() for (name, w), g in zip(weights.items(), grads)}


def snip_gradients(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> ScoreDict:
    """``{name: ∂CE/∂w}`` averaged over ``batches`` (one forward + backward each; model in its mode)."""
    weights = weights_of(model)
    total = {name: torch.zeros_like(w) for name, w in weights.items()}
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        for acc, grad in zip(total.values(), gradients(loss, list(weights.values()))):
            acc += grad / len(batches)
    return total


def prune_snip(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """SNIP masks: score one batch in train mode, keep the global top ``n_keep``."""
    (x, y), = take_batches(ctx, int(ctx.options["batch_size"]), 1)
    if ctx.options["snip_xavier_reinit"]:
        reinit_weights(model, nn.init.xavier_normal_, ctx.generator)
    model.train()
    scores = snip_scores(model, x, y)
    check_finite_scores(scores, ctx.pruner)
    return global_topk(scores, ctx.n_keep)
