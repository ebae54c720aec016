"""The metric and encoding registries are the one vocabulary: a metric registered in one place (a
fixture here) flows into pool rows, ``normalize``, pool validation, the analysis tables and the figure
labels with no other edit; the light stages load neither torch nor numba."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from sparsetopo.analysis import feature_importance, network_features, validate_pool
from sparsetopo.analysis import figures
from sparsetopo.analysis.synthetic import synthetic_pools
from sparsetopo.encoding import ENCODING_REGISTRY, ENCODINGS, LAYER_ENCODINGS, encode
from sparsetopo.errors import PoolError, ValidationError
from sparsetopo.measure import measure
from sparsetopo.metrics import normalize, registry
from sparsetopo.metrics.registry import Metric

NEW = "half_edges"


def _half_edges(graph) -> float:
    """A made-up metric: |E| / 2 (so its normalised value is exactly 0.5)."""
    from sparsetopo.metrics import prepare

    return prepare(graph).num_edges / 2


@pytest.fixture
def new_metric():
    """The only place the new metric is named: one registry record."""
    metric = registry.register(Metric(NEW, "topometrics", "Strength", "½|E|", _half_edges, ("mge",), divisor="edges"))
    yield metric
    registry.unregister(NEW)


def _tiny_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))


def test_new_metric_flows_into_rows_normalize_pool_analysis_and_figures(new_metric):
    model = _tiny_net()
    result = measure(model, None, (1, 5, 5), ("mge", "rolled"), ("topometrics",))
    [row] = result.rows
    assert row[NEW] == row["edges"] / 2 and list(row)[-1] == NEW  # pool row, in registry order
    assert all(NEW not in r for r in result.layer_rows)  # registered for the MGE only

    assert normalize(pd.DataFrame([row]), "mge")[NEW].iloc[0] == pytest.approx(0.5)

    pool, layers = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.8, 0.9),
                                   pruners=("snip", "er", "erk"), seeds=(0, 1))
    assert NEW in pool.columns and NEW not in layers.columns
    with pytest.raises(PoolError, match=NEW):  # a required feature column now
        validate_pool(pool.drop(columns=NEW))
    features = network_features(validate_pool(pool), None, "mge")
    assert NEW in features.columns and features[NEW].between(0, 1).all()
    importance = feature_importance(features, runs=1)
    assert NEW in set(importance["metric"])

    assert figures.LABELS[NEW] == "½|E|"
    fig = figures.importance_heatmap(importance, "sparsity", "t")
    assert "½|E|" in [t.get_text() for t in fig.axes[0].get_yticklabels()]
    figures._pyplot().close(fig)


def test_registry_views_match_the_paper_tables():
    assert registry.feature_names("mge")[:3] == ["sink_nodes", "source_nodes", "disconnected_nodes"]
    assert len(registry.feature_names("mge")) == 16 and len(registry.feature_names("rolled")) == 10
    assert registry.feature_names("rolled") == registry.feature_names("rolled_channel")
    assert list(registry.families("mge")) == ["Local", "Neighbour", "Strength", "Global", "Expansion"]
    assert registry.divisors()["mean_component_size"] == "nodes" and "spectral_gap" not in registry.divisors()
    assert registry.names(("ramanujan",)) == ["delta_r", "delta_r_imdb", "lambda_imsg"]
    assert registry.names(("effective",)) == ["effective_nodes", "effective_edges", "effective_paths"]


def test_register_refuses_bad_records():
    with pytest.raises(ValidationError, match="already registered"):
        registry.register(Metric("k_core", "topometrics", "Strength", "k", _half_edges, ("mge",)))
    with pytest.raises(ValidationError, match="unknown encoding"):
        Metric("x", "topometrics", "Strength", "x", _half_edges, ("bge",))
    with pytest.raises(ValidationError, match="group"):
        Metric("x", "spectra", "Strength", "x", _half_edges, ("mge",))
    with pytest.raises(ValidationError, match="divisor"):
        Metric("x", "topometrics", "Strength", "x", _half_edges, ("mge",), divisor="layers")


def test_encoding_registry_results_know_their_kind_and_round_trip(tmp_path):
    from sparsetopo.graph import load_graph, save_graph

    model = _tiny_net()
    assert ENCODINGS == ("mge", "rolled", "rolled_channel") and LAYER_ENCODINGS == ("rolled", "rolled_channel")
    for name, record in ENCODING_REGISTRY.items():
        graph = encode(model, (1, 5, 5), kind=name)
        assert isinstance(graph, record.result_type)
        assert getattr(graph, "kind", graph.meta.get("kind")) == name
        save_graph(graph, tmp_path / f"{name}.npz")
        back = load_graph(tmp_path / f"{name}.npz")
        assert back == graph and type(back) is type(graph) and back.meta == graph.meta
        assert record.load(tmp_path / f"{name}.npz") == graph
    mge = encode(model, (1, 5, 5))
    assert mge.meta["fx_nodes"] and load_graph(tmp_path / "mge.npz").meta["input_shape"] == [1, 5, 5]
    rolled = load_graph(tmp_path / "rolled_channel.npz")
    assert rolled.kind == "rolled_channel" and rolled != load_graph(tmp_path / "rolled.npz")


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport sys; print(' '.join(m for m in ('torch', 'numba') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split("\n")[-2].split()


def test_analysis_and_analyze_help_load_neither_torch_nor_numba():
    assert _loaded_after("import sparsetopo.analysis") == []
    assert _loaded_after("from sparsetopo.cli import main\ntry:\n    main(['analyze', '--help'])\n"
                         "except SystemExit:\n    pass") == []


def test_graph_stage_and_metrics_load_no_torch():
    code = ("import numpy as np\nfrom sparsetopo.graph import MultipartiteGraph\nfrom sparsetopo.metrics import topometrics\n"
            "g = MultipartiteGraph(np.array([0, 1]), np.array([2, 2]), np.ones(2), 3, np.array([0, 2, 3]), ('input', 'fc'))\n"
            "topometrics(g)")
    assert "torch" not in _loaded_after(code)


def test_a_mask_sourced_network_metric_is_one_record_too():
    """``source="masks"`` records get ``(model, masks, input_shape)`` once per network; a float is a
    network value, a dict is looked up per layer."""
    calls = []

    def kept_weights(model, masks, input_shape):
        calls.append(input_shape)
        return float(sum(int(m.sum()) for m in masks.values()))

    registry.register(Metric("kept_weights", "layer_density", "Density", "kept", kept_weights, ("mge",),
                             source="masks"))
    try:
        model = _tiny_net()
        masks = {name: torch.rand_like(p) < 0.5 for name, p in model.named_parameters() if name.endswith("weight")}
        result = measure(model, masks, (1, 5, 5), ("mge", "rolled"), ("topometrics", "layer_density"))
    finally:
        registry.unregister("kept_weights")
    assert calls == [(1, 5, 5)]
    assert result.rows[0]["kept_weights"] == sum(int(m.sum()) for m in masks.values())
    density = {f"{r['layer_name']}.weight": r["layer_density"] for r in result.layer_rows}
    assert density == {name: int(m.sum()) / m.numel() for name, m in masks.items()}
