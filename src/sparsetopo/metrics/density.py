"""Layer density of the metrics stage: :func:`sparsetopo.density.layer_density` (the one
implementation), and the densities a layered graph file still tells without its masks."""
from __future__ import annotations

from typing import Any

from ..density import layer_density

__all__ = ["layer_density", "graph_layer_density", "mask_layer_density"]


def mask_layer_density(model: Any, masks: Any, input_shape: Any = None) -> dict[str, float]:
    """The ``layer_density`` record's function (``source="masks"``): :func:`layer_density` of ``masks``."""
    return layer_density(masks)


def graph_layer_density(layers: Any) -> dict[str, float]:
    """Layer densities recoverable from a layered encoding alone (a graph file, no masks).

    A rolled BGE has one edge per kept weight, so its layer density is |E| / (left · right), keyed
    ``<layer name>.weight`` like :func:`layer_density`; a rolled-channel edge stands for a whole
    kernel slice, so its density is unknown (empty dict). O(L).
    """
    if getattr(layers, "kind", None) != "rolled":
        return {}
    return {f"{g.name}.weight": g.num_edges / (g.num_left * g.num_right) for g in layers}
