"""The report folder and the `sparsetopo analyze` command, on a demo-sized and a small full pool."""
import numpy as np
import pandas as pd
import pytest

from sparsetopo.analysis.pool import validate_pool
from sparsetopo.analysis.report import build_report, paper_number, pm
from sparsetopo.analysis.synthetic import synthetic_pools
from sparsetopo.cli import main

TABLE3 = ["scenario", "subset", "encoding", "adj_r2_mean", "adj_r2_std", "mae", "n_networks"]
RANK = ["model", "strategy", "sparsity", "rbo_mean", "rbo_std", "top1_rate", "regret_mean"]
OUT_OF_SAMPLE = {"layer_density", "delta_r", "delta_r_imdb", "lambda_imsg", "fixed_global_ranking",
                 "topometric_mixture_oos", "recommender"}


def test_paper_number_format():
    assert paper_number(0.5412) == ".54" and paper_number(-0.051) == "-.05" and paper_number(1.0) == "1.00"
    assert paper_number(0.0201, 3) == ".020" and paper_number(float("nan")) == "–"
    assert pm(0.5, 0.01) == ".50 ± .01" and pm(0.5, float("nan")) == ".50"


@pytest.fixture(scope="module")
def small_full_report(tmp_path_factory):
    pool, layers = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10", "cifar100"),
                                   sparsities=(0.6, 0.9), seeds=(0, 1), layers_per_network=3)
    out = tmp_path_factory.mktemp("report")
    pool.to_parquet(out / "pool.parquet")
    layers.to_parquet(out / "pool_layers.parquet")
    code = main(["analyze", str(out / "pool.parquet"), "--layers", str(out / "pool_layers.parquet"),
                 "--out", str(out / "rep"), "--runs", "2", "--oos-runs", "1", "--no-progress"])
    assert code == 0
    return out / "rep"


def test_full_report_files_and_csv_columns(small_full_report):
    rep = small_full_report
    t3 = pd.read_csv(rep / "table3.csv")
    assert list(t3.columns) == TABLE3
    assert set(t3["encoding"]) == {"mge", "rolled", "rolled_channel"}
    assert set(t3["scenario"]) == {"sparsity", "architecture"} and len(t3) == 12
    assert t3["adj_r2_mean"].notna().all() and (t3["n_networks"] == 56).all()
    for name in ("table4", "table11", "table12"):
        table = pd.read_csv(rep / f"{name}.csv")
        assert list(table.columns) == RANK
        assert set(table["strategy"]) == {"layer_density", "delta_r", "delta_r_imdb", "lambda_imsg",
                                          "fixed_global_ranking", "topometric_mixture", "recommender"}
        assert set(table["sparsity"].astype(str)) == {"0.6", "0.9", "avg"}
        assert table["rbo_mean"].between(0, 1).all() and table["top1_rate"].between(0, 1).all()
        assert (table["regret_mean"] >= 0).all()
        oos = pd.read_csv(rep / f"{name}_oos.csv")
        assert set(oos["strategy"]) == OUT_OF_SAMPLE
        strategies = pd.read_csv(rep / f"{name}_strategies.csv")
        assert set(strategies["strategy"]) == OUT_OF_SAMPLE | {"topometric_mixture"}
    imp = pd.read_csv(rep / "importance.csv")
    assert list(imp.columns) == ["scenario", "subset", "metric", "pearson_r"] and len(imp) == 4 * 16
    assert imp["pearson_r"].between(-1, 1).all()
    for stem in ("figure2_ramanujan_profiles", "figure3_importance_sparsity", "figure4_importance_architecture",
                 "figure5_ramanujan_density"):
        for suffix in (".png", ".pdf"):
            assert (rep / f"{stem}{suffix}").stat().st_size > 1000
    index = (rep / "index.md").read_text()
    for needle in ("Table 3", "Table 4", "Table 11", "Table 12", "figure3_importance_sparsity.png",
                   "Ours (out-of-sample)", "Lasso and ElasticNet", "Top-1 hit rate", "Fixed global ranking",
                   "Networks n", "Metrics stage analysed: trained", "rank's recommender (out-of-sample)",
                   "learned from trained-stage metrics (the pool has no init-stage rows)", "table3_regressors.csv"):
        assert needle in index
    parts = pd.read_csv(rep / "table3_regressors.csv")
    assert len(parts) == 12 * 6 and set(parts["regressor"]) == {"linear", "ridge", "huber", "pcr",
                                                                "bayesian_ridge", "ard"}
    assert not list(rep.glob(".*.tmp"))  # atomic writes left no temporary files


