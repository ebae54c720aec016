"""The lean regressor replicas agree with scikit-learn's estimators (the numbers of the report stay put)."""
import warnings

import numpy as np
import pytest

from sparsetopo.analysis.linear_fits import CENTRED_FITS, FAST, Centred, fit_huber, fold_predictions
from sparsetopo.analysis.regression import (N_FOLDS, adjusted_r2, cv_run, make_regressor, minmax_scale,
                                            pearson_columns, regressor_names, sklearn_fit_predict)


def dataset(seed: int, n: int = 120, p: int = 16):
    """Min-max scaled features (one near-duplicate column, one constant), a linear target, 10% outliers."""
    rng = np.random.default_rng(seed)
    x = minmax_scale(rng.random((n, p)) ** rng.uniform(0.3, 3.0, p))
    x[:, 1] = 0.5 * x[:, 0] + 1e-7 * rng.random(n)
    x[:, 2] = 0.0
    y = x @ rng.normal(size=p) * 0.1 + 0.02 * rng.standard_normal(n)
    outliers = rng.random(n) < 0.1
    y[outliers] += rng.normal(0, 1.0, int(outliers.sum()))
    return x, y, rng.random((40, p))


def replica(name: str, x: np.ndarray, y: np.ndarray):
    return fit_huber(x, y) if name == "huber" else CENTRED_FITS[name](Centred.of(x, y))


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_replica_predicts_what_sklearn_predicts(name, seed):
    x, y, x_new = dataset(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = make_regressor(name).fit(x, y).predict(x_new)
    coef, intercept = replica(name, x, y)
    # same algorithm, same LAPACK calls: equal to rounding (Huber: same L-BFGS-B path, vector loss)
    np.testing.assert_allclose(x_new @ coef + intercept, expected, rtol=1e-9, atol=1e-10)


def reference_cv_run(x, y, run, names):
    """The regression study's one run written directly with scikit-learn estimators (the old code)."""
    from sklearn.model_selection import KFold
    folds = list(KFold(N_FOLDS, shuffle=True, random_state=run).split(x))
    adj, mae, importance = [], [], []
    for name in names:
        pred = np.empty_like(y)
        for train, test in folds:
            pred[test] = make_regressor(name).fit(x[train], y[train]).predict(x[test])
        adj.append(adjusted_r2(y, pred, x.shape[1]))
        mae.append(np.mean([np.abs(pred[t] - y[t]).mean() for _, t in folds]))
        importance.append(pearson_columns(x, pred))
    return np.array(adj), np.array(mae), np.array(importance)


@pytest.mark.parametrize("n", [90, 18])  # 18 rows: training folds of 14-15 <= p = 16 go through scikit-learn
def test_cv_run_equals_the_sklearn_loop(n):
    x, y, _ = dataset(5, n=n)
    names = regressor_names(all_regressors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = reference_cv_run(x, y, 3, names)
        got = cv_run(x, y, 3, names)
    for e, g in zip(expected, got):
        np.testing.assert_allclose(g, e, rtol=1e-8, atol=1e-10)


def test_fold_predictions_uses_the_fallback_only_outside_the_exact_domain():
    x, y, _ = dataset(7, n=40, p=4)
    calls = []

    def fallback(name, x_train, y_train, x_test):
        calls.append(name)
        return sklearn_fit_predict(name, x_train, y_train, x_test)

    folds = [(np.arange(10, 40), np.arange(10)), (np.arange(3), np.arange(3, 40))]  # 30 > p rows, then 3 <= p
    fold_predictions(["linear", "huber", "lasso"], x, y, folds, fallback)
    assert calls == ["lasso", "linear", "huber", "lasso"]


def test_fit_regressor_matches_sklearn_with_collinear_one_hot_columns():
    """The drop model's design (features + one-hot datasets, collinear with the intercept)."""
    from sparsetopo.analysis.regression import fit_regressor
    x, y, x_new = dataset(11, n=60, p=6)
    rng = np.random.default_rng(0)
    onehot = np.eye(3)[rng.integers(0, 3, 60)]
    design, new = np.hstack([x, onehot]), np.hstack([x_new, np.eye(3)[rng.integers(0, 3, len(x_new))]])
    for name in regressor_names():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = make_regressor(name).fit(design, y).predict(new)
            got = fit_regressor(name, design, y).predict(new)
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10, err_msg=name)
