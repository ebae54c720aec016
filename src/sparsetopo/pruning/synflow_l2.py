"""SynFlow-L2 (Gebhart, Saxena & Schrater 2021, "A Unified Paths Perspective for Pruning at
Initialization"; shipped as ``SynFlowL2`` in px-ntk-pruning): SynFlow on the squared network.

Data-free. Exactly :mod:`.synflow` (eval mode, float64, input = ones of shape (1, *input_shape),
``iterations`` = 100 rounds, exponential schedule ``floor(N·d^(k/100) + 0.5)`` kept after round k,
global top-k among the kept weights, exact ``n_keep`` at the end) except that every floating state
entry x is replaced by **x²** instead of |x|. With R = Σ f_{θ²}(1) the score is
``|w² ⊙ ∂R/∂(w²)|`` (= ½|θ ⊙ ∂R/∂θ| through the squaring), the path-kernel diagonal of Gebhart et
al. It keeps SynFlow's conservation: for a bias-free, BN-free network every layer that cuts all
input→output paths has scores summing to R. (px-ntk-pruning multiplies the gradient with |θ|
instead of θ², which breaks conservation; not reproduced.)
Cost: ``iterations`` forward + backward passes of one input.
"""
from __future__ import annotations

from torch import nn

from .core import MaskDict, PruneContext
from .synflow import prune_synflow

OPTIONS = {"iterations": 100}


def prune_synflow_l2(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """SynFlow-L2 masks: :func:`.synflow.prune_synflow` on the squared (``power=2``) network."""
    return prune_synflow(model, ctx, power=2)
