"""Models whose outputs are more than logits, and attention, under every pruner.

Replicas (CI has no torchvision): an auxiliary-classifier net shaped like GoogLeNet / Inception-v3
(a namedtuple (logits, aux_logits) in train mode, logits in eval mode; the auxiliary head unused
in eval), one whose auxiliary head cannot run on small inputs (Inception-v3 at 75×75), and a tiny
vision transformer (nn.MultiheadAttention: torch's fused CPU attention has no second derivative).
"""
from __future__ import annotations

import warnings
from collections import namedtuple

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.errors import UnsupportedOpError, ValidationError
from sparsetopo.masks import prunable_modules
from sparsetopo.models.outputs import logits_hook, logits_of
from sparsetopo.pruning import PRUNER_NAMES, PRUNERS, PruningError, PruningWarning, keep_count, prune
from sparsetopo.pruning.core import TwiceDifferentiable, gradients, probe_forward
from sparsetopo.training import Recipe, train

from test_encoding_modern import FAST

AuxOutputs = namedtuple("AuxOutputs", ["logits", "aux_logits"])


class AuxNet(nn.Module):
    """stem conv -> conv -> pool -> Linear; in train mode also an auxiliary head on the stem
    (``aux_pool`` then a conv and a Linear), returned as ``AuxOutputs(logits, aux_logits)``."""

    def __init__(self, aux_pool: int = 1, aux_kernel: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(8, 4)
        self.aux = nn.Sequential(nn.AvgPool2d(aux_pool, stride=max(1, aux_pool - 2)), nn.Conv2d(6, 5, aux_kernel),
                                 nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 4))

    def forward(self, x):
        x = self.stem(x)
        logits = self.fc(self.body(x))
        if self.training:
            return AuxOutputs(logits, self.aux(x))
        return logits


