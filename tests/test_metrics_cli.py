"""`sparsetopo metrics` through sparsetopo.cli.main."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import sparsetopo.metrics as M
from sparsetopo.cli import main
from sparsetopo.graph import MultipartiteGraph


@pytest.fixture
def graph_file(tmp_path):
    rng = np.random.default_rng(0)
    src = np.concatenate([rng.integers(0, 6, 20), rng.integers(6, 14, 30)])
    dst = np.concatenate([rng.integers(6, 14, 20), rng.integers(14, 18, 30)])
    key = np.unique(src * 100 + dst)
    g = MultipartiteGraph(src=key // 100, dst=key % 100, weight=rng.normal(size=key.size), num_nodes=18,
                          layer_offsets=[0, 6, 14, 18], layer_names=("input", "fc1", "fc2"))
    path = tmp_path / "g.npz"
    g.save_npz(path)
    return path, g


def test_json_output_matches_library(graph_file, tmp_path, capsys):
    path, g = graph_file
    out = tmp_path / "m.json"
    assert main(["metrics", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "spectral_gap" in printed and "motifs_4" in printed
    row = json.loads(out.read_text())
    expected = M.topometrics(g)
    assert set(row) == set(expected)
    for key, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert row[key] is None
        else:
            assert row[key] == pytest.approx(value), key


def test_csv_output_and_motif_sample(graph_file, tmp_path):
    path, g = graph_file
    out = tmp_path / "m.csv"
    assert main(["metrics", str(path), "--out", str(out), "--compat", "official"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 1 and table["motifs_4_sample"][0] == 1
    assert table["edges"][0] == g.num_edges


@pytest.mark.parametrize("argv, message", [
    (["metrics", "missing.npz"], "does not exist"),
    (["metrics"], "either GRAPH.npz or --model"),
    (["metrics", "GRAPH", "--out", "x.txt"], ".json or .csv"),
    (["metrics", "GRAPH", "--motif-sample", "many"], "--motif-sample"),
])
def test_errors_are_one_line(graph_file, argv, message, capsys):
    argv = [str(graph_file[0]) if a == "GRAPH" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_not_a_graph_file(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    assert main(["metrics", str(bad)]) == 2
    assert "not a sparsetopo graph file" in capsys.readouterr().err


def test_metric_groups_from_the_registry(graph_file, tmp_path):
    path, g = graph_file
    out = tmp_path / "m.json"
    assert main(["metrics", str(path), "--metrics", "effective", "--out", str(out), "--no-progress"]) == 0
    row = json.loads(out.read_text())
    assert set(row) == {"nodes", "edges", "effective_nodes", "effective_edges", "effective_paths"}
    assert row["effective_paths"] == pytest.approx(M.effective_paths(g))
    with pytest.raises(SystemExit):
        main(["metrics", str(path), "--metrics", "spectra"])
