"""All metrics of one graph in one call (pool-table rows, raw values), driven by the metric registry."""
from __future__ import annotations

import functools
import sys
from typing import Any, Iterable, Mapping

from ..graph import BipartiteGraph
from ..errors import ValidationError
from ..validation import check_choice
from . import neighbourhood, registry
from .._memory import check_memory
from ._prepared import GraphLike, PreparedGraph, estimate_memory, prepare

COMPAT_CHOICES = ("default", "official")


def graph_row(graph: GraphLike, groups: Iterable[str] = (registry.FEATURE_GROUP,), *, encoding: str | None = None,
              mask_values: Mapping[str, Any] | None = None, motif_sample: int | str | None = None,
              compat: str = "default", progress: bool = False, max_memory: int | str | None = None) -> dict:
    """One row of raw metric values of one graph: ``nodes`` (|V|), ``edges`` (|E|), then the
    registered metrics of ``groups`` that apply to ``encoding``, in registry order.

    ``graph``: an MGE (``encoding`` ``"mge"``) or one rolled layer (a :class:`BipartiteGraph`;
    ``encoding`` ``"rolled"`` unless given). ``mask_values``: ``{metric name: value}`` of the
    mask-sourced columns (``source="masks"``, e.g. ``layer_density``), computed from the masks by
    the caller (:func:`mask_values`): a float per network, or ``{parameter name: float}`` per layer
    (looked up as ``<layer name>.weight``); NaN where absent.
    ``motif_sample``: None for the exact ``motifs_4``; an int s, or ``"official"`` (s = ⌊0.001|V|⌋),
    for igraph's ESU estimate from s random roots, reported as ``motifs_4_sample`` = s (MGE only).
    ``compat="official"`` reproduces the official code where it deviates (float16-rounded weights
    included, and it implies the 0.1%-root
    motif estimate unless ``motif_sample`` is given). ``progress``: a tqdm bar (TTY only).
    The arrays are prepared once and shared (:func:`~sparsetopo.metrics.prepare`); a function that
    fills several columns (the Ramanujan metrics) runs once. Before that, the peak memory is
    estimated (:func:`~._prepared.estimate_memory`); above ``max_memory`` (bytes or e.g. ``"16G"``;
    default: what the machine has) a :class:`~sparsetopo.errors.MemoryEstimateError` gives it.
    """
    check_choice(compat, COMPAT_CHOICES, "compat")
    if hasattr(graph, "num_edges"):
        kept = not isinstance(graph, PreparedGraph)  # a prepared graph alone: its edge list may be gone
        check_memory(estimate_memory(graph.num_nodes, graph.num_edges, compat, edge_list_kept=kept), max_memory,
                     f"the metrics of a graph with {graph.num_nodes} nodes and {graph.num_edges} edges")
    layered = isinstance(graph, BipartiteGraph)
    encoding = encoding or ("rolled" if layered else "mge")
    if compat == "official" and motif_sample is None and not layered:
        motif_sample = "official"
    if layered and motif_sample is not None:
        raise ValidationError("motif_sample applies to MGEs; rolled layers use the exact size-3 count")
    p = prepare(graph)
    sample = None
    if motif_sample is not None:
        sample = neighbourhood.official_motif_sample(p.num_nodes) if motif_sample == "official" else motif_sample
    row: dict = {"nodes": p.num_nodes, "edges": p.num_edges}
    from tqdm.auto import tqdm

    records = registry.select(groups, encoding)
    bar = tqdm(records, desc="metrics", disable=not (progress and sys.stderr.isatty()), leave=False)
    outputs: dict = {}  # function -> its value on this graph (shared by the records of one function)
    for metric in bar:
        bar.set_postfix_str(metric.name)
        if metric.source == "masks":
            row[metric.name] = _mask_value((mask_values or {}).get(metric.name), graph)
            continue
        sampled = sample is not None and metric.sampled_function is not None
        function = metric.function_for(layered, sampled=sampled)
        key = (function, sampled, metric.compat and compat)
        if key not in outputs:
            if sampled:
                function = functools.partial(function, sample=sample)
            elif metric.compat and compat != "default":
                function = functools.partial(function, compat=compat)
            outputs[key] = function(graph)
        row[metric.name] = outputs[key][metric.output] if metric.output else outputs[key]
    if sample is not None:
        row["motifs_4_sample"] = int(sample)
    return row


