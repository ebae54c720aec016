"""Memory estimate of the MGE encoder, from |V| and |E| counted before encoding
(:func:`count_mge`; the check itself is :func:`sparsetopo._memory.check_memory`)."""
from __future__ import annotations

from typing import Any, Mapping

#: peak bytes per edge of the MGE encoder: per-layer (src, dst, w) parts of 12 B/edge, then their
#: concatenation (12 B/edge, each part freed once copied), rounded up (ResNet-18 at 224²: 29 measured).
ENCODE_BYTES_PER_EDGE = 32
#: per node: the plan's int64 node maps (up to a pooling window's slots per node).
ENCODE_BYTES_PER_NODE = 128
ENCODE_BASE_BYTES = 1 << 30  # interpreter, torch, the model


def estimate_memory(num_nodes: int, num_edges: int) -> int:
    """Peak bytes of encoding an MGE of this size (its result included)."""
    return int(ENCODE_BASE_BYTES + ENCODE_BYTES_PER_EDGE * num_edges + ENCODE_BYTES_PER_NODE * num_nodes)


def count_mge(model, input_shape, masks: Mapping[str, Any] | None = None, identity_skips: bool = True) -> tuple[int, int]:
    """(|V|, |E|) of the MGE of ``model`` at ``input_shape`` without building it: the plan's node
    maps (O(|V|) memory) and the masks give every layer's edge count (|E| before duplicate pairs
    of overlapping pooling windows are merged: an upper bound, exact otherwise)."""
    from ..tracing import trace
    from ..validation import check_input_shape
    from .unrolled import count_mge as _count

    input_shape = check_input_shape(input_shape)
    return _count(trace(model, input_shape), model, masks, identity_skips)[:2]
