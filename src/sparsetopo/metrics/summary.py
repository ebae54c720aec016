"""All topometrics of one graph in one call (the pool-table row, raw values)."""
from __future__ import annotations

import functools
import sys
from typing import Callable

from ..encoding.graph import BipartiteGraph
from ..errors import ValidationError
from ..validation import check_choice
from . import components, expansion, local, neighbourhood, strength
from ._prepared import GraphLike, prepare

#: column -> metric, MGE (``README.md`` column order).
MGE_METRICS: dict[str, Callable[[GraphLike], float]] = {
    "sink_nodes": local.sink_nodes,
    "source_nodes": local.source_nodes,
    "disconnected_nodes": local.disconnected_nodes,
    "removable_out": local.removable_out,
    "removable_in": local.removable_in,
    "neighbors_1hop": neighbourhood.neighbors_1hop,
    "neighbors_2hop": neighbourhood.neighbors_2hop,
    "motifs_4": neighbourhood.motifs_4,
    "k_core": strength.k_core,
    "node_strength": strength.node_strength,
    "n_components": components.n_components,
    "mean_component_size": components.mean_component_size,
    "cut_edges": components.cut_edges,
    "cut_nodes": components.cut_nodes,
    "spectral_gap": expansion.spectral_gap,
    "spectral_radius": expansion.spectral_radius,
}

#: column -> metric on a rolled BGE layer: no local metrics, no 2-hop, and the motif column holds
#: the exact *size-3* connected count (``metrics.md`` §1 "Motif", footnote 6).
ROLLED_METRICS: dict[str, Callable[[GraphLike], float]] = {
    "neighbors_1hop": neighbourhood.neighbors_1hop,
    "motifs_4": neighbourhood.motifs_3,
    **{k: MGE_METRICS[k] for k in ("k_core", "node_strength", "n_components", "mean_component_size",
                                   "cut_edges", "cut_nodes", "spectral_gap", "spectral_radius")},
}


#: columns whose function takes ``compat`` (``metrics.md``: only where it changes published numbers).
COMPAT_COLUMNS = ("sink_nodes", "source_nodes", "removable_out", "removable_in", "spectral_gap")


def topometrics(graph: GraphLike, *, motif_sample: int | str | None = None, compat: str = "default",
                progress: bool = False) -> dict:
    """Raw topometrics of an MGE (16 columns) or of one rolled BGE layer (10 columns), plus
    ``nodes`` (|V|) and ``edges`` (|E|). Normalisation is :func:`sparsetopo.metrics.normalize`'s job.

    ``motif_sample``: None (default) for the exact ``motifs_4``; an int s, or ``"official"``
    (s = ⌊0.001|V|⌋), for igraph's ESU estimate from s random roots, reported as
    ``motifs_4_sample`` = s. Only for MGEs. ``compat="official"`` reproduces the official code where
    it deviates (sink/source offsets, swapped r-out/r-in, magnitude-rule spectral gap, and the
    0.1%-root motif estimate unless ``motif_sample`` is given). ``progress``: a tqdm bar over the metrics (TTY only).
    The arrays are prepared once and shared (:func:`~sparsetopo.metrics.prepare`).
    """
    check_choice(compat, ("default", "official"), "compat")
    rolled = isinstance(graph, BipartiteGraph)
    if compat == "official" and motif_sample is None and not rolled:
        motif_sample = "official"
    if rolled and motif_sample is not None:
        raise ValidationError("motif_sample applies to MGEs; rolled layers use the exact size-3 count")
    p = prepare(graph)
    row: dict = {"nodes": p.num_nodes, "edges": p.num_edges}
    metrics = dict(ROLLED_METRICS if rolled else MGE_METRICS)
    sample = None
    if motif_sample is not None:
        sample = neighbourhood.official_motif_sample(p.num_nodes) if motif_sample == "official" else motif_sample
        metrics["motifs_4"] = lambda g: neighbourhood.motifs_4_estimate(g, sample)
    if compat != "default":
        metrics.update({k: functools.partial(f, compat=compat) for k, f in metrics.items() if k in COMPAT_COLUMNS})
    from tqdm.auto import tqdm

    bar = tqdm(metrics.items(), desc="topometrics", disable=not (progress and sys.stderr.isatty()), leave=False)
    for name, metric in bar:
        bar.set_postfix_str(name)
        row[name] = metric(p)
    if sample is not None:
        row["motifs_4_sample"] = int(sample)
    return row
