"""The metric registry: one record per pool column that a metric fills (``metrics.md``, ``analysis.md``).

A :class:`Metric` says everything the rest of the library needs to know about a column: the
function that computes it, the *group* a study or the CLI selects it by (``topometrics``,
``ramanujan``, ``layer_density``, ``effective``), its display *family* (paper Table 2 for the
topometrics), the encodings it applies to, its normalisation divisor (``nodes`` = |V|, ``edges`` =
|E|, or none), its figure label and whether it takes ``compat=``. :func:`~sparsetopo.metrics.topometrics`,
:func:`~sparsetopo.metrics.normalize`, pool validation, the analysis features, the figure labels,
the CLI choices and the study config all read it, so a new metric is one :func:`register` call.

The topometrics group is the analysis' regression features (required pool columns); the other
groups are optional pool columns. Functions are given as ``"module:function"`` under
``sparsetopo.metrics`` (imported on first use, so that reading the registry loads neither numba nor
scipy) or as callables. A function takes the graph (a
:class:`~sparsetopo.graph.MultipartiteGraph` or a rolled layer's
:class:`~sparsetopo.graph.BipartiteGraph`) and returns a float, or a dict when ``output`` names
the key to take (such a function runs once per graph for all its records, e.g. the three Ramanujan
metrics). ``source="masks"`` columns (layer density) come from the masks, not from the graph: their
function is ``f(model, masks, input_shape)`` and returns a float per network or
``{parameter name: float}`` per layer (:func:`~sparsetopo.metrics.summary.mask_values`).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable, Iterable

from ..encoding.registry import ENCODINGS, LAYER_ENCODINGS
from ..errors import ValidationError

MetricFunction = Callable[..., "float | dict"]

#: the groups a study / the CLI selects, in pool-column order; ``DEFAULT_GROUPS`` is what studies measure by default
GROUPS: tuple[str, ...] = ("topometrics", "ramanujan", "layer_density", "effective")
DEFAULT_GROUPS: tuple[str, ...] = ("topometrics", "ramanujan", "layer_density")
#: the group whose columns are the analysis' regression features
FEATURE_GROUP = "topometrics"
DIVISOR_COLUMNS = ("nodes", "edges")


@dataclass(frozen=True)
class Metric:
    """One metric column. See the module docstring for the fields' roles."""

    name: str
    group: str
    family: str
    label: str
    function: MetricFunction | str | None
    encodings: tuple[str, ...]
    divisor: str | None = None
    compat: bool = False
    layer_function: MetricFunction | str | None = None
    sampled_function: MetricFunction | str | None = None
    output: str | None = None
    source: str = "graph"

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValidationError(f"metric {self.name!r}: group must be one of {list(GROUPS)}, got {self.group!r}")
        unknown = [e for e in self.encodings if e not in ENCODINGS]
        if unknown or not self.encodings:
            raise ValidationError(f"metric {self.name!r}: unknown encoding(s) {unknown}; choose from {list(ENCODINGS)}")
        if self.divisor not in (None,) + DIVISOR_COLUMNS:
            raise ValidationError(f"metric {self.name!r}: divisor must be None, 'nodes' or 'edges', got {self.divisor!r}")
        if self.source not in ("graph", "masks"):
            raise ValidationError(f"metric {self.name!r}: source must be 'graph' or 'masks', got {self.source!r}")

    def applies_to(self, encoding: str) -> bool:
        return encoding in self.encodings

    def function_for(self, layered: bool, *, sampled: bool = False) -> MetricFunction:
        """The callable for a network graph (MGE) or a rolled layer; ``sampled``: the estimator."""
        chosen = self.sampled_function if sampled else (self.layer_function if layered else None)
        return resolve(chosen or self.function)


