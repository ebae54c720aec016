"""Shared pruning core: keep counts, stable global ranking, largest-remainder counts, ER/ERK densities."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsetopo.masks import layer_density
from sparsetopo.models import build
from sparsetopo.pruning import prune
from sparsetopo.pruning.core import global_topk, keep_count, largest_remainder_counts, weights_of
from sparsetopo.pruning.layerwise import layer_counts, layer_densities

torch.set_num_threads(1)

# spec models-and-pruning.md §2, ResNet-20 (B), C = 10, s = 0.9, by layer kind
ERK_R20 = {"conv1": 0.9830, "16-16": 0.2802, "16-32": 0.1991, "32-32": 0.1290, "sc16-32": 1.0,
           "32-64": 0.0940, "64-64": 0.0617, "sc32-64": 0.8128, "linear": 1.0}
ER_R20 = {"conv1": 0.8897, "16-16": 0.2809, "16-32": 0.2107, "32-32": 0.1405, "sc16-32": 0.2107,
          "32-64": 0.1054, "64-64": 0.0702, "sc32-64": 0.1054, "linear": 0.2599}


def _kind(name: str, shape: torch.Size) -> str:
    """Layer kind of a ResNet-20 weight, from its shape (no layer names needed beyond 'shortcut')."""
    if len(shape) == 2:
        return "linear"
    c_out, c_in = int(shape[0]), int(shape[1])
    if c_in == 3:
        return "conv1"
    return f"sc{c_in}-{c_out}" if "shortcut" in name else f"{c_in}-{c_out}"


def test_keep_count_is_floor_half_up_in_float64():
    assert keep_count(0.1, 270896) == 27090           # 27089.6 -> 27090
    assert keep_count(0.5, 3) == 2                    # 1.5 rounds up
    assert keep_count(1 - 0.9, 10) == 1               # 0.99999... + 0.5 -> 1
    assert keep_count(0.02, 24) == 0                  # 0.48 -> 0


def test_global_topk_ranks_by_score_then_flat_index():
    scores = {"a": torch.tensor([1.0, 3.0, 3.0]), "b": torch.tensor([[3.0, 0.5], [2.0, 3.0]])}
    masks = global_topk(scores, 3)
    # four 3.0 ties at flat indices 1, 2, 3, 6: the first three by position are kept
    assert masks["a"].tolist() == [False, True, True]
    assert masks["b"].tolist() == [[True, False], [False, False]]
    eligible = {"a": torch.tensor([True, False, True]), "b": torch.ones(2, 2, dtype=torch.bool)}
    masks = global_topk(scores, 2, eligible=eligible)
    assert not masks["a"][1] and masks["a"][2] and masks["b"][0, 0]


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 500), min_size=1, max_size=12),
       weights=st.lists(st.floats(0.01, 1.0), min_size=12, max_size=12), density=st.floats(0.001, 0.999))
def test_largest_remainder_counts_are_exact_and_close(sizes, weights, density):
    names = [f"l{i}" for i in range(len(sizes))]
    size = dict(zip(names, sizes))
    total = sum(sizes)
    n_keep = keep_count(density, total)
    raw = np.array(weights[: len(sizes)]) * np.array(sizes)
    quotas = dict(zip(names, np.minimum(raw / raw.sum() * n_keep, sizes)))
    counts = largest_remainder_counts(quotas, size, n_keep)
    assert sum(counts.values()) == n_keep
    for n in names:
        assert 0 <= counts[n] <= size[n]
    if all(quotas[n] < size[n] for n in names):  # uncapped: each count is floor or ceil of its quota
        for n in names:
            assert math.floor(quotas[n]) <= counts[n] <= math.ceil(quotas[n])


@pytest.mark.parametrize("kind, reference", [("erk", ERK_R20), ("er", ER_R20)])
def test_er_erk_reproduce_spec_reference_densities_resnet20(kind, reference):
    shapes = {n: w.shape for n, w in weights_of(build("resnet20", 10, seed=0)).items()}
    densities = layer_densities(kind, shapes, 1 - 0.9)
    for name, shape in shapes.items():
        assert densities[name] == pytest.approx(reference[_kind(name, shape)], abs=5e-5), name
    counts = layer_counts(kind, shapes, 1 - 0.9)
    assert sum(counts.values()) == keep_count(0.1, sum(math.prod(s) for s in shapes.values()))
    for name, shape in shapes.items():
        size = math.prod(shape)
        assert abs(counts[name] - densities[name] * size) < 1, name
        if densities[name] == 1.0:
            assert counts[name] == size


def test_er_erk_through_prune_match_formula_and_dense_layers():
    model = build("resnet20", 10, seed=0)
    for kind, reference in (("erk", ERK_R20), ("er", ER_R20)):
        masks = prune(model, kind, 0.9, seed=0)
        density = layer_density(masks)
        shapes = {n: m.shape for n, m in masks.items()}
        for name, shape in shapes.items():  # k_l is within one weight of d_l·N_l
            tol = 1 / math.prod(shape) + 5e-5
            assert density[name] == pytest.approx(reference[_kind(name, shape)], abs=tol), (kind, name)
        assert sum(int(m.sum()) for m in masks.values()) == 27090


def test_conv6_er_erk_dense_first_and_last_layers():
    shapes = {n: w.shape for n, w in weights_of(build("conv6", 10, seed=0)).items()}
    names = list(shapes)
    erk, er = layer_densities("erk", shapes, 0.1), layer_densities("er", shapes, 0.1)
    for d in (erk, er):
        assert d[names[0]] == 1.0 and d[names[-1]] == 1.0
        assert sum(d[n] * math.prod(shapes[n]) for n in names) == pytest.approx(0.1 * sum(
            math.prod(s) for s in shapes.values()))
    first_linear = next(n for n in names if len(shapes[n]) == 2)
    assert erk[first_linear] == pytest.approx(0.1446, abs=5e-5)
    assert er[first_linear] == pytest.approx(0.0508, abs=5e-5)


def test_uniform_counts_per_layer():
    shapes = {n: w.shape for n, w in weights_of(build("resnet20", 10, seed=0)).items()}
    for s in (0.6, 0.9, 0.98):
        d = 1 - s
        counts = layer_counts("uniform", shapes, d)
        assert sum(counts.values()) == keep_count(d, sum(math.prod(x) for x in shapes.values()))
        for n, shape in shapes.items():
            assert math.floor(d * math.prod(shape)) <= counts[n] <= math.ceil(d * math.prod(shape))
        literal = layer_counts("uniform", shapes, d, rounding="per_layer")
        assert all(literal[n] == keep_count(d, math.prod(shapes[n])) for n in shapes)


@settings(max_examples=80, deadline=None)
@given(values=st.lists(st.integers(-2, 2), min_size=1, max_size=40), data=st.data())
def test_global_topk_equals_stable_descending_sort(values, data):
    """The O(N) threshold selection keeps the same set as a stable sort by (score desc, index asc)."""
    flat = torch.tensor(values, dtype=torch.float64)
    n_keep = data.draw(st.integers(0, flat.numel()))
    cut = data.draw(st.integers(0, flat.numel()))
    masks = global_topk({"a": flat[:cut], "b": flat[cut:].reshape(-1, 1)}, n_keep)
    expected = torch.zeros(flat.numel(), dtype=torch.bool)
    expected[torch.sort(flat, descending=True, stable=True).indices[:n_keep]] = True
    assert torch.equal(torch.cat([masks["a"], masks["b"].reshape(-1)]), expected)
