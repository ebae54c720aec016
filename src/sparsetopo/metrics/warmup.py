"""Compile every numba kernel of the metrics into the on-disk cache, once, at set-up time.

Why: numba compiles a kernel on its first call in a process unless its on-disk cache already holds
it (:mod:`._kernels` points the cache at ``~/.cache/sparsetopo/numba``). A cold compile of all
kernels takes about 10 s on 2 cores; loading them from the cache about 0.5 s. ``bash run.sh``
calls :func:`compile_kernels` after installing, so neither a study worker nor a command compiles;
a library user can do the same with ``python -m sparsetopo.metrics.warmup``.
"""
from __future__ import annotations

import time

import numpy as np

from ..graph import BipartiteGraph, MultipartiteGraph
from . import registry
from .expansion import DENSE_MAX_NODES
from .summary import graph_row

#: node layers of the warm-up MGE: its first bipartite layer (rolled) and the whole graph are
#: above the size where the spectral metrics switch from dense solvers to the sparse kernels
LAYER_SIZES = (DENSE_MAX_NODES, DENSE_MAX_NODES, 64, 10)


def tiny_mge(layer_sizes: tuple[int, ...] = LAYER_SIZES, density: float = 0.1, seed: int = 0) -> MultipartiteGraph:
    """A random layered graph with the dtypes of a real MGE (int32 ids, float32 weights): edges
    join consecutive node layers and, like residual skips, layers two apart (so triangles exist),
    each pair present with probability ``density``."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(layer_sizes)])
    src, dst = [], []
    for a, b in [(i, i + 1) for i in range(len(layer_sizes) - 1)] + [(i, i + 2) for i in range(len(layer_sizes) - 2)]:
        s, d = np.meshgrid(np.arange(offsets[a], offsets[a + 1]), np.arange(offsets[b], offsets[b + 1]), indexing="ij")
        keep = rng.random(s.shape) < density
        src.append(s[keep])
        dst.append(d[keep])
    src, dst = np.concatenate(src), np.concatenate(dst)
    return MultipartiteGraph(src, dst, rng.uniform(-1, 1, src.size), int(offsets[-1]), offsets,
                             tuple(f"layer{i}" for i in range(len(layer_sizes))))


def compile_kernels() -> float:
    """Run every registered metric of both encodings on small graphs (so every kernel is compiled
    for the dtypes real graphs use and cached); returns the seconds it took."""
    start = time.perf_counter()
    groups = tuple(registry.GROUPS)
    graph = tiny_mge()
    graph_row(graph, groups, encoding="mge")
    left, right = LAYER_SIZES[:2]
    first = graph.dst < left + right  # the first bipartite layer, as a rolled layer
    layer = BipartiteGraph("layer", left, right, graph.src[first], graph.dst[first] - left, graph.weight[first])
    graph_row(layer, groups, encoding="rolled")
    return time.perf_counter() - start


if __name__ == "__main__":  # pragma: no cover
    print(f"numba kernels compiled and cached in {compile_kernels():.1f} s")
