"""Global connectivity of U(G): components, bridges and articulation points (``metrics.md`` §1
rows 11-14). Components come from ``scipy.sparse.csgraph`` on the shared CSR; bridges and
articulation points are an iterative O(|V| + |E|) pass over the same CSR (:mod:`._kernels` says why
they are not NetworKit / igraph calls). Results are cached on the prepared graph.
"""
from __future__ import annotations

import numpy as np

from . import _kernels
from ._prepared import GraphLike, PreparedGraph, prepare


def component_labels(graph: GraphLike) -> np.ndarray:
    """Connected-component id (0..C-1) of every node of U(G); isolated nodes are singletons.
    scipy's ``connected_components`` on the symmetric CSR, O(|V| + |E|)."""
    from scipy.sparse import csr_array
    from scipy.sparse.csgraph import connected_components

    p = prepare(graph)
    if "components" not in p.cache:
        # Structure only: ones as data, so a zero |w| never hides an edge.
        structure = csr_array((np.ones(p.indices.size, dtype=np.int8), p.indices, p.indptr),
                              shape=(p.num_nodes, p.num_nodes))
        p.cache["components"] = connected_components(structure, directed=False)[1]
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
