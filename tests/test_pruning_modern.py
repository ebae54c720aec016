"""The newer pruners (SynFlow-L2, iterative SNIP, FORCE, Uniform+, ERK+, IGQ) by the property that
defines each, and the one-pass exact random sampler shared by every random layer-wise pruner."""
from __future__ import annotations

import copy
import math
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.errors import ValidationError
from sparsetopo.masks import layer_density, masks_digest
from sparsetopo.models import build, init_weights
from sparsetopo.pruning import keep_count, prune
from sparsetopo.pruning.core import PruneContext, sample_exact, weights_of
from sparsetopo.pruning.erk_plus import erk_plus_densities
from sparsetopo.pruning.force import progressive_prune
from sparsetopo.pruning.igq import igq_densities
from sparsetopo.pruning.layerwise import erk_score
from sparsetopo.pruning.synflow import linearize, synflow_schedule, synflow_scores
from sparsetopo.pruning.uniform_plus import uniform_plus_densities

torch.set_num_threads(1)

SHAPE = (3, 8, 8)


def tiny_cnn(seed: int = 0) -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    return init_weights(model, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def data() -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(256, *SHAPE, generator=g), torch.randint(0, 10, (256,), generator=g))


def kept(masks) -> int:
    return sum(int(m.sum()) for m in masks.values())


# --- the one-pass exact sampler ---------------------------------------------------------------------

@pytest.mark.parametrize("size,k", [(1, 0), (1, 1), (10, 0), (10, 10), (10, 3), (10, 7), (1000, 1), (1000, 999),
                                    (70_001, 35_000), (300_000, 17)])
def test_sample_exact_keeps_exactly_k(size, k):
    mask = sample_exact(size, k, torch.Generator().manual_seed(size + k))
    assert mask.dtype == torch.bool and mask.numel() == size and int(mask.sum()) == k


def test_sample_exact_is_uniform_over_subsets_and_deterministic():
    g = torch.Generator().manual_seed(0)
    counts = Counter(tuple(sample_exact(5, 2, g).nonzero().reshape(-1).tolist()) for _ in range(3000))
    assert len(counts) == 10  # every 2-subset of 5 appears, each about 300 times
    chi2 = sum((c - 300) ** 2 / 300 for c in counts.values())
    assert chi2 < 27.9  # chi-square, 9 dof, p = 0.001
    positions = torch.zeros(50)
    for _ in range(1000):  # per-position frequency k/size on a size where the fix-up always acts
        positions += sample_exact(50, 7, g).float()
    assert (positions / 1000 - 7 / 50).abs().max() < 0.05
    a = sample_exact(100_000, 1234, torch.Generator().manual_seed(3))
    b = sample_exact(100_000, 1234, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, sample_exact(100_000, 1234, torch.Generator().manual_seed(4)))


# --- Uniform+, ERK+, IGQ ------------------------------------------------------------------------------

def test_uniform_plus_follows_the_reference_rules():
    model = build("resnet20", 10, seed=0)
    names = list(weights_of(model))
    for sparsity in (0.9, 0.98):  # d < 0.2: classifier at 0.2, first dense, the rest uniform
        masks = prune(model, "uniform_plus", sparsity, seed=0)
        dens = layer_density(masks)
        assert dens[names[0]] == 1.0
        assert abs(dens[names[-1]] - 0.2) < 1 / masks[names[-1]].numel()
        middle = [dens[n] for n in names[1:-1]]
        assert max(middle) - min(middle) < 2e-3
        assert kept(masks) == keep_count(1 - sparsity, 270896)
    dens = uniform_plus_densities({n: w.shape for n, w in weights_of(model).items()}, 0.5)
    assert dens[names[0]] == 1.0 and len({round(dens[n], 12) for n in names[1:]}) == 1 and dens[names[-1]] > 0.2
    with pytest.raises(ValidationError, match="fewer than the dense first layer"):
        uniform_plus_densities({"a": torch.Size([100, 10]), "b": torch.Size([5, 100])}, 0.05)


