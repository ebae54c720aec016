"""Topometrics, Ramanujan metrics and layer density of encoded networks (``metrics.md``).

One module per family, each metric a plain function ``f(graph) -> float`` on a
:class:`~sparsetopo.encoding.graph.MultipartiteGraph` (MGE) or a
:class:`~sparsetopo.encoding.graph.BipartiteGraph` (rolled layer), returning the raw value:

* :mod:`.local`: ``sink_nodes``, ``source_nodes``, ``disconnected_nodes``, ``removable_out``,
  ``removable_in``;
* :mod:`.neighbourhood`: ``neighbors_1hop``, ``neighbors_2hop``, ``motifs_4`` (exact), ``motifs_3``;
* :mod:`.strength`: ``k_core``, ``node_strength``;
* :mod:`.components`: ``n_components``, ``mean_component_size``, ``cut_edges``, ``cut_nodes``;
* :mod:`.expansion`: ``spectral_gap``, ``spectral_radius``;
* :mod:`.ramanujan`: ``ramanujan_metrics`` (``delta_r``, ``delta_r_imdb``, ``lambda_imsg``);
* :mod:`.density`: ``layer_density``.

Each metric prepares the shared arrays once per graph (:func:`prepare`, cached while the graph
lives); :func:`topometrics` gives a whole pool-table row.
"""
from __future__ import annotations

from ._prepared import PreparedGraph, prepare
from ._warn import MetricWarning
from .components import cut_edges, cut_nodes, mean_component_size, n_components
from .density import layer_density
from .expansion import spectral_gap, spectral_radius
from .local import disconnected_nodes, removable_in, removable_out, sink_nodes, source_nodes
from .neighbourhood import (induced_four_node_counts, motifs_3, motifs_4, motifs_4_estimate, neighbors_1hop,
                            neighbors_2hop)
from .normalize import normalize
from .ramanujan import delta_r, ramanujan_metrics
from .strength import k_core, node_strength
from .summary import MGE_METRICS, ROLLED_METRICS, topometrics

TOPOMETRIC_COLUMNS = tuple(MGE_METRICS)
ROLLED_COLUMNS = tuple(ROLLED_METRICS)
RAMANUJAN_COLUMNS = ("delta_r", "delta_r_imdb", "lambda_imsg")

__all__ = [
    "PreparedGraph", "prepare", "MetricWarning", "topometrics", "ramanujan_metrics", "layer_density",
    "sink_nodes", "source_nodes", "disconnected_nodes", "removable_out", "removable_in",
    "neighbors_1hop", "neighbors_2hop", "motifs_4", "motifs_3", "motifs_4_estimate",
    "induced_four_node_counts", "k_core", "node_strength", "n_components", "mean_component_size",
    "cut_edges", "cut_nodes", "spectral_gap", "spectral_radius", "delta_r", "normalize",
    "TOPOMETRIC_COLUMNS", "ROLLED_COLUMNS", "RAMANUJAN_COLUMNS",
]
