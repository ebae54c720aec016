"""Rolled-channel BGE (Prabhu et al. 2018): one bipartite graph per weighted layer, nodes = channels.

Conv: left = input channels C_in, right = output channels C_out; edge (c, o) iff the kernel slice
M[o, c', :, :] has a nonzero, weight = the L2 norm of the masked slice W[o, c', :, :]. For a grouped
conv, c is the actual input channel of c' (c = group(o)·C_in/g + c'), so the left side always has
C_in nodes (for groups = 1, c = c'). Linear layers as in the rolled BGE. Edges sorted by
(right, left). Cost O(weights).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
from torch import nn

from ..graph import BipartiteGraph
from .rolled import layer_masks_and_weights, module_path, rolled_layer


def channel_layer(name: str, mask: np.ndarray, weight: np.ndarray, groups: int = 1) -> BipartiteGraph:
    """The rolled-channel BGE of a conv from its (C_out, C_in/g, kh, kw) mask and masked weight."""
    c_out, cin_g = mask.shape[:2]
    kept = mask.reshape(c_out, cin_g, -1).any(axis=2)
    norms = np.sqrt(np.square(weight.reshape(c_out, cin_g, -1).astype(np.float64)).sum(axis=2))
    o, cp = np.nonzero(kept)
    c = (o // (c_out // groups)) * cin_g + cp
    order = np.lexsort((c, o))
    return BipartiteGraph(name=name, num_left=cin_g * groups, num_right=c_out, src=c[order], dst=o[order],
                          weight=norms[o, cp][order])


def encode_rolled_channel(model: nn.Module, masks: Mapping[str, Any] | None = None) -> list[BipartiteGraph]:
    """One rolled-channel BGE per Conv2d (channels) / Linear (as rolled), in ``named_modules()``
    order, named by module path."""
    out = []
    for name, (module, mask, weight) in layer_masks_and_weights(model, masks).items():
        if isinstance(module, nn.Conv2d):
            out.append(channel_layer(module_path(name), mask, weight, module.groups))
        else:
            out.append(rolled_layer(module_path(name), mask, weight))
    return out
