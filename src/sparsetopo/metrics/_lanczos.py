"""Extreme eigenvalues of symmetric operators by block Lanczos with full reorthogonalisation and
thick restarts, stepped one block product at a time so that several runs share each pass over the
CSR (:func:`run_together`).

Why not ARPACK (``scipy.sparse.linalg.eigsh``): on the shared 2-core machine ARPACK spent more
time in its own restarts and multithreaded BLAS than in the matvecs (ResNet-20@0.9: 4.5 of 7.4 s
for ρ(L)), and it needed 42 matvecs for ρ(L) where an unrestarted Lanczos converges in about 20
(a restart throws away Krylov information). Here the basis grows until convergence or until
:data:`MAX_BASIS_BYTES`, then restarts *thickly*: the wanted Ritz vectors are kept (with their
couplings), so no information about them is lost.

Method (symmetric block Arnoldi): V holds orthonormal basis vectors in blocks of ``block``; each
step multiplies the newest block, W = M V_j. W is orthogonalised first against the two newest
blocks (the three-term recurrence: in exact arithmetic W is already orthogonal to the rest), then
once against the whole basis in one BLAS-3 pass (full reorthogonalisation: removes the rounding
components that would otherwise bring back copies of converged eigenvalues), a second whole pass
only when that one still removed more than 30% of a column's norm ("twice is enough", e.g. after a
thick restart, whose Ritz vectors couple to the next block). The coefficients build T = VᵀMV.
A QR step (R = the next block's coupling) closes the step. The Ritz values θ_i = eig(T), with
Ritz vector V y_i, have residual ‖M V y_i − θ_i V y_i‖ = ‖R·y_i[newest block]‖. A value is
converged when that residual is ≤ ``tol``·max|θ|: by Bauer-Fike an eigenvalue lies within the
residual of θ_i, so this is at least as tight as ARPACK's relative ``tol``.

Why blocks: one pass over the CSR costs about the same for 1 to 4 columns (the gathers, not the
flops, bound it), and a block of b vectors sees b copies of a tied or nearly tied eigenvalue at
once, where a single vector converges slowly to the second of two close eigenvalues (λ2 ≈ λ3 in
ResNet MGEs, λ1 ≈ λ2 across components of pruner-made masks). The price is a basis that grows b
vectors a pass, and on the MGEs measured so far its reorthogonalisation cost more than the passes
saved (``expansion.GAP_BLOCK``). A block column that becomes
dependent (an invariant subspace, e.g. a start vector supported on few components) is replaced by
a fresh random vector orthogonal to V, and the run may not stop for :data:`STEPS_AFTER_RESEED`
steps, so eigenvalues outside that subspace are still found.
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
#: most matrix-vector products (block columns) one run may take; then it stops unconverged.
MAX_MATVECS = 3000
_REORTH = 0.7  # a second whole-basis pass when a column's norm shrank below this share (Daniel et al. 1976)
_DEPENDENT = 1e-12  # a block column this small (relative) after orthogonalisation is dependent


class NoConvergence(RuntimeError):
    """A Lanczos run reached :data:`MAX_MATVECS` without converging."""


class LanczosRun:
    """One block Lanczos process for the ``k`` extreme eigenvalues of a symmetric n×n operator M.

    ``which``: ``"LA"`` (largest algebraic) or ``"LM"`` (largest magnitude). ``block``: columns
    per step. ``start``: the first basis vector (default: 1 + 0.1·uniform noise, close to a Perron
    vector); the other columns of the first block are random. The caller computes
    ``W = M @ run.vectors`` ((n, block)) and calls :meth:`advance`; ``run.done`` tells when to
    stop. Cost per step: the product plus O(n·m·block) for the orthogonalisation against the m
    basis vectors.
    """

    def __init__(self, n: int, k: int, *, which: str = "LA", tol: float = 1e-8, start: np.ndarray | None = None,
                 seed: int = 0, block: int = 1):
        if which not in ("LA", "LM"):
            raise ValueError(f"which must be 'LA' or 'LM', got {which!r}")
        self.n, self.k, self.which, self.tol = n, min(k, n), which, tol
        self.block = max(1, min(block, n))
        self._rng = np.random.default_rng(seed)
        room = max(4 * (self.k + 2), min(MAX_BASIS_VECTORS, MAX_BASIS_BYTES // (8 * max(n, 1))))
        self.capacity = int(min(n, max(room, 3 * self.block + self.k)))
        self._hold = 0  # steps left before convergence may be declared (after a reseed)
        self.basis = np.empty((self.capacity, n))  # rows: orthonormal basis vectors
        self.projected = np.zeros((self.capacity, self.capacity))  # T = Vᵀ M V
        self.size = 0  # basis vectors in use
        self.current = 0  # first row of the newest block (the one to multiply)
        self.matvecs = 0
        self.done = False
        self.values = np.empty(0)
        self._ritz = np.empty((0, 0))
        first = 1.0 + 0.1 * self._rng.random(n) if start is None else np.array(start, dtype=np.float64)
        fresh = np.empty((self.block, n))
        fresh[0] = first
        fresh[1:] = self._rng.standard_normal((self.block - 1, n))
        self._append_block(fresh, np.linalg.norm(fresh, axis=1))

    @property
    def width(self) -> int:
        """Columns of the newest block (the last block may be narrower when V fills the space)."""
        return self.size - self.current

    @property
    def vectors(self) -> np.ndarray:
        """(width, n) rows: the basis vectors whose products M·v the run needs next."""
        return self.basis[self.current:self.size]

    def _append_block(self, w: np.ndarray, scales: np.ndarray) -> np.ndarray:
        """Orthonormalise the rows of ``w`` (already orthogonal to the basis up to rounding)
        among themselves and append them; a row left below ``_DEPENDENT``·``scales`` (its norm
        before any orthogonalisation) is dependent and replaced by a random vector orthogonal to
        everything. Returns R with rows of w = Rᵀ · (new rows): the coupling of the new block."""
        rows = min(w.shape[0], self.n - self.size)
        r = np.zeros((rows, w.shape[0]))
        self.current = self.size
        for i in range(w.shape[0]):
            v = w[i]
            for _ in range(2):  # against the block's earlier rows, twice is enough
                done = self.basis[self.current:self.size]
                coef = done @ v
                v -= coef @ done
                r[:coef.size, i] += coef
            if i >= rows:
                continue
            norm = np.linalg.norm(v)
            if norm <= _DEPENDENT * scales[i] or norm == 0.0:
                v = self._fresh_direction()
                self._hold = min(STEPS_AFTER_RESEED, self.n - self.size)
                norm = 0.0
            else:
                v = v / norm
            r[self.size - self.current, i] = norm
            self.basis[self.size] = v
            self.size += 1
        return r

    def _fresh_direction(self) -> np.ndarray:
        """A random unit vector orthogonal to the basis in use."""
        v = self._rng.standard_normal(self.n)
        for _ in range(2):
            v -= (self.basis[:self.size] @ v) @ self.basis[:self.size]
        return v / max(np.linalg.norm(v), 1e-300)

    def _ordered(self, theta: np.ndarray) -> np.ndarray:
        return np.argsort(-np.abs(theta) if self.which == "LM" else -theta, kind="stable")

    def advance(self, w: np.ndarray) -> bool:
        """Take W = M·``vectors`` as (n, width) or, for a block of one, (n,); True when converged
        (values in ``values``)."""
        w = np.array(np.asarray(w, dtype=np.float64).reshape(self.n, -1).T, order="C")  # rows
        cur, size = self.current, self.size
        self.matvecs += size - cur
        scales = np.linalg.norm(w, axis=1)
        coef = np.zeros((size, size - cur))
        local = slice(max(cur - self.block, 0), size)  # the three-term recurrence: the two newest blocks
        coef[local] += self._project_out(w, local)
        before = np.linalg.norm(w, axis=1)
        for _ in range(2):  # full reorthogonalisation: once, twice when cancellation was large
            coef += self._project_out(w, slice(0, size))
            after = np.linalg.norm(w, axis=1)
            if np.all(after >= _REORTH * before):
                break
            before = after
        t = self.projected
        t[:size, cur:size] = coef
        t[cur:size, :size] = coef.T
        theta, y = np.linalg.eigh(t[:size, :size])
        order = self._ordered(theta)[:self.k]
        self.values, self._ritz = theta[order], y[:, order]
        if size == self.n:  # the whole space is spanned: the Ritz values are the eigenvalues
            self.done = True
            return True
        largest = max(np.abs(theta).max(), 1e-300)
        newest = y[cur:size][:, order]  # the wanted Ritz vectors' entries on the newest block
        self._hold = max(self._hold - 1, 0)
        if size + w.shape[0] > self.capacity and self.capacity < self.n:  # else: a last, narrower block
            self._thick_restart(theta, y)
        coupling = self._append_block(w, np.maximum(scales, largest))
        residual = np.linalg.norm(coupling @ newest, axis=0)
        if order.size == self.k and self._hold == 0 and np.all(residual <= self.tol * largest):
            self.done = True
            return True
        if self.matvecs >= MAX_MATVECS:
            raise NoConvergence(f"Lanczos did not converge in {MAX_MATVECS} matrix-vector products")
        return False

    def _project_out(self, w: np.ndarray, rows: slice) -> np.ndarray:
        """Subtract from the rows of ``w`` their projection on ``basis[rows]``; return the
        coefficients (basis rows, rows of w)."""
        part = self.basis[rows]
        coef = part @ w.T
        w -= coef.T @ part
        return coef

    def _thick_restart(self, theta: np.ndarray, y: np.ndarray) -> None:
        """Keep the wanted Ritz vectors (and as many more of the same end as fit in half the
        basis); T becomes diag(θ_kept), whose couplings to the next block are recomputed by the
        next orthogonalisation step."""
        keep = min(max(self.k + self.block, self.capacity // 2), self.capacity - self.block)
        order = self._ordered(theta)[:keep]
        self.basis[:order.size] = y[:, order].T @ self.basis[:theta.size]
        self._ritz = np.eye(order.size)[:, :self.k]
        self.projected[:] = 0.0
        self.projected[np.arange(order.size), np.arange(order.size)] = theta[order]
        self.size = self.current = order.size

    def ritz_vectors(self) -> np.ndarray:
        """(n, k) Ritz vectors of the current values."""
        return self.basis[:self._ritz.shape[0]].T @ self._ritz


def run_together(runs: list[LanczosRun], multiply) -> None:
    """Advance every run until done. ``multiply(X, owners)`` takes an (n, c) C-ordered block of
    the vectors of the unfinished runs (column j belongs to run ``owners[j]``) and returns the
    (n, c) block of products, so one pass over the matrix serves all of them (each column may
    belong to a different operator built from the same matrix, e.g. A and L = D − A).

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
        block = np.ascontiguousarray(np.concatenate([r.vectors for r in active]).T)
        owners = [r for r in active for _ in range(r.width)]
        products = multiply(block, owners)
        start = 0
        for run in active:
            width = run.width
            run.advance(products[:, start:start + width])
            start += width
