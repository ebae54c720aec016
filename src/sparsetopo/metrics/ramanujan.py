"""Ramanujan metrics of one rolled-BGE layer (``metrics.md`` §4; paper §4.1, App. D).

Every quantity is spectral on a small bipartite graph (at most a few thousand nodes), computed
from the singular values of its dense biadjacency B: the adjacency [[0, B], [Bᵀ, 0]] has
eigenvalues ±σ_i plus |V| − 2·rank zeros, so λ1 = σ1 and λ2 = σ2 (or 0 when B has one row or
column). Degrees are unweighted. Cost per layer: O(m·k·min(m, k)) per SVD, one SVD per subgraph.
"""
from __future__ import annotations

import math

import numpy as np

from ..graph import BipartiteGraph
from ..errors import ValidationError
from ..validation import check_choice

#: fewer non-isolated nodes than this gives NaN (the released data: ``eigsh(k=3)`` needs n >= 4).
MIN_NODES = 4


def _top_two_eigenvalues(biadjacency: np.ndarray) -> tuple[float, float]:
    """(λ1, λ2) of the symmetric adjacency of a bipartite graph with ≥ 3 nodes."""
    sigma = np.linalg.svd(biadjacency, compute_uv=False)
    return float(sigma[0]), float(sigma[1]) if sigma.size > 1 else 0.0


def _drop_isolated(biadjacency: np.ndarray) -> np.ndarray:
    return biadjacency[biadjacency.any(axis=1)][:, biadjacency.any(axis=0)]


def _bound_difference(pattern: np.ndarray, normalize_bound: bool, compat: str) -> float:
    """(ub − μ̂)/ub (or ub − μ̂) of a biadjacency 0/1 pattern without isolated nodes."""
    m, k = pattern.shape
    if m + k < MIN_NODES:
        return float("nan")
    d_left = pattern.sum() / m
    d_right = pattern.sum() / k
    bound = math.sqrt(d_left - 1.0) + math.sqrt(d_right - 1.0)
    mu = _top_two_eigenvalues(pattern)[1]
    if not normalize_bound:
        return bound - mu
    if bound == 0.0:
        return float("-inf") if compat == "official" and mu > 0 else float("nan")
    return (bound - mu) / bound


def _layer_arrays(layer: BipartiteGraph, compat: str = "default") -> tuple[np.ndarray, np.ndarray]:
    """Dense 0/1 pattern and |W| biadjacency (float64; ``compat="official"``: W rounded to float16
    first, the official encoder's cast, ``metrics.md`` §0)."""
    if not isinstance(layer, BipartiteGraph):
        raise ValidationError(f"Ramanujan metrics need a BipartiteGraph (rolled layer), got {type(layer).__name__}")
    pattern = np.zeros((layer.num_left, layer.num_right), dtype=np.float64)
    weights = np.zeros_like(pattern)
    pattern[layer.src, layer.dst] = 1.0
    weight = layer.weight.astype(np.float16) if compat == "official" else layer.weight
    np.add.at(weights, (layer.src, layer.dst), np.abs(weight.astype(np.float64)))
    return pattern, weights


def delta_r(layer: BipartiteGraph, *, normalize_bound: bool = True, compat: str = "default") -> float:
    """Δr = (ub − μ̂)/ub with ub = √(d_L−1) + √(d_R−1) after dropping isolated nodes, μ̂ = λ2 of the
    unweighted adjacency (``normalize_bound=False``: ub − μ̂, the paper's form).

    NaN when fewer than 4 non-isolated nodes remain (no edges included) or, normalised, when
    ub = 0 (d_L = d_R = 1; ``compat="official"`` gives −inf there, like the released data).
    """
    check_choice(compat, ("default", "official"), "compat")
    pattern, _ = _layer_arrays(layer)
    return _bound_difference(_drop_isolated(pattern), normalize_bound, compat)


def regular_subgraphs(pattern: np.ndarray, group_rule: str = "mge") -> list[tuple[np.ndarray, np.ndarray]]:
    """The kept subgraphs H_d as (left rows, right columns) index pairs (``metrics.md`` §4).

    For each left degree d ≥ 3: left nodes of degree exactly d, every right node they reach;
    kept iff the mean right degree d_R ≥ 3 (``group_rule="hoang"`` also needs ≥ 3 left nodes).
    """
    check_choice(group_rule, ("mge", "hoang"), "group_rule")
    degrees = pattern.sum(axis=1).astype(np.int64)
    kept = []
    for d in np.unique(degrees[degrees >= 3]):
        rows = np.flatnonzero(degrees == d)
        cols = np.flatnonzero(pattern[rows].any(axis=0))
        if rows.size * d / cols.size >= 3 and (group_rule == "mge" or rows.size >= 3):
            kept.append((rows, cols))
    return kept


def ramanujan_metrics(layer: BipartiteGraph, *, normalize_bound: bool = True, group_rule: str = "mge",
                      compat: str = "default") -> dict[str, float]:
    """``delta_r``, ``delta_r_imdb`` and ``lambda_imsg`` of one rolled-BGE layer.

    * ``delta_r``: see :func:`delta_r`.
    * ``delta_r_imdb``: unweighted mean over the kept H_d (:func:`regular_subgraphs`) of the
      per-subgraph Δr (with d_L = d, d_R = mean right degree in H_d). NaN if none is kept.
    * ``lambda_imsg``: mean over the same H_d of λ1 − λ2 of the *weighted* |W| adjacency (not
      normalised; ``compat="official"`` rounds W to float16 first). NaN exactly where
      ``delta_r_imdb`` is NaN, or if a weight is not finite.
    """
    check_choice(compat, ("default", "official"), "compat")
    from ._lanczos import single_blas_thread

    with single_blas_thread():  # small SVDs: threads only add contention (see single_blas_thread)
        return _ramanujan(layer, normalize_bound, group_rule, compat)


def _ramanujan(layer: BipartiteGraph, normalize_bound: bool, group_rule: str, compat: str) -> dict[str, float]:
    pattern, weights = _layer_arrays(layer, compat)
    result = {"delta_r": _bound_difference(_drop_isolated(pattern), normalize_bound, compat)}
    groups = regular_subgraphs(pattern, group_rule)
    if not groups:
        result.update(delta_r_imdb=float("nan"), lambda_imsg=float("nan"))
        return result
    deltas, gaps = [], []
    for rows, cols in groups:
        deltas.append(_bound_difference(pattern[np.ix_(rows, cols)], normalize_bound, compat))
        sub = weights[np.ix_(rows, cols)]
        if np.isfinite(sub).all():
            top, second = _top_two_eigenvalues(sub)
            gaps.append(top - second)
        else:
            gaps.append(float("nan"))
    result.update(delta_r_imdb=float(np.mean(deltas)), lambda_imsg=float(np.mean(gaps)))
    return result