def test_erk_plus_keeps_the_classifier_dense_and_erk_elsewhere():
    model = build("resnet20", 10, seed=0)
    shapes = {n: w.shape for n, w in weights_of(model).items()}
    names = list(shapes)
    masks = prune(model, "erk_plus", 0.9, seed=0)
    assert bool(masks[names[-1]].all())
    assert kept(masks) == keep_count(0.1, 270896)
    dens = erk_plus_densities(shapes, 0.1)
    free = [n for n in names[:-1] if dens[n] < 1.0]
    ratios = {round(dens[n] / erk_score(shapes[n]), 12) for n in free}  # d_l = ε·r_l on uncapped layers
    assert len(ratios) == 1 and len(free) >= len(names) - 4
    half = erk_plus_densities(shapes, 0.1, fc_density=0.5)
    assert half[names[-1]] == 0.5
    with pytest.raises(ValidationError, match="fewer than the classifier"):
        erk_plus_densities({"a": torch.Size([4, 4]), "b": torch.Size([100, 100])}, 0.1)


def test_igq_quotas_come_from_one_force():
    shapes = {n: w.shape for n, w in weights_of(build("resnet20", 10, seed=0)).items()}
    dens = igq_densities(shapes, 0.1)
    forces = [(1 / d - 1) / math.prod(shapes[n]) for n, d in dens.items()]  # d_l = 1/(1 + f·N_l)
    assert max(forces) - min(forces) < 1e-9 * max(forces)
    assert abs(sum(d * math.prod(shapes[n]) for n, d in dens.items()) - 0.1 * 270896) < 1e-6
    sizes = [math.prod(shapes[n]) for n in dens]
    order = sorted(range(len(sizes)), key=sizes.__getitem__)
    assert [dens[list(dens)[i]] for i in order] == sorted(dens.values(), reverse=True)  # bigger = sparser
    masks = prune(build("resnet20", 10, seed=0), "igq", 0.98, seed=0)
    assert kept(masks) == keep_count(0.02, 270896) and min(layer_density(masks).values()) > 0


@pytest.mark.parametrize("pruner", ["uniform_plus", "erk_plus", "igq"])
def test_random_plus_pruners_are_seeded(pruner):
    a = prune(build("resnet20", 10, seed=0), pruner, 0.9, seed=0)
    b = prune(build("resnet20", 10, seed=0), pruner, 0.9, seed=0)
    c = prune(build("resnet20", 10, seed=0), pruner, 0.9, seed=1)
    assert masks_digest(a) == masks_digest(b) != masks_digest(c)


# --- SynFlow-L2 -------------------------------------------------------------------------------------

def test_synflow_l2_scores_are_conserved_and_differ_from_synflow():
    """Bias-free, BN-free chain: every layer cuts all paths, so Σ_layer |w²·∂R/∂w²| = R for each layer."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), nn.ReLU(), nn.Conv2d(4, 3, 3, bias=False),
                          nn.Flatten(), nn.Linear(12, 5, bias=False), nn.ReLU(), nn.Linear(5, 2, bias=False))
    init_weights(model, torch.Generator().manual_seed(0))
    squared = linearize(copy.deepcopy(model), power=2)
    ones = torch.ones(1, 2, 4, 4, dtype=torch.float64)
    scores = synflow_scores(squared, ones)
    total = float(squared(ones).sum().detach())
    for name, score in scores.items():
        assert abs(float(score.sum()) - total) < 1e-9 * total, name
    assert kept(prune(model, "synflow_l2", 0.8, input_shape=(2, 4, 4), iterations=5)) == keep_count(0.2, 250)
    masks_l2 = prune(build("resnet20", 10, seed=0), "synflow_l2", 0.9, input_shape=SHAPE, iterations=10)
    masks_l1 = prune(build("resnet20", 10, seed=0), "synflow", 0.9, input_shape=SHAPE, iterations=10)
    assert kept(masks_l2) == kept(masks_l1) == 27090
    assert masks_digest(masks_l2) != masks_digest(masks_l1)


def test_synflow_l2_is_data_free(data):
    a = prune(build("resnet20", 10, seed=0), "synflow_l2", 0.9, input_shape=SHAPE, iterations=10)
    b = prune(build("resnet20", 10, seed=0), "synflow_l2", 0.9, data=data, iterations=10, seed=7)
    assert masks_digest(a) == masks_digest(b)


# --- iterative SNIP and FORCE ---------------------------------------------------------------------------

def test_iter_snip_with_one_step_is_snip(data):
    snip = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=data, batch_size=32, seed=3)
    one = prune(build("resnet20", 10, seed=0), "iter_snip", 0.9, data=data, batch_size=32, steps=1, seed=3)
    assert masks_digest(one) == masks_digest(snip)
    three = prune(build("resnet20", 10, seed=0), "iter_snip", 0.9, data=data, batch_size=32, steps=3, seed=3)
    assert masks_digest(three) != masks_digest(snip)


def _context(data, pruner: str, steps: int, density: float, total: int) -> PruneContext:
    from sparsetopo.pruning.batches import batch_stream

    ctx = PruneContext(pruner, 1 - density, keep_count(density, total), torch.Generator().manual_seed(0),
                       torch.device("cpu"), SHAPE, False, {"steps": steps, "num_batches": 1, "batch_size": 32})
    ctx.batches = lambda size: batch_stream(data, size, ctx.generator, ctx.device)
    ctx.num_outputs = 10
    return ctx


@pytest.mark.parametrize("recover", [False, True])
def test_progressive_schedule_and_revival(data, recover):
    """Both follow k_t = floor(N·d^(t/T) + 0.5); iterative SNIP's masks are nested, FORCE revives."""
    model = tiny_cnn()
    total = sum(w.numel() for w in weights_of(model).values())
    for w in weights_of(model).values():
        w.requires_grad_(True)
    history = []
    ctx = _context(data, "force" if recover else "iter_snip", 6, 0.05, total)
    progressive_prune(model, ctx, recover=recover, on_step=lambda t, m: history.append((t, m)))
    assert [kept(m) for _, m in history] == synflow_schedule(total, 0.05, 6)
    assert [t for t, _ in history] == list(range(1, 7))
    revived = sum(int((~prev[n] & cur[n]).sum()) for (_, prev), (_, cur) in zip(history, history[1:]) for n in cur)
    assert (revived > 0) == recover


