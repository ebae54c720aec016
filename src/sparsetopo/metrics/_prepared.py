"""The prepared graph: arrays every metric shares, built once per graph and cached.

``prepare(graph)`` validates a :class:`~sparsetopo.graph.MultipartiteGraph` (or a
:class:`~sparsetopo.graph.BipartiteGraph`, seen as its 2-layer MGE) and builds:

* in/out degrees, node layers;
* the undirected CSR of U(G) (each edge stored once per direction: per row the sorted out part,
  then the sorted in part, see :mod:`._kernels`) with float32 |w| per slot, int32 ids;
* lazily, per-family results in ``cache`` (triangles, coreness, components, cut structure).

Memory for |E| edges: 8|E| bytes of CSR ids + 8|E| bytes of float32 |w|, beside the graph's own
12|E| bytes while it lives. Cost O(|V| + |E|). The cache lives as long as the graph object does.

Every metric reads the CSR only, never the graph's edge list, so a caller that measures a large
MGE may keep just the :class:`PreparedGraph` and drop the graph (``graph = prepare(graph)``, as
:func:`sparsetopo.measure.measure` does): the 12|E| bytes of the edge list are freed before the
metrics run (ImageNet ResNet-18 at 224²: 3 GB of 11.6). The edge list can be read back from the
CSR (:meth:`PreparedGraph.edge_list`).

Parallel edges (never produced by the encoder) are merged and their |w| summed (``metrics.md``
§0). An edge that does not go from a node layer to a strictly later one is rejected, since every
metric assumes a DAG in topological layer order.
"""
from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..graph import BipartiteGraph, MultipartiteGraph
from ..errors import ValidationError
from . import _kernels

GraphLike = Union[MultipartiteGraph, BipartiteGraph, "PreparedGraph"]

#: bytes per edge of the memory estimate (:func:`estimate_memory`), each a measured array:
#: the graph's edge list (int32 src/dst + float32 w),
EDGE_LIST_BYTES = 12
#: the CSR (int32 id + float32 |w| per direction),
CSR_BYTES = 16
#: the per-edge triangle counts while the motifs are counted (int32),
TRIANGLE_BYTES = 4
#: and, for compat="official", the float16-rounded |w| per CSR slot (float32).
COMPAT_BYTES = 8
#: per node: CSR row pointers, degrees, layers, labels, coreness, markers per thread, Lanczos work.
BYTES_PER_NODE = 256
#: the Lanczos work of the spectral pair, in units of one run's basis: the two bases (γ on A, ρ
#: on L) and the Ritz vectors of a thick restart (half a basis). ResNet-18 at 224²: 2.7 GB measured.
LANCZOS_BASES = 2.5
BASE_BYTES = 1 << 30  # interpreter, numpy / scipy / numba / torch


def estimate_memory(num_nodes: int, num_edges: int, compat: str = "default", *, edge_list_kept: bool = True) -> int:
    """Peak bytes of :func:`~sparsetopo.metrics.topometrics` on a graph of this size.

    ``edge_list_kept``: the caller holds the graph (its edge list) while the metrics run, as a
    library call ``topometrics(graph)`` does. False for a caller that keeps only the prepared
    graph (``graph = prepare(graph)``: :func:`sparsetopo.measure.measure`, ``sparsetopo metrics``):
    then the peak is the larger of the CSR build (edge list + CSR) and the metrics on the CSR.
    The per-edge triangle counts and the Lanczos bases are counted together (an upper bound).
    ResNet-18 at 224² (2.46e6 nodes, 2.56e8 edges): 9.5 GB estimated, 7.7 GB measured with the
    edge list freed; 12.6 GB estimated, about 10.6 GB with it kept.
    """
    from ._lanczos import MAX_BASIS_BYTES, MAX_BASIS_VECTORS

    basis = min(MAX_BASIS_BYTES, MAX_BASIS_VECTORS * 8 * num_nodes)
    on_csr = (CSR_BYTES + TRIANGLE_BYTES + (COMPAT_BYTES if compat == "official" else 0)) * num_edges
    on_csr += LANCZOS_BASES * basis
    if edge_list_kept:
        per_edges = EDGE_LIST_BYTES * num_edges + on_csr
    else:
        per_edges = max((EDGE_LIST_BYTES + CSR_BYTES) * num_edges, on_csr)
    return int(BASE_BYTES + BYTES_PER_NODE * num_nodes + per_edges)

#: id(graph) -> (weak reference to the graph, its PreparedGraph); an entry dies with its graph.
#: (The graph classes define __eq__ without __hash__, so a WeakKeyDictionary cannot hold them.)
_CACHE: dict[int, tuple[weakref.ref, "PreparedGraph"]] = {}


