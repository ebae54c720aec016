"""Ramanujan metrics on bipartite graphs with known spectra, brute force, NaN rules; layer density."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.utils.prune
from hypothesis import given, settings
from hypothesis import strategies as st

import sparsetopo.metrics as M
from sparsetopo.graph import BipartiteGraph
from sparsetopo.errors import ValidationError
from sparsetopo.metrics.ramanujan import regular_subgraphs


def from_biadjacency(b: np.ndarray, weights: np.ndarray | None = None, name: str = "layer") -> BipartiteGraph:
    rows, cols = np.nonzero(b)
    w = np.ones(rows.size) if weights is None else weights[rows, cols]
    return BipartiteGraph(name, b.shape[0], b.shape[1], rows, cols, w)


def full_lambda2(b: np.ndarray) -> tuple[float, float]:
    """(λ1, λ2) of the full symmetric adjacency by dense eigvalsh (the brute-force oracle)."""
    m, k = b.shape
    a = np.zeros((m + k, m + k))
    a[:m, m:] = b
    a[m:, :m] = b.T
    eig = np.linalg.eigvalsh(a)
    return eig[-1], eig[-2]


def brute_delta(b: np.ndarray, normalize: bool = True) -> float:
    b = b[b.any(1)][:, b.any(0)]
    if sum(b.shape) < 4:
        return math.nan
    ub = math.sqrt(b.sum() / b.shape[0] - 1) + math.sqrt(b.sum() / b.shape[1] - 1)
    mu = full_lambda2(b)[1]
    if not normalize:
        return ub - mu
    return (ub - mu) / ub if ub > 0 else math.nan


def cycle_biadjacency(length: int) -> np.ndarray:
    """C_{2·length} as a length × length biadjacency (left i — right i, right i — left i+1)."""
    b = np.zeros((length, length))
    for i in range(length):
        b[i, i] = b[(i + 1) % length, i] = 1
    return b


@pytest.mark.parametrize("d", [3, 4, 7])
def test_complete_bipartite_scores_one(d):
    # K_{d,d}: eigenvalues ±d and 0, so μ̂ = 0 and Δr = 1 (every dense layer in the released data)
    layer = from_biadjacency(np.ones((d, d)))
    r = M.ramanujan_metrics(layer)
    assert r["delta_r"] == pytest.approx(1.0)
    assert r["delta_r_imdb"] == pytest.approx(1.0)
    assert r["lambda_imsg"] == pytest.approx(d)  # λ1 − λ2 = d − 0 with unit weights
    assert M.ramanujan_metrics(layer, normalize_bound=False)["delta_r"] == pytest.approx(2 * math.sqrt(d - 1))


def test_cycles_hand_computed():
    # C_16: 2-regular, eigenvalues 2cos(2πj/16): μ̂ = 2cos(π/8), ub = 1 + 1
    one = M.ramanujan_metrics(from_biadjacency(cycle_biadjacency(8)))
    assert one["delta_r"] == pytest.approx((2 - 2 * math.cos(math.pi / 8)) / 2)
    assert math.isnan(one["delta_r_imdb"]) and math.isnan(one["lambda_imsg"])  # left degree 2 < 3
    # two disjoint C_8: λ1 = 2 twice, so μ̂ = λ2 = 2 and Δr = 0
    two = np.zeros((8, 8))
    two[:4, :4] = cycle_biadjacency(4)
    two[4:, 4:] = cycle_biadjacency(4)
    assert M.delta_r(from_biadjacency(two)) == pytest.approx(0.0, abs=1e-12)


def test_k44_minus_matching_weighted():
    # 3-regular: eigenvalues ±3, ±1 (×3) → μ̂ = 1, ub = 2√2; weights 2 → weighted λ1 − λ2 = 6 − 2
    b = np.ones((4, 4)) - np.eye(4)
    r = M.ramanujan_metrics(from_biadjacency(b, weights=-2 * np.ones((4, 4))))
    expected = (2 * math.sqrt(2) - 1) / (2 * math.sqrt(2))
    assert r["delta_r"] == pytest.approx(expected)
    assert r["delta_r_imdb"] == pytest.approx(expected)
    assert r["lambda_imsg"] == pytest.approx(4.0)


def test_subgraph_rule_and_hoang_rule():
    # left degrees: two nodes of degree 3, four of degree 4, one of degree 1; right has 5 nodes
    b = np.zeros((7, 5))
    b[0, [0, 1, 2]] = b[1, [1, 2, 3]] = 1
    b[2:6, :4] = 1
    b[6, 4] = 1
    groups = regular_subgraphs(b)
    # d = 3: 2 left nodes, right nodes {0,1,2,3} with mean degree 6/4 < 3 → dropped; d = 4: kept
    assert [(r.tolist(), c.tolist()) for r, c in groups] == [([2, 3, 4, 5], [0, 1, 2, 3])]
    assert regular_subgraphs(np.ones((2, 4))) == []  # d = 4 but right mean degree 2 < 3
    assert len(regular_subgraphs(np.ones((3, 4)))) == 1  # right mean degree exactly 3: kept


def brute_ramanujan(b: np.ndarray, w: np.ndarray) -> dict:
    """Independent re-implementation of metrics.md §4 with dense eigvalsh of full adjacencies."""
    deg = b.sum(1)
    deltas, gaps = [], []
    for d in sorted(set(deg[deg >= 3].tolist())):
        rows = deg == d
        cols = b[rows].any(0)
        h = b[rows][:, cols]
        if h.sum() / h.shape[1] >= 3:
            deltas.append(brute_delta(h))
            top, second = full_lambda2(w[rows][:, cols])
            gaps.append(top - second)
    return {"delta_r": brute_delta(b), "delta_r_imdb": np.mean(deltas) if deltas else math.nan,
            "lambda_imsg": np.mean(gaps) if gaps else math.nan}


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 12), k=st.integers(1, 10), density=st.floats(0.05, 1.0), seed=st.integers(0, 9999))
def test_matches_brute_force(m, k, density, seed):
    rng = np.random.default_rng(seed)
    b = (rng.random((m, k)) < density).astype(float)
    w = (b * rng.normal(size=(m, k))).astype(np.float32)
    got = M.ramanujan_metrics(from_biadjacency(b, w))
    expected = brute_ramanujan(b, np.abs(w.astype(np.float64)))
    for key in M.RAMANUJAN_COLUMNS:
        if math.isinf(got[key]) or math.isinf(expected[key]):
            assert got[key] == expected[key]
        else:
            assert got[key] == pytest.approx(expected[key], abs=1e-9, nan_ok=True), key
    assert M.ramanujan_metrics(from_biadjacency(b, w), group_rule="hoang") == pytest.approx(got, nan_ok=True)


def test_nan_rules():
    empty = BipartiteGraph("empty", 5, 3, [], [], [])
    assert all(math.isnan(v) for v in M.ramanujan_metrics(empty).values())
    three_nodes = from_biadjacency(np.array([[1.0, 1.0]]))  # K_{1,2}: 3 non-isolated nodes
    assert math.isnan(M.delta_r(three_nodes))
    matching = from_biadjacency(np.eye(4))  # d_L = d_R = 1 → ub = 0, μ̂ = 1
    assert math.isnan(M.delta_r(matching))
    assert M.delta_r(matching, compat="official") == -math.inf
    assert M.delta_r(matching, normalize_bound=False) == pytest.approx(-1.0)
    nan_weights = from_biadjacency(np.ones((4, 4)), weights=np.full((4, 4), np.nan))
    r = M.ramanujan_metrics(nan_weights)
    assert r["delta_r"] == pytest.approx(1.0) and math.isnan(r["lambda_imsg"])


def test_isolated_nodes_are_dropped():
    b = np.zeros((6, 6))
    b[:3, :3] = 1  # K_{3,3} plus 3 isolated left and 3 isolated right nodes
    assert M.delta_r(from_biadjacency(b)) == pytest.approx(1.0)


def test_ramanujan_rejects_non_bipartite_input():
    with pytest.raises(ValidationError, match="BipartiteGraph"):
        M.ramanujan_metrics(np.ones((3, 3)))
    with pytest.raises(ValidationError, match="group_rule"):
        M.ramanujan_metrics(from_biadjacency(np.ones((3, 3))), group_rule="x")


# -- layer density ---------------------------------------------------------------------------------
def test_layer_density_of_masks_and_model():
    masks = {"conv.weight": torch.tensor([[1, 0], [0, 0]], dtype=torch.bool), "fc.weight": np.ones((2, 5))}
    assert M.layer_density(masks) == {"conv.weight": 0.25, "fc.weight": 1.0}
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    torch.nn.utils.prune.random_unstructured(model[0], "weight", amount=0.75)
    density = M.layer_density(model)
    assert list(density) == ["0.weight", "2.weight"]
    assert density["0.weight"] == pytest.approx(round(0.25 * 54) / 54)
    assert density["2.weight"] == 1.0


def test_layer_density_errors():
    with pytest.raises(ValidationError, match="'a.weight' has no entries"):
        M.layer_density({"a.weight": np.zeros((0, 3))})
    with pytest.raises(ValidationError, match="masks dict or a torch model"):
        M.layer_density([1, 2])
    with pytest.raises(ValidationError, match="no prunable layers"):
        M.layer_density({})


def test_official_compat_rounds_lambda_imsg_weights_to_float16():
    rng = np.random.default_rng(0)
    src, dst = np.nonzero(rng.random((60, 12)) < 0.5)
    weight = rng.normal(size=src.size).astype(np.float32) * 0.37
    layer = BipartiteGraph("conv", 60, 12, src, dst, weight)
    rounded = BipartiteGraph("conv", 60, 12, src, dst, weight.astype(np.float16).astype(np.float32))
    official = M.ramanujan_metrics(layer, compat="official")
    assert official["lambda_imsg"] == pytest.approx(M.ramanujan_metrics(rounded)["lambda_imsg"], rel=1e-12)
    assert official["lambda_imsg"] != M.ramanujan_metrics(layer)["lambda_imsg"]
    assert official["delta_r_imdb"] == M.ramanujan_metrics(layer)["delta_r_imdb"]  # unweighted: unchanged