def test_demo_sized_pool_reports_what_it_cannot_compute(tmp_path):
    pool, _ = synthetic_pools(models=("resnet20",), datasets=("digits",), sparsities=(0.5, 0.9),
                              pruners=("snip", "er", "synflow"), seeds=(0,))
    pool.to_csv(tmp_path / "pool.csv", index=False)
    code = main(["analyze", str(tmp_path / "pool.csv"), "--out", str(tmp_path / "rep"), "--runs", "2",
                 "--no-progress"])
    assert code == 0
    t3 = pd.read_csv(tmp_path / "rep" / "table3.csv")
    # 3 networks per sparsity (< 5 folds) are skipped; the model subset has 6 networks but 16 features.
    assert t3["adj_r2_mean"].isna().all() and list(t3["n_networks"]) == [3, 3, 6]
    index = (tmp_path / "rep" / "index.md").read_text()
    assert "fewer than 5 folds" in index and "n - p - 1" in index
    assert "No layer pool given" in index and "Only one dataset" in index
    t4 = pd.read_csv(tmp_path / "rep" / "table4.csv")
    assert set(t4["strategy"]) == {"topometric_mixture", "fixed_global_ranking"} and t4["rbo_std"].isna().all()
    assert "single seed" in index


def test_report_in_process_with_collapsed_networks(tmp_path):
    pool, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.6, 0.9),
                                   seeds=(0, 1), layers_per_network=2)
    pool.loc[:2, "spectral_gap"] = np.nan
    report = build_report(validate_pool(pool), validate_pool(layers, layers=True), tmp_path, runs=1,
                          oos_runs=0, progress=False)
    assert any("3 network(s) with a NaN metric dropped" in n for n in report.notes)
    oos = pd.read_csv(tmp_path / "table4_oos.csv")  # no out-of-sample mixture with oos_runs=0
    assert "topometric_mixture_oos" not in set(oos["strategy"]) and "fixed_global_ranking" in set(oos["strategy"])


def test_analyze_cli_errors_are_one_line(tmp_path, capsys):
    pool, _ = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.9,), pruners=("snip",),
                              seeds=(0,))
    pool.drop(columns="k_core").to_csv(tmp_path / "bad.csv", index=False)
    assert main(["analyze", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r")]) == 2
    assert "missing required column(s): k_core" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "r")]) == 2
    assert main(["analyze", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r"), "--runs", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "pool_layers.parquet" in capsys.readouterr().out


def test_accuracy_table_means_over_seeds_and_dense_row():
    from sparsetopo.analysis.report import accuracy_markdown, accuracy_table

    pool, _ = synthetic_pools(models=("resnet20",), datasets=("cifar10",), sparsities=(0.9, 0.98),
                              pruners=("snip", "erk"), seeds=(0, 1))
    pool.loc[(pool["pruner"] == "snip") & (pool["sparsity"] == 0.9), "accuracy"] = [0.5, 0.7]
    table = accuracy_table(pool)
    row = table[(table["pruner"] == "snip") & (table["sparsity"] == 0.9)].iloc[0]
    assert row["accuracy_mean"] == pytest.approx(60.0) and row["accuracy_std"] == pytest.approx(10.0)
    dense = table[table["pruner"] == "dense"]
    assert len(dense) == 1 and dense["accuracy_mean"].iloc[0] == pytest.approx(90.0)
    text = accuracy_markdown(table)
    assert "| cifar10 | resnet20 | snip | 60.0 ± 10.0 |" in text and "| dense | 90.0 |" in text
    single = accuracy_table(pool[pool["seed"] == 0])
    assert single["accuracy_std"].isna().all()


def test_layer_pool_without_ramanujan_columns_skips_figure5(tmp_path):
    pool, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.6, 0.9),
                                   pruners=("snip", "er", "erk"), seeds=(0, 1), layers_per_network=2)
    layers = layers.drop(columns=["delta_r", "delta_r_imdb", "lambda_imsg"])  # was a matplotlib traceback
    report = build_report(validate_pool(pool), validate_pool(layers, layers=True), tmp_path, runs=1,
                          oos_runs=0, progress=False)
    assert any("no Ramanujan columns" in n and "Figure 5 skipped" in n for n in report.notes)
    assert (tmp_path / "figure2_ramanujan_profiles.png").exists()
    assert not (tmp_path / "figure5_ramanujan_density.png").exists()
    assert set(pd.read_csv(tmp_path / "table4.csv")["strategy"]) == {"layer_density", "topometric_mixture",
                                                                      "fixed_global_ranking"}


