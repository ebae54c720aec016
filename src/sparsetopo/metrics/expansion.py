"""Expansion: spectral gap of A and spectral radius of L = D − A (``metrics.md`` §1 rows 15-16, §3).

A is the symmetric |V|×|V| adjacency of U(G) with A_uv = A_vu = |w_uv| (stored once per direction,
not doubled); D = diag(weighted degree). Graphs with |V| ≤ :data:`DENSE_MAX_NODES` use dense
``eigvalsh``; larger ones ARPACK Lanczos (``scipy.sparse.linalg.eigsh``) on a numba matvec over
the shared CSR (float32 |w|, float64 accumulation), each matvec O(|E|).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse.linalg as spla

from ..validation import check_choice
from . import _kernels
from ._prepared import GraphLike, PreparedGraph, prepare
from ._warn import nan_warning

DENSE_MAX_NODES = 5000
TOLERANCE = 1e-8  # ARPACK relative accuracy of the eigenvalues (metrics.md §3)
#: Lanczos basis size (ARPACK ncv). Asking for exactly the eigenvalues needed (k = 2 for the gap)
#: with a 40-vector basis took 41 matvecs on ResNet-20@0.98 where k = 4 took 174.
LANCZOS_VECTORS = 40
#: share of the top eigenvector's mass a second component must hold to count as a tie.
TIE_MASS = 1e-3


def _dense_adjacency(p: PreparedGraph) -> np.ndarray:
    dense = np.zeros((p.num_nodes, p.num_nodes), dtype=np.float64)
    rows = np.repeat(np.arange(p.num_nodes), np.diff(p.indptr))
    dense[rows, p.indices] = p.adj_weight
    return dense


def weighted_degree(p: PreparedGraph) -> np.ndarray:
    """Σ_{e∋v} |w_e| per node (= A·1), float64. O(|E|)."""
    return _kernels.adjacency_matvec(p.indptr, p.indices, p.adj_weight, np.ones(p.num_nodes))


def _operator(p: PreparedGraph, laplacian: bool) -> spla.LinearOperator:
    strength = weighted_degree(p) if laplacian else None

    def matvec(x):
        x = np.ascontiguousarray(x, dtype=np.float64).ravel()
        ax = _kernels.adjacency_matvec(p.indptr, p.indices, p.adj_weight, x)
        return strength * x - ax if laplacian else ax

    return spla.LinearOperator((p.num_nodes, p.num_nodes), matvec=matvec, dtype=np.float64)


def _start_vector(n: int) -> np.ndarray:
    return 1.0 + 0.1 * np.random.default_rng(0).random(n)  # positive: overlaps every Perron vector


def _top_algebraic(p: PreparedGraph, k: int, laplacian: bool, which: str = "LA"):
    """(eigenvalues descending by ``which``, eigenvectors) of A or L; sparse Lanczos."""
    vals, vecs = spla.eigsh(_operator(p, laplacian), k=k, which=which, tol=TOLERANCE,
                            ncv=min(p.num_nodes, LANCZOS_VECTORS), v0=_start_vector(p.num_nodes))
    order = np.argsort(-np.abs(vals) if which == "LM" else -vals)
    return vals[order], vecs[:, order]


def _check(p: PreparedGraph, metric: str, min_nodes: int = 2) -> float | None:
    if p.num_nodes < min_nodes:
        return nan_warning(metric, f"|V| = {p.num_nodes} < {min_nodes}")
    if not p.weights_finite:
        return nan_warning(metric, "a weight is NaN or infinite")
    return None


def spectral_gap(graph: GraphLike, *, compat: str = "default") -> float:
    """γ(A) = λ1(A) − λ2(A): largest minus second-largest *algebraic* eigenvalue of the weighted
    symmetric adjacency, counting multiplicity (so several components sharing the top eigenvalue
    give 0).

    On a non-bipartite U(G) (ResNet / WRN MGEs, through skip edges) this is the algebraic gap, not
    the magnitude rule; on a bipartite one the two agree. ``compat="official"``: |λ|₍₁₎ − |λ|₍₃₎ of
    the three largest-magnitude eigenvalues (NaN if |V| < 4). NaN (with a warning) if |V| < 2,
    weights are not finite or the solver does not converge.

    Sparse path: Lanczos for the top 2 algebraic eigenvalues; a tie of λ1 across components (which
    a single Krylov space cannot see) is detected from the Perron vector's support per component
    (more than :data:`TIE_MASS` of its mass outside the top component gives 0: a gap below the
    solver's resolution). Cost: about 40-200 matvecs of O(|E|).
    """
    check_choice(compat, ("default", "official"), "compat")
    p = prepare(graph)
    bad = _check(p, "spectral_gap", 4 if compat == "official" else 2)
    if bad is not None:
        return bad
    if p.num_edges == 0 or p.total_abs_weight == 0:  # A = 0: every eigenvalue is 0
        return 0.0
    try:
        if compat == "official":
            return _magnitude_gap(p)
        if p.num_nodes <= DENSE_MAX_NODES:
            vals = np.linalg.eigvalsh(_dense_adjacency(p))
            return float(vals[-1] - vals[-2])
        vals, vecs = _top_algebraic(p, 2, laplacian=False)
        if _top_is_tied(p, vecs[:, 0]):
            return 0.0
        return float(vals[0] - vals[1])
    except spla.ArpackError as exc:  # includes ArpackNoConvergence
        return nan_warning("spectral_gap", f"ARPACK failed ({exc})")


def _magnitude_gap(p: PreparedGraph) -> float:
    if p.num_nodes <= DENSE_MAX_NODES:
        mags = np.sort(np.abs(np.linalg.eigvalsh(_dense_adjacency(p))))[::-1]
    else:
        mags = np.abs(_top_algebraic(p, 3, laplacian=False, which="LM")[0])
    return float(mags[0] - mags[2])


def _top_is_tied(p: PreparedGraph, perron: np.ndarray) -> bool:
    """True if the top eigenvector spreads over two or more components (λ1 has multiplicity > 1)."""
    from .components import component_labels

    mass = np.bincount(component_labels(p), weights=perron ** 2)
    mass = np.sort(mass)[::-1] / max(mass.sum(), 1e-300)
    return mass.size > 1 and mass[1] > TIE_MASS


def spectral_radius(graph: GraphLike) -> float:
    """ρ(L) = λ_max(D − A) of the weighted Laplacian (L is PSD, so this is its largest eigenvalue).

    Sanity bound λ_max(L) ≤ max_{uv∈E} (s_u + s_v). NaN (with a warning) if |V| < 2, weights are
    not finite or the solver does not converge. Dense ``eigvalsh`` up to 5000 nodes, else
    Lanczos on the numba matvec (O(|E|) per iteration).
    """
    p = prepare(graph)
    bad = _check(p, "spectral_radius")
    if bad is not None:
        return bad
    if p.num_edges == 0 or p.total_abs_weight == 0:  # L = 0
        return 0.0
    try:
        if p.num_nodes <= DENSE_MAX_NODES:
            adjacency = _dense_adjacency(p)
            laplacian = np.diag(adjacency.sum(axis=1)) - adjacency
            return float(np.linalg.eigvalsh(laplacian)[-1])
        return float(_top_algebraic(p, 1, laplacian=True)[0][0])
    except spla.ArpackError as exc:  # includes ArpackNoConvergence
        return nan_warning("spectral_radius", f"ARPACK failed ({exc})")
