"""Strength of connections: k-core and node strength (``metrics.md`` §1 rows 9-10)."""
from __future__ import annotations

import numpy as np

from ..validation import check_choice
from . import _kernels
from ._prepared import GraphLike, prepare
from ._warn import nan_warning


def coreness(graph: GraphLike) -> np.ndarray:
    """Core number of every node of U(G) (isolated nodes 0), as int64 array of length |V|.

    Batagelj-Zaversnik bucket algorithm on the shared CSR, O(|V| + |E|) (see :mod:`._kernels`).
    """
    p = prepare(graph)
    if "coreness" not in p.cache:
        p.cache["coreness"] = _kernels.core_numbers(p.indptr, p.indices)
    return p.cache["coreness"]


def k_core(graph: GraphLike) -> float:
    """Mean over all |V| nodes of the coreness in U(G) (isolated -> 0).

    Unweighted, direction ignored (= igraph ``coreness(mode='all')`` on a DAG). NaN if |V| = 0.
    O(|V| + |E|).
    """
    p = prepare(graph)
    if p.num_nodes == 0:
        return float("nan")
    return float(coreness(p).mean())


def node_strength(graph: GraphLike, *, strength: str = "in+out", compat: str = "default") -> float:
    """Mean weighted degree: mean_v Σ_{e∋v} |w_e| = 2·Σ_e |w_e| / |V| (``strength="in+out"``,
    the default and the official code), or Σ_e |w_e| / |V| (``strength="in"``, Table 2's wording).

    float64 accumulation of |w|; ``compat="official"`` rounds each weight to float16 first
    (``metrics.md`` §0). NaN (with a warning) if |V| = 0 or a weight is not finite. O(|E|).
    """
    check_choice(strength, ("in+out", "in"), "strength")
    check_choice(compat, ("default", "official"), "compat")
    p = prepare(graph)
    if p.num_nodes == 0:
        return float("nan")
    if not p.weights_finite:
        return nan_warning("node_strength", "a weight is NaN or infinite")
    factor = 2.0 if strength == "in+out" else 1.0
    total = p.total_abs_weight if compat == "default" else float(p.abs_weights(compat).sum(dtype=np.float64)) / 2
    return float(factor * total / p.num_nodes)
