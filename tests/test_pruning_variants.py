"""Documented non-default variants (official-code behaviours) of the pruners."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.errors import ValidationError
from sparsetopo.masks import masks_digest
from sparsetopo.models import build, init_weights
from sparsetopo.pruning import keep_count, prune
from sparsetopo.pruning.core import weights_of
from sparsetopo.pruning.grasp import grasp_scores
from sparsetopo.pruning.layerwise import layer_counts, layer_densities
from sparsetopo.pruning.prospr import prospr_scores

torch.set_num_threads(1)


def _shapes():
    return {n: w.shape for n, w in weights_of(build("resnet20", 10, seed=0)).items()}


def test_erk_bernoulli_follows_densities_without_exact_counts():
    shapes = _shapes()
    target = layer_densities("erk", shapes, 0.1)
    masks = prune(build("resnet20", 10, seed=0), "erk", 0.9, seed=0, bernoulli=True)
    for name, mask in masks.items():
        n, d = mask.numel(), target[name]
        assert abs(int(mask.sum()) - d * n) <= 5 * math.sqrt(n * d * (1 - d)) + 1e-9, name
    exact = layer_counts("erk", shapes, 0.1)
    assert any(int(masks[n].sum()) != exact[n] for n in masks)  # counts are random, not the exact ones
    again = prune(build("resnet20", 10, seed=0), "erk", 0.9, seed=0, bernoulli=True)
    assert masks_digest(again) == masks_digest(masks)


def test_uniform_variants():
    shapes = _shapes()
    total = sum(math.prod(s) for s in shapes.values())
    glob = prune(build("resnet20", 10, seed=0), "uniform", 0.9, uniform_variant="global_random")
    assert sum(int(m.sum()) for m in glob.values()) == keep_count(0.1, total)
    exact = layer_counts("uniform", shapes, 0.1)
    assert sum(int(glob[n].sum()) != exact[n] for n in glob) > len(glob) // 2  # hypergeometric counts
    literal = prune(build("resnet20", 10, seed=0), "uniform", 0.9, uniform_variant="per_layer")
    assert all(int(literal[n].sum()) == keep_count(0.1, math.prod(shapes[n])) for n in shapes)


def test_snip_xavier_reinit_scores_other_weights():
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(64, 3, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g))
    base = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=data, batch_size=32)
    xavier = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=data, batch_size=32, snip_xavier_reinit=True)
    assert masks_digest(base) != masks_digest(xavier)
    assert sum(int(m.sum()) for m in xavier.values()) == 27090


def _mlp() -> nn.Module:
    return init_weights(nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3)), torch.Generator().manual_seed(0))


def test_grasp_chunks_give_the_same_scores_without_batchnorm():
    g = torch.Generator().manual_seed(1)
    halves = [(torch.randn(10, 6, generator=g), torch.randint(0, 3, (10,), generator=g)) for _ in range(2)]
    model = _mlp()
    whole = grasp_scores(model, halves, 200.0)
    chunked = grasp_scores(model, halves, 200.0, chunk_size=3)
    for name in whole:
        assert torch.allclose(whole[name], chunked[name], rtol=1e-5, atol=1e-12), name


def test_prospr_detached_first_momentum_drops_a_second_order_term():
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(16, 6, generator=g), torch.randint(0, 3, (16,), generator=g)) for _ in range(4)]
    full = prospr_scores(_mlp(), batches, 0.5, 0.9)
    detached = prospr_scores(_mlp(), batches, 0.5, 0.9, detach_first_momentum=True)
    assert not all(torch.allclose(full[n], detached[n]) for n in full)
    plain = prospr_scores(_mlp(), batches, 0.5, 0.0)  # without momentum there is no buffer to detach
    plain_detached = prospr_scores(_mlp(), batches, 0.5, 0.0, detach_first_momentum=True)
    assert all(torch.equal(plain[n], plain_detached[n]) for n in plain)


def test_official_er_reproduces_the_spec_density_miss():
    """Spec §2: the authors' ER achieves ≈ 0.345 at s = 0.6 (ResNet-20) and ≈ 0.0395 at s = 0.95 (ResNet-32)."""
    for name, sparsity, achieved in (("resnet20", 0.6, 0.345), ("resnet32", 0.95, 0.0395)):
        model = build(name, 10, seed=0)
        total = sum(w.numel() for w in weights_of(model).values())
        masks = prune(model, "er", sparsity, er_variant="official")
        expected = achieved * total
        assert abs(sum(int(m.sum()) for m in masks.values()) - expected) < 5 * math.sqrt(expected), name
    with pytest.raises(ValidationError, match="unknown option.*'er_variant'"):
        prune(build("resnet20", 10, seed=0), "erk", 0.9, er_variant="official")
