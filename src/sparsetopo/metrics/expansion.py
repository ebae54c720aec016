"""Expansion: spectral gap of A and spectral radius of L = D − A (``metrics.md`` §1 rows 15-16, §3).

A is the symmetric |V|×|V| adjacency of U(G) with A_uv = A_vu = |w_uv| (stored once per direction,
not doubled); D = diag(weighted degree). Which solver (all exact to :data:`TOLERANCE`):

* |V| ≤ :data:`DENSE_MAX_NODES`: dense ``eigvalsh`` (cheaper than any iteration there);
* a graph with two node layers (every rolled BGE layer) is bipartite: the eigenvalues of A are
  ±σ_i of the weighted biadjacency B plus |V| − 2·min(m, k) zeros, so the gap comes from the
  singular values of the dense m×k B (O(m·k·min(m, k)), ties included) instead of the O(|V|³)
  full spectrum, up to :data:`SVD_MAX_FLOPS`;
* otherwise Lanczos (:mod:`._lanczos`) on the shared CSR. The gap's run (A) and the radius's run
  (L = D·x − A·x) share every pass over the CSR (:func:`._kernels.adjacency_matmat`), so
  whichever metric is asked first computes and caches both.

``compat="official"`` rounds the weights to float16 first (the official encoder's cast,
``metrics.md`` §0) and takes the magnitude rule for the gap.
"""
from __future__ import annotations

import contextlib

import numba
import numpy as np

from ..validation import check_choice
from . import _kernels, _lanczos
from ._prepared import GraphLike, PreparedGraph, prepare
from ._warn import nan_warning

#: dense ``eigvalsh`` up to this many nodes (measured on the 2-core machine: 5 ms at 128 nodes,
#: 0.3 s at 512, 2.6 s at 1024 when loaded, where Lanczos takes milliseconds).
DENSE_MAX_NODES = 128
#: the bipartite gap from a dense SVD while m·k·min(m, k) stays below this (about 0.1-1 s).
SVD_MAX_FLOPS = 3e8
TOLERANCE = 1e-8  # relative accuracy of the eigenvalues (metrics.md §3)
#: below this many CSR slots the block products run on one numba thread: waking a second thread
#: costs more than the product (rolled layers: 39 ms a call when loaded, microseconds serial).
PARALLEL_MIN_SLOTS = 1 << 20
#: block size of the gap's Lanczos run. A block of 3 needs fewer CSR passes (ResNet-20@0.9 uniform:
#: 40 instead of 61; SynFlow@0.9: 60 instead of 78) but its basis grows 3 vectors a pass, and the
#: reorthogonalisation against it then costs more than the passes saved (measured, one thread:
#: 1.1 vs 2.0 s and 2.9 vs 4.9 s), so one vector it is.
GAP_BLOCK = 1
#: share of the top eigenvector's mass a second component must hold to count as a tie.
TIE_MASS = 1e-3


def weighted_degree(p: PreparedGraph, weights: np.ndarray | None = None) -> np.ndarray:
    """Σ_{e∋v} |w_e| per node (= A·1), float64. O(|E|)."""
    weights = p.adj_weight if weights is None else weights
    return _kernels.adjacency_matvec(p.indptr, p.indices, weights, np.ones(p.num_nodes))


def _dense_adjacency(p: PreparedGraph, weights: np.ndarray) -> np.ndarray:
    dense = np.zeros((p.num_nodes, p.num_nodes), dtype=np.float64)
    rows = np.repeat(np.arange(p.num_nodes), np.diff(p.indptr))
    dense[rows, p.indices] = weights
    return dense


def _check(p: PreparedGraph, metric: str, min_nodes: int = 2) -> float | None:
    if p.num_nodes < min_nodes:
        return nan_warning(metric, f"|V| = {p.num_nodes} < {min_nodes}")
    if not p.weights_finite:
        return nan_warning(metric, "a weight is NaN or infinite")
    return None


def _gap_of(values: np.ndarray, magnitude: bool) -> float:
    """λ1 − λ2 (algebraic) or |λ|₍₁₎ − |λ|₍₃₎ (the official magnitude rule) of an eigenvalue list."""
    if values.size < (3 if magnitude else 2):
        return float("nan")
    if magnitude:
        mags = np.sort(np.abs(values))[::-1]
        return float(mags[0] - mags[2])
    top = np.sort(values)[::-1]
    return float(top[0] - top[1])


def _bipartite_spectrum(p: PreparedGraph, weights: np.ndarray) -> np.ndarray | None:
    """Every eigenvalue of A from the singular values of B, if G has two node layers and the SVD
    is cheap enough; else None."""
    if p.layer_offsets.size != 3:
        return None
    m = int(p.layer_offsets[1])
    k = p.num_nodes - m
    if m == 0 or k == 0 or m * k * min(m, k) > SVD_MAX_FLOPS:
        return None
    biadjacency = np.zeros((m, k))
    rows = np.repeat(np.arange(m), np.diff(p.indptr[:m + 1]))
    biadjacency[rows, p.indices[:p.indptr[m]] - m] = weights[:p.indptr[m]]  # left rows: out parts only
    sigma = np.linalg.svd(biadjacency, compute_uv=False)
    return np.concatenate([sigma, -sigma, np.zeros(p.num_nodes - 2 * sigma.size)])


