"""Node maps: which MGE nodes each scalar of a traced tensor stands for.

A *node map* of a traced value of shape (1, *S) is an int64 tensor of shape (K, *S): slot k of
position p holds the id of a node that feeds p through parameter-free ops only, or -1 (nothing:
zero padding, channel padding, or an unused slot). The batch dimension of the traced value is
reused for the K slots: ops that only move or select scalars (flatten, view, slicing, cat along
channels, padding, ...) are applied to a node map verbatim, once per slot. K = 1 for plain
maps; pooling makes set-valued maps (K = window size): each pooled position stands for every node
of its window (paper Appendix C).

This module holds the rules for the parameter-free op kinds of :mod:`sparsetopo.tracing`; they
cost O(map size), never O(edges).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

NONE = -1  #: id of "no node" in a node map


def pad_slots(ids: torch.Tensor, k: int) -> torch.Tensor:
    """``ids`` with its slot dimension padded to ``k`` slots of -1."""
    if ids.shape[0] == k:
        return ids
    filler = torch.full((k - ids.shape[0], *ids.shape[1:]), NONE, dtype=ids.dtype)
    return torch.cat([ids, filler])


def compact_slots(ids: torch.Tensor) -> torch.Tensor:
    """Drop slots that are -1 everywhere (keeps at least one)."""
    if ids.shape[0] == 1:
        return ids
    used = (ids != NONE).reshape(ids.shape[0], -1).any(1)
    used[0] = used[0] or not used.any()
    return ids[used]


# -- pooling ---------------------------------------------------------------------------------
def _pool_windows(size_in: int, size_out: int, kernel: int, stride: int, padding: int,
                  dilation: int) -> torch.Tensor:
    """(size_out, kernel) input indices of each window along one axis; -1 outside the input."""
    idx = (torch.arange(size_out)[:, None] * stride - padding + torch.arange(kernel)[None, :] * dilation)
    return torch.where((idx >= 0) & (idx < size_in), idx, NONE)


def _adaptive_windows(size_in: int, size_out: int) -> torch.Tensor:
    """(size_out, max window) indices of PyTorch's adaptive pooling windows along one axis:
    window i = [floor(i·n/m), ceil((i+1)·n/m)); -1 pads the shorter windows."""
    starts = [(i * size_in) // size_out for i in range(size_out)]
    ends = [-((-(i + 1) * size_in) // size_out) for i in range(size_out)]
    width = max(e - s for s, e in zip(starts, ends))
    idx = torch.tensor(starts)[:, None] + torch.arange(width)[None, :]
    return torch.where(idx < torch.tensor(ends)[:, None], idx, NONE)


def gather_windows(ids: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Pool a (K, C, H, W) map with per-axis windows ``rows`` (Ho, kh), ``cols`` (Wo, kw).

    Returns the set-valued (K·kh·kw, C, Ho, Wo) map (slots of empty windows compacted away).
    """
    k, c = ids.shape[:2]
    padded = F.pad(ids, (0, 1, 0, 1), value=NONE)  # index -1 reads the padding row / column
    g = padded[:, :, rows[:, :, None, None], cols[None, None, :, :]]  # (K, C, Ho, kh, Wo, kw)
    g = g.permute(0, 3, 5, 1, 2, 4).reshape(k * rows.shape[1] * cols.shape[1], c, rows.shape[0], cols.shape[0])
    return compact_slots(g)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def pool_geometry(module_or_args: nn.Module | dict) -> dict:
    """Kernel / stride / padding / dilation of a max or average pool (module or functional args)."""
    g = module_or_args if isinstance(module_or_args, dict) else vars(module_or_args)
    kernel = _pair(g["kernel_size"])
    stride = g.get("stride")
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    return {"kernel": kernel, "stride": stride, "padding": _pair(g.get("padding", 0)),
            "dilation": _pair(g.get("dilation", 1) or 1)}


def pool(ids: torch.Tensor, out_hw: Sequence[int], kernel, stride, padding, dilation) -> torch.Tensor:
    """Max / average pooling of a (K, C, H, W) map to output size ``out_hw`` (from ShapeProp, so
    ``ceil_mode`` needs no formula here)."""
    h, w = ids.shape[-2:]
    rows = _pool_windows(h, out_hw[0], kernel[0], stride[0], padding[0], dilation[0])
    cols = _pool_windows(w, out_hw[1], kernel[1], stride[1], padding[1], dilation[1])
    return gather_windows(ids, rows, cols)


def adaptive_pool(ids: torch.Tensor, out_hw: Sequence[int]) -> torch.Tensor:
    """Adaptive (incl. global) pooling of a (K, C, H, W) map to output size ``out_hw``."""
    h, w = ids.shape[-2:]
    return gather_windows(ids, _adaptive_windows(h, out_hw[0]), _adaptive_windows(w, out_hw[1]))


