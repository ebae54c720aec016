"""Lean, exact replicas of the default regressors of the regression study (scikit-learn 1.x defaults).

scikit-learn spends most of a small fit validating inputs and wrapping solvers; the regression
study runs about 80,000 fits on n ≈ 250, p ≤ 16 data (27 subsets × 100 runs × 5 folds × 6
regressors), so that overhead is most of the report's time. The functions here run the *same*
algorithms as the estimators of :func:`sparsetopo.analysis.regression.make_regressor` on dense
float64 data with ``n_train > p`` and default settings: the same centring, the same LAPACK calls
(``lstsq`` with ``cond = 1e-6``, Cholesky ``solve``, ``svd``, ``pinvh``), the same fixed-point
iterations and stopping rules, and, for Huber, the same L-BFGS-B call from the same start, with a
vectorised loss. Results agree with scikit-learn to rounding (tests compare them on random and
outlier-laden data); anything outside that domain (``n_train <= p``, Lasso, ElasticNet) falls back
to scikit-learn itself.

Each ``fit_*`` takes the training rows ``x[n, p]``, ``y[n]`` and returns ``(coef[p], intercept)``;
a prediction is ``x @ coef + intercept``. The four centred models share one :class:`Centred`
(column means removed once per fold). Cost per fit: O(n p²) plus O(p³) per iteration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, optimize

EPS = np.finfo(np.float64).eps
#: scikit-learn defaults replicated here
LINEAR_COND = 1e-6                       # LinearRegression(tol=1e-6) is lstsq's cond
RIDGE_ALPHA = 1.0
BAYES = dict(max_iter=300, tol=1e-3, alpha_1=1e-6, alpha_2=1e-6, lambda_1=1e-6, lambda_2=1e-6)
ARD_THRESHOLD_LAMBDA = 1e4
HUBER = dict(epsilon=1.35, alpha=1e-4, max_iter=100, tol=1e-5)


@dataclass
class Centred:
    """Training rows with column means removed (what every centred linear model fits on).

    ``x`` [n, p] centred features, ``y`` [n] centred target, ``x_offset`` [p] and ``y_offset`` the
    means, ``y_var`` the variance of the raw target (ddof 0)."""
    x: np.ndarray
    y: np.ndarray
    x_offset: np.ndarray
    y_offset: float
    y_var: float

    @classmethod
    def of(cls, x: np.ndarray, y: np.ndarray) -> "Centred":
        x_offset, y_offset = np.average(x, axis=0), np.average(y, axis=0)
        return cls(x - x_offset, y - y_offset, x_offset, y_offset, float(y.var()))

    def intercept(self, coef: np.ndarray) -> tuple[np.ndarray, float]:
        """``(coef, y_offset - x_offset · coef)``: the model on the raw (uncentred) features."""
        return coef, self.y_offset - self.x_offset @ coef


def fit_linear(data: Centred) -> tuple[np.ndarray, float]:
    """Ordinary least squares (min-norm, singular values below 1e-6 × the largest dropped)."""
    coef = linalg.lstsq(data.x, data.y, cond=LINEAR_COND, check_finite=False)[0]
    return data.intercept(coef)


def fit_ridge(data: Centred) -> tuple[np.ndarray, float]:
    """Ridge, alpha = 1: (XᵀX + αI) w = Xᵀy by Cholesky (scikit-learn's solver for n > p)."""
    gram = data.x.T @ data.x
    gram.flat[:: gram.shape[0] + 1] += RIDGE_ALPHA
    coef = linalg.solve(gram, data.x.T @ data.y[:, None], assume_a="pos", overwrite_a=True, check_finite=False).T
    return data.intercept(np.ravel(coef))


def fit_bayesian_ridge(data: Centred) -> tuple[np.ndarray, float]:
    """Bayesian ridge (MacKay's evidence updates of alpha and lambda on the SVD of X, n > p)."""
    x, y, n = data.x, data.y, data.x.shape[0]
    alpha, lam = np.asarray(1.0 / (data.y_var + EPS)), np.asarray(1.0)
    xt_y = np.dot(x.T, y)
    _, s, vh = linalg.svd(x, full_matrices=False, check_finite=False)
    eigen = s ** 2

    def update(alpha, lam):
        coef = np.linalg.multi_dot([vh.T, vh / (eigen + lam / alpha)[:, np.newaxis], xt_y])
        return coef, np.sum((y - np.dot(x, coef)) ** 2)

    coef_old = None
    for it in range(BAYES["max_iter"]):
        coef, sse = update(alpha, lam)
        gamma = np.sum((alpha * eigen) / (lam + alpha * eigen))
        lam = (gamma + 2 * BAYES["lambda_1"]) / (np.sum(coef ** 2) + 2 * BAYES["lambda_2"])
        alpha = (n - gamma + 2 * BAYES["alpha_1"]) / (sse + 2 * BAYES["alpha_2"])
        if it != 0 and np.sum(np.abs(coef_old - coef)) < BAYES["tol"]:
            break
        coef_old = np.copy(coef)
    return data.intercept(update(alpha, lam)[0])


def fit_ard(data: Centred) -> tuple[np.ndarray, float]:
    """ARD regression (per-feature precisions; features with lambda >= 1e4 pruned), n >= p."""
    x, y = data.x, data.y
    n, p = x.shape
    coef = np.zeros(p)
    alpha, lam = np.asarray(1.0 / (np.var(y) + EPS)), np.ones(p)
    keep = np.ones(p, dtype=bool)

    def sigma_of(alpha, lam, keep):
        x_keep = x[:, keep]
        return linalg.pinvh(lam[keep] * np.eye(int(keep.sum())) + alpha * np.dot(x_keep.T, x_keep), check_finite=False)

    def update_coef(coef, alpha, keep, sigma):
        coef[keep] = alpha * np.linalg.multi_dot([sigma, x[:, keep].T, y])
        return coef

    coef_old = None
    for it in range(BAYES["max_iter"]):
        sigma = sigma_of(alpha, lam, keep)
        coef = update_coef(coef, alpha, keep, sigma)
        sse = np.sum((y - np.dot(x, coef)) ** 2)
        gamma = 1.0 - lam[keep] * np.diag(sigma)
        lam[keep] = (gamma + 2.0 * BAYES["lambda_1"]) / (coef[keep] ** 2 + 2.0 * BAYES["lambda_2"])
        alpha = (n - gamma.sum() + 2.0 * BAYES["alpha_1"]) / (sse + 2.0 * BAYES["alpha_2"])
        keep = lam < ARD_THRESHOLD_LAMBDA
        coef[~keep] = 0
        if it > 0 and np.sum(np.abs(coef_old - coef)) < BAYES["tol"]:
            break
        coef_old = np.copy(coef)
        if not keep.any():
            break
    if keep.any():
        coef = update_coef(coef, alpha, keep, sigma_of(alpha, lam, keep))
    return data.intercept(coef)


def huber_loss_and_gradient(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Huber loss with concomitant scale (Owen 2007) and its gradient, unit sample weights.

    ``theta = (w[p], intercept, sigma)``; loss = n σ + Σ_in r²/σ + Σ_out (2ε|r| − σε²) + α‖w‖², r
    the residuals, "out" where |r| > εσ. The same function as scikit-learn's, in four vector ops.
    """
    eps, alpha = HUBER["epsilon"], HUBER["alpha"]
    w, intercept, sigma = theta[:-2], theta[-2], theta[-1]
    r = y - x @ w - intercept
    out = np.abs(r) > eps * sigma
    r_in = np.where(out, 0.0, r)
    n_out = np.count_nonzero(out)
    squared = np.dot(r_in, r_in) / sigma
    # d(loss)/d(residual): 2r/σ inside, 2ε·sign(r) outside
    psi = np.where(out, 2.0 * eps * np.sign(r), 2.0 / sigma * r_in)
    grad = np.empty_like(theta)
    grad[:-2] = -(psi @ x) + 2.0 * alpha * w
    grad[-2] = -psi.sum()
    grad[-1] = len(y) - n_out * eps ** 2 - squared / sigma
    loss = len(y) * sigma + squared + 2.0 * eps * np.abs(r[out]).sum() - sigma * n_out * eps ** 2 + alpha * np.dot(w, w)
    return float(loss), grad


def fit_huber(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """HuberRegressor: L-BFGS-B from w = 0, intercept 0, σ = 1, σ >= 10 eps, 100 iterations, gtol 1e-5."""
    p = x.shape[1]
    start = np.zeros(p + 2)
    start[-1] = 1.0
    bounds = np.tile([-np.inf, np.inf], (p + 2, 1))
    bounds[-1][0] = EPS * 10
    result = optimize.minimize(huber_loss_and_gradient, start, args=(x, y), method="L-BFGS-B", jac=True,
                               bounds=bounds, options={"maxiter": HUBER["max_iter"], "gtol": HUBER["tol"]})
    if result.status == 2:
        raise ValueError(f"HuberRegressor convergence failed: l-BFGS-b solver terminated with {result.message}")
    return result.x[:p], float(result.x[-2])


CENTRED_FITS = {"linear": fit_linear, "ridge": fit_ridge, "bayesian_ridge": fit_bayesian_ridge, "ard": fit_ard}
#: regressor names with an exact replica here (the rest always go through scikit-learn)
FAST = tuple(CENTRED_FITS) + ("huber",)


def fit_exact(name: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float] | None:
    """``(coef, intercept)`` of regressor ``name`` by its replica, or None outside the replicas'
    domain (no replica, or ``n <= p`` where scikit-learn switches solvers)."""
    if name not in FAST or x.shape[0] <= x.shape[1]:
        return None
    return _replica(name, x, y, Centred.of(x, y) if name in CENTRED_FITS else None)


def _replica(name: str, x: np.ndarray, y: np.ndarray, centred: Centred | None) -> tuple[np.ndarray, float]:
    return fit_huber(x, y) if name == "huber" else CENTRED_FITS[name](centred)


def fold_predictions(names: list[str], x: np.ndarray, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                     sklearn_fit) -> dict[str, np.ndarray]:
    """Out-of-fold predictions of every regressor in ``names`` over ``folds`` (train, test indices).

    Per fold the training rows are centred once and shared by the centred models. A regressor
    without a replica, or a fold with ``n_train <= p`` (scikit-learn switches solvers there),
    goes through ``sklearn_fit(name, x_train, y_train, x_test) -> predictions``.
    """
    out = {name: np.empty_like(y) for name in names}
    p = x.shape[1]
    for train, test in folds:
        x_train, y_train, x_test = x[train], y[train], x[test]
        exact = len(train) > p
        centred = Centred.of(x_train, y_train) if exact else None
        for name in names:
            if exact and name in FAST:
                coef, intercept = _replica(name, x_train, y_train, centred)
                out[name][test] = x_test @ coef + intercept
            else:
                out[name][test] = sklearn_fit(name, x_train, y_train, x_test)
    return out
