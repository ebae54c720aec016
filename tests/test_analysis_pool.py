"""Pool loading, validation (named PoolErrors), normalisation divisors and per-network features."""
import numpy as np
import pandas as pd
import pytest

from sparsetopo.analysis.pool import (TOPOMETRICS, ROLLED_FEATURES, check_consistent, load_pools,
                                      network_features, read_table, validate_pool)
from sparsetopo.analysis.synthetic import synthetic_pools
from sparsetopo.errors import PoolError, ValidationError
from sparsetopo.metrics.normalize import normalize


@pytest.fixture(scope="module")
def pools():
    return synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.6, 0.9),
                           pruners=("snip", "er"), seeds=(0, 1), layers_per_network=3)


def test_normalize_applies_the_spec_divisors():
    row = {m: 12.0 for m in TOPOMETRICS} | {"nodes": 4.0, "edges": 6.0}
    out = normalize(pd.DataFrame([row]), "mge").iloc[0]
    for m in ("neighbors_1hop", "neighbors_2hop", "motifs_4", "k_core", "node_strength", "cut_edges", "cut_nodes"):
        assert out[m] == 2.0, m  # / |E|
    for m in ("sink_nodes", "source_nodes", "disconnected_nodes", "mean_component_size"):
        assert out[m] == 3.0, m  # / |V|
    for m in ("n_components", "spectral_gap", "spectral_radius", "removable_out", "removable_in"):
        assert out[m] == 12.0, m  # raw (r-out / r-in are already / |E| in their raw definition)


def test_normalize_zero_divisor_is_nan_and_bad_input_is_named():
    out = normalize(pd.DataFrame([{"k_core": 1.0, "nodes": 3.0, "edges": 0.0}]), "rolled")
    assert np.isnan(out["k_core"].iloc[0])
    with pytest.raises(PoolError, match="edges"):
        normalize(pd.DataFrame([{"k_core": 1.0, "nodes": 3.0}]), "mge")
    with pytest.raises(ValidationError, match="encoding"):
        normalize(pd.DataFrame([{"k_core": 1.0}]), "unrolled")


def test_validation_errors_name_the_problem(pools):
    pool, layers = pools
    with pytest.raises(PoolError, match="k_core"):
        validate_pool(pool.drop(columns="k_core"))
    with pytest.raises(PoolError, match="duplicate key.*pruner='snip'"):
        validate_pool(pd.concat([pool, pool.iloc[:1]]))
    bad = pool.copy()
    bad.loc[3, "accuracy"] = 1.5
    with pytest.raises(PoolError, match=r"accuracy must lie in \[0, 1\]; got 1.5"):
        validate_pool(bad)
    bad = pool.astype({"spectral_gap": object})
    bad.loc[0, "spectral_gap"] = "oops"
    with pytest.raises(PoolError, match="spectral_gap.*oops"):
        validate_pool(bad)
    with pytest.raises(PoolError, match="encoding"):
        validate_pool(pool.assign(encoding="rolled"))
    with pytest.raises(PoolError, match="layer"):
        validate_pool(layers.drop(columns="layer"), layers=True)
    with pytest.raises(PoolError, match="duplicate key"):
        validate_pool(pd.concat([layers, layers.iloc[:1]]), layers=True)
    other = validate_pool(layers[layers["model"] == "conv6"], layers=True)
    with pytest.raises(PoolError, match="model.*only in the pool: \\['resnet20'\\]"):
        check_consistent(validate_pool(pool), other)


def test_read_parquet_and_csv_round_trip(pools, tmp_path):
    pool, layers = pools
    pool.to_parquet(tmp_path / "pool.parquet")
    layers.to_csv(tmp_path / "layers.csv", index=False)
    a, b = load_pools(tmp_path / "pool.parquet", tmp_path / "layers.csv")
    assert len(a) == len(pool) and len(b) == len(layers)
    with pytest.raises(PoolError, match="does not exist"):
        read_table(tmp_path / "missing.parquet")
    (tmp_path / "pool.txt").write_text("x")
    with pytest.raises(PoolError, match="unknown format"):
        read_table(tmp_path / "pool.txt")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(PoolError, match="cannot read"):
        read_table(tmp_path / "broken.parquet")


def test_rolled_features_are_layer_normalised_then_averaged_ignoring_nan(pools):
    pool, layers = pools
    layers = validate_pool(layers, layers=True)
    layers.loc[0, "k_core"] = np.nan  # one NaN layer of the first network
    feats = network_features(validate_pool(pool), layers, "rolled")
    assert list(feats.columns[-len(ROLLED_FEATURES) - 1:-1]) == ROLLED_FEATURES
    first = layers[(layers["encoding"] == "rolled") & (layers["model"] == layers.loc[0, "model"])
                   & (layers["pruner"] == layers.loc[0, "pruner"]) & (layers["sparsity"] == layers.loc[0, "sparsity"])
                   & (layers["seed"] == layers.loc[0, "seed"]) & (layers["dataset"] == layers.loc[0, "dataset"])]
    expected_k = np.nanmean(first["k_core"] / first["edges"])
    expected_c = np.mean(first["mean_component_size"] / first["nodes"])
    row = feats[(feats["model"] == first["model"].iloc[0]) & (feats["pruner"] == first["pruner"].iloc[0])
                & (feats["sparsity"] == first["sparsity"].iloc[0]) & (feats["seed"] == first["seed"].iloc[0])].iloc[0]
    assert row["k_core"] == pytest.approx(expected_k)
    assert row["mean_component_size"] == pytest.approx(expected_c)
    assert row["drop"] == pytest.approx(1 - row["accuracy"] / row["dense_accuracy"])
    assert len(feats) == len(pool)


def test_bad_seed_layer_and_infinite_values_are_named_errors(pools):
    pool, layers = pools
    bad = pool.astype({"seed": object})
    bad.loc[0, "seed"] = "x"
    with pytest.raises(PoolError, match="'seed' must hold integers; got 'x'"):
        validate_pool(bad)
    bad = pool.astype({"seed": float})
    bad.loc[0, "seed"] = 1.5  # would silently become seed 1 and collide with another key
    with pytest.raises(PoolError, match="'seed' must hold integers; got 1.5"):
        validate_pool(bad)
    assert validate_pool(pool.astype({"seed": float}))["seed"].dtype.kind == "i"
    bad = layers.astype({"layer": object})
    bad.loc[0, "layer"] = "x"
    with pytest.raises(PoolError, match="'layer' must hold integers"):
        validate_pool(bad, layers=True)
    bad = pool.copy()
    bad.loc[2, "k_core"] = np.inf  # NaN means a collapsed network; inf would poison min-max scaling
    with pytest.raises(PoolError, match="'k_core' has an infinite value for model="):
        validate_pool(bad)
