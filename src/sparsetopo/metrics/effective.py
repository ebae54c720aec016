"""Effective MGE metrics (``metrics.md`` §5b; Vysogorets & Kempe 2023, Pham et al. 2023).

On the MGE seen as a directed, unweighted layered DAG (identity-skip edges included), a node is
*effective* when it lies on a directed path from a node of the input layer (node layer 0) to a node
of the output layer (the last node layer): forward-reachable from the input layer *and*
backward-reachable from the output layer.

* :func:`effective_nodes`: the number of effective nodes (normalised by |V| in the analysis);
* :func:`effective_edges`: the number of edges whose two ends are effective (normalised by |E|);
  such an edge u -> v lies on an input -> u -> v -> output path;
* :func:`effective_paths`: log10(1 + P), P = the number of distinct input -> output paths (node
  sequences), counted layer by layer in topological order in log space (P passes 1e300); 0 if none.

All three are exact and O(|V| + |E|): the edges are grouped by node layer once (a stable radix sort
on small integer keys), then one vectorised pass per node layer forwards (reachability and path
counts) and one backwards (reachability). Edges only point to later node layers (checked by
:func:`~sparsetopo.metrics.prepare`), so a layer's values are final before the next layer reads them.
"""
from __future__ import annotations

import numpy as np

from ._prepared import GraphLike, PreparedGraph, prepare


def _edges_by_layer(p: PreparedGraph, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """Edge ids sorted by the node layer of their ``endpoint`` ("src" or "dst"), and the start of
    each layer's block (length L + 1). Cached on ``p``."""
    key = f"effective_order_{endpoint}"
    if key not in p.cache:
        ends = p.src if endpoint == "src" else p.dst
        layer = p.node_layer[ends]
        order = np.argsort(layer.astype(np.int16 if p.layer_offsets.size < 2**15 else np.int32), kind="stable")
        starts = np.searchsorted(layer[order], np.arange(p.layer_offsets.size), side="left")
        p.cache[key] = (order, starts)
    return p.cache[key]


def _forward_reachable(p: PreparedGraph) -> np.ndarray:
    """bool (V,): reachable from node layer 0 along directed edges (layer-0 nodes included)."""
    reached = np.zeros(p.num_nodes, dtype=bool)
    reached[p.layer_offsets[0]:p.layer_offsets[1]] = True
    order, starts = _edges_by_layer(p, "dst")
    for layer in range(1, p.layer_offsets.size - 1):
        edges = order[starts[layer]:starts[layer + 1]]
        reached[p.dst[edges][reached[p.src[edges]]]] = True
    return reached


def _backward_reachable(p: PreparedGraph) -> np.ndarray:
    """bool (V,): reaches the last node layer along directed edges (last-layer nodes included)."""
    reaches = np.zeros(p.num_nodes, dtype=bool)
    reaches[p.layer_offsets[-2]:p.layer_offsets[-1]] = True
    order, starts = _edges_by_layer(p, "src")
    for layer in range(p.layer_offsets.size - 3, -1, -1):
        edges = order[starts[layer]:starts[layer + 1]]
        reaches[p.src[edges][reaches[p.dst[edges]]]] = True
    return reaches


def effective_mask(graph: GraphLike) -> np.ndarray:
    """bool (V,): the effective nodes (on some input -> output path). O(|V| + |E|); cached per graph."""
    p = prepare(graph)
    if "effective_mask" not in p.cache:
        p.cache["effective_mask"] = _forward_reachable(p) & _backward_reachable(p)
    return p.cache["effective_mask"]


def effective_nodes(graph: GraphLike) -> float:
    """Number of effective nodes (raw; the analysis divides by |V|). O(|V| + |E|)."""
    return float(np.count_nonzero(effective_mask(graph)))


def effective_edges(graph: GraphLike) -> float:
    """Number of edges whose both ends are effective (raw; the analysis divides by |E|). O(|V| + |E|)."""
    p = prepare(graph)
    effective = effective_mask(p)
    return float(np.count_nonzero(effective[p.src] & effective[p.dst]))


def _log_path_counts(p: PreparedGraph) -> np.ndarray:
    """float64 (V,): ln of the number of paths from node layer 0 to each node (-inf: none).

    ln P(v) = logsumexp over in-edges u -> v of ln P(u), with ln P = 0 on layer 0; per layer the sum is
    shifted by its largest term so that no exp overflows.
    """
    log_paths = np.full(p.num_nodes, -np.inf)
    log_paths[p.layer_offsets[0]:p.layer_offsets[1]] = 0.0
    order, starts = _edges_by_layer(p, "dst")
    for layer in range(1, p.layer_offsets.size - 1):
        edges = order[starts[layer]:starts[layer + 1]]
        values = log_paths[p.src[edges]]
        live = np.isfinite(values)
        if not live.any():
            continue
        first = int(p.layer_offsets[layer])
        dst, values = p.dst[edges][live] - first, values[live]
        size = int(p.layer_offsets[layer + 1]) - first
        peak = np.full(size, -np.inf)
        np.maximum.at(peak, dst, values)
        total = np.bincount(dst, weights=np.exp(values - peak[dst]), minlength=size)
        with np.errstate(divide="ignore"):
            log_paths[first:first + size] = peak + np.log(total)
    return log_paths


def effective_paths(graph: GraphLike) -> float:
    """log10(1 + P), P = number of distinct paths from the input layer to the output layer. O(|V| + |E|)."""
    p = prepare(graph)
    output = _log_path_counts(p)[p.layer_offsets[-2]:p.layer_offsets[-1]]
    output = output[np.isfinite(output)]
    if output.size == 0:
        return 0.0
    peak = output.max()
    log_total = peak + np.log(np.exp(output - peak).sum())
    return float(np.logaddexp(0.0, log_total) / np.log(10.0))
