"""Edge rules of the MGE: one function per connectivity kind (conv2d, linear, identity).

Each rule takes a source node map ``src`` (K slots × the layer input's shape; final node ids,
int32, or int64 past 2**31 nodes; -1 = no node) and a destination id map ``dst`` (the layer
output's shape), and returns a list of ``(src, dst, weight)`` array triples (ids in the maps'
dtype, float32 weights) in a fixed construction order; the caller concatenates all parts once.
Rules are vectorised per layer (per kernel offset for convolutions); memory is O(edges produced).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Edges = tuple[np.ndarray, np.ndarray, np.ndarray]


def _finish(src: np.ndarray, dst: np.ndarray, weight: np.ndarray) -> Edges:
    """Broadcast src (K, ...) / dst / weight to one shape, flatten, drop src = -1."""
    src, dst, weight = np.broadcast_arrays(src, dst, weight)
    src, dst, weight = src.reshape(-1), dst.reshape(-1), weight.reshape(-1)
    keep = src >= 0
    if not keep.all():
        src, dst, weight = src[keep], dst[keep], weight[keep]
    return np.ascontiguousarray(src), np.ascontiguousarray(dst), np.ascontiguousarray(weight, np.float32)


def _valid_outputs(size_in: int, size_out: int, stride: int, padding: int, dilation: int, offset: int):
    """Output index range [lo, hi) whose input index ``i·s + shift`` (shift = offset·d − p) lies in
    [0, size_in); also returns shift."""
    shift = offset * dilation - padding
    lo = max(0, -(shift // stride))
    hi = min(size_out, (size_in - 1 - shift) // stride + 1)
    return lo, max(lo, hi), shift


def conv2d_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, mask: np.ndarray, *,
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                 groups: int) -> list[Edges]:
    """Edges of a Conv2d (encoding.md "Conv edges").

    ``src`` (K, C_in, H, W), ``dst`` (C_out, Ho, Wo), ``weight`` / ``mask`` (C_out, C_in/g, kh, kw).
    For each kernel offset (u, v) the kept weights (o, c') and the rectangle of valid output
    positions give the edges src[k, c, i·s−p+u·d, j·s−p+v·d] → dst[o, i, j] at once. Order: (u, v),
    then slot k, then kept weight (o, c') row-major, then (i, j).
    """
    _, c_in, h, w = src.shape
    c_out, ho, wo = dst.shape
    kh, kw = weight.shape[2:]
    cin_g, cout_g = c_in // groups, c_out // groups
    parts = []
    for u in range(kh):
        i0, i1, sy = _valid_outputs(h, ho, stride[0], padding[0], dilation[0], u)
        if i0 >= i1:
            continue
        for v in range(kw):
            j0, j1, sx = _valid_outputs(w, wo, stride[1], padding[1], dilation[1], v)
            if j0 >= j1:
                continue
            o, cp = np.nonzero(mask[:, :, u, v])
            if o.size == 0:
                continue
            c = (o // cout_g) * cin_g + cp
            y0, x0 = i0 * stride[0] + sy, j0 * stride[1] + sx
            window = src[:, :, y0:y0 + (i1 - i0 - 1) * stride[0] + 1:stride[0],
                         x0:x0 + (j1 - j0 - 1) * stride[1] + 1:stride[1]]
            parts.append(_finish(window[:, c], dst[o, i0:i1, j0:j1], weight[o, cp, u, v][:, None, None]))
    return parts


def linear_edges(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, mask: np.ndarray, **_) -> list[Edges]:
    """Edges of a Linear layer: src (K, *lead, F_in) → dst (*lead, F_out), edge i → o iff
    M[o, i] ≠ 0. Order: kept weight (o, i) row-major, then slot, then leading position."""
    o, i = np.nonzero(mask)
    if o.size == 0:
        return []
    k, f_in = src.shape[0], src.shape[-1]
    src2 = src.reshape(k, -1, f_in)          # (K, P, F_in)
    dst2 = dst.reshape(-1, dst.shape[-1])    # (P, F_out)
    return [_finish(src2[:, :, i].transpose(2, 0, 1), dst2[:, o].T[:, None, :], weight[o, i][:, None, None])]


def identity_edges(src: np.ndarray, dst: np.ndarray, **_) -> list[Edges]:
    """Identity / parameter-free skip: one edge per element, src[k, p] → dst[p], weight 1."""
    return [_finish(src, dst[None], np.float32(1.0))]


#: connectivity kind -> rule
EDGE_RULES: dict[str, Callable[..., list[Edges]]] = {
    "conv2d": conv2d_edges,
    "linear": linear_edges,
    "identity": identity_edges,
    "gate": identity_edges,  # each operand of a product, broadcast to its shape (encoding.md)
}


# -- edge counts without the edges (the memory estimate, encoding/memory.py) ----------------------
def conv2d_edge_count(src: np.ndarray, mask: np.ndarray, *, dst_shape: tuple, stride: tuple[int, int],
                      padding: tuple[int, int], dilation: tuple[int, int], groups: int, **_) -> int:
    """Number of edges :func:`conv2d_edges` would produce, without producing them: per kernel
    offset, Σ_c (kept weights reading channel c) × (source nodes in channel c's valid window).
    O(C_in·H·W·kh·kw) time, O(C_in) memory beyond the maps."""
    _, c_in, h, w = src.shape
    c_out, ho, wo = dst_shape
    kh, kw = mask.shape[2:]
    cin_g, cout_g = c_in // groups, c_out // groups
    present = src >= 0
    total = 0
    for u in range(kh):
        i0, i1, sy = _valid_outputs(h, ho, stride[0], padding[0], dilation[0], u)
        for v in range(kw):
            j0, j1, sx = _valid_outputs(w, wo, stride[1], padding[1], dilation[1], v)
            if i0 >= i1 or j0 >= j1:
                continue
            y0, x0 = i0 * stride[0] + sy, j0 * stride[1] + sx
            window = present[:, :, y0:y0 + (i1 - i0 - 1) * stride[0] + 1:stride[0],
                             x0:x0 + (j1 - j0 - 1) * stride[1] + 1:stride[1]]
            per_channel = window.sum(axis=(0, 2, 3), dtype=np.int64)  # (C_in,)
            o, cp = np.nonzero(mask[:, :, u, v])
            total += int(per_channel[(o // cout_g) * cin_g + cp].sum(dtype=np.int64))
    return total


def linear_edge_count(src: np.ndarray, mask: np.ndarray, **_) -> int:
    """Number of edges :func:`linear_edges` would produce: Σ_i kept(·, i) × source nodes of i."""
    per_feature = (src >= 0).reshape(-1, src.shape[-1]).sum(axis=0, dtype=np.int64)
    return int((mask.sum(axis=0, dtype=np.int64) * per_feature).sum())


def identity_edge_count(src: np.ndarray, dst_shape: tuple, **_) -> int:
    """Number of edges :func:`identity_edges` would produce: one per present source slot, after
    broadcasting ``src`` to the destination shape (a gate's operand may be smaller)."""
    present = src >= 0
    shape = np.broadcast_shapes(present.shape, (1, *dst_shape))
    return int(np.count_nonzero(np.broadcast_to(present, shape)))


#: connectivity kind -> edge count (same arguments as the rule, ``dst_shape`` for ``dst``)
EDGE_COUNTS: dict[str, Callable[..., int]] = {
    "conv2d": conv2d_edge_count,
    "linear": linear_edge_count,
    "identity": identity_edge_count,
    "gate": identity_edge_count,
}


def concat_and_free(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.concatenate`` that releases each input as soon as it is copied (lower peak memory)."""
    if len(arrays) == 1:
        return arrays.pop()
    out = np.empty(sum(a.size for a in arrays), dtype=arrays[0].dtype)
    pos = 0
    while arrays:
        a = arrays.pop(0)
        out[pos:pos + a.size] = a
        pos += a.size
    return out


def merge_duplicates(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, num_nodes: int) -> Edges:
    """Merge repeated (src, dst) pairs, summing their weights; result sorted by (dst, src).

    Sort on the int64 key dst·|V| + src (stable, so the float sums are deterministic).
    """
    if src.size == 0:
        return src, dst, weight
    key = dst.astype(np.int64) * np.int64(num_nodes) + src
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    w = np.add.reduceat(weight[order].astype(np.float64), starts)
    return (src[order][starts], dst[order][starts], w.astype(np.float32))
