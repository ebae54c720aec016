"""Regression study (Table 3): known answers on synthetic pools, brute-force cross-checks."""
import numpy as np
import pytest

from sparsetopo.analysis.pool import network_features, validate_pool
from sparsetopo.analysis.regression import (adjusted_r2, cv_run, make_subset, minmax_scale, pearson_columns,
                                            regression_study, regressor_names)
from sparsetopo.analysis.synthetic import synthetic_pools


def linear_pool(noise_only=False, seed=0):
    """Small pool: drop an exact linear function of two normalised features (or pure noise)."""
    pool, _ = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.6, 0.9),
                              pruners=("snip", "grasp", "synflow", "er", "erk", "uniform"), seeds=range(5),
                              random_state=seed)
    rng = np.random.default_rng(seed + 1)
    drop = (rng.random(len(pool)) * 0.5 if noise_only
            else 0.5 * pool["sink_nodes"] / pool["nodes"] + 0.3 * pool["k_core"] / pool["edges"])
    pool["accuracy"] = pool["dense_accuracy"] * (1 - drop)
    return validate_pool(pool)


def test_exact_linear_drop_gives_adjusted_r2_one_and_mae_zero():
    table, results = regression_study(linear_pool(), runs=2, progress=False)
    assert len(table) == 4 and (table["encoding"] == "mge").all()
    assert (table["n_networks"] == 60).all()
    for res in results:
        exact = [i for i, name in enumerate(res.regressors) if name != "ridge"]
        # Every unpenalised (or evidence-tuned) regressor recovers the linear law exactly ...
        np.testing.assert_allclose(res.adj_r2[:, exact], 1.0, atol=1e-4)
        np.testing.assert_allclose(res.mae[:, exact], 0.0, atol=1e-4)
    # ... and Ridge at alpha = 1 shrinks (n = 60), which keeps the six-regressor cell a bit below 1.
    assert (table["adj_r2_mean"] > 0.97).all() and (table["adj_r2_mean"] < 1).all(), table
    assert (table["mae"] < 0.01).all(), table


def test_linear_regression_alone_is_exact():
    feats = network_features(linear_pool(), None, "mge")
    sub = make_subset(feats[feats["sparsity"] == 0.6], "sparsity", 0.6, "mge")
    adj, mae, _ = cv_run(sub.x, sub.y, run=0, names=["linear", "pcr"])
    np.testing.assert_allclose(adj, 1.0, atol=1e-9)
    np.testing.assert_allclose(mae, 0.0, atol=1e-9)


def test_pure_noise_gives_non_positive_adjusted_r2():
    table, _ = regression_study(linear_pool(noise_only=True), runs=3, progress=False)
    assert (table["adj_r2_mean"] <= 0).all(), table


def test_cv_run_matches_sklearn_cross_val_predict():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    rng = np.random.default_rng(3)
    x = minmax_scale(rng.normal(size=(40, 4)))
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * rng.normal(size=40)
    adj, mae, imp = cv_run(x, y, run=7, names=["ridge"])
    pred = cross_val_predict(Ridge(), x, y, cv=KFold(5, shuffle=True, random_state=7))
    r2 = r2_score(y, pred)
    assert adj[0] == pytest.approx(1 - (1 - r2) * 39 / (40 - 4 - 1))
    folds = KFold(5, shuffle=True, random_state=7).split(x)
    assert mae[0] == pytest.approx(np.mean([np.abs(pred[t] - y[t]).mean() for _, t in folds]))
    expected = [np.corrcoef(x[:, j], pred)[0, 1] for j in range(4)]
    np.testing.assert_allclose(imp[0], expected, atol=1e-12)


def test_helpers_edge_cases():
    assert np.isnan(adjusted_r2(np.arange(5.0), np.arange(5.0), n_features=4))  # n - p - 1 = 0
    x = np.array([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]])
    np.testing.assert_array_equal(minmax_scale(x), [[0, 0], [1, 0], [0.5, 0]])
    r = pearson_columns(x, np.array([1.0, 2.0, 3.0]))
    assert r[0] == pytest.approx(0.5) and np.isnan(r[1])
    assert regressor_names() == ["linear", "ridge", "huber", "pcr", "bayesian_ridge", "ard"]
    assert len(regressor_names(all_regressors=True)) == 8


def test_small_subsets_are_skipped_with_a_reason_and_nan_rows_counted():
    pool = linear_pool()
    pool = pool[(pool["model"] == "conv6") | (pool.index % 20 == 0)].copy()  # resnet20 keeps 3 networks
    pool.loc[pool.index[0], "spectral_gap"] = np.nan
    table, _ = regression_study(pool, runs=1, progress=False)
    row = table[(table["scenario"] == "architecture") & (table["subset"] == "resnet20")].iloc[0]
    assert np.isnan(row["adj_r2_mean"]) and "fewer than 5" in row["note"]
    assert table["n_dropped"].sum() == 2  # the NaN row is dropped from its sparsity and its model subset
    conv = table[(table["scenario"] == "architecture") & (table["subset"] == "conv6")].iloc[0]
    assert np.isfinite(conv["adj_r2_mean"])


def test_pcr_shares_the_linear_predictions_exactly():
    """PCR (PCA keeping every component → LinearRegression) is a rotation of least squares: cv_run
    reuses LinearRegression's out-of-fold predictions; they match sklearn's own PCR fit."""
    from sklearn.model_selection import KFold

    from sparsetopo.analysis.regression import cv_run, make_regressor

    rng = np.random.default_rng(3)
    x = rng.random((60, 6))
    x[:, 5] = 0.0  # a constant (scaled) column, as min-max scaling gives
    y = x[:, :5] @ rng.normal(size=5) + 0.1 * rng.normal(size=60)
    adj, mae, imp = cv_run(x, y, run=4, names=["linear", "pcr"])
    pred = np.empty_like(y)
    for train, test in KFold(5, shuffle=True, random_state=4).split(x):
        pred[test] = make_regressor("pcr").fit(x[train], y[train]).predict(x[test])
    from sparsetopo.analysis.regression import adjusted_r2
    assert adj[1] == pytest.approx(adjusted_r2(y, pred, 6), abs=1e-10) and adj[0] == adj[1]
    np.testing.assert_allclose(imp[0], imp[1])
