"""Neighbourhood connectivity: 1-hop / 2-hop out-neighbourhoods and connected motifs.

``metrics.md`` §1 rows 6-8 and §5. ``neighbors_2hop`` and the motif counts run compiled kernels
(:mod:`._kernels`) over the shared CSR; the triangle pass is cached on the prepared graph.
"""
from __future__ import annotations

import math
import random
from typing import NamedTuple

import numpy as np

from ..errors import ValidationError
from . import _kernels
from ._prepared import GraphLike, prepare


def neighbors_1hop(graph: GraphLike) -> float:
    """mean_a |{a} ∪ N⁺(a)| over all |V| nodes (seed counted) = 1 + |E|/|V| for a simple G.

    Directed, out-neighbours, unweighted. NaN if |V| = 0. O(|V|).
    """
    p = prepare(graph)
    if p.num_nodes == 0:
        return float("nan")
    return float(1.0 + p.out_deg.sum() / p.num_nodes)


def neighbors_2hop(graph: GraphLike) -> float:
    """mean_a |{a} ∪ N⁺(a) ∪ N⁺(N⁺(a))| over all |V| nodes (a union: a node reached at distance
    1 and, via a skip edge, at distance 2 counts once).

    Directed, out-neighbours, unweighted. NaN if |V| = 0. Work Σ_b in(b)·out(b) in a numba kernel
    with one marker array per thread; memory O(|V|) per thread.
    """
    p = prepare(graph)
    if p.num_nodes == 0:
        return float("nan")
    total = _kernels.sum_two_hop_sizes(p.indptr, p.indices, p.out_deg, _kernels.default_workers())
    return float(total / p.num_nodes)


class TriangleStats(NamedTuple):
    triangles: int  # T
    per_node: np.ndarray  # t_v
    edge_pairs: int  # Σ_e C(t_e, 2) over the per-edge triangle counts t_e
    four_cliques: int  # K


def triangle_stats(graph: GraphLike) -> TriangleStats:
    """Triangles of U(G) in all and per node, Σ_e C(t_e, 2) and 4-cliques (cached). Work
    Σ_{skip x->z} in(z). The per-edge counts t_e (4|E| bytes) live only while they are summed."""
    p = prepare(graph)
    if "triangles" not in p.cache:
        t, per_node, per_edge, k4 = _kernels.triangle_statistics(
            p.indptr, p.indices, p.out_deg, p.in_indptr, p.node_layer)
        pairs = int(_kernels.sum_pairs(per_edge)) if t else 0
        del per_edge
        p.cache["triangles"] = TriangleStats(int(t), per_node, pairs, int(k4))
    return p.cache["triangles"]


def _choose(values: np.ndarray, k: int) -> int:
    """Σ C(v, k) over ``values`` (k = 2 or 3), exact in int64 for v below ~2e6. O(len)."""
    v = values.astype(np.int64)
    terms = v * (v - 1) // 2 if k == 2 else v * (v - 1) * (v - 2) // 6
    return int(terms.sum(dtype=np.int64))


def induced_four_node_counts(graph: GraphLike) -> dict[str, int]:
    """Exact induced counts of the six connected 4-node graphs of U(G) (``metrics.md`` §5).

    Non-induced counts S3 = Σ C(d,3), P = Σ_uv (d_u−1)(d_v−1) − 3T, C4 (4-cycles, numba,
    work ≤ Σ_v out(v)·deg(v)), Pw = Σ t_v(d_v−2), Dm = Σ_e C(t_e,2), K (4-cliques)
    are inverted into induced counts. Triangles come from skip edges (G is a layered DAG).
    Returns ``{"star", "path", "cycle", "paw", "diamond", "clique"}`` -> count.
    """
    p = prepare(graph)
    deg = p.degree
    tri = triangle_stats(p)
    s3 = _choose(deg, 3)
    paths = int(_kernels.sum_edge_degree_products(p.indptr, p.indices, p.out_deg)) - 3 * tri.triangles
    c4 = int(_kernels.count_four_cycles(p.indptr, p.indices, p.out_deg, _kernels.default_workers()))
    paw = int((tri.per_node * (deg - 2)).sum(dtype=np.int64)) if tri.triangles else 0
    diamond = tri.edge_pairs
    k = tri.four_cliques
    diamond_i = diamond - 6 * k
    cycle_i = c4 - diamond_i - 3 * k
    paw_i = paw - 4 * diamond_i - 12 * k
    star_i = s3 - paw_i - 2 * diamond_i - 4 * k
    path_i = paths - 2 * paw_i - 4 * cycle_i - 6 * diamond_i - 12 * k
    return {"star": star_i, "path": path_i, "cycle": cycle_i, "paw": paw_i, "diamond": diamond_i, "clique": k}


def motifs_4(graph: GraphLike) -> float:
    """Number of 4-node sets whose induced subgraph of U(G) is connected (exact).

    The sum of :func:`induced_four_node_counts`; S3 + P − 3·C4 when U(G) has no triangle.
    Unweighted, direction ignored. Raw count (``normalize`` divides by |E|). Exact in int64, returned
    as float (exact below 2**53). Dominant cost: the 4-cycle pass. For a sampled estimate, see
    :func:`motifs_4_estimate`.
    """
    return float(sum(induced_four_node_counts(graph).values()))


def motifs_3(graph: GraphLike) -> float:
    """Number of 3-node sets whose induced subgraph of U(G) is connected (exact).

    Σ_v C(d_v, 2) − 2T (wedges, each triangle holding 3 wedges but one motif). This is the
    ``motifs_4`` column of rolled BGEs (footnote 6; dense K_{27,16} → 8856). O(|V| + |E|).
    """
    p = prepare(graph)
    return float(_choose(p.degree, 2) - 2 * triangle_stats(p).triangles)


def motifs_4_estimate(graph: GraphLike, sample: int, *, seed: int = 0) -> float:
    """The official estimator: igraph ESU from ``sample`` random root nodes, found·|V|/sample.

    Unbiased but random (``metrics.md`` §1 "Motif"); seeded through Python's ``random`` (igraph's
    RNG). Builds an igraph graph from the CSR's edge list (slow above ~1e7 edges). ``sample`` =
    ⌊0.001|V|⌋ in the paper.
    """
    p = prepare(graph)
    if not isinstance(sample, (int, np.integer)) or not 1 <= sample <= max(p.num_nodes, 1):
        raise ValidationError(f"motif sample must be an int in [1, |V|={p.num_nodes}], got {sample!r}")
    import igraph as ig

    g = ig.Graph(n=p.num_nodes, edges=np.column_stack(p.edge_list()), directed=False)
    state = random.getstate()
    try:
        random.seed(seed)
        counts = g.motifs_randesu_no(size=4, cut_prob=None) if sample >= p.num_nodes else \
            g.motifs_randesu_estimate(size=4, sample=int(sample))
    finally:
        random.setstate(state)
    return float(counts)


def official_motif_sample(num_nodes: int) -> int:
    """Root sample size of the official estimate: ⌊0.001|V|⌋ (at least 1)."""
    return max(1, math.floor(0.001 * num_nodes))
