"""ProsPr (Alizadeh et al. 2022): prune by the meta-gradient through a few steps of training.

Spec models-and-pruning.md §2. Copy in train mode. Masks m = 1 on every prunable weight; fast
parameters θ⁰ = (w ⊙ m for prunable weights, copies of every other trainable parameter: biases,
BN γ/β). ``inner_steps`` (3) steps of SGD (``lr`` 0.5, ``momentum`` 0.9, no dampening, no weight
decay, first momentum buffer = gradient) on the cross-entropy of batches 1..3, keeping the graph
(``create_graph=True``); meta-loss = cross-entropy of θ³ on batch 4. Score = |∂L_meta/∂m| (full
second order), global top-``n_keep``. Batches: ``batch_size`` (512) samples each, from one fresh
shuffled, augmented stream. Layers pruned entirely are reported by a warning, not an error.
``detach_first_momentum=True`` reproduces the official/mil-ad functional SGD, whose first momentum
buffer is ``clone(grad).detach()`` (with momentum ≠ 0 this drops the second-order term of the first
inner step from the meta-gradient); default False = the full second-order meta-gradient.
Cost: (inner_steps + 1) forwards + second-order backward; memory ~ all inner graphs at once.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .core import (MaskDict, PruneContext, ScoreDict, TwiceDifferentiable, check_finite_scores, global_topk,
                   take_batches, weights_of)

OPTIONS = {"batch_size": 512, "inner_steps": 3, "lr": 0.5, "momentum": 0.9, "detach_first_momentum": False}


def prospr_scores(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], lr: float,
                  momentum: float, progress: bool = False, detach_first_momentum: bool = False) -> ScoreDict:
    """``{name: |∂L_meta/∂m|}``: SGD with momentum on ``batches[:-1]``, meta-loss on ``batches[-1]``."""
    weights = weights_of(model)
    masks = {name: torch.ones_like(w, requires_grad=True) for name, w in weights.items()}
    fast = {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()
            if p.requires_grad and name not in weights}
    fast.update({name: w.detach() * masks[name] for name, w in weights.items()})
    names = list(fast)
    velocity: list[torch.Tensor] | None = None
    *inner, (x_meta, y_meta) = batches
    for x, y in tqdm(inner, desc="prospr", disable=None if progress else True, leave=False):
        loss = F.cross_entropy(functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, [fast[n] for n in names], create_graph=True)
        if velocity is None:
            velocity = [g.detach() for g in grads] if detach_first_momentum and momentum else list(grads)
        else:
            velocity = [momentum * v + g for v, g in zip(velocity, grads)]
        fast = {n: fast[n] - lr * v for n, v in zip(names, velocity)}
    meta_loss = F.cross_entropy(functional_call(model, fast, (x_meta,)), y_meta)
    meta_grads = torch.autograd.grad(meta_loss, list(masks.values()))
    return {name: g.abs() for name, g in zip(masks, meta_grads)}


def prune_prospr(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """ProsPr masks: score by the meta-gradient w.r.t. the masks, keep the global top ``n_keep``."""
    opts = ctx.options
    batches = take_batches(ctx, int(opts["batch_size"]), int(opts["inner_steps"]) + 1)
    model.train()
    with TwiceDifferentiable():
        scores = prospr_scores(model, batches, float(opts["lr"]), float(opts["momentum"]), ctx.progress,
                               bool(opts["detach_first_momentum"]))
    check_finite_scores(scores, ctx.pruner)
    return global_topk(scores, ctx.n_keep)
