"""FORCE, foresight connection sensitivity (de Jorge et al. 2021, "Progressive Skeletonization:
Trimming more fat from a network at initialization", ICLR; official code naver/force,
``prune_method=3``), and the progressive loop it shares with :mod:`.iter_snip`.

``steps`` (60, the reference README for CIFAR) rounds on the exponential schedule
``k_t = floor(N·d^(t/steps) + 0.5)`` (t = 1..steps, last = ``n_keep``). Round t: the network with
weights w ⊙ m_{t−1} (m_0 = all ones) sees ``num_batches`` (1) fresh batches of ``batch_size`` (128)
training samples (train mode, cross-entropy; gradients averaged); the saliency is
``|w ⊙ ∂L/∂(w ⊙ m)|`` with the **dense** initial weights w, for every weight — also the pruned ones,
which may come back — and m_t keeps the global top ``k_t``. (Iterative SNIP differs only in scoring
w ⊙ m and never reviving a weight.) Cost: steps × num_batches forward + backward passes.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .core import MaskDict, PruneContext, check_finite_scores, global_topk, take_batches, weights_of
from .snip import snip_gradients
from .synflow import synflow_schedule

OPTIONS = {"steps": 60, "num_batches": 1, "batch_size": 128}


def progressive_prune(model: nn.Module, ctx: PruneContext, recover: bool,
                      on_step: Callable[[int, MaskDict], None] | None = None) -> MaskDict:
    """The FORCE / iterative-SNIP loop (module docstring); ``recover`` = FORCE's revival of weights.

    ``on_step(t, masks)`` is called after every round (tests follow the schedule with it).
    """
    steps, num_batches = int(ctx.options["steps"]), int(ctx.options["num_batches"])
    batch_size = int(ctx.options["batch_size"])
    model.train()
    weights = weights_of(model)
    originals = {name: w.detach().clone() for name, w in weights.items()}
    masks = {name: torch.ones(w.shape, dtype=torch.bool) for name, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    schedule = synflow_schedule(total, ctx.density, steps)
    batches = take_batches(ctx, batch_size, steps * num_batches)
    for step, count in enumerate(tqdm(schedule, desc=ctx.pruner, disable=None if ctx.progress else True,
                                      leave=False)):
        with torch.no_grad():
            for name, w in weights.items():
                w.copy_(originals[name] * masks[name].to(w.device))
        grads = snip_gradients(model, batches[step * num_batches:(step + 1) * num_batches])
        base = originals if recover else {n: w.detach() for n, w in weights.items()}
        scores = {name: (base[name] * grads[name]).abs() for name in weights}
        check_finite_scores(scores, ctx.pruner)
        masks = global_topk(scores, count, eligible=None if recover else masks)
        if on_step is not None:
            on_step(step + 1, masks)
    return masks


def prune_force(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """FORCE masks (pruned weights may recover in later rounds)."""
    return progressive_prune(model, ctx, recover=True)
