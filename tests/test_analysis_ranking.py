"""Ranking strategies (Eq. 5 mixture and baselines), tie-breaks and the RBO table layout."""
import numpy as np
import pandas as pd
import pytest

from sparsetopo.analysis.importance import feature_importance, holdout_importance
from sparsetopo.analysis.pool import TOPOMETRICS, network_features, validate_pool
from sparsetopo.analysis.ranking import (baseline_scores, order, ranking_rbo, ranking_tables, rbo_summary,
                                         scale_within_model)
from sparsetopo.analysis.synthetic import PRUNERS, synthetic_pools


def monotone_pools():
    """Within each (model, dataset, sparsity) only sink_nodes differs between pruners, and accuracy
    falls strictly with it; the layer density rises strictly with accuracy."""
    pool, layers = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10", "cifar100"),
                                   sparsities=(0.6, 0.9), seeds=(0, 1), layers_per_network=2, random_state=1)
    rng = np.random.default_rng(5)
    cell = ["model", "dataset", "sparsity"]
    pool["nodes"] = pool.groupby(cell)["nodes"].transform("first")
    pool["edges"] = pool.groupby(cell)["edges"].transform("first")
    for metric in TOPOMETRICS:  # constant within a cell (same value for every pruner and seed)
        pool[metric] = pool.groupby(cell)["nodes"].transform(lambda v: rng.random()) * pool["nodes"]
    position = pool["pruner"].map({p: i for i, p in enumerate(PRUNERS)}).astype(float)
    pool["sink_nodes"] = (0.1 + 0.1 * position + 0.01 * pool["seed"]) * pool["nodes"]
    pool["accuracy"] = pool["dense_accuracy"] * (0.95 - 0.8 * pool["sink_nodes"] / pool["nodes"])
    acc = pool.set_index(["model", "dataset", "pruner", "sparsity", "seed"])["accuracy"]
    layers["layer_density"] = layers.set_index(["model", "dataset", "pruner", "sparsity", "seed"]).index.map(acc)
    return validate_pool(pool), validate_pool(layers, layers=True)


def test_order_ties_alphabetical_and_nan_placement():
    names = ["snip", "er", "grasp", "erk"]
    scores = np.array([1.0, 2.0, 2.0, np.nan])
    assert order(names, scores, descending=True, nan_first=True) == ["erk", "er", "grasp", "snip"]
    assert order(names, scores, descending=False, nan_first=False) == ["snip", "er", "grasp", "erk"]


def test_mixture_and_density_rank_a_monotone_pool_perfectly():
    pool, layers = monotone_pools()
    feats = network_features(pool, layers, "mge")
    importance = feature_importance(feats, runs=2)
    sink = importance[importance["metric"] == "sink_nodes"]["pearson_r"]
    assert (sink > 0.9).all()
    cells = sorted(set(zip(feats["model"], feats["sparsity"])))
    holdout = holdout_importance(feats, cells, runs=1)
    tables = ranking_tables(feats, layers, importance, holdout)
    long = tables["table4_long"]
    assert set(long["strategy"]) == {"layer_density", "delta_r", "delta_r_imdb", "lambda_imsg",
                                     "fixed_global_ranking", "topometric_mixture", "topometric_mixture_oos"}
    # the pruner order is the same in every cell, so the fixed ranking of the other cells is right too
    for strategy in ("topometric_mixture", "topometric_mixture_oos", "layer_density", "fixed_global_ranking"):
        part = long[long["strategy"] == strategy]
        np.testing.assert_allclose(part["rbo"], 1.0)
        np.testing.assert_allclose(part["top1"], 1.0)
        np.testing.assert_allclose(part["regret"], 0.0)
    assert (long["n_pruners"] == 7).all()
    assert set(tables["table11_long"]["n_pruners"]) == {4} and set(tables["table12_long"]["n_pruners"]) == {3}
    summary = tables["table4"]
    assert list(summary.columns[:5]) == ["model", "strategy", "sparsity", "rbo_mean", "rbo_std"]
    mix = summary[summary["strategy"] == "topometric_mixture"]
    np.testing.assert_allclose(mix["rbo_mean"], 1.0)
    np.testing.assert_allclose(mix["rbo_std"], 0.0)