def graph_rows(graph, encoding: str, groups: Iterable[str] = registry.DEFAULT_GROUPS, *,
               mask_values: Mapping[str, Any] | None = None, motif_sample: int | str | None = None,
               compat: str = "default", progress: bool = False, max_memory: int | str | None = None) -> list[dict]:
    """Pool rows of one encoding result: one row (``encoding`` + :func:`graph_row`) for a network
    graph, one per layer (``encoding``, ``layer`` index, ``layer_name`` + :func:`graph_row`) for a
    layered result. Values are plain Python numbers (JSON-ready; NaN kept as float NaN)."""
    if not isinstance(graph, list):
        return [{"encoding": encoding, **_plain(graph_row(graph, groups, encoding=encoding, mask_values=mask_values,
                                                          motif_sample=motif_sample, compat=compat,
                                                          progress=progress, max_memory=max_memory))}]
    return [{"encoding": encoding, "layer": index, "layer_name": layer.name,
             **_plain(graph_row(layer, groups, encoding=encoding, mask_values=mask_values, motif_sample=motif_sample,
                                compat=compat))}
            for index, layer in enumerate(graph)]


def mask_values(model, masks, input_shape, groups: Iterable[str], encodings: Iterable[str]) -> dict[str, Any]:
    """``{metric name: value}`` of the registered ``source="masks"`` metrics of ``groups`` that apply
    to one of ``encodings``: each record's ``function(model, masks, input_shape)``, run once."""
    encodings = tuple(encodings)
    return {m.name: m.function_for(False)(model, masks, input_shape)
            for m in registry.select(groups, source="masks") if any(m.applies_to(e) for e in encodings)}


def _mask_value(value: Any, graph: GraphLike) -> float:
    """A mask-sourced value for one graph: a per-layer dict is looked up by the layer's parameter."""
    if isinstance(value, Mapping):
        value = value.get(f"{getattr(graph, 'name', '')}.weight")
    return float("nan") if value is None else float(value)


def _plain(row: dict) -> dict[str, float | int | None]:
    """Metric values as JSON-ready Python numbers (NaN kept as float NaN)."""
    out = {}
    for name, value in row.items():
        value = value.item() if hasattr(value, "item") else value
        out[name] = int(value) if isinstance(value, (bool, int)) else float(value)
    return out


def topometrics(graph: GraphLike, *, motif_sample: int | str | None = None, compat: str = "default",
                progress: bool = False, max_memory: int | str | None = None) -> dict:
    """Raw topometrics of an MGE (16 columns) or of one rolled BGE layer (10 columns), plus
    ``nodes`` (|V|) and ``edges`` (|E|): :func:`graph_row` of the topometrics group.
    Normalisation is :func:`sparsetopo.metrics.normalize`'s job.
    """
    return graph_row(graph, (registry.FEATURE_GROUP,), motif_sample=motif_sample, compat=compat, progress=progress,
                     max_memory=max_memory)


def __getattr__(name: str):
    # The former tables, derived from the registry when read (kept for callers that used them).
    if name in ("MGE_METRICS", "ROLLED_METRICS"):
        layered = name == "ROLLED_METRICS"
        return {m.name: m.function_for(layered) for m in registry.select((registry.FEATURE_GROUP,),
                                                                           "rolled" if layered else "mge")}
    if name == "COMPAT_COLUMNS":
        return tuple(m.name for m in registry.select() if m.compat)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
