"""Memory estimate of the MGE encoder, from |V| and |E| counted before encoding
(:func:`count_mge`; the check itself is :func:`sparsetopo._memory.check_memory`)."""
from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(frozen=True, eq=False)
class MGEPlan:
    """|V| and |E| of the MGE of ``model`` at ``input_shape`` counted before encoding (an upper
    bound on |E|, see :func:`count_mge`), holding the traced network and the node plan so that
    ``encode(..., plan=)`` does not trace and plan a second time (a memory check, then the encode)."""

    nodes: int
    edges: int
    model: Any = field(repr=False)
    input_shape: tuple[int, int, int]
    identity_skips: bool
    masks: Any = field(repr=False)
    traced: Any = field(repr=False)  # (TracedNetwork, the planner)

    def matches(self, model, input_shape, masks, identity_skips: bool) -> bool:
        """Whether this plan was made for these very arguments (same model and masks objects)."""
        return (self.model is model and self.masks is masks and self.identity_skips == identity_skips
                and tuple(input_shape) == self.input_shape)


def plan_mge(model, input_shape, masks: Mapping[str, Any] | None = None, identity_skips: bool = True) -> MGEPlan:
    """Trace ``model`` and plan its MGE (node maps, O(|V|) memory, no edge built); count |V| and |E|."""
    from ..tracing import trace
    from ..validation import check_input_shape
    from .unrolled import count_mge as _count

    input_shape = check_input_shape(input_shape)
    net = trace(model, input_shape)
    nodes, edges, planner = _count(net, model, masks, identity_skips)
    return MGEPlan(nodes, edges, model, input_shape, identity_skips, masks, (net, planner))


def count_mge(model, input_shape, masks: Mapping[str, Any] | None = None, identity_skips: bool = True) -> tuple[int, int]:
    """(|V|, |E|) of the MGE of ``model`` at ``input_shape`` without building it: the plan's node
    maps (O(|V|) memory) and the masks give every layer's edge count (|E| before duplicate pairs
    of overlapping pooling windows are merged: an upper bound, exact otherwise)."""
    plan = plan_mge(model, input_shape, masks, identity_skips)
    return plan.nodes, plan.edges