def test_rbo_summary_mean_std_over_datasets_and_avg_column():
    long = pd.DataFrame({"model": "m", "dataset": ["a", "b", "c", "a", "b", "c"], "strategy": "delta_r",
                         "sparsity": [0.6] * 3 + [0.9] * 3, "rbo": [0.1, 0.2, 0.6, 0.5, 0.5, 0.5], "n_pruners": 3})
    out = rbo_summary(long).set_index("sparsity")
    assert out.loc[0.6, "rbo_mean"] == pytest.approx(0.3)
    assert out.loc[0.6, "rbo_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert out.loc["avg", "rbo_mean"] == pytest.approx((0.3 + 0.5) / 2)
    assert out.loc["avg", "rbo_std"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1) / 2)
    single = rbo_summary(long[long["dataset"] == "a"])
    assert single["rbo_std"].isna().all()  # one dataset: std undefined, not a crash


def test_baselines_use_rolled_rows_and_delta_r_only_where_imdb_defined():
    layers = pd.DataFrame({"model": "m", "dataset": "d", "pruner": "p", "sparsity": 0.9, "seed": 0,
                           "encoding": ["rolled", "rolled", "rolled", "rolled_channel"], "layer": [0, 1, 2, 0],
                           "layer_density": [0.2, 0.4, 0.6, 9.0], "delta_r": [1.0, 3.0, 100.0, 9.0],
                           "delta_r_imdb": [0.5, 0.7, np.nan, 9.0], "lambda_imsg": [np.nan, 2.0, 4.0, 9.0]})
    row = baseline_scores(layers).iloc[0]
    assert row["layer_density"] == pytest.approx(0.4)
    assert row["delta_r"] == pytest.approx(2.0)
    assert row["delta_r_imdb"] == pytest.approx(0.6)
    assert row["lambda_imsg"] == pytest.approx(3.0)


def test_baseline_all_nan_network_is_ranked_first():
    cells = pd.DataFrame({"model": "m", "dataset": "d", "sparsity": 0.9, "pruner": ["a", "b", "c"],
                          "accuracy": [0.9, 0.8, 0.7], "delta_r": [2.0, 1.0, np.nan]})
    long = ranking_rbo(cells, ["delta_r"])
    from sparsetopo.analysis.rbo import rbo
    assert long["rbo"].iloc[0] == pytest.approx(rbo(["a", "b", "c"], ["c", "a", "b"]))


def test_scale_within_model():
    frame = pd.DataFrame({"model": ["x", "x", "y", "y"], **{m: [1.0, 3.0, 5.0, 5.0] for m in TOPOMETRICS}})
    out = scale_within_model(frame)
    assert out["k_core"].tolist() == [0.0, 1.0, 0.0, 0.0]


def test_strategy_without_any_score_in_a_cell_is_nan_not_alphabetical():
    cells = pd.DataFrame({"model": "m", "dataset": "d", "sparsity": 0.9, "pruner": ["a", "b", "c"],
                          "accuracy": [0.9, 0.8, 0.7], "topometric_mixture": np.nan})
    long = ranking_rbo(cells, ["topometric_mixture"])
    assert len(long) == 1 and np.isnan(long["rbo"].iloc[0])
    summary = rbo_summary(long)
    assert summary["rbo_mean"].isna().all()


