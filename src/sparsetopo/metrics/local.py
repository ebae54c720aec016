"""Local connectivity of the directed MGE (``metrics.md`` §1 rows 1-5; paper §3.3).

All five read only in/out-degrees, O(|V|) after :func:`~._prepared.prepare` (O(|V| + |E|)).
They are defined on the MGE; a rolled BGE has no hidden layer, so ``topometrics`` omits them.
"""
from __future__ import annotations

import numpy as np

from ..validation import check_choice
from ._prepared import GraphLike, PreparedGraph, prepare

COMPAT = ("default", "official")


def _hidden_sinks(p: PreparedGraph) -> np.ndarray:
    """Mask of nodes not in V_N with out(v) = 0 and in(v) > 0."""
    mask = (p.out_deg == 0) & (p.in_deg > 0)
    mask[p.layer_offsets[-2]:] = False
    return mask


def _hidden_sources(p: PreparedGraph) -> np.ndarray:
    """Mask of nodes not in V_0 with in(v) = 0 and out(v) > 0."""
    mask = (p.in_deg == 0) & (p.out_deg > 0)
    mask[:p.layer_offsets[1]] = False
    return mask


def sink_nodes(graph: GraphLike, *, compat: str = "default") -> float:
    """#{v ∉ V_N : out(v) = 0, in(v) > 0}: hidden nodes whose signal goes nowhere.

    Directed, unweighted. Raw count (``normalize`` divides by |V|). O(|V|).
    ``compat="official"``: #{v : out(v) = 0, in(v) > 0} − |V_N| (can be negative, ``metrics.md`` §1).
    """
    check_choice(compat, COMPAT, "compat")
    p = prepare(graph)
    if compat == "official":
        n_out = p.layer_offsets[-1] - p.layer_offsets[-2]
        return float(np.count_nonzero((p.out_deg == 0) & (p.in_deg > 0)) - n_out)
    return float(np.count_nonzero(_hidden_sinks(p)))


def source_nodes(graph: GraphLike, *, compat: str = "default") -> float:
    """#{v ∉ V_0 : in(v) = 0, out(v) > 0}: hidden nodes fed by nothing.

    Directed, unweighted. Raw count (``normalize`` divides by |V|). O(|V|).
    ``compat="official"``: #{v : in(v) = 0, out(v) > 0} − |V_0|.
    """
    check_choice(compat, COMPAT, "compat")
    p = prepare(graph)
    if compat == "official":
        return float(np.count_nonzero((p.in_deg == 0) & (p.out_deg > 0)) - p.layer_offsets[1])
    return float(np.count_nonzero(_hidden_sources(p)))


def disconnected_nodes(graph: GraphLike) -> float:
    """#{v ∈ V : in(v) = out(v) = 0}, every node layer included (V_0 and V_N too). O(|V|)."""
    p = prepare(graph)
    return float(np.count_nonzero((p.in_deg == 0) & (p.out_deg == 0)))


def _source_edge_share(p: PreparedGraph, official: bool) -> float:
    sources = _hidden_sources(p)
    if official and p.layer_offsets[1] < p.num_nodes:
        sources[p.layer_offsets[1]] = False  # the official loop skips node id n_in
    return float(p.out_deg[sources].sum() / p.num_edges)


def _sink_edge_share(p: PreparedGraph, official: bool) -> float:
    sinks = _hidden_sinks(p)
    skipped = p.num_nodes - 1 - (p.layer_offsets[-1] - p.layer_offsets[-2])
    if official and skipped >= 0:
        sinks[skipped] = False  # the official loop skips node id |V| - 1 - n_out
    return float(p.in_deg[sinks].sum() / p.num_edges)


def removable_out(graph: GraphLike, *, compat: str = "default") -> float:
    """Paper r-out: Σ_{hidden sources v} out(v) / |E|, the share of edges leaving hidden sources.

    These edges carry no signal from the input and could be pruned. NaN if |E| = 0. O(|V|).
    The official code/CSV swap the r-out / r-in names (``metrics.md`` §1): ``compat="official"``
    returns the CSV's ``r-out``, i.e. Σ in(hidden sinks) / |E| (skipping node id |V| − 1 − n_out).
    """
    check_choice(compat, COMPAT, "compat")
    p = prepare(graph)
    if p.num_edges == 0:
        return float("nan")
    return _sink_edge_share(p, True) if compat == "official" else _source_edge_share(p, False)


def removable_in(graph: GraphLike, *, compat: str = "default") -> float:
    """Paper r-in: Σ_{hidden sinks v} in(v) / |E|, the share of edges entering hidden sinks.

    These edges never reach the output. NaN if |E| = 0. O(|V|). ``compat="official"`` returns the
    CSV's ``r-in``, i.e. Σ out(hidden sources) / |E| (skipping node id n_in).
    """
    check_choice(compat, COMPAT, "compat")
    p = prepare(graph)
    if p.num_edges == 0:
        return float("nan")
    return _source_edge_share(p, True) if compat == "official" else _sink_edge_share(p, False)
