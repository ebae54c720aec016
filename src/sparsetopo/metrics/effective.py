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

All three are exact and O(|V| + |E|) with O(|V|) extra memory: compiled sweeps over the shared
CSR in node-id order (:mod:`._kernels`), forwards for reachability from the input and the path
counts, backwards for reachability of the output, each node layer's nodes in parallel. Edges only
point to later node layers (checked by :func:`~sparsetopo.metrics.prepare`), so a layer's values
are final before the next layer reads them. (Per-layer sorted edge lists, the former method, held
16 bytes per edge: 4 GB on ImageNet ResNet-18.)
"""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._prepared import GraphLike, prepare


def effective_mask(graph: GraphLike) -> np.ndarray:
    """bool (V,): the effective nodes (on some input -> output path). O(|V| + |E|); cached per graph."""
    p = prepare(graph)
    if "effective_mask" not in p.cache:
        csr = (p.indptr, p.indices, p.out_deg, p.layer_offsets)
        p.cache["effective_mask"] = _kernels.reachable(*csr, True) & _kernels.reachable(*csr, False)
    return p.cache["effective_mask"]


def effective_nodes(graph: GraphLike) -> float:
    """Number of effective nodes (raw; the analysis divides by |V|). O(|V| + |E|)."""
    return float(np.count_nonzero(effective_mask(graph)))


def effective_edges(graph: GraphLike) -> float:
    """Number of edges whose both ends are effective (raw; the analysis divides by |E|). O(|V| + |E|)."""
    p = prepare(graph)
    return float(_kernels.count_edges_within(p.indptr, p.indices, p.out_deg, effective_mask(p)))


def effective_paths(graph: GraphLike) -> float:
    """log10(1 + P), P = number of distinct paths from the input layer to the output layer. O(|V| + |E|)."""
    p = prepare(graph)
    log_paths = _kernels.log_path_counts(p.indptr, p.indices, p.out_deg, p.layer_offsets)
    output = log_paths[p.layer_offsets[-2]:p.layer_offsets[-1]]
    output = output[np.isfinite(output)]
    if output.size == 0:
        return 0.0
    peak = output.max()
    log_total = peak + np.log(np.exp(output - peak).sum())
    return float(np.logaddexp(0.0, log_total) / np.log(10.0))
