"""The graph stage: containers of encoded networks and their files (numpy only; imports no torch).

Below the encoders (which fill these containers) and above the metrics (which read them):

* :class:`MultipartiteGraph`: the unrolled MGE (int ids, float32 signed weights, node layers in
  topological order);
* :class:`BipartiteGraph`: one layer of a rolled / rolled-channel BGE;
* :class:`LayerGraphs`: the ``list[BipartiteGraph]`` of one rolled encoding, knowing its ``kind``;
* :func:`save_graph` / :func:`load_graph`: one ``.npz`` per encoding result, kind and meta included
  (``allow_pickle=False``).
"""
from .containers import (NETWORKX_MAX_EDGES, BipartiteGraph, LayerGraphs, MultipartiteGraph, id_dtype,
                         load_bipartite_npz, load_graph, save_bipartite_npz, save_graph)

__all__ = ["NETWORKX_MAX_EDGES", "BipartiteGraph", "LayerGraphs", "MultipartiteGraph", "id_dtype",
           "load_bipartite_npz", "load_graph", "save_bipartite_npz", "save_graph"]