def test_force_scores_the_dense_weights_on_the_pruned_network(data):
    """One round by hand: grad of CE at w ⊙ m, times the dense w, global top-k."""
    model = tiny_cnn()
    total = sum(w.numel() for w in weights_of(model).values())
    masks = prune(tiny_cnn(), "force", 0.7, data=data, batch_size=32, steps=2, seed=0)
    stream = iter(_context(data, "force", 2, 0.3, total).batches(32))
    batches = [next(stream), next(stream)]
    dense = {n: w.detach().clone() for n, w in weights_of(model).items()}
    model.train()
    from sparsetopo.pruning.core import global_topk
    from sparsetopo.pruning.snip import snip_gradients

    for w in weights_of(model).values():
        w.requires_grad_(True)
    current = None
    for step, count in enumerate(synflow_schedule(total, 0.3, 2)):
        with torch.no_grad():
            for n, w in weights_of(model).items():
                w.copy_(dense[n] * (current[n] if current else 1))
        grads = snip_gradients(model, [batches[step]])
        current = global_topk({n: (dense[n] * grads[n]).abs() for n in dense}, count)
    assert masks_digest(current) == masks_digest(masks)


@pytest.mark.parametrize("pruner,options,message", [
    ("force", {"steps": 0}, "steps"), ("iter_snip", {"num_batches": 1.5}, "num_batches"),
    ("force", {"iterations": 3}, "unknown option"), ("erk_plus", {"fc_density": 2.0}, "fc_density"),
    ("uniform_plus", {"last_min_density": -0.1}, "last_min_density"), ("igq", {"steps": 2}, "unknown option"),
    ("synflow_l2", {"iterations": 0}, "iterations"),
])
def test_bad_options_are_named_errors(pruner, options, message, data):
    with pytest.raises(ValidationError, match=message):
        prune(build("resnet20", 10, seed=0), pruner, 0.9, data=data, **options)


def test_data_driven_new_pruners_need_data():
    for pruner in ("iter_snip", "force"):
        with pytest.raises(ValidationError, match="data-driven"):
            prune(build("resnet20", 10, seed=0), pruner, 0.9)


# --- NTK-SAP ------------------------------------------------------------------------------------------

def _tiny_ntk_net() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    return init_weights(model, torch.Generator().manual_seed(0))