def reduce_dims(ids: torch.Tensor, dims: Sequence[int], keepdim: bool) -> torch.Tensor:
    """``mean`` / ``sum`` / ``amax`` over ``dims`` (batch dim excluded): the reduced positions
    become slots."""
    nd = ids.dim()
    dims = sorted({d % nd for d in dims})
    keep = [d for d in range(1, nd) if d not in dims]
    moved = ids.permute(0, *dims, *keep)
    out = moved.reshape(-1, *[ids.shape[d] for d in keep])
    if keepdim:
        for d in dims:
            out = out.unsqueeze(d)
    return compact_slots(out)


# -- verbatim application of index ops ---------------------------------------------------------
def apply_verbatim(node: fx.Node, args: tuple, kwargs: dict, module: nn.Module | None) -> Any:
    """Run the op of ``node`` on node maps (``args`` / ``kwargs`` already substituted).

    Valid for ops that only move or select scalars. The op runs once per slot on a batch of one,
    exactly as in the traced forward pass (so ``x.view(1, -1)`` works too); tensors among the
    arguments first get a common slot count, and the per-slot results are concatenated along the
    slot dimension (element-wise for tuple results such as ``chunk``). The caller checks the result
    shape against the traced one.
    """
    maps = [a for a in _flat(args) + _flat(kwargs) if isinstance(a, torch.Tensor)]
    k = max((m.shape[0] for m in maps), default=1)
    results = []
    for slot in range(k):
        # contiguous: our maps' memory layout may differ from the traced tensors' (view needs it)
        a, kw = _map_tensors((args, kwargs), lambda t: pad_slots(t, k)[slot:slot + 1].contiguous())
        results.append(_call(node, a, kw, module))
    if k == 1:
        return results[0]
    first = results[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(results)
    if isinstance(first, (tuple, list)) and all(isinstance(r, torch.Tensor) for r in first):
        return type(first)(torch.cat(parts) for parts in zip(*results))
    return first  # sizes and other plain values are the same for every slot


def _call(node: fx.Node, args: tuple, kwargs: dict, module: nn.Module | None) -> Any:
    if node.op == "call_module":
        return module(*args, **kwargs)
    if node.op == "call_method":
        return getattr(args[0], str(node.target))(*args[1:], **kwargs)
    return node.target(*args, **kwargs)


def pad_map(args: tuple, kwargs: dict, module: nn.Module | None) -> torch.Tensor:
    """Zero / constant padding (padded positions are -1); reflect / replicate padding repeats ids."""
    if module is not None:
        x, pads = args[0], tuple(module.padding)
        mode = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate"}.get(type(module), "constant")
    else:
        bound = _bind_pad(*args, **kwargs)
        x, pads, mode = bound["input"], tuple(bound["pad"]), bound["mode"]
    return pad_ids(x, pads, mode)


def pad_ids(ids: torch.Tensor, pads: tuple, mode: str) -> torch.Tensor:
    """Pad a node-id map: constant padding adds -1 (no node); reflect / replicate / circular repeat ids."""
    if mode == "constant":
        return F.pad(ids, pads, mode="constant", value=NONE)
    # these modes only move values: run them on float64 ids (exact below 2**53)
    return F.pad(ids.double(), pads, mode=mode).round().long()


def _bind_pad(input, pad, mode="constant", value=None):
    return {"input": input, "pad": pad, "mode": mode}


def _flat(obj: Any) -> list:
    if isinstance(obj, (list, tuple)):
        return [y for x in obj for y in _flat(x)]
    if isinstance(obj, dict):
        return [y for x in obj.values() for y in _flat(x)]
    return [obj]


def _map_tensors(obj: Any, fn) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(_map_tensors(x, fn) for x in obj)
    if isinstance(obj, list):
        return [_map_tensors(x, fn) for x in obj]
    if isinstance(obj, dict):
        return {k: _map_tensors(v, fn) for k, v in obj.items()}
    return obj


def reduce_args(args: tuple, kwargs: dict) -> tuple[list[int], bool]:
    """``(dims, keepdim)`` of a ``mean`` / ``sum`` / ``amax`` call (all dims but batch if none)."""
    rest = list(args[1:])
    dims = kwargs.get("dim", rest[0] if rest else None)
    keepdim = bool(kwargs.get("keepdim", rest[1] if len(rest) > 1 else False))
    nd = args[0].dim()
    if dims is None:
        dims = list(range(nd))
    elif isinstance(dims, int):
        dims = [dims]
    return [int(d) for d in dims], keepdim


__all__ = ["NONE", "pad_slots", "compact_slots", "pool", "pool_geometry", "adaptive_pool", "reduce_dims",
           "apply_verbatim", "pad_map", "reduce_args", "gather_windows"]
