"""Extreme eigenvalues of symmetric operators by Lanczos with full reorthogonalisation and thick
restarts, stepped one matrix-vector product at a time so that several runs share each pass over
the CSR (:func:`run_together`).

Why not ARPACK (``scipy.sparse.linalg.eigsh``): on the shared 2-core machine ARPACK spent more
time in its own restarts and multithreaded BLAS than in the matvecs (ResNet-20@0.9: 4.5 of 7.4 s
for ρ(L)), and it needed 42 matvecs for ρ(L) where an unrestarted Lanczos converges in about 20
(a restart throws away Krylov information). Here the basis grows until convergence or until
:data:`MAX_BASIS_BYTES`, then restarts *thickly*: the wanted Ritz vectors are kept (with their
couplings), so no information about them is lost.

Method (symmetric Arnoldi): V holds orthonormal basis vectors, T = VᵀMV is built from the
Gram-Schmidt coefficients of each new product w = M v_j (one pass, a second one only when
cancellation lost more than 30% of ‖w‖, "twice is enough"). The Ritz values θ_i = eig(T), with
Ritz vector Vy_i, have residual ‖M V y_i − θ_i V y_i‖ = β·|y_i[-1]| (β = the norm of the next,
orthogonalised, vector). A value is converged when that residual is ≤ ``tol``·max|θ|; since the
eigenvalue error is at most the residual (and about residual²/gap), this is at least as tight as
ARPACK's relative ``tol``. An invariant subspace (β ≈ 0, e.g. a start vector supported on few
components) is continued from a fresh random vector orthogonal to V, and the run may not stop
for :data:`STEPS_AFTER_RESEED` steps, so eigenvalues outside that subspace are still found.
Memory: the basis, n float64 per vector (at most :data:`MAX_BASIS_VECTORS`).
"""
from __future__ import annotations

import numpy as np

#: most bytes the basis of one run may take before a thick restart (at least 4·(k + 2) vectors).
MAX_BASIS_BYTES = 1 << 30
#: most basis vectors before a thick restart (each step solves a dense eigenproblem of this size).
MAX_BASIS_VECTORS = 160
#: steps a run continues after an invariant subspace, before it may declare convergence.
STEPS_AFTER_RESEED = 10
#: most matrix-vector products one run may take; then it stops unconverged.
MAX_MATVECS = 3000
_REORTH = 0.7  # a second Gram-Schmidt pass when ‖w‖ shrank below this share (Daniel et al. 1976)


class NoConvergence(RuntimeError):
    """A Lanczos run reached :data:`MAX_MATVECS` without converging."""


