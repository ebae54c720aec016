"""Rolled BGE (Pal et al. 2022; Hoang et al. 2023b): one bipartite graph per weighted layer.

Conv: left nodes = C_in/groups · kh · kw (the columns of the weight reshaped to C_out × rest, in
PyTorch's (c', u, v) order), right nodes = C_out; edge (r, o) iff the mask entry is nonzero,
weight = the masked weight. Linear: left = in features, right = out features, edge i → o iff
M[o, i] ≠ 0. |E| = number of kept weights. Edges are sorted by (right, left). Cost O(weights).

Rolled encodings are per prunable layer and read only the weights (no tracing): a multiplicative
gate (squeeze-excitation) has no weight and so no rolled graph (its convolutions have theirs), and
a Linear applied channels-last (ConvNeXt) is in features × out features like any Linear (the MGE
repeats it per position; the rolled BGE does not).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from torch import nn

from ..masks import effective_weights, get_masks, prunable_modules, validate_masks
from ..graph import BipartiteGraph


def layer_masks_and_weights(model: nn.Module, masks: Mapping[str, Any] | None):
    """``{name: (module, bool mask ndarray, masked float32 weight ndarray)}`` of every prunable
    layer; ``masks`` (validated) override the model's own masks, absent layers stay as they are."""
    given = validate_masks(model, masks) if masks is not None else {}
    mask_of = {**get_masks(model), **given}
    weights = effective_weights(model, masks)
    return {name: (module, mask_of[name].numpy(), weights[name].numpy())
            for name, module in prunable_modules(model).items()}


def module_path(param_name: str) -> str:
    """``"layer1.0.conv1.weight"`` -> ``"layer1.0.conv1"``."""
    return param_name[: -len(".weight")] if param_name.endswith(".weight") else ""


def rolled_layer(name: str, mask: np.ndarray, weight: np.ndarray) -> BipartiteGraph:
    """The rolled BGE of one layer from its (C_out, ...) mask and masked weight."""
    m2, w2 = mask.reshape(mask.shape[0], -1), weight.reshape(weight.shape[0], -1)
    right, left = np.nonzero(m2)
    return BipartiteGraph(name=name, num_left=m2.shape[1], num_right=m2.shape[0], src=left, dst=right,
                          weight=w2[right, left])


def encode_rolled(model: nn.Module, masks: Mapping[str, Any] | None = None) -> list[BipartiteGraph]:
    """One rolled BGE per Conv2d / Linear, in ``named_modules()`` order, named by module path."""
    return [rolled_layer(module_path(name), mask, weight)
            for name, (_, mask, weight) in layer_masks_and_weights(model, masks).items()]
