"""Effective masks (spec metrics.md §5b; Vysogorets & Kempe 2023): the kept weights that lie on at
least one input→output path of the unrolled network.

A kept weight is *effective* when at least one of its unrolled edges (one per output position of
a conv) joins a node reachable from the input layer to a node from which the output layer is
reachable. Weights that only ever multiply zero padding, or that feed or read only dead units, are
not effective; removing them changes no input→output path. This module is the one implementation:
the pruning stage (effective-sparsity targets) and the study/pool (``effective_density`` column)
both call it; it depends on masks and shapes only (data flow stays downstream).

Method (one forward and one backward pass, exact):

* a float32 copy of the model where every prunable weight is its 0/1 mask, biases are 0, every
  other parameter is 1, normalisation / activation / dropout modules are identities and max pools
  become average pools with the same window (for non-negative values "positive iff some input in
  the window is positive" holds for both; the MGE joins every window input to the output);
* ops written in a forward that combine a tensor with constants (``x * w + b``, ``x - mean``,
  ``/ std``: hand-written normalisation and affines) become identities, as in the encoder
  (``tracing.node_identity_module``), since a constant bias would make dead units look alive;
* input = ones of shape (1, *input_shape) (zero padding stays zero, so padding feeds no path);
* after every leaf module the activations pass through an indicator 1[x > 0] whose backward is
  the indicator 1[g > 0] of the incoming gradient, so values stay in {0, 1} up to the sums of a
  residual add — no overflow, no underflow, whatever the depth;
* forward: a unit is positive iff reachable from the input; backward of Σ outputs: its gradient is
  positive iff it reaches an output; ∂/∂w = Σ_positions (input value)·(output gradient) is
  positive iff some unrolled edge of w joins two such units.

Exact in float32: every value is non-negative (0/1 weights, unit parameters, no biases, no
centring), so a sum is zero iff all its terms are — there is no cancellation — and the integer
partial sums stay far below 2^24 (CPU convolutions are direct / GEMM: no Winograd or FFT
subtractions). Checked against float64 and against brute-force reachability in the tests; float32
runs on the fast CPU kernels (ResNet-20: ≈ 0.15–0.3 s per call instead of ≈ 1–2 s in float64).

Cost: one forward + backward pass of one input in float32; memory: the activations of that pass.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .masks import (MaskDict, clone_model, get_masks, prunable_modules, prunable_parameters, remove_masks,
                    validate_masks)
from .errors import UnsupportedOpError
from .tracing import _ELEMENTWISE_MODULES, node_identity_module

#: dtype of the reachability pass (exact, see the module docstring; float64 gives the same masks)
REACHABILITY_DTYPE = torch.float32
#: max pools and their positivity-equivalent average pools
_POOL_SWAPS = {nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool1d: nn.AvgPool1d}


class _Indicator(torch.autograd.Function):
    """Forward 1[x > 0], backward 1[g > 0]: reachability values that never overflow."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return (grad > 0).to(grad.dtype)


def default_input_shape(model: nn.Module) -> tuple[int, ...]:
    """(in_channels, 32, 32) of the first conv, or (in_features,) of a first Linear layer."""
    first = next(iter(prunable_modules(model).values()))
    return (first.in_channels, 32, 32) if isinstance(first, nn.Conv2d) else (first.in_features,)


def _stand_in(module: nn.Module) -> nn.Module | None:
    """The positivity-preserving replacement of a leaf module, or None to keep it."""
    if isinstance(module, _ELEMENTWISE_MODULES):
        return nn.Identity()
    if isinstance(module, nn.AdaptiveMaxPool2d):
        return nn.AdaptiveAvgPool2d(module.output_size)
    for kind, swap in _POOL_SWAPS.items():
        if isinstance(module, kind):
            if module.dilation not in (1, (1, 1)):
                return None
            return swap(module.kernel_size, module.stride, module.padding, ceil_mode=module.ceil_mode,
                        count_include_pad=True)
    return None


def _reachability_copy(model: nn.Module, masks: Mapping[str, torch.Tensor], shape: tuple[int, ...]) -> nn.Module:
    """The float32 0/1 copy described in the module docstring (masks as weights, identities, ...)."""
    copy = remove_masks(clone_model(model)).cpu().to(REACHABILITY_DTYPE).eval()
    for parent in list(copy.modules()):
        for name, child in list(parent.named_children()):
            replacement = _stand_in(child) if not list(child.children()) else None
            if replacement is not None:
                setattr(parent, name, replacement)
    prunable = prunable_modules(copy)
    with torch.no_grad():
        for module in copy.modules():
            for name, param in module.named_parameters(recurse=False):
                param.requires_grad_(False)
                param.fill_(0.0 if module in prunable.values() and name == "bias" else 1.0)
        for name, module in prunable.items():
            module.weight.copy_(masks[name].to(REACHABILITY_DTYPE))
            module.weight.requires_grad_(True)
    copy = _without_constant_combinations(copy, shape)
    for module in copy.modules():
        if not list(module.children()):
            module.register_forward_hook(lambda _m, _i, out: _Indicator.apply(out))
    return copy


def _without_constant_combinations(copy: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """``copy`` with ``x * w + b``, ``x - mean``, ``/ std`` written in a forward made identities
    (:func:`~sparsetopo.tracing.node_identity_module`): a constant bias or a centring would make
    dead units look alive. Models fx cannot trace, or 1-d inputs, keep their forward (the
    encoder refuses the former anyway)."""
    if len(shape) != 3:
        return copy
    try:
        return node_identity_module(copy, shape)
    except UnsupportedOpError:
        return copy


def effective_masks(model: nn.Module, masks: Mapping[str, object] | None = None,
                    input_shape: tuple[int, ...] | None = None) -> MaskDict:
    """``{name: kept and effective}`` (CPU bool) for every prunable weight of ``model``.

    ``masks``: the masks to judge (validated; layers absent stay dense); default the masks on the
    model. ``input_shape``: (C, H, W) or (F,), default :func:`default_input_shape`. The caller's
    model is not changed.
    """
    if masks is None:
        full = get_masks(model)
    else:
        given = validate_masks(model, masks)
        full = {name: given.get(name, torch.ones(p.shape, dtype=torch.bool))
                for name, p in prunable_parameters(model).items()}
    shape = tuple(input_shape) if input_shape is not None else default_input_shape(model)
    copy = _reachability_copy(model, full, shape)
    weights = {name: module.weight for name, module in prunable_modules(copy).items()}
    out = copy(torch.ones((1, *shape), dtype=REACHABILITY_DTYPE))
    grads = torch.autograd.grad(out.sum(), list(weights.values()), allow_unused=True)
    return {name: full[name] & (grad > 0 if grad is not None else torch.zeros_like(full[name]))
            for name, grad in zip(weights, grads)}


def effective_density(model: nn.Module, masks: Mapping[str, object] | None = None,
                      input_shape: tuple[int, ...] | None = None) -> float:
    """Effective kept weights / all prunable weights: the density of :func:`effective_masks`."""
    effective = effective_masks(model, masks, input_shape)
    return sum(int(m.sum()) for m in effective.values()) / sum(m.numel() for m in effective.values())


__all__ = ["effective_masks", "effective_density", "default_input_shape"]