@dataclass(eq=False)
class PreparedGraph:
    """Shared arrays of one graph (see module docstring). Build with :func:`prepare`."""

    num_nodes: int
    num_edges: int
    layer_offsets: np.ndarray  # int64 (L + 1,)
    node_layer: np.ndarray  # int32 (V,)
    out_deg: np.ndarray  # int64 (V,)
    in_deg: np.ndarray  # int64 (V,)
    indptr: np.ndarray  # int64 (V + 1,), undirected CSR
    indices: np.ndarray  # int32 (2E,)
    adj_weight: np.ndarray  # float32 (2E,), |w|
    total_abs_weight: float  # Σ_e |w_e| in float64 (NaN if a weight is not finite)
    merged_parallel_edges: int
    cache: dict = field(default_factory=dict)

    @property
    def degree(self) -> np.ndarray:
        """deg_U(v) = in(v) + out(v) (G is a DAG)."""
        return self.out_deg + self.in_deg

    def edge_list(self) -> tuple[np.ndarray, np.ndarray]:
        """(src, dst) of every edge (parallel edges merged), sorted by (src, dst), read back from
        the CSR's out parts: the graph's edge list without keeping it. O(|E|), 8|E| bytes."""
        return _kernels.out_edge_list(self.indptr, self.indices, self.out_deg)

    @property
    def in_indptr(self) -> np.ndarray:
        """Start of each node's block in per-edge arrays indexed by in-position."""
        return np.concatenate([[0], np.cumsum(self.in_deg)]).astype(np.int64)

    def abs_weights(self, compat: str = "default") -> np.ndarray:
        """|w| per CSR slot (float32): as encoded, or for ``compat="official"`` rounded to float16
        first, as the official encoder casts weights (``metrics.md`` §0; cached, 4 bytes a slot)."""
        if compat == "default":
            return self.adj_weight
        if "adj_weight_f16" not in self.cache:
            self.cache["adj_weight_f16"] = self.adj_weight.astype(np.float16).astype(np.float32)
        return self.cache["adj_weight_f16"]

    @property
    def weights_finite(self) -> bool:
        return bool(np.isfinite(self.total_abs_weight))


def prepare(graph: GraphLike) -> PreparedGraph:
    """Validate ``graph`` and return its :class:`PreparedGraph` (cached per graph object)."""
    if isinstance(graph, PreparedGraph):
        return graph
    if not isinstance(graph, (MultipartiteGraph, BipartiteGraph)):
        raise ValidationError(
            f"graph must be a MultipartiteGraph or BipartiteGraph, got {type(graph).__name__}")
    entry = _CACHE.get(id(graph))
    if entry is not None and entry[0]() is graph:
        return entry[1]
    prepared = _build(graph)
    _CACHE[id(graph)] = (weakref.ref(graph), prepared)
    weakref.finalize(graph, _CACHE.pop, id(graph), None)
    return prepared


def _build(graph: MultipartiteGraph | BipartiteGraph) -> PreparedGraph:
    rolled = isinstance(graph, BipartiteGraph)
    if rolled and graph.num_edges and (
            min(graph.src.min(), graph.dst.min()) < 0 or graph.src.max() >= graph.num_left
            or graph.dst.max() >= graph.num_right):
        raise ValidationError(f"layer {graph.name!r}: edge endpoints out of range "
                              f"(num_left={graph.num_left}, num_right={graph.num_right})")
    mge = graph.as_multipartite() if rolled else graph
    n = mge.num_nodes
    node_layer = np.repeat(np.arange(mge.num_layers, dtype=np.int32), np.diff(mge.layer_offsets))
    src, dst, weight = mge.src, mge.dst, mge.weight
    bad = _kernels.first_unlayered_edge(src, dst, node_layer)
    if bad >= 0:
        raise ValidationError(
            f"edge {bad} ({int(src[bad])} -> {int(dst[bad])}) goes from node layer {int(node_layer[src[bad]])} "
            f"to node layer {int(node_layer[dst[bad]])}; edges must point to a later node layer (a layered DAG)")
    prepared = _from_edges(src, dst, weight, n, mge.layer_offsets, node_layer)
    if prepared.merged_parallel_edges:
        warnings.warn(f"merged {prepared.merged_parallel_edges} parallel edges (|w| summed)", stacklevel=3)
    return prepared


def _from_edges(src, dst, weight, n, layer_offsets, node_layer, merged=0) -> PreparedGraph:
    out_deg = np.bincount(src, minlength=n).astype(np.int64)
    in_deg = np.bincount(dst, minlength=n).astype(np.int64)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(out_deg + in_deg, out=indptr[1:])
    indices = np.empty(2 * src.size, dtype=np.int32 if n < 2**31 - 1 else np.int64)
    adj_weight = np.empty(2 * src.size, dtype=np.float32)
    _kernels.fill_csr(src, dst, weight, out_deg, in_deg, indptr, indices, adj_weight)
    if src.size and _kernels.count_duplicate_edges(indptr, indices, out_deg):
        return _merge_parallel(src, dst, weight, n, layer_offsets, node_layer)
    return PreparedGraph(
        num_nodes=n, num_edges=int(src.size), layer_offsets=np.asarray(layer_offsets, np.int64),
        node_layer=node_layer, out_deg=out_deg, in_deg=in_deg, indptr=indptr, indices=indices,
        adj_weight=adj_weight, total_abs_weight=abs_sum(weight), merged_parallel_edges=merged)


#: elements per chunk of :func:`abs_sum`: a multiple of numpy's 8192-element reduction buffer
ABS_SUM_CHUNK = 1 << 20


def abs_sum(weight: np.ndarray) -> float:
    """Σ|w| in float64, equal bit for bit to ``np.sum(np.abs(weight), dtype=np.float64)`` but
    without the |E|-element |w| copy: numpy sums buffers of 8192 elements pairwise and adds each
    to a running total, so chunks on buffer boundaries, each seeded with the running total
    (``initial=``), repeat the same additions in the same order (pinned study rows hold the
    node strength exactly). O(|E|) time, 4 MiB extra."""
    total = 0.0
    for start in range(0, weight.size, ABS_SUM_CHUNK):
        total = np.add.reduce(np.abs(weight[start:start + ABS_SUM_CHUNK]), dtype=np.float64, initial=total)
    return float(total)


def _merge_parallel(src, dst, weight, n, layer_offsets, node_layer) -> PreparedGraph:
    key = src.astype(np.int64) * n + dst
    unique, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=np.abs(weight).astype(np.float64)).astype(np.float32)
    merged = int(src.size - unique.size)
    return _from_edges((unique // n).astype(src.dtype), (unique % n).astype(dst.dtype), summed, n,
                       layer_offsets, node_layer, merged)
