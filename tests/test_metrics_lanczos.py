"""The Lanczos solver of the sparse spectral path against dense ``eigvalsh``."""
from __future__ import annotations

import numpy as np
import pytest

from sparsetopo.metrics import _lanczos


def _solve(matrix, k, which, block=1):
    run = _lanczos.LanczosRun(matrix.shape[0], k, which=which, tol=1e-10, block=block)
    _lanczos.run_together([run], lambda block, owners: matrix @ block)
    return run


def _random_symmetric(n, seed, sparse_share=0.05):
    rng = np.random.default_rng(seed)
    a = rng.random((n, n)) * (rng.random((n, n)) < sparse_share)
    return a + a.T


@pytest.mark.parametrize("block", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_largest_algebraic_and_magnitude_match_dense(seed, block):
    a = _random_symmetric(300, seed)
    exact = np.linalg.eigvalsh(a)
    run = _solve(a, 2, "LA", block)
    np.testing.assert_allclose(run.values, exact[::-1][:2], rtol=1e-9)
    mags = np.sort(np.abs(exact))[::-1][:3]
    np.testing.assert_allclose(np.abs(_solve(a, 3, "LM", block).values), mags, rtol=1e-9)
    vector = run.ritz_vectors()[:, 0]
    np.testing.assert_allclose(a @ vector, run.values[0] * vector, atol=1e-6)


@pytest.mark.parametrize("block", [1, 2, 3])
def test_thick_restart_keeps_converging(monkeypatch, block):
    a = _random_symmetric(400, 7, sparse_share=0.5)
    exact = np.linalg.eigvalsh(a)[::-1]
    monkeypatch.setattr(_lanczos, "MAX_BASIS_VECTORS", 12)  # forces many restarts
    run = _solve(a, 2, "LA", block)
    assert run.capacity == 16 and run.matvecs > 16
    np.testing.assert_allclose(run.values, exact[:2], rtol=1e-9)
    vectors = run.ritz_vectors()
    np.testing.assert_allclose(a @ vectors, vectors * run.values, atol=1e-6)


@pytest.mark.parametrize("width", [1, 2])
def test_invariant_subspace_is_left_for_the_rest_of_the_space(width):
    # two identical blocks: a start vector sees one copy of λ1 per Krylov space; the reseed after
    # the invariant subspace finds the second copy, so λ1 − λ2 = 0 as it must
    block = _random_symmetric(20, 3, sparse_share=0.6)
    a = np.kron(np.eye(2), block)
    start = np.concatenate([np.ones(20), np.zeros(20)])
    run = _lanczos.LanczosRun(40, 2, tol=1e-10, start=start, block=width)
    _lanczos.run_together([run], lambda x, owners: a @ x)
    top = np.linalg.eigvalsh(block)[-1]
    np.testing.assert_allclose(run.values, [top, top], rtol=1e-9)


def test_runs_share_passes_and_stop_independently():
    a = _random_symmetric(200, 5)
    laplacian = np.diag(a.sum(1)) - a
    runs = [_lanczos.LanczosRun(200, 1, tol=1e-10), _lanczos.LanczosRun(200, 2, tol=1e-10, block=3)]
    calls = []

    def multiply(block, owners):
        calls.append(block.shape[1])
        return np.stack([(laplacian if r is runs[0] else a) @ block[:, i] for i, r in enumerate(owners)], axis=1)

    _lanczos.run_together(runs, multiply)
    assert max(calls) == 4 and len(calls) == max(runs[0].matvecs, runs[1].matvecs // 3)
    assert runs[0].values[0] == pytest.approx(np.linalg.eigvalsh(laplacian)[-1], rel=1e-9)
    np.testing.assert_allclose(runs[1].values, np.linalg.eigvalsh(a)[::-1][:2], rtol=1e-9)


def test_no_convergence_is_reported(monkeypatch):
    monkeypatch.setattr(_lanczos, "MAX_MATVECS", 3)
    with pytest.raises(_lanczos.NoConvergence):
        _solve(_random_symmetric(200, 1), 2, "LA")


@pytest.mark.parametrize("columns", [1, 2, 4, 6])
def test_csr_block_product_matches_dense_adjacency_and_laplacian(columns):
    from sparsetopo.metrics import _kernels, prepare

    from test_metrics_topometrics import dense_adjacency, layered_dag

    g = layered_dag([20, 30, 30, 10], p_edge=0.3, p_skip=0.1, seed=4)
    p, a = prepare(g), dense_adjacency(g)
    x = np.random.default_rng(0).standard_normal((g.num_nodes, columns))
    laplacian = np.arange(columns) % 2 == 1
    y = _kernels.adjacency_matmat(p.indptr, p.indices, p.adj_weight, x, a.sum(1), laplacian)
    want = np.where(laplacian, (np.diag(a.sum(1)) - a) @ x, a @ x)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-9)
