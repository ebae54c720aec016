"""Layer density: nnz(W_l) / numel(W_l) per prunable layer (``metrics.md`` §4), in one place.

Foundation module (numpy only; torch is imported only when a model is passed), so that the masks
stage (``sparsetopo.masks.layer_density``), the metrics (``sparsetopo.metrics.layer_density``), the
measurement pipeline and the CLI all share this one implementation.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .errors import ValidationError


def _array(values: Any) -> np.ndarray:
    return values.detach().cpu().numpy() if hasattr(values, "detach") else np.asarray(values)


def _density(name: str, values: Any) -> float:
    array = _array(values)
    if array.size == 0:
        raise ValidationError(f"layer {name!r} has no entries; its density is undefined")
    return float(np.count_nonzero(array) / array.size)


def _model_masks(model: Any) -> dict[str, Any]:
    """Masks of a torch model: ``weight_mask`` buffers where pruned, else the weight's nonzeros."""
    import torch

    masks = {}
    for module_name, module in model.named_modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            key = f"{module_name}.weight" if module_name else "weight"
            masks[key] = getattr(module, "weight_mask", module.weight)
    return masks


def layer_density(masks_or_model: Any) -> dict[str, float]:
    """Density nnz / numel of every prunable layer, keyed by parameter name.

    Accepts a masks dict ``{parameter_name: bool tensor or array}`` or a ``torch.nn.Module``
    (Conv2d / Linear layers, in ``named_modules()`` order; pruned layers read their ``weight_mask``
    buffer, others count the nonzeros of ``weight``). torch is imported only for a model. O(Σ numel).
    """
    if isinstance(masks_or_model, Mapping):
        masks = masks_or_model
    elif hasattr(masks_or_model, "named_modules"):
        masks = _model_masks(masks_or_model)
    else:
        raise ValidationError(
            f"layer_density needs a masks dict or a torch model, got {type(masks_or_model).__name__}")
    if not masks:
        raise ValidationError("layer_density: no prunable layers (empty masks / no Conv2d or Linear)")
    return {name: _density(name, values) for name, values in masks.items()}



def global_density(masks: Mapping[str, Any]) -> float:
    """Kept weights / prunable weights over all layers in ``masks`` (NaN if there are none). O(Σ numel)."""
    arrays = [_array(m) for m in masks.values()]
    total = sum(a.size for a in arrays)
    return sum(int(np.count_nonzero(a)) for a in arrays) / total if total else float("nan")
