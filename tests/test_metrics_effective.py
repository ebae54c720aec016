"""Effective MGE metrics (metrics.md §5b) against brute force on small layered DAGs (networkx)."""
import math

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

from sparsetopo.encoding import encode
from sparsetopo.graph import MultipartiteGraph
from sparsetopo.metrics import effective_edges, effective_nodes, effective_paths, normalize
from sparsetopo.metrics.summary import graph_row
from test_metrics_topometrics import layered_dag


def brute_force(graph: MultipartiteGraph) -> tuple[int, int, float]:
    g = nx.DiGraph()
    g.add_nodes_from(range(graph.num_nodes))
    g.add_edges_from(zip(graph.src.tolist(), graph.dst.tolist()))
    inputs, outputs = list(graph.layer_range(0)), list(graph.layer_range(-1))
    forward = set(inputs).union(*(nx.descendants(g, s) for s in inputs))
    backward = set(outputs).union(*(nx.ancestors(g, t) for t in outputs))
    effective = forward & backward
    edges = sum(u in effective and v in effective for u, v in g.edges)
    paths = sum(1 for s in inputs for t in outputs for _ in nx.all_simple_paths(g, s, t)) if graph.num_layers > 1 \
        else len(inputs)
    return len(effective), edges, math.log10(1 + paths)


@pytest.mark.parametrize("seed", range(12))
def test_effective_metrics_match_networkx(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, size=rng.integers(2, 6)).tolist()
    graph = layered_dag(sizes, rng.uniform(0.1, 0.7), rng.uniform(0.0, 0.3), seed=seed)
    nodes, edges, paths = brute_force(graph)
    assert effective_nodes(graph) == nodes
    assert effective_edges(graph) == edges
    assert effective_paths(graph) == pytest.approx(paths, rel=1e-12, abs=1e-12)


def test_dead_ends_and_unreached_nodes_are_not_effective():
    # input 0,1 -> hidden 2,3,4 -> output 5: node 3 is a dead end (no way out), node 4 is unreached,
    # node 1 feeds only the dead end.
    graph = MultipartiteGraph(np.array([0, 1, 2, 4, 0]), np.array([2, 3, 5, 5, 3]), np.ones(5), 6,
                              np.array([0, 2, 5, 6]), ("input", "h", "out"))
    assert effective_nodes(graph) == 3  # 0, 2, 5
    assert effective_edges(graph) == 2  # 0->2, 2->5
    assert effective_paths(graph) == pytest.approx(math.log10(2))
    empty = MultipartiteGraph(np.array([0]), np.array([2]), np.ones(1), 4, np.array([0, 2, 3, 4]), ("i", "h", "o"))
    assert (effective_nodes(empty), effective_edges(empty), effective_paths(empty)) == (0.0, 0.0, 0.0)


def test_path_count_in_log_space_does_not_overflow():
    # 400 complete layers of width 10: P = 10 * 10**400 paths, far beyond float64.
    width, depth = 10, 401
    offsets = np.arange(0, width * (depth + 1), width)
    u = np.arange(width).repeat(width)
    v = np.tile(np.arange(width), width)
    src = np.concatenate([u + width * l for l in range(depth - 1)])
    dst = np.concatenate([v + width * (l + 1) for l in range(depth - 1)])
    graph = MultipartiteGraph(src, dst, np.ones(src.size), width * depth, offsets[:depth + 1],
                              tuple(f"l{i}" for i in range(depth)))
    assert effective_paths(graph) == pytest.approx(math.log10(width) * depth, rel=1e-12)
    assert effective_nodes(graph) == width * depth and effective_edges(graph) == src.size


def test_effective_group_on_a_real_mge_and_its_normalisation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 2, 3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(2 * 4 * 4, 4))
    masks = {name: torch.rand_like(p) < 0.4 for name, p in model.named_parameters() if name.endswith("weight")}
    graph = encode(model, (1, 6, 6), masks=masks)
    row = graph_row(graph, ("effective",))
    assert list(row) == ["nodes", "edges", "effective_nodes", "effective_edges", "effective_paths"]
    nodes, edges, paths = brute_force(graph)
    assert (row["effective_nodes"], row["effective_edges"]) == (nodes, edges)
    assert row["effective_paths"] == pytest.approx(paths, rel=1e-12)
    import pandas as pd

    normalised = normalize(pd.DataFrame([row]), "mge").iloc[0]
    assert normalised["effective_nodes"] == pytest.approx(nodes / graph.num_nodes)
    assert normalised["effective_edges"] == pytest.approx(edges / graph.num_edges)
    assert normalised["effective_paths"] == row["effective_paths"]  # already log-scaled, not divided
