"""The encodings, one record each: name, label, encoder, result type, file writer and reader.

Every place that names an encoding (``encode``, the CLI choices, the study config, the pools and the
analysis) iterates :data:`ENCODING_REGISTRY`; a new encoding is one :class:`Encoding` record here.
Importing this module loads no torch: the encoders import it when they run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..graph import LayerGraphs, MultipartiteGraph, load_bipartite_npz, save_bipartite_npz

#: ``encoder(model, input_shape, masks, *, identity_skips, progress) -> result``
Encoder = Callable[..., Any]


@dataclass(frozen=True)
class Encoding:
    """One encoding of a network as a graph.

    ``layered``: the result is a :class:`~sparsetopo.graph.LayerGraphs` (one bipartite graph per
    prunable layer, rows of the layer pool) rather than one :class:`~sparsetopo.graph.MultipartiteGraph`
    (a row of the network pool). ``save`` / ``load`` write and read one result (``.npz``).
    """

    name: str
    label: str
    encoder: Encoder
    layered: bool
    save: Callable[[Any, Any], None]
    load: Callable[[Any], Any]

    @property
    def result_type(self) -> type:
        return LayerGraphs if self.layered else MultipartiteGraph


def _encode_mge(model, input_shape, masks: Mapping[str, Any] | None, *, identity_skips: bool = True,
                progress: bool = False, max_memory=None, plan=None) -> MultipartiteGraph:
    """Trace and plan (or take ``plan``, a :class:`.memory.MGEPlan` of the same model, shape, masks
    and skips), check the memory estimate from the counted |V| and |E|, encode."""
    from .._memory import check_memory
    from .memory import estimate_memory, plan_mge
    from .unrolled import encode_mge

    if plan is None or not plan.matches(model, input_shape, masks, identity_skips):
        plan = plan_mge(model, input_shape, masks, identity_skips)
    check_memory(estimate_memory(plan.nodes, plan.edges), max_memory,
                 f"encoding {type(model).__name__} at input shape {tuple(input_shape)} "
                 f"({plan.nodes} nodes, {plan.edges} edges)")
    net, planner = plan.traced
    return encode_mge(net, model, masks, identity_skips=identity_skips, progress=progress, plan=planner)


def _encode_rolled(model, input_shape, masks, **_options) -> LayerGraphs:
    from .rolled import encode_rolled

    return LayerGraphs(encode_rolled(model, masks), kind="rolled")


def _encode_rolled_channel(model, input_shape, masks, **_options) -> LayerGraphs:
    from .rolled_channel import encode_rolled_channel

    return LayerGraphs(encode_rolled_channel(model, masks), kind="rolled_channel")


def _records(*records: Encoding) -> dict[str, Encoding]:
    return {record.name: record for record in records}


ENCODING_REGISTRY: dict[str, Encoding] = _records(
    Encoding("mge", "Unrolled MGE", _encode_mge, layered=False,
             save=MultipartiteGraph.save_npz, load=MultipartiteGraph.load_npz),
    Encoding("rolled", "Rolled BGE", _encode_rolled, layered=True, save=save_bipartite_npz, load=load_bipartite_npz),
    Encoding("rolled_channel", "Rolled-channel BGE", _encode_rolled_channel, layered=True,
             save=save_bipartite_npz, load=load_bipartite_npz),
)

#: all encoding names, in registry order
ENCODINGS: tuple[str, ...] = tuple(ENCODING_REGISTRY)
#: the encodings whose result is one graph per layer (rows of ``pool_layers``)
LAYER_ENCODINGS: tuple[str, ...] = tuple(n for n, e in ENCODING_REGISTRY.items() if e.layered)
#: the encodings whose result is one graph per network (rows of ``pool``)
NETWORK_ENCODINGS: tuple[str, ...] = tuple(n for n, e in ENCODING_REGISTRY.items() if not e.layered)
