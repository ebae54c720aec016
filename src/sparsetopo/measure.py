"""Encode a (pruned) network and measure it into pool rows: the one pipeline behind the study cell,
``sparsetopo metrics --model`` and ``sparsetopo rank``.

>>> result = measure(model, masks, (3, 32, 32), encodings=("mge", "rolled"), groups=("topometrics",))
>>> result.rows          # one row per network encoding (pool.parquet)
>>> result.layer_rows    # one row per layer of each layered encoding (pool_layers.parquet)

Encodings come from :data:`~sparsetopo.encoding.ENCODING_REGISTRY`, metric groups and columns from
:data:`~sparsetopo.metrics.registry.METRIC_REGISTRY`; the mask-sourced columns (layer density)
from the masks, once per network. Cost: one encoding per name, then the metrics (MGE
metrics dominate: |E| ≈ density × MACs of one forward pass).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Mapping

from .encoding.registry import ENCODING_REGISTRY, ENCODINGS
from .metrics import registry
from .validation import check_choice

#: per-network columns of every MGE (non-layered) row, from the masks: nominal density (kept / N)
#: and effective density (kept weights on an input->output path / N, :mod:`sparsetopo.effective`)
NETWORK_DENSITIES = ("density", "effective_density")

#: ``stage(name)`` -> a context manager around each step (the study cell times and logs them)
StageHook = Callable[[str], ContextManager]


@dataclass
class Measurement:
    """Rows of raw metric values: ``rows`` per network encoding, ``layer_rows`` per (layered encoding, layer)."""

    rows: list[dict] = field(default_factory=list)
    layer_rows: list[dict] = field(default_factory=list)


def measure(model, masks: Mapping[str, Any] | None, input_shape, encodings: Iterable[str] = ENCODINGS,
            groups: Iterable[str] = registry.DEFAULT_GROUPS, *, compat: str = "default",
            motif_sample: int | str | None = None, progress: bool = False,
            stage: StageHook | None = None, max_memory: int | str | None = None) -> Measurement:
    """Encode ``model`` (with ``masks``; None: the model's own masks) for each of ``encodings`` and
    measure the registered metrics of ``groups`` (``topometrics``, ``ramanujan``, ``layer_density``,
    ``effective``) into pool rows (see :func:`sparsetopo.metrics.summary.graph_rows`).

    Network rows (MGE) also carry :data:`NETWORK_DENSITIES` (nominal and effective density).
    ``compat`` / ``motif_sample`` as for :func:`sparsetopo.metrics.topometrics` (the motif estimate
    applies to the MGE only). ``stage(name)`` wraps ``"encode <kind>"`` and ``"metrics <kind>"``.
    ``max_memory`` (bytes or e.g. ``"16G"``; default: the machine's memory): before the MGE is
    encoded, its |V| and |E| are counted from the masks and the encoder's and the metrics' peak
    estimates checked against it (:class:`~sparsetopo.errors.MemoryEstimateError`, no OOM kill).
    """
    from .encoding import encode
    from .masks import get_masks
    from .metrics import prepare
    from .metrics.summary import graph_rows, mask_values

    encodings, groups = tuple(encodings), tuple(groups)
    for kind in encodings:
        check_choice(kind, ENCODINGS, "encoding")
    for group in groups:
        check_choice(group, registry.GROUPS, "metric group")
    stage = stage or (lambda name: contextlib.nullcontext())
    masks = get_masks(model) if masks is None else masks
    from_masks = mask_values(model, masks, input_shape, groups, encodings)
    out = Measurement()
    network = network_densities(model, masks, input_shape) if encodings else {}
    for kind in encodings:
        layered = ENCODING_REGISTRY[kind].layered
        with stage(f"encode {kind}"):  # the MGE's plan (made for the metrics' memory check) lives only here
            plan = None if layered else _check_metrics_memory(model, masks, input_shape, compat, max_memory)
            graph = encode(model, input_shape, kind=kind, masks=masks, max_memory=max_memory, plan=plan)
            del plan
        with stage(f"metrics {kind}"):
            if not layered:  # keep the CSR only: the edge list (12 bytes per edge) is freed first
                graph = prepare(graph)
            rows = graph_rows(graph, kind, groups, mask_values=from_masks, compat=compat, progress=progress,
                              motif_sample=None if layered else motif_sample, max_memory=max_memory)
        del graph  # before the next encoding is built
        if not layered:  # after "encoding", so registered metrics keep their order at the end of the row
            rows = [{"encoding": row["encoding"], **network, **row} for row in rows]
        (out.layer_rows if layered else out.rows).extend(rows)
    return out


def _check_metrics_memory(model, masks, input_shape, compat: str, max_memory):
    """Before encoding an MGE: would its metrics fit? (|V|, |E| counted from the masks, no edges.)
    Returns the MGE plan, which the encoder reuses."""
    from ._memory import check_memory
    from .encoding import plan_mge
    from .metrics import estimate_memory

    plan = plan_mge(model, input_shape, masks)
    nodes, edges = plan.nodes, plan.edges
    check_memory(estimate_memory(nodes, edges, compat, edge_list_kept=False), max_memory,  # freed, see measure()
                 f"the metrics of {type(model).__name__} at input shape {tuple(input_shape)} "
                 f"({nodes} nodes, {edges} edges)")
    return plan


def network_densities(model, masks: Mapping[str, Any], input_shape) -> dict[str, float]:
    """``{"density": kept/N, "effective_density": effective/N}`` of ``masks`` on ``model``."""
    from .effective import effective_density
    from .masks import global_density, validate_masks

    full = validate_masks(model, masks)
    return {"density": float(global_density(full)),
            "effective_density": float(effective_density(model, full, tuple(input_shape)))}