def test_mixture_score_is_eq5_with_mean_of_both_weight_vectors():
    from sparsetopo.analysis.ranking import importance_weights, mixture_scores

    rng = np.random.default_rng(0)
    feats = pd.DataFrame({"model": ["x"] * 3 + ["y"] * 3, "dataset": "d", "pruner": ["a", "b", "c"] * 2,
                          "sparsity": 0.9, "seed": 0, **{m: rng.random(6) for m in TOPOMETRICS}})
    w_m, w_s = rng.normal(size=len(TOPOMETRICS)), rng.normal(size=len(TOPOMETRICS))
    importance = pd.concat([
        pd.DataFrame({"scenario": "architecture", "subset": "x", "metric": TOPOMETRICS, "pearson_r": w_m}),
        pd.DataFrame({"scenario": "sparsity", "subset": 0.9, "metric": TOPOMETRICS, "pearson_r": w_s})])
    scores = mixture_scores(feats, importance_weights(importance))
    x = feats.loc[:2, TOPOMETRICS].to_numpy(float)
    x = (x - x.min(0)) / (x.max(0) - x.min(0))  # min-max within model x only
    np.testing.assert_allclose(scores.loc[:2, "topometric_mixture"], x @ ((w_m + w_s) / 2))
    y = feats.loc[3:, TOPOMETRICS].to_numpy(float)
    y = (y - y.min(0)) / (y.max(0) - y.min(0))
    np.testing.assert_allclose(scores.loc[3:, "topometric_mixture"], y @ w_s)  # no w^M for model y: w^s alone


def test_mixture_scales_seed_averaged_metrics(monkeypatch):
    """Spec: average over seeds first, then min-max within the model. Per-network scaling would
    let metric 1's seed spread (-90..90) shrink its weight and rank snip first here."""
    import sparsetopo.analysis.ranking as ranking
    from sparsetopo.analysis.pool import TOPOMETRICS
    from sparsetopo.analysis.rbo import rbo

    rows = []
    for pruner, m1, m2, acc in (("snip", (10, 10), (0, 0), 0.9), ("grasp", (-90, 90), (1, 1), 0.5)):
        for seed in (0, 1):
            row = dict(model="resnet20", dataset="cifar10", pruner=pruner, sparsity=0.9, seed=seed,
                       accuracy=acc, **{m: 0.0 for m in TOPOMETRICS})
            row[TOPOMETRICS[0]], row[TOPOMETRICS[1]] = m1[seed], m2[seed]
            rows.append(row)
    w = np.zeros(len(TOPOMETRICS))
    w[0], w[1] = 1.0, 0.1
    monkeypatch.setattr(ranking, "importance_weights", lambda importance: (lambda m, s: w))
    long = ranking.ranking_tables(pd.DataFrame(rows), None, importance=None)["table11_long"]
    got = long.loc[long["strategy"] == ranking.MIXTURE, "rbo"].item()
    # seed-averaged: snip scores 1·1 + 0.1·0 = 1, grasp 1·0 + 0.1·1 = 0.1 -> grasp ranked first
    assert got == pytest.approx(rbo(["snip", "grasp"], ["grasp", "snip"]))


def known_answer_cells():
    """Two models x two sparsities x one dataset, three pruners with known accuracies.

    Everywhere but (m2, 0.9), ``a`` > ``b`` > ``c``; in (m2, 0.9) ``c`` is best. ``lucky`` scores the
    truth exactly, ``contrary`` the reverse; the fixed ranking (other cells) then says a, b, c."""
    rows = []
    for model in ("m1", "m2"):
        for sparsity in (0.5, 0.9):
            acc = {"a": 0.9, "b": 0.8, "c": 0.7} if (model, sparsity) != ("m2", 0.9) else \
                {"a": 0.6, "b": 0.7, "c": 0.85}
            for pruner, value in acc.items():
                rows.append(dict(model=model, dataset="d", sparsity=sparsity, pruner=pruner, accuracy=value,
                                 lucky=value, contrary=-value))
    return pd.DataFrame(rows)