def test_report_with_infinite_delta_r_and_networks_missing_from_one_table(tmp_path):
    """-inf Δr is undefined (NaN) once, in validation, and counted in the report; networks missing
    from the layer pool are listed; Figure 5 still shows Δr where it is defined."""
    pool, layers = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.6, 0.9),
                                   pruners=("snip", "er", "erk"), seeds=(0, 1), layers_per_network=4)
    rolled = layers["encoding"] == "rolled"
    layers.loc[rolled & (layers["layer"] == 0), "delta_r"] = -np.inf
    gone = (layers["model"] == "conv6") & (layers["pruner"] == "er") & (layers["seed"] == 1)
    n_inf = int((rolled & (layers["layer"] == 0) & ~gone).sum())
    pool_v, layers_v = validate_pool(pool), validate_pool(layers[~gone], layers=True)
    assert layers_v.attrs["infinite"] == {"delta_r": n_inf} and not np.isinf(layers_v["delta_r"]).any()
    report = build_report(pool_v, layers_v, tmp_path, runs=1, oos_runs=0, progress=False)
    notes = " ".join(report.notes)
    assert f"{n_inf} infinite value(s) of delta_r in the layer pool" in notes
    assert "2 network(s) are missing from some table" in notes and "conv6/cifar10/er/0.6/seed 1" in notes
    gaps = pd.read_csv(tmp_path / "coverage.csv")
    assert len(gaps) == 2 and gaps["mge"].all() and not gaps["rolled"].any()
    assert "Rankings use 22 network(s)" in notes
    fig5 = pd.read_csv(tmp_path / "figure5_correlation.csv")
    delta = fig5[fig5["metric"] == "delta_r"]
    assert delta["pearson_r"].notna().all() and (delta["n_layers"] > 0).all()


def test_infinite_values_outside_ramanujan_columns_are_refused():
    from sparsetopo.errors import PoolError

    pool, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.9,),
                                   pruners=("snip", "er"), seeds=(0,), layers_per_network=2)
    bad = layers.copy()
    bad.loc[0, "layer_density"] = np.inf
    with pytest.raises(PoolError, match="layer_density"):
        validate_pool(bad, layers=True)
    with pytest.raises(PoolError, match="effective_density must lie in"):
        validate_pool(pool.assign(effective_density=1.5))
    with pytest.raises(PoolError, match="'effective_paths' has an infinite value"):
        validate_pool(pool.assign(effective_paths=np.inf))


def test_one_progress_bar_covers_the_whole_report(tmp_path, capsys, monkeypatch):
    from sparsetopo.analysis import regression
    from sparsetopo.analysis.report import AFTER_CV_STEPS
    monkeypatch.setattr(regression, "_is_tty", lambda: True)
    pool, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.6, 0.9),
                                   seeds=(0, 1), layers_per_network=2)
    build_report(validate_pool(pool), validate_pool(layers, layers=True), tmp_path, runs=2, oos_runs=0, jobs=1)
    err = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert not any(line.startswith("cross-validation") for line in err)  # no second bar
    lines = [line for line in err if line.startswith("report")]
    # computable subsets: 2 sparsities + 1 model, for MGE and the two rolled encodings: 9 blocks of runs
    total = 9 + len(AFTER_CV_STEPS)
    assert lines and f"{total}/{total}" in lines[-1] and "100%" in lines[-1], lines[-3:]


