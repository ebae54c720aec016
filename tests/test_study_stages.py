"""Studies record every network's metrics twice: at initialization (masks on the initial weights)
and after training; unweighted metrics agree between the stages, weighted ones do not."""
import json

import numpy as np
import pytest

from sparsetopo.analysis.pool import select_stage, validate_pool
from sparsetopo.study import StudyStore, run_study
from sparsetopo.study.config import config_from_dict

#: metrics that read the weights (|w|): strength and the spectral ones; the rest see the masks only
WEIGHTED = {"node_strength", "spectral_gap", "spectral_radius"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    config = config_from_dict({
        "grid": {"models": ["cnn_s"], "datasets": ["digits"], "sparsities": [0.8], "pruners": ["snip"],
                 "seeds": [0], "dense": True},
        "recipe": {"epochs": 2}, "data": {"train_subset": 128, "test_subset": 64},
        "outputs": {"encodings": ["mge", "rolled"]}})
    out = tmp_path_factory.mktemp("stages")
    report = run_study(config, out, progress=False)
    assert report.complete
    return out, config


def test_init_and_trained_rows_differ_only_where_weights_matter(study):
    out, _ = study
    store = StudyStore(out)
    pool = validate_pool(__import__("pandas").read_parquet(store.pool_path("pool")))
    layers = validate_pool(__import__("pandas").read_parquet(store.pool_path("layers")), layers=True)
    assert sorted(pool["stage"]) == ["init", "trained"]
    init, trained = (select_stage(pool, s).iloc[0] for s in ("init", "trained"))
    for metric in ("sink_nodes", "source_nodes", "disconnected_nodes", "removable_out", "removable_in",
                   "neighbors_1hop", "neighbors_2hop", "motifs_4", "k_core", "n_components",
                   "mean_component_size", "cut_edges", "cut_nodes", "nodes", "edges"):
        assert init[metric] == trained[metric], metric  # same masks, same graph
    for metric in WEIGHTED:
        assert np.isfinite(init[metric]) and init[metric] != pytest.approx(trained[metric], rel=1e-6), metric
    assert init["accuracy"] == trained["accuracy"]  # the outcome both stages are paired with
    li, lt = (select_stage(layers, s) for s in ("init", "trained"))
    assert len(li) == len(lt) > 0
    np.testing.assert_array_equal(li["layer_density"], lt["layer_density"])
    np.testing.assert_array_equal(li["neighbors_1hop"], lt["neighbors_1hop"])
    assert not np.allclose(li["node_strength"], lt["node_strength"])


def test_init_metrics_are_saved_and_reused_on_resume(study):
    out, config = study
    store = StudyStore(out)
    sparse = [spec for spec in config.cells() if not spec.is_dense][0]
    saved = store.cell_dir(sparse) / "init_metrics.json"
    rows = json.loads(saved.read_text())["rows"]
    assert rows and all(row["stage"] == "init" for row in rows)
    result = store.read_result(sparse)
    assert [r["stage"] for r in result["rows"]] == ["init", "trained"]