def _spectra(p: PreparedGraph, compat: str) -> dict:
    """{"gap": γ, "radius": ρ} for the weights of ``compat`` (cached): see the module docstring."""
    key = ("spectra", compat)
    if key not in p.cache:
        with _lanczos.single_blas_thread(), _numba_threads(p):
            p.cache[key] = _compute_spectra(p, compat)
    return p.cache[key]


@contextlib.contextmanager
def _numba_threads(p: PreparedGraph):
    """One numba thread for graphs below :data:`PARALLEL_MIN_SLOTS`, else the configured count."""
    previous = numba.get_num_threads()
    if p.indices.size < PARALLEL_MIN_SLOTS:
        numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _compute_spectra(p: PreparedGraph, compat: str) -> dict:
    weights = p.abs_weights(compat)
    magnitude = compat == "official"
    if p.num_edges == 0 or not np.any(weights):  # A = 0 and L = 0: every eigenvalue is 0
        result = {"gap": 0.0, "radius": 0.0}
    elif p.num_nodes <= DENSE_MAX_NODES:
        adjacency = _dense_adjacency(p, weights)
        result = {"gap": _gap_of(np.linalg.eigvalsh(adjacency), magnitude),
                  "radius": float(np.linalg.eigvalsh(np.diag(adjacency.sum(axis=1)) - adjacency)[-1])}
    else:
        result = _lanczos_spectra(p, weights, magnitude)
    return result


def _lanczos_spectra(p: PreparedGraph, weights: np.ndarray, magnitude: bool) -> dict:
    """γ and ρ by Lanczos, sharing the CSR passes; the bipartite gap by SVD when cheap."""
    strength = weighted_degree(p, weights)
    spectrum = _bipartite_spectrum(p, weights)
    radius_run = _lanczos.LanczosRun(p.num_nodes, 1, tol=TOLERANCE)
    runs = [radius_run]
    gap_run = None
    if spectrum is None:
        gap_run = _lanczos.LanczosRun(p.num_nodes, 3 if magnitude else 2, which="LM" if magnitude else "LA",
                                      tol=TOLERANCE, block=GAP_BLOCK)
        runs.append(gap_run)

    def multiply(block, owners):
        laplacian = np.array([owner is radius_run for owner in owners])
        return _kernels.adjacency_matmat(p.indptr, p.indices, weights, block, strength, laplacian)

    _lanczos.run_together(runs, multiply)
    radius = float(radius_run.values[0])
    if gap_run is None:
        gap = _gap_of(spectrum, magnitude)
    elif magnitude:
        gap = _gap_of(gap_run.values, True)
    else:
        gap = 0.0 if _top_is_tied(p, gap_run.ritz_vectors()[:, 0]) else float(gap_run.values[0] - gap_run.values[1])
    return {"gap": gap, "radius": radius}


def _top_is_tied(p: PreparedGraph, perron: np.ndarray) -> bool:
    """True if the top eigenvector spreads over two or more components (λ1 has multiplicity > 1):
    a single Krylov space sees one copy of a tied eigenvalue, so the tie is read from the Perron
    vector's mass per component (more than :data:`TIE_MASS` outside the top one)."""
    from .components import component_labels

    mass = np.bincount(component_labels(p), weights=perron ** 2)
    mass = np.sort(mass)[::-1] / max(mass.sum(), 1e-300)
    return mass.size > 1 and mass[1] > TIE_MASS


def _spectral(graph: GraphLike, metric: str, compat: str, min_nodes: int) -> float:
    check_choice(compat, ("default", "official"), "compat")
    p = prepare(graph)
    bad = _check(p, metric, min_nodes)
    if bad is not None:
        return bad
    try:
        return _spectra(p, compat)["gap" if metric == "spectral_gap" else "radius"]
    except _lanczos.NoConvergence as exc:
        return nan_warning(metric, str(exc))


def spectral_gap(graph: GraphLike, *, compat: str = "default") -> float:
    """γ(A) = λ1(A) − λ2(A): largest minus second-largest *algebraic* eigenvalue of the weighted
    symmetric adjacency, counting multiplicity (so several components sharing the top eigenvalue
    give 0).

    On a non-bipartite U(G) (ResNet / WRN MGEs, through skip edges) this is the algebraic gap, not
    the magnitude rule; on a bipartite one the two agree. ``compat="official"``: |λ|₍₁₎ − |λ|₍₃₎ of
    the three largest-magnitude eigenvalues with float16-rounded weights (NaN if |V| < 4). NaN
    (with a warning) if |V| < 2, weights are not finite or the solver does not converge.

    Sparse path: Lanczos for the top 2 algebraic eigenvalues (a tie of λ1 across components is
    read from the Perron vector, :func:`_top_is_tied`), sharing its passes with
    :func:`spectral_radius`. Cost: tens to a few hundred passes of O(|E|).
    """
    return _spectral(graph, "spectral_gap", compat, 4 if compat == "official" else 2)


def spectral_radius(graph: GraphLike, *, compat: str = "default") -> float:
    """ρ(L) = λ_max(D − A) of the weighted Laplacian (L is PSD, so this is its largest eigenvalue).

    Sanity bound λ_max(L) ≤ max_{uv∈E} (s_u + s_v). NaN (with a warning) if |V| < 2, weights are
    not finite or the solver does not converge. ``compat="official"`` rounds the weights to
    float16 first. Dense up to :data:`DENSE_MAX_NODES` nodes, else Lanczos (about 20 passes of
    O(|E|), shared with :func:`spectral_gap`).
    """
    return _spectral(graph, "spectral_radius", compat, 2)