def test_ntk_sap_objective_estimates_the_ntk_trace_by_brute_force():
    """E_δ S/ε² = Σ_x ‖J_x(w ⊙ m)·(δ ⊙ m)‖² averaged = Σ_x ‖J_x restricted to kept weights‖_F²."""
    from sparsetopo.pruning.ntk_sap import ntk_sap_gradient  # noqa: F401  (the objective's home)
    from torch.func import functional_call, jacrev

    model = _tiny_ntk_net()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    names = ["0.weight", "2.weight"]
    masks = {n: (torch.rand(dict(model.named_parameters())[n].shape, generator=g) < 0.6).double() for n in names}
    weights = {n: dict(model.named_parameters())[n].detach() for n in names}
    eps, draws = 1e-5, 1500
    total = 0.0
    model.requires_grad_(False)
    for _ in range(draws):
        deltas = {n: torch.randn(weights[n].shape, generator=g, dtype=torch.float64) for n in names}
        clean = functional_call(model, {n: weights[n] * masks[n] for n in names}, (x,))
        moved = functional_call(model, {n: (weights[n] + eps * deltas[n]) * masks[n] for n in names}, (x,))
        total += float(((clean - moved) ** 2).sum()) / eps ** 2
    jac = jacrev(lambda p: functional_call(model, {n: p[n] * masks[n] for n in names}, (x,)))(weights)
    trace = sum(float(((jac[n] * masks[n]) ** 2).sum()) for n in names)  # J w.r.t. w, chain rule m
    assert abs(total / draws - trace) < 0.08 * trace


def test_ntk_sap_mask_gradient_matches_finite_differences():
    from sparsetopo.pruning.ntk_sap import ntk_sap_gradient

    model = _tiny_ntk_net()
    g = torch.Generator().manual_seed(2)
    params = dict(model.named_parameters())
    names = ["0.weight", "2.weight"]
    weights = {n: torch.randn(params[n].shape, generator=g, dtype=torch.float64) for n in names}
    deltas = {n: torch.randn(params[n].shape, generator=g, dtype=torch.float64) for n in names}
    masks = {n: torch.ones(params[n].shape, dtype=torch.float64) for n in names}
    x = torch.randn(3, 4, generator=g, dtype=torch.float64)
    grads = ntk_sap_gradient(model, weights, deltas, masks, x, 0.01)

    def objective(m):
        from torch.func import functional_call
        a = functional_call(model, {n: weights[n] * m[n] for n in names}, (x,))
        b = functional_call(model, {n: (weights[n] + 0.01 * deltas[n]) * m[n] for n in names}, (x,))
        return float(((a - b) ** 2).sum())

    h = 1e-6
    for name in names:
        for index in [(0, 0), (1, 2), (2, 3)]:
            up = {n: m.clone() for n, m in masks.items()}
            down = {n: m.clone() for n, m in masks.items()}
            up[name][index] += h
            down[name][index] -= h
            numeric = (objective(up) - objective(down)) / (2 * h)
            assert abs(float(grads[name][index]) - numeric) < 1e-6 + 1e-4 * abs(numeric)


def test_ntk_sap_is_data_free_seeded_and_exact(data):
    opts = {"iterations": 3, "rounds": 2, "samples_per_class": 1}
    a = prune(build("resnet20", 10, seed=0), "ntk_sap", 0.9, input_shape=SHAPE, seed=0, **opts)
    b = prune(build("resnet20", 10, seed=0), "ntk_sap", 0.9, data=data, seed=0, **opts)
    c = prune(build("resnet20", 10, seed=0), "ntk_sap", 0.9, input_shape=SHAPE, seed=1, **opts)
    assert masks_digest(a) == masks_digest(b) != masks_digest(c)
    assert kept(a) == 27090
    with pytest.raises(ValidationError, match="epsilon"):
        prune(build("resnet20", 10, seed=0), "ntk_sap", 0.9, input_shape=SHAPE, epsilon=0, **opts)


# --- PHEW ---------------------------------------------------------------------------------------------