def test_rank_recommender_is_a_strategy_scored_as_rank_scores_it(tmp_path):
    """Init-stage metrics carry the signal (per-cell pruner effects a fixed ranking cannot know),
    trained-stage ones none: the report's recommender strategy learns from init rows, ranks the
    held-out cells right, and its per-cell scores are exactly `rank`'s track record."""
    from sparsetopo.analysis.recommend import learning_rows, track_record
    from sparsetopo.analysis.regression import regressor_names
    pool, layers = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.6, 0.9),
                                   seeds=range(3), layers_per_network=2, random_state=2)
    rng = np.random.default_rng(7)
    effect = pool.groupby(["model", "sparsity", "pruner"])["nodes"].transform(lambda v: rng.random())
    init = pool.assign(stage="init", sink_nodes=(0.6 * effect + 0.1 * rng.random(len(pool))) * pool["nodes"])
    init["accuracy"] = init["dense_accuracy"] * (1 - 0.5 * init["sink_nodes"] / init["nodes"]
                                                 - 0.3 * init["k_core"] / init["edges"])
    trained = init.assign(stage="trained", sink_nodes=rng.random(len(pool)) * pool["nodes"])
    both = validate_pool(pd.concat([trained, init], ignore_index=True))
    report = build_report(both, validate_pool(layers, layers=True), tmp_path, runs=1, oos_runs=0, jobs=1,
                          progress=False)
    per_cell = pd.read_csv(tmp_path / "table4_per_dataset.csv")
    mine = per_cell[per_cell["strategy"] == "recommender"]
    assert len(mine) == 4 and mine["top1"].eq(1.0).all() and mine["rbo"].min() > 0.9
    summary = report.tables["table4_strategies"].set_index("strategy")
    assert summary.loc["recommender", "rbo_mean"] > summary.loc["fixed_global_ranking", "rbo_mean"]
    assert not summary.loc["recommender", "in_sample"]
    assert "recommender" in set(pd.read_csv(tmp_path / "table4_oos.csv")["strategy"])
    rows, _ = learning_rows(both, "init")
    record = track_record(rows[rows["model"] == "conv6"], regressor_names())
    record = record[record["strategy"] == "recommender"].merge(mine, on=["model", "dataset", "sparsity"])
    assert len(record) == 2
    for column in ("rbo", "top1", "regret"):
        np.testing.assert_allclose(record[column + "_x"], record[column + "_y"], rtol=1e-9, atol=1e-9)
    assert any("learned from init-stage metrics" in note for note in report.notes)


def test_figure2_names_metrics_undefined_or_defined_in_one_layer_only():
    from sparsetopo.analysis import figures
    _, layers = synthetic_pools(models=("conv6",), datasets=("cifar10",), sparsities=(0.9,),
                                pruners=("snip", "er", "erk"), seeds=(0,), layers_per_network=3)
    layers = validate_pool(layers, layers=True)
    ramanujan = ["delta_r", "delta_r_imdb", "lambda_imsg"]
    layers.loc[layers["pruner"] == "er", ramanujan] = np.nan                             # undefined everywhere
    layers.loc[(layers["pruner"] == "erk") & (layers["layer"] > 0), "lambda_imsg"] = np.nan  # one layer left
    fig = figures.ramanujan_profiles(layers, "cifar10", 0.9)
    captions = {ax.get_title(): " ".join(t.get_text() for t in ax.texts) for ax in fig.axes}
    assert captions["Conv-6 / er (n=1)"] == "undefined in every layer: Δr, Δr_imdb, λ_imsg"
    assert captions["Conv-6 / erk (n=1)"] == "one layer only (so ±1): λ_imsg"
    assert captions["Conv-6 / snip (n=1)"] == ""
    figures._pyplot().close(fig)


def test_a_regressor_that_wrecks_the_average_is_named():
    from sparsetopo.analysis.regression import dominating_regressors
    parts = pd.DataFrame({"regressor": ["linear", "ridge", "pcr", "ard"], "adj_r2_mean": [-600.0, 0.4, -600.0, 0.2],
                          "adj_r2_median": [-4.0, 0.41, -4.0, 0.25]})
    text = dominating_regressors(parts).format(n=42)
    assert "linear -600.00 (median over runs -4.00), pcr -600.00" in text and "the other 2 average 0.30" in text
    assert dominating_regressors(parts.assign(adj_r2_mean=[0.1, 0.4, 0.1, 0.2])) is None
    assert dominating_regressors(parts.assign(adj_r2_mean=-5.0)) is None  # all bad: nothing dominates
