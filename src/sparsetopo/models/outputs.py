"""What a model returns, reduced to its logits.

Some classifiers return more than logits in train mode: torchvision's GoogLeNet and Inception-v3
return namedtuples ``(logits, aux_logits…)`` (their auxiliary classifiers), Hugging Face-style
models a mapping with a ``"logits"`` entry. sparsetopo scores and trains on the main logits; the
auxiliary heads receive no gradient from it (pruners score their weights 0).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ValidationError


def logits_of(output: Any, model: nn.Module) -> torch.Tensor:
    """The logits in ``output`` of ``model``: the tensor itself, ``output.logits`` /
    ``output["logits"]``, or the first item of a tuple (torchvision's ``(logits, aux_logits…)``)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        found = output.get("logits")
    else:
        found = getattr(output, "logits", None)
        if found is None and isinstance(output, (tuple, list)) and output:
            found = output[0]
    if not isinstance(found, torch.Tensor):
        raise ValidationError(f"model {type(model).__name__} returned a {type(output).__name__}; sparsetopo needs "
                              "logits: a tensor (N, C), a tuple whose first item is one, or an object / mapping "
                              "with a 'logits' tensor")
    return found


def logits_hook(module: nn.Module, args: Any, output: Any) -> torch.Tensor:
    """Forward hook (``module.register_forward_hook(logits_hook)``) replacing the output by its logits."""
    return logits_of(output, module)


__all__ = ["logits_of", "logits_hook"]