def check_phew_walks(model, shape, n_keep):
    """Every complete walk chains layer to layer (unit in = unit out of the previous step) from the
    input to the classifier; independently, all weights of complete walks are effective."""
    from sparsetopo.effective import effective_masks
    from sparsetopo.pruning.phew import INPUT, layer_graph, phew_walks

    graph = layer_graph(model, shape)
    record = []
    masks = phew_walks(model, shape, n_keep, torch.Generator().manual_seed(0), record=record)
    assert kept(masks) == n_keep and len(record) > 20
    directions = {d for d, _ in record}
    assert directions == {"forward", "backward"}
    def joined(later, i, earlier, j):
        """Input unit i of layer ``later`` is output unit j of ``earlier`` through some link."""
        return any(o <= i and (i - o) // f == j for source, f, o in graph.sources[later] if source == earlier)

    for direction, steps in record[:-1]:
        if direction == "forward":
            assert INPUT in [s for s, *_ in graph.sources[steps[0][0]]] and steps[-1][0] not in graph.consumers
            assert all(joined(b, i_b, a, j_a) for (a, j_a, _, _), (b, _, i_b, _) in zip(steps, steps[1:]))
        else:
            assert steps[0][0] in graph.outputs and INPUT in [s for s, *_ in graph.sources[steps[-1][0]]]
            assert all(joined(a, i_a, b, j_b) for (a, _, i_a, _), (b, j_b, _, _) in zip(steps, steps[1:]))
    complete = {n: torch.zeros_like(m) for n, m in masks.items()}
    for _, steps in record[:-1]:
        for layer, j, i, tap in steps:
            flat = complete[layer].reshape(complete[layer].shape[0], complete[layer].shape[1], -1)
            flat[j, i % flat.shape[1], tap] = True
    effective = effective_masks(model, masks, shape)
    assert all(bool((complete[n] <= effective[n]).all()) for n in masks)
    assert sum(int(m.sum()) for m in effective.values()) >= kept(complete)
    return graph, record


def test_phew_walks_are_connected_input_output_paths():
    """(32x32 input: on tiny maps a chain of same-direction tap offsets can leave the image.)"""
    check_phew_walks(build("resnet20", 10, seed=0), (3, 32, 32), 1000)


def test_phew_walks_through_depthwise_convolutions_and_squeeze_excitation_gates():
    """A MobileNetV3-style block: depthwise 3x3 (groups = channels) and an SE gate. Walks stay in
    their group, pass the gate through either operand (the SE layers get walked too)."""
    from test_encoding_modern import mobilenet_v3

    torch.manual_seed(0)
    model = mobilenet_v3()
    graph, record = check_phew_walks(model, (3, 16, 16), 60)
    depthwise = [name for name, groups in graph.groups.items() if groups > 1]
    assert depthwise
    for _, steps in record:
        for layer, j, i, _ in steps:
            if layer in depthwise:
                assert i == j  # depthwise: output channel j reads input channel j only
    walked = {layer for _, steps in record for layer, *_ in steps}
    assert {"1.block.2.fc1.weight", "1.block.2.fc2.weight"} <= walked


@pytest.mark.parametrize("block", ["densenet", "inception"])
def test_phew_walks_through_channel_concatenations(block):
    """DenseNet / Inception blocks: a unit of a concatenation is the unit of the operand that holds
    it, shifted by the channels before it; walks stay connected and every branch gets walked."""
    from test_encoding_modern import BLOCKS

    torch.manual_seed(0)
    make, shape = BLOCKS[block]
    model = make()
    graph, record = check_phew_walks(model, (3, 12, 12), 110)
    assert any(o > 0 for links in graph.sources.values() for _, _, o in links)  # a shifted operand
    walked = {layer for _, steps in record for layer, *_ in steps}
    assert walked == set(graph.sources)


def test_phew_prefers_heavy_weights_and_is_seeded():
    model = build("resnet20", 10, seed=0)
    a = prune(model, "phew", 0.99, input_shape=SHAPE, seed=0)
    b = prune(build("resnet20", 10, seed=0), "phew", 0.99, input_shape=SHAPE, seed=0)
    c = prune(build("resnet20", 10, seed=0), "phew", 0.99, input_shape=SHAPE, seed=1)
    assert masks_digest(a) == masks_digest(b) != masks_digest(c)
    weights = {n: w.detach().abs() for n, w in weights_of(build("resnet20", 10, seed=0)).items()}
    name = "layer3.1.conv1.weight"  # kept weights are heavier than the layer's average
    assert float(weights[name][a[name]].mean()) > 1.2 * float(weights[name].mean())


def test_phew_fills_with_magnitude_when_walks_stall_and_rejects_channel_padding():
    from sparsetopo.errors import UnsupportedOpError
    from sparsetopo.pruning import PruningWarning

    with pytest.warns(PruningWarning, match="largest"):
        masks = prune(build("resnet20", 10, seed=0), "phew", 0.5, input_shape=SHAPE, max_walks=50)
    assert kept(masks) == keep_count(0.5, 270896)
    with pytest.raises(UnsupportedOpError, match="phew"):
        prune(build("resnet20", 10, seed=0, shortcut="A"), "phew", 0.9, input_shape=SHAPE)