def resolve(function: MetricFunction | str) -> MetricFunction:
    """A record's function: callables as they are, ``"module:function"`` imported from ``sparsetopo.metrics``."""
    if callable(function):
        return function
    module, _, name = str(function).partition(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


_ALL = ENCODINGS
_MGE = ("mge",)
_LAYERS = LAYER_ENCODINGS


def _topometric(name, family, label, function, encodings=_ALL, divisor=None, compat=False, **kw) -> Metric:
    return Metric(name, "topometrics", family, label, function, encodings, divisor, compat, **kw)


def _ramanujan(name: str, label: str) -> Metric:
    return Metric(name, "ramanujan", "Ramanujan", label, "ramanujan:ramanujan_metrics", _LAYERS, compat=True,
                  output=name)


def _effective(name: str, label: str, divisor: str | None) -> Metric:
    return Metric(name, "effective", "Effective", label, f"effective:{name}", _MGE, divisor)


#: name -> record, in pool-column order (``README.md``): the 16 topometrics by family (paper Table 2),
#: then the Ramanujan metrics, layer density and the effective MGE metrics (``metrics.md`` §5b).
METRIC_REGISTRY: dict[str, Metric] = {m.name: m for m in (
    _topometric("sink_nodes", "Local", "sink", "local:sink_nodes", _MGE, "nodes", True),
    _topometric("source_nodes", "Local", "source", "local:source_nodes", _MGE, "nodes", True),
    _topometric("disconnected_nodes", "Local", "disc.", "local:disconnected_nodes", _MGE, "nodes"),
    _topometric("removable_out", "Local", "r-out", "local:removable_out", _MGE, compat=True),
    _topometric("removable_in", "Local", "r-in", "local:removable_in", _MGE, compat=True),
    _topometric("neighbors_1hop", "Neighbour", "N1 (1-hop)", "neighbourhood:neighbors_1hop", divisor="edges"),
    _topometric("neighbors_2hop", "Neighbour", "N2 (2-hop)", "neighbourhood:neighbors_2hop", _MGE, "edges"),
    # on a rolled layer the motif column holds the exact size-3 connected count (metrics.md §1, footnote 6)
    _topometric("motifs_4", "Neighbour", "motif(4)", "neighbourhood:motifs_4", divisor="edges",
                layer_function="neighbourhood:motifs_3", sampled_function="neighbourhood:motifs_4_estimate"),
    _topometric("k_core", "Strength", "k-core", "strength:k_core", divisor="edges"),
    _topometric("node_strength", "Strength", "strength S", "strength:node_strength", divisor="edges", compat=True),
    _topometric("n_components", "Global", "C (components)", "components:n_components"),
    _topometric("mean_component_size", "Global", "C_avg/|V| (= 1/C)", "components:mean_component_size", divisor="nodes"),
    _topometric("cut_edges", "Global", "cut-edges", "components:cut_edges", divisor="edges"),
    _topometric("cut_nodes", "Global", "cut-nodes", "components:cut_nodes", divisor="edges"),
    _topometric("spectral_gap", "Expansion", "spectral gap γ(A)", "expansion:spectral_gap", compat=True),
    _topometric("spectral_radius", "Expansion", "spectral radius ρ(L)", "expansion:spectral_radius", compat=True),
    _ramanujan("delta_r", "Δr"),
    _ramanujan("delta_r_imdb", "Δr_imdb"),
    _ramanujan("lambda_imsg", "λ_imsg"),
    Metric("layer_density", "layer_density", "Density", "layer density", "density:mask_layer_density", _LAYERS,
           source="masks"),
    _effective("effective_nodes", "eff. nodes", "nodes"),
    _effective("effective_edges", "eff. edges", "edges"),
    _effective("effective_paths", "log10(1+paths)", None),
)}


def register(metric: Metric) -> Metric:
    """Add ``metric`` to the registry (its column then flows into rows, ``normalize``, pools,
    analysis and figures). ValidationError if the name is taken."""
    if not isinstance(metric, Metric):
        raise ValidationError(f"register needs a Metric record, got {type(metric).__name__}")
    if metric.name in METRIC_REGISTRY or metric.name in DIVISOR_COLUMNS:
        raise ValidationError(f"metric {metric.name!r} is already registered")
    METRIC_REGISTRY[metric.name] = metric
    return metric


def unregister(name: str) -> None:
    """Remove a metric added with :func:`register` (tests, plugins)."""
    METRIC_REGISTRY.pop(name, None)


def select(groups: Iterable[str] | None = None, encoding: str | None = None,
           source: str | None = None) -> list[Metric]:
    """The records of ``groups`` (all if None) that apply to ``encoding`` (all if None), in registry order."""
    groups = None if groups is None else tuple(groups)
    return [m for m in METRIC_REGISTRY.values()
            if (groups is None or m.group in groups) and (encoding is None or m.applies_to(encoding))
            and (source is None or m.source == source)]


def names(groups: Iterable[str] | None = None, encoding: str | None = None) -> list[str]:
    """Column names of :func:`select`."""
    return [m.name for m in select(groups, encoding)]


def feature_names(encoding: str = "mge") -> list[str]:
    """The regression features of an encoding (the topometrics that apply to it): 16 for ``mge``, 10 rolled."""
    return names((FEATURE_GROUP,), encoding)


def families(encoding: str = "mge", group: str = FEATURE_GROUP) -> dict[str, list[str]]:
    """``{family: [metric, ...]}`` of one group in registry order (the heatmap's row blocks)."""
    out: dict[str, list[str]] = {}
    for metric in select((group,), encoding):
        out.setdefault(metric.family, []).append(metric.name)
    return out


def divisors() -> dict[str, str]:
    """``{metric: "nodes" | "edges"}`` for every metric normalised by |V| or |E|."""
    return {m.name: m.divisor for m in METRIC_REGISTRY.values() if m.divisor is not None}


def labels() -> dict[str, str]:
    """``{metric: display label}`` for every metric."""
    return {m.name: m.label for m in METRIC_REGISTRY.values()}
