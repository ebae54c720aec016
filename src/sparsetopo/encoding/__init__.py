"""Graph encodings of a (sparse) network: the unrolled MGE and the rolled / rolled-channel BGEs.

>>> graph = encode(model, (3, 32, 32), kind="mge")           # MultipartiteGraph
>>> layers = encode(model, (3, 32, 32), kind="rolled")       # LayerGraphs (list[BipartiteGraph], .kind)

Definitions: spec ``encoding.md`` (and paper §2, §3.1–3.2, Appendix C). The encodings are the
records of :data:`ENCODING_REGISTRY` (:mod:`.registry`). Importing this package loads no torch;
:func:`encode` does.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import ValidationError
from ..graph import (BipartiteGraph, LayerGraphs, MultipartiteGraph, load_bipartite_npz, load_graph,
                     save_bipartite_npz, save_graph)
from ..validation import check_choice, check_input_shape
from .memory import MGEPlan, count_mge, plan_mge
from .registry import ENCODING_REGISTRY, ENCODINGS, LAYER_ENCODINGS, NETWORK_ENCODINGS, Encoding


def encode(model, input_shape=None, kind: str = "mge",
           masks: Mapping[str, Any] | None = None, identity_skips: bool = True, *,
           progress: bool = False, max_memory: int | str | None = None,
           plan: MGEPlan | None = None) -> MultipartiteGraph | LayerGraphs:
    """Encode ``model`` (with its masks) as a graph.

    Parameters
    ----------
    model : torch.nn.Module; its Conv2d / Linear weights are the weighted layers.
    input_shape : (C, H, W) of one input sample (the MGE depends on it; rolled ones do not, but a
        given shape must still have the channels the first layer takes). ``None``: (C_in of the first
        conv, 32, 32).
    kind : a name of :data:`ENCODING_REGISTRY`: ``"mge"`` -> :class:`MultipartiteGraph`;
        ``"rolled"`` / ``"rolled_channel"`` -> :class:`LayerGraphs` (a ``list[BipartiteGraph]``
        whose ``kind`` says which), one per prunable layer in ``named_modules()`` order, named by
        the module path.
    masks : ``{parameter name: bool tensor}`` overriding the model's ``torch.nn.utils.prune``
        masks (validated; raises :class:`~sparsetopo.errors.MaskError` naming the parameter).
        ``None``: the model's own masks, dense layers where it has none.
    identity_skips : MGE only; ``False`` leaves out the weight-1 edges of identity /
        parameter-free shortcuts (the official code encodes only convolutional shortcuts).
    progress : show a tqdm bar over the layers (MGE).
    max_memory : bytes, or a size like ``"16G"``. MGE: |V| and |E| are counted from the plan and
        the masks first (:func:`count_mge`, no edge built); if the estimated peak
        (:func:`.memory.estimate_memory`) exceeds ``max_memory`` (default: what the machine
        has), a :class:`~sparsetopo.errors.MemoryEstimateError` gives the estimate instead.
    plan : MGE only; a :func:`plan_mge` result for this very model, input shape, masks and
        ``identity_skips`` (e.g. made for a memory check first), so the model is traced and planned
        once; a plan made for other arguments is ignored.

    Raises :class:`~sparsetopo.errors.UnsupportedOpError` for an op the MGE encoder does not
    know (naming the fx node and module path), a :class:`ValidationError` when ``input_shape`` has
    not the channels the first layer takes (every encoding: the rolled ones ignore the spatial size
    only), and warns (:class:`~sparsetopo.errors.FullyPrunedWarning`) naming fully pruned layers.
    """
    from torch import nn

    check_choice(kind, ENCODINGS, "encoding")
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    given = input_shape is not None
    input_shape = check_input_shape(input_shape if given else _default_input_shape(model))
    if given and kind in LAYER_ENCODINGS:  # the MGE traces the model at this shape anyway
        _check_input_fits(model, input_shape)
    _warn_fully_pruned(model, masks, kind)
    return ENCODING_REGISTRY[kind].encoder(model, input_shape, masks, identity_skips=identity_skips,
                                           progress=progress, max_memory=max_memory, plan=plan)


def _default_input_shape(model) -> tuple[int, int, int]:
    from torch import nn

    from ..masks import prunable_modules

    first = next(iter(prunable_modules(model).values()), None)
    return (first.in_channels if isinstance(first, nn.Conv2d) else 3, 32, 32)


def _check_input_fits(model, input_shape: tuple[int, int, int]) -> None:
    """A rolled encoding reads only the weights, but a shape the caller gives must still fit the model
    (e.g. its channels): one forward pass of one zero sample in eval mode, which any mismatch fails."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape)))
    except (RuntimeError, ValueError) as exc:
        raise ValidationError(f"input_shape {input_shape} does not fit the model: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    finally:
        model.train(was_training)


def _warn_fully_pruned(model, masks, kind: str) -> None:
    """Name the layers that keep no weight, from ``masks`` over the model's own."""
    from ..masks import get_masks, validate_masks, warn_fully_pruned

    layer_masks = get_masks(model)
    layer_masks.update(validate_masks(model, masks) if masks is not None else {})
    warn_fully_pruned(layer_masks, f"encoding ({kind})", stacklevel=4)


__all__ = ["ENCODINGS", "ENCODING_REGISTRY", "Encoding", "LAYER_ENCODINGS", "NETWORK_ENCODINGS", "encode", "count_mge", "plan_mge", "MGEPlan",
           "MultipartiteGraph", "BipartiteGraph", "LayerGraphs", "save_bipartite_npz", "load_bipartite_npz",
           "load_graph", "save_graph"]