def test_fixed_global_ranking_top1_and_regret_known_answer():
    from sparsetopo.analysis.ranking import GLOBAL, global_ranking_scores, strategy_summary
    from sparsetopo.analysis.rbo import rbo

    cells = known_answer_cells()
    scores = global_ranking_scores(cells)
    # (m2, 0.9) held out: the three other cells all say a (0), b (0.5), c (1)
    held = (cells["model"] == "m2") & (cells["sparsity"] == 0.9)
    assert scores[held].tolist() == [0.0, 0.5, 1.0]
    # (m1, 0.5): other cells are (m1, .9), (m2, .5): a,b,c and (m2, .9): c,b,a -> a: 1/3, b: .5, c: 2/3
    first = (cells["model"] == "m1") & (cells["sparsity"] == 0.5)
    np.testing.assert_allclose(scores[first], [1 / 3, 0.5, 2 / 3])
    long = ranking_rbo(cells, ["lucky", "contrary", GLOBAL]).set_index(["model", "sparsity", "strategy"])
    assert long.loc[("m2", 0.9, GLOBAL), "top1"] == 0.0
    assert long.loc[("m2", 0.9, GLOBAL), "regret"] == pytest.approx(100 * (0.85 - 0.6))  # picks a
    assert long.loc[("m2", 0.9, GLOBAL), "rbo"] == pytest.approx(rbo(["c", "b", "a"], ["a", "b", "c"]))
    assert long.loc[("m1", 0.5, GLOBAL), "top1"] == 1.0 and long.loc[("m1", 0.5, GLOBAL), "regret"] == 0.0
    assert (long.xs("lucky", level="strategy")["top1"] == 1.0).all()
    contrary = long.xs("contrary", level="strategy")
    assert contrary.loc[("m1", 0.5), "regret"] == pytest.approx(20.0)  # picks c (0.7) where a has 0.9
    summary = strategy_summary(ranking_rbo(cells, ["lucky", "contrary", GLOBAL])).set_index("strategy")
    assert summary.loc["lucky", "top1_rate"] == 1.0 and summary.loc[GLOBAL, "top1_rate"] == 0.75
    assert summary.loc[GLOBAL, "regret_mean"] == pytest.approx(25.0 / 4)
    assert summary.loc["lucky", "cells_won"] == 1 and summary.loc["lucky", "cells_lost"] == 0
    # in (m2, .9) "contrary" picks a, b, c, exactly the fixed ranking: a tie, neither won nor lost
    assert summary.loc["contrary", "cells_lost"] == 3 and summary.loc["contrary", "cells_won"] == 0
    assert not summary["in_sample"].any()


def test_effective_baselines_rank_higher_first_and_seed_sets_match():
    """effective_* columns of the pool are baselines (higher first); a network missing from the
    layer pool leaves the truth and every strategy of its cell (one seed set per cell)."""
    from sparsetopo.analysis.ranking import ranked_networks

    pool, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.9,),
                                   pruners=("snip", "er", "erk"), seeds=(0, 1), layers_per_network=2)
    pool["effective_density"] = pool["accuracy"] / 2          # perfect
    pool["effective_paths"] = -pool["accuracy"]                 # reversed
    pool["effective_nodes"] = pool["accuracy"] * pool["nodes"]  # raw count: perfect after /|V|? no: /|V| varies
    pool, layers = validate_pool(pool), validate_pool(layers, layers=True)
    # seed 1 of snip only in the MGE pool, with a terrible accuracy that would flip snip's mean
    snip1 = (layers["pruner"] == "snip") & (layers["seed"] == 1)
    pool.loc[(pool["pruner"] == "snip") & (pool["seed"] == 1), "accuracy"] = 0.0
    layers = layers[~snip1]
    feats = network_features(pool, layers, "mge")
    assert len(ranked_networks(feats, layers)) == len(pool) - 1
    tables = ranking_tables(feats, layers, importance=pd.DataFrame(columns=["scenario", "subset", "metric",
                                                                            "pearson_r"]))
    long = tables["table4_long"].set_index("strategy")
    truth_without_seed1 = pool[~((pool["pruner"] == "snip") & (pool["seed"] == 1))]
    best = truth_without_seed1.groupby("pruner")["accuracy"].mean().idxmax()
    assert long.loc["effective_density", "rbo"] == pytest.approx(1.0)  # scored on the same seeds as the truth
    assert long.loc["effective_density", "top1"] == 1.0
    assert long.loc["effective_paths", "rbo"] < 1.0
    assert "effective_nodes" in long.index and best in ("snip", "er", "erk")