class TinyViT(nn.Module):
    """Patch embedding (conv 2×2 / 2), one pre-norm encoder block (attention + MLP), mean, head."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 2, stride=2)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.head = nn.Linear(dim, 4)

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)  # (N, tokens, dim)
        normed = self.norm1(tokens)
        tokens = tokens + self.attention(normed, normed, normed, need_weights=False)[0]
        tokens = tokens + self.mlp(self.norm2(tokens))
        return self.head(tokens.mean(1))


SHAPE = (3, 8, 8)


def data(n: int = 16):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, *SHAPE, generator=g), torch.arange(n) % 4)


def prune_quietly(model, pruner, sparsity=0.7, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        return prune(model, pruner, sparsity, data=data(), seed=0, input_shape=SHAPE,
                     **{**FAST.get(pruner, {}), **options})


def kept(masks) -> int:
    return sum(int(m.sum()) for m in masks.values())


def total_weights(model) -> int:
    return sum(m.weight.numel() for m in prunable_modules(model).values())


def test_logits_of_reads_tensors_tuples_mappings_and_refuses_the_rest():
    t = torch.zeros(2, 3)
    assert logits_of(t, nn.Identity()) is t
    assert logits_of(AuxOutputs(t, None), nn.Identity()) is t
    assert logits_of((t, torch.ones(1)), nn.Identity()) is t
    assert logits_of({"logits": t, "hidden": None}, nn.Identity()) is t
    with pytest.raises(ValidationError, match=r"returned a str.*logits"):
        logits_of("oops", nn.Identity())


@pytest.mark.parametrize("pruner", PRUNER_NAMES)
def test_every_pruner_keeps_exact_counts_on_an_auxiliary_classifier_net(pruner):
    model = AuxNet().train()
    masks = prune_quietly(model, pruner)
    assert kept(masks) == keep_count(0.3, total_weights(model)), pruner
    assert model.training  # the caller's mode is left alone


@pytest.mark.parametrize("pruner", ["snip", "prospr", "iter_snip", "synflow"])
def test_auxiliary_head_weights_score_zero_and_are_pruned_first(pruner):
    """The loss reads the main logits only, so the aux head (used only in train mode, and
    not at all by SynFlow's eval-mode forward) has zero scores: emptied, and named in a warning.
    (GraSP ranks a zero score among the weights that leave the gradient flow unchanged.)"""
    model = AuxNet()
    aux = [name for name in prunable_modules(model) if name.startswith("aux.")]
    with pytest.warns(PruningWarning, match=r"aux\.1\.weight.*aux\.5\.weight|aux\.5\.weight.*aux\.1\.weight"):
        masks = prune(model, pruner, 0.5, data=data(), seed=0, input_shape=SHAPE, **FAST.get(pruner, {}))
    assert aux and all(not masks[name].any() for name in aux)
    assert all(masks[name].any() for name in masks if name not in aux)


def test_gradients_gives_zeros_for_unused_inputs_and_second_derivatives():
    a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    unused = torch.ones(3, dtype=torch.float64, requires_grad=True)
    g = gradients((a ** 3).sum(), [a, unused], create_graph=True)
    assert torch.equal(g[1], torch.zeros(3, dtype=torch.float64))
    h = gradients(g, [a, unused], grad_outputs=[torch.ones(2, dtype=torch.float64), torch.ones(3)])
    assert torch.allclose(h[0], 6 * a.detach()) and torch.equal(h[1], torch.zeros(3, dtype=torch.float64))


def test_a_train_mode_only_failure_is_a_named_error_and_eval_mode_pruners_still_work():
    """Like Inception-v3 at 75×75: its aux head's pooling leaves a map smaller than its conv."""
    train_pruners = [name for name, spec in PRUNERS.items() if spec.train_mode]
    assert {"snip", "grasp", "prospr", "ntk_sap"} <= set(train_pruners)
    for pruner in train_pruners:
        with pytest.raises(ValidationError, match=rf"AuxNet runs in eval mode on input \(3, 8, 8\) but fails "
                                                  rf"in train mode, in which '{pruner}' scores it.*aux_logits=False"):
            prune_quietly(AuxNet(aux_pool=5, aux_kernel=5), pruner)
    for pruner in ["synflow", "synflow_l2", "erk"]:
        model = AuxNet(aux_pool=5, aux_kernel=5)
        assert kept(prune_quietly(model, pruner)) == keep_count(0.3, total_weights(model))


def test_the_train_mode_probe_restores_mode_and_batch_norm_statistics():
    model = AuxNet().eval()
    model.register_forward_hook(logits_hook)  # as on the scoring copy
    before = {name: b.clone() for name, b in model.named_buffers()}
    x = torch.randn(4, *SHAPE) * 3 + 1
    assert probe_forward(model, x, train_for="snip") == 4
    assert not model.training
    assert all(torch.equal(b, before[name]) for name, b in model.named_buffers())
    model.train()(x[:2])  # the check above could fail: a train-mode forward does move them
    assert not torch.equal(model.stem[1].running_mean, before["stem.1.running_mean"])


def test_training_reads_the_logits_of_an_auxiliary_classifier_net():
    from sparsetopo.data import load_dataset

    digits = load_dataset("digits")
    model = AuxNet()
    model.fc = nn.Linear(8, 10)
    model.aux[-1] = nn.Linear(5, 10)
    result = train(model, digits, Recipe(epochs=1, milestones=()), progress=False)
    assert 0.0 <= result.accuracy <= 1.0 and result.history[0]["train_loss"] > 0


@pytest.mark.parametrize("pruner", PRUNER_NAMES)
def test_every_pruner_on_a_vision_transformer_keeps_exact_counts_or_says_why(pruner):
    model = TinyViT()
    try:
        masks = prune_quietly(model, pruner)
    except UnsupportedOpError as exc:  # PHEW walks channels through a traced graph: attention refused
        assert pruner == "phew" and "attention" in str(exc).lower()
        return
    assert kept(masks) == keep_count(0.3, total_weights(model))


def test_second_derivative_of_attention_matches_finite_differences():
    """Under TwiceDifferentiable the attention runs on torch's math backend, so a Hessian-vector
    product exists; it equals central differences of the gradient (float64)."""
    torch.manual_seed(0)
    model = TinyViT().double().train()
    x = torch.randn(3, *SHAPE, dtype=torch.float64)
    params = list(model.parameters())
    v = [torch.randn_like(p) for p in params]

    def grad_at(shift: float):
        with torch.no_grad():
            for p, d in zip(params, v):
                p.add_(shift * d)
        g = [t.detach() for t in gradients(model(x).pow(2).sum(), params)]
        with torch.no_grad():
            for p, d in zip(params, v):
                p.sub_(shift * d)
        return g

    with TwiceDifferentiable():
        g = gradients(model(x).pow(2).sum(), params, create_graph=True)
        hvp = gradients(g, params, grad_outputs=v)
    eps = 1e-5
    fd = [(a - b) / (2 * eps) for a, b in zip(grad_at(eps), grad_at(-eps))]
    for exact, approx in zip(hvp, fd):
        assert torch.allclose(exact, approx, rtol=1e-4, atol=1e-6)


def test_an_op_without_second_derivative_is_a_named_pruning_error():
    class Net(nn.Module):
        """torch has no second derivative for ``cdist`` (a pairwise-distance feature)."""

        def __init__(self) -> None:
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 4)

        def forward(self, x):
            features = self.conv(x).mean((2, 3))
            return self.fc(features) + torch.cdist(features, features).mean(1, keepdim=True)

    for pruner in ["grasp", "prospr"]:
        with pytest.raises(PruningError, match=rf"{pruner} differentiates the loss twice, but torch has no second "
                                               r"derivative.*_cdist_backward.*first-order pruner"):
            prune_quietly(Net(), pruner)
    assert kept(prune_quietly(Net(), "snip")) == keep_count(0.3, total_weights(Net()))
