"""Graph encodings of a (sparse) network: the unrolled MGE and the rolled / rolled-channel BGEs.

>>> graph = encode(model, (3, 32, 32), kind="mge")           # MultipartiteGraph
>>> layers = encode(model, (3, 32, 32), kind="rolled")       # list[BipartiteGraph]

Definitions: spec ``encoding.md`` (and paper §2, §3.1–3.2, Appendix C).
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from ..errors import ValidationError
from ..validation import check_choice, check_input_shape
from .graph import (BipartiteGraph, MultipartiteGraph, load_bipartite_npz, load_graph,
                    save_bipartite_npz)

ENCODINGS: tuple[str, ...] = ("mge", "rolled", "rolled_channel")


def encode(model: nn.Module, input_shape=(3, 32, 32), kind: str = "mge",
           masks: Mapping[str, Any] | None = None, identity_skips: bool = True, *,
           progress: bool = False) -> MultipartiteGraph | list[BipartiteGraph]:
    """Encode ``model`` (with its masks) as a graph.

    Parameters
    ----------
    model : the network; its Conv2d / Linear weights are the weighted layers.
    input_shape : (C, H, W) of one input sample (the MGE depends on it; rolled ones do not).
    kind : ``"mge"`` -> :class:`MultipartiteGraph`; ``"rolled"`` / ``"rolled_channel"`` ->
        ``list[BipartiteGraph]``, one per prunable layer in ``named_modules()`` order, named by
        the module path.
    masks : ``{parameter name: bool tensor}`` overriding the model's ``torch.nn.utils.prune``
        masks (validated; raises :class:`~sparsetopo.errors.MaskError` naming the parameter).
        ``None``: the model's own masks, dense layers where it has none.
    identity_skips : MGE only; ``False`` leaves out the weight-1 edges of identity /
        parameter-free shortcuts (the official code encodes only convolutional shortcuts).
    progress : show a tqdm bar over the layers (MGE).

    Raises :class:`~sparsetopo.errors.UnsupportedOpError` for an op the MGE encoder does not
    know (naming the fx node and module path).
    """
    check_choice(kind, ENCODINGS, "encoding")
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    input_shape = check_input_shape(input_shape)
    if kind == "rolled":
        from .rolled import encode_rolled
        return encode_rolled(model, masks)
    if kind == "rolled_channel":
        from .rolled_channel import encode_rolled_channel
        return encode_rolled_channel(model, masks)
    from ..tracing import trace
    from .unrolled import encode_mge

    net = trace(model, input_shape)
    return encode_mge(net, model, masks, identity_skips=identity_skips, progress=progress)


__all__ = ["ENCODINGS", "encode", "MultipartiteGraph", "BipartiteGraph", "save_bipartite_npz",
           "load_bipartite_npz", "load_graph"]
