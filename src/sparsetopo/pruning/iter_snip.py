"""Iterative SNIP (de Jorge et al. 2021, "Progressive Skeletonization: Trimming more fat from a
network at initialization", ICLR; official code naver/force, ``prune_method=1``).

SNIP applied progressively: ``steps`` (60, the reference README for CIFAR) rounds on an exponential
schedule — after round t exactly ``floor(N·d^(t/steps) + 0.5)`` weights are kept (round ``steps`` →
``n_keep``). Each round scores the **pruned** network (weights w ⊙ m) with SNIP's saliency
|w ⊙ m ⊙ ∇L| on ``num_batches`` (1) fresh batches of ``batch_size`` (128) samples of the shuffled,
augmented training stream (gradients averaged over the batches), model in train mode, L =
cross-entropy; the next mask is the global top-k among the weights still kept (a pruned weight
never returns — the reference sets their saliency to the minimum). With ``steps=1`` this is SNIP
exactly (same first batch, same ranking). Cost: steps × num_batches forward + backward passes.
"""
from __future__ import annotations

from torch import nn

from .core import MaskDict, PruneContext
from .force import progressive_prune

OPTIONS = {"steps": 60, "num_batches": 1, "batch_size": 128}


def prune_iter_snip(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """Iterative SNIP masks (pruned weights stay pruned)."""
    return progressive_prune(model, ctx, recover=False)
