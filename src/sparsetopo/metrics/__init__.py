"""Topometrics, Ramanujan metrics, layer density and effective metrics of encoded networks (``metrics.md``).

One module per family, each metric a plain function ``f(graph) -> float`` on a
:class:`~sparsetopo.graph.MultipartiteGraph` (MGE) or a
:class:`~sparsetopo.graph.BipartiteGraph` (rolled layer), returning the raw value:

* :mod:`.local`: ``sink_nodes``, ``source_nodes``, ``disconnected_nodes``, ``removable_out``,
  ``removable_in``;
* :mod:`.neighbourhood`: ``neighbors_1hop``, ``neighbors_2hop``, ``motifs_4`` (exact), ``motifs_3``;
* :mod:`.strength`: ``k_core``, ``node_strength``;
* :mod:`.components`: ``n_components``, ``mean_component_size``, ``cut_edges``, ``cut_nodes``;
* :mod:`.expansion`: ``spectral_gap``, ``spectral_radius``;
* :mod:`.ramanujan`: ``ramanujan_metrics`` (``delta_r``, ``delta_r_imdb``, ``lambda_imsg``);
* :mod:`.density`: ``layer_density``;
* :mod:`.effective`: ``effective_nodes``, ``effective_edges``, ``effective_paths`` (§5b).

Every column is a record of :mod:`.registry` (``METRIC_REGISTRY``); :func:`graph_row` computes the
registered metrics of a graph and :func:`topometrics` its topometrics row. Each metric prepares the
shared arrays once per graph (:func:`prepare`, cached while the graph lives).

Names are imported on first use (PEP 562), so ``sparsetopo.metrics.registry`` and
``sparsetopo.metrics.normalize`` load neither numba nor scipy; no module here imports torch.
"""
from __future__ import annotations

import importlib

# Bound eagerly: the function shares its name with its module, whose import would otherwise shadow it.
from .normalize import normalize

#: public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    "PreparedGraph": "_prepared", "prepare": "_prepared", "estimate_memory": "_prepared", "MetricWarning": "_warn",
    "cut_edges": "components", "cut_nodes": "components", "mean_component_size": "components",
    "n_components": "components", "layer_density": "density", "spectral_gap": "expansion",
    "spectral_radius": "expansion", "disconnected_nodes": "local", "removable_in": "local",
    "removable_out": "local", "sink_nodes": "local", "source_nodes": "local",
    "induced_four_node_counts": "neighbourhood", "motifs_3": "neighbourhood", "motifs_4": "neighbourhood",
    "motifs_4_estimate": "neighbourhood", "neighbors_1hop": "neighbourhood", "neighbors_2hop": "neighbourhood",
    "delta_r": "ramanujan", "ramanujan_metrics": "ramanujan", "k_core": "strength",
    "node_strength": "strength", "topometrics": "summary", "graph_row": "summary", "MGE_METRICS": "summary",
    "ROLLED_METRICS": "summary", "effective_nodes": "effective", "effective_edges": "effective",
    "effective_paths": "effective", "effective_mask": "effective", "Metric": "registry",
    "METRIC_REGISTRY": "registry", "register": "registry", "unregister": "registry",
}
#: derived column lists (read from the registry each time, so registered metrics appear)
_COLUMNS = {"TOPOMETRIC_COLUMNS": (("topometrics",), "mge"), "ROLLED_COLUMNS": (("topometrics",), "rolled"),
            "RAMANUJAN_COLUMNS": (("ramanujan",), "rolled"), "EFFECTIVE_COLUMNS": (("effective",), "mge")}


def __getattr__(name: str):
    if name in _COLUMNS:
        from . import registry

        return tuple(registry.names(*_COLUMNS[name]))
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS) + sorted(_COLUMNS) + ["normalize"]