class LanczosRun:
    """One Lanczos process for the ``k`` extreme eigenvalues of a symmetric n×n operator M.

    ``which``: ``"LA"`` (largest algebraic) or ``"LM"`` (largest magnitude). The caller computes
    ``w = M @ run.vector`` and calls :meth:`advance`; ``run.done`` tells when to stop. Cost per
    step: the matvec plus O(n·j) for the orthogonalisation against the j basis vectors.
    """

    def __init__(self, n: int, k: int, *, which: str = "LA", tol: float = 1e-8, start: np.ndarray | None = None,
                 seed: int = 0):
        if which not in ("LA", "LM"):
            raise ValueError(f"which must be 'LA' or 'LM', got {which!r}")
        self.n, self.k, self.which, self.tol = n, min(k, n), which, tol
        self._rng = np.random.default_rng(seed)
        self.capacity = int(min(n, max(4 * (self.k + 2), min(MAX_BASIS_VECTORS, MAX_BASIS_BYTES // (8 * max(n, 1))))))
        self._hold = 0  # steps left before convergence may be declared (after a reseed)
        self.basis = np.empty((self.capacity, n))
        self.projected = np.zeros((self.capacity, self.capacity))  # T = Vᵀ M V
        self.size = 0  # basis vectors in use
        self.matvecs = 0
        self.done = False
        self.values = np.empty(0)
        self._ritz = np.empty((0, 0))
        v = 1.0 + 0.1 * self._rng.random(n) if start is None else np.array(start, dtype=np.float64)
        self._append(v / np.linalg.norm(v))

    @property
    def vector(self) -> np.ndarray:
        """The basis vector whose product M·v the run needs next."""
        return self.basis[self.size - 1]

    def _append(self, v: np.ndarray) -> None:
        self.basis[self.size] = v
        self.size += 1

    def _orthogonalise(self, w: np.ndarray) -> tuple[np.ndarray, float]:
        """w minus its projection on the basis; returns (coefficients Vᵀw, ‖w‖ after)."""
        basis = self.basis[:self.size]
        norm_before = np.linalg.norm(w)
        coef = basis @ w
        w -= coef @ basis
        norm = np.linalg.norm(w)
        if norm < _REORTH * norm_before:
            again = basis @ w
            w -= again @ basis
            coef += again
            norm = np.linalg.norm(w)
        return coef, norm

    def advance(self, w: np.ndarray) -> bool:
        """Take w = M·``vector`` (overwritten); True when converged (values in ``values``)."""
        j = self.size - 1
        self.matvecs += 1
        scale = np.linalg.norm(w)
        coef, beta = self._orthogonalise(w)
        self.projected[:j + 1, j] = coef
        self.projected[j, :j + 1] = coef
        theta, y = np.linalg.eigh(self.projected[:j + 1, :j + 1])
        order = np.argsort(-np.abs(theta) if self.which == "LM" else -theta, kind="stable")[:self.k]
        self.values, self._ritz = theta[order], y[:, order]
        largest = max(np.abs(theta).max(), 1e-300)
        exhausted = self.size == self.n
        invariant = beta <= 1e-12 * max(scale, largest)
        if exhausted:  # the whole space is spanned: the Ritz values are the eigenvalues
            self.done = True
            return True
        self._hold = max(self._hold - 1, 0)
        residual = beta * np.abs(self._ritz[-1])
        if order.size == self.k and self._hold == 0 and not invariant and np.all(residual <= self.tol * largest):
            self.done = True
            return True
        if self.matvecs >= MAX_MATVECS:
            raise NoConvergence(f"Lanczos did not converge in {MAX_MATVECS} matrix-vector products")
        if self.size == self.capacity:
            self._thick_restart(theta, y)
        if invariant:
            w = self._rng.standard_normal(self.n)
            _, beta = self._orthogonalise(w)
            beta = max(beta, 1e-300)
            self._hold = min(STEPS_AFTER_RESEED, self.n - self.size)
        self._append(w / beta)
        return False

    def _thick_restart(self, theta: np.ndarray, y: np.ndarray) -> None:
        """Keep the wanted Ritz vectors (and as many more of the same end as fit in half the
        basis); T becomes diag(θ_kept), whose couplings to the next vector are recomputed by the
        next Gram-Schmidt step."""
        keep = max(self.k + 1, self.capacity // 2)
        order = np.argsort(-np.abs(theta) if self.which == "LM" else -theta, kind="stable")[:keep]
        ritz_vectors = y[:, order].T @ self.basis[:self.size]
        self.basis[:order.size] = ritz_vectors
        self.projected[:] = 0.0
        self.projected[np.arange(order.size), np.arange(order.size)] = theta[order]
        self.size = order.size

    def ritz_vectors(self) -> np.ndarray:
        """(n, k) Ritz vectors of the current values."""
        return self.basis[:self._ritz.shape[0]].T @ self._ritz


def run_together(runs: list[LanczosRun], multiply) -> None:
    """Advance every run until done; ``multiply(X)`` takes an (n, r) C-ordered block of the
    vectors of the r unfinished runs and returns the (n, r) block of products, so one pass over
    the matrix serves all of them (each column may belong to a different operator built from
    the same matrix, e.g. A and L = D − A).

    BLAS runs on one thread meanwhile: its level-1/2 calls on n-vectors gain nothing from threads,
    and OpenBLAS threads spinning beside numba's (the matvec) made each call 100× slower on the
    shared 2-core machine (ResNet-20: 21 ms per 191k-vector norm).
    """
    with single_blas_thread():
        _advance_all(runs, multiply)


_CONTROLLER = None


def single_blas_thread():
    """Context manager: BLAS / LAPACK on one thread. The spectral steps call BLAS on n-vectors and
    LAPACK on small dense matrices, which gain nothing from threads, while spinning OpenBLAS
    threads beside numba's slowed each call up to 100× on the shared machine. The threadpoolctl
    controller (a scan of the loaded libraries, 6 ms) is built once per process."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


def _advance_all(runs: list[LanczosRun], multiply) -> None:
    while True:
        active = [r for r in runs if not r.done]
        if not active:
            return
        block = np.ascontiguousarray(np.stack([r.vector for r in active], axis=1))
        products = multiply(block, active)
        for column, run in enumerate(active):
            run.advance(np.ascontiguousarray(products[:, column]))
