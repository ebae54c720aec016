"""Global connectivity of U(G): components, bridges and articulation points (``metrics.md`` §1
rows 11-14). Components, bridges and articulation points are iterative O(|V| + |E|) passes over
the shared int32 CSR, without a copy of it (:mod:`._kernels` says why
they are not NetworKit / igraph calls). Results are cached on the prepared graph.
"""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._prepared import GraphLike, PreparedGraph, prepare


def component_labels(graph: GraphLike) -> np.ndarray:
    """Connected-component id (0..C-1, int32, numbered by smallest node id) of every node of U(G);
    isolated nodes are singletons. Structure only (a zero |w| never hides an edge). Breadth-first
    search on the shared CSR (:func:`._kernels.component_labels`), O(|V| + |E|), 8|V| bytes."""
    p = prepare(graph)
    if "components" not in p.cache:
        p.cache["components"] = _kernels.component_labels(p.indptr, p.indices)
    return p.cache["components"]


def n_components(graph: GraphLike) -> float:
    """Number C of connected components of U(G) (= weak components of G), isolated nodes
    counted as singleton components. O(|V| + |E|)."""
    labels = component_labels(graph)
    return float(labels.max() + 1) if labels.size else 0.0


def mean_component_size(graph: GraphLike) -> float:
    """|V| / C, the mean number of nodes per component. NaN if |V| = 0. O(|V| + |E|)."""
    p = prepare(graph)
    if p.num_nodes == 0:
        return float("nan")
    return float(p.num_nodes / n_components(p))


def _cut_structure(p: PreparedGraph) -> tuple[int, np.ndarray]:
    if "cuts" not in p.cache:
        bridges, is_cut = _kernels.bridges_and_articulation_points(p.indptr, p.indices)
        p.cache["cuts"] = (int(bridges), is_cut)
    return p.cache["cuts"]


def cut_edges(graph: GraphLike) -> float:
    """Number of bridges of U(G): edges whose removal adds a component.

    Unweighted, direction ignored. Iterative DFS low points, O(|V| + |E|).
    """
    return float(_cut_structure(prepare(graph))[0])


def cut_nodes(graph: GraphLike) -> float:
    """Number of articulation points of U(G): nodes whose removal adds a component.

    Unweighted, direction ignored. Iterative DFS low points, O(|V| + |E|).
    """
    return float(np.count_nonzero(_cut_structure(prepare(graph))[1]))
