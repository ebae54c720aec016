"""Behaviour of each pruner: exact counts, SNIP/GraSP against direct computations, SynFlow data-free
and collapse-free, ProsPr's meta-gradient, determinism, the caller's model left alone."""
from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, hessian
from torch.utils.data import DataLoader, TensorDataset

from sparsetopo.masks import get_masks, layer_density, masks_digest, prunable_modules
from sparsetopo.models import build, init_weights
from sparsetopo.pruning import PRUNER_NAMES, PRUNERS, PruningWarning, keep_count, prune

torch.set_num_threads(1)

SHAPE = (3, 8, 8)  # small inputs keep the tests fast; the models pool adaptively
FAST = {"snip": {"batch_size": 32}, "grasp": {"samples_per_class": 3, "batch_size": 32},
        "prospr": {"batch_size": 16}, "synflow": {"iterations": 20}, "synflow_l2": {"iterations": 20},
        "iter_snip": {"steps": 3, "batch_size": 32}, "force": {"steps": 3, "batch_size": 32},
        "ntk_sap": {"iterations": 2, "rounds": 1, "samples_per_class": 1}, "phew": {"max_walks": 200}}
DATA_DRIVEN = tuple(name for name in PRUNER_NAMES if PRUNERS[name].needs_data)
#: pruners whose masks depend only on the weights (no randomness at all)
SEED_FREE = ("synflow", "synflow_l2")


def random_dataset(n: int = 256, seed: int = 0, shape=SHAPE, classes: int = 10) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))


@pytest.fixture(scope="module")
def data() -> TensorDataset:
    return random_dataset()


def run(pruner, sparsity, data, seed=0, model=None, **options):
    model = model if model is not None else build("resnet20", 10, seed=0)
    opts = {**FAST.get(pruner, {}), **options}
    return prune(model, pruner, sparsity, data=data if pruner in DATA_DRIVEN else None, seed=seed,
                 input_shape=SHAPE, **opts)


def kept(masks) -> int:
    return sum(int(m.sum()) for m in masks.values())


@pytest.mark.parametrize("pruner", PRUNER_NAMES)
@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.98])
def test_every_pruner_keeps_exactly_n_keep(pruner, sparsity, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PruningWarning)
        masks = run(pruner, sparsity, data)
    total = sum(m.numel() for m in masks.values())
    assert total == 270896
    assert kept(masks) == keep_count(1 - sparsity, total)
    assert all(m.dtype == torch.bool for m in masks.values())


def test_prune_attaches_masks_and_leaves_the_rest_of_the_model_alone(data):
    model = build("resnet20", 10, seed=0)
    before = copy.deepcopy(model.state_dict())
    model.eval()
    masks = run("snip", 0.9, data, model=model)
    assert not model.training  # mode untouched
    assert masks_digest(get_masks(model)) == masks_digest(masks)
    state = model.state_dict()
    for key, value in before.items():
        if key in masks:  # prunable weight: weight_orig keeps the init where kept, 0 where pruned
            orig, mask = state[key + "_orig"], masks[key]
            assert torch.equal(orig[mask], value[mask]) and bool((orig[~mask] == 0).all())
        else:  # BN running stats and γ/β, biases: unchanged (scoring ran on a copy in train mode)
            assert torch.equal(state[key], value), key


def test_snip_keeps_the_largest_abs_grad_times_weight(data):
    x, y = data.tensors[0][:40], data.tensors[1][:40]
    model = build("resnet20", 10, seed=1)
    reference = copy.deepcopy(model).train()
    F.cross_entropy(reference(x), y).backward()
    names = list(prunable_modules(reference))
    scores = np.concatenate([(m.weight * m.weight.grad).abs().detach().double().numpy().ravel()
                             for m in prunable_modules(reference).values()])
    n_keep = keep_count(0.1, scores.size)
    order = np.lexsort((np.arange(scores.size), -scores))  # score descending, index ascending
    expected = np.zeros(scores.size, dtype=bool)
    expected[order[:n_keep]] = True
    masks = prune(model, "snip", 0.9, data=[(x, y)], batch_size=40)
    got = np.concatenate([masks[n].numpy().ravel() for n in names])
    assert np.array_equal(got, expected)
    assert scores[got].min() >= scores[~got].max()


def _tiny_mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    init_weights(model, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                m.bias.normal_(generator=torch.Generator().manual_seed(seed + 1))
    return model


def test_grasp_removes_the_largest_minus_w_hg_by_direct_hessian():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(12, 4, generator=g), torch.tensor([2, 0, 1, 0, 2, 1, 1, 0, 2, 0, 1, 2])
    model = _tiny_mlp(0)
    temperature, per_class = 2.0, 2
    # direct computation: first 2 samples per class in arrival order, stacked by class, two halves
    order = torch.cat([torch.nonzero(y == c).reshape(-1)[:per_class] for c in range(3)])
    xs, ys = x[order], y[order]
    halves = [(xs[:3], ys[:3]), (xs[3:], ys[3:])]
    params = {n: p.detach() for n, p in model.named_parameters()}
    weight_names = [n for n in params if n.endswith("weight")]
    flat = torch.cat([params[n].reshape(-1) for n in weight_names])
    sizes = [params[n].numel() for n in weight_names]

    def loss(theta, xb, yb):
        chunks = dict(zip(weight_names, (c.reshape(params[n].shape) for c, n in zip(theta.split(sizes), weight_names))))
        return F.cross_entropy(functional_call(model, {**params, **chunks}, (xb,)) / temperature, yb)

    grad = sum(torch.func.grad(loss)(flat, xb, yb) for xb, yb in halves)
    hg = sum(hessian(loss)(flat, xb, yb) @ grad for xb, yb in halves)
    score = (-flat * hg).numpy()  # GraSP removes the LARGEST of these
    n_keep = keep_count(0.5, flat.numel())
    expected = np.zeros(flat.numel(), dtype=bool)
    expected[np.lexsort((np.arange(flat.numel()), score))[:n_keep]] = True  # the n_keep smallest
    masks = prune(model, "grasp", 0.5, data=[(x, y)], samples_per_class=per_class, temperature=temperature)
    got = np.concatenate([masks[n].numpy().ravel() for n in weight_names])
    assert np.array_equal(got, expected)
    opposite = np.zeros_like(expected)
    opposite[np.lexsort((np.arange(flat.numel()), -score))[:n_keep]] = True
    assert not np.array_equal(got, opposite)  # the sign matters on this model


def test_synflow_is_data_free(data):
    a = run("synflow", 0.9, None)
    b = prune(build("resnet20", 10, seed=0), "synflow", 0.9, data=random_dataset(64, seed=5), iterations=20)
    c = prune(build("resnet20", 10, seed=0), "synflow", 0.9, data=random_dataset(64, seed=6), iterations=20)
    assert masks_digest(a) == masks_digest(b) == masks_digest(c)
    d = run("synflow", 0.9, None, model=build("resnet20", 10, seed=1))
    assert masks_digest(a) != masks_digest(d)  # but it does depend on the weights


def _funnel_net() -> nn.Module:
    """Narrow - wide - wide - narrow MLP: the 256x256 layer holds 94% of the weights."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 256),
                          nn.ReLU(), nn.Linear(256, 16), nn.ReLU(), nn.Linear(16, 2))
    return init_weights(model, torch.Generator().manual_seed(0))


def test_iterative_synflow_avoids_layer_collapse_where_single_shot_collapses():
    sparsity = 0.99
    with pytest.warns(PruningWarning, match="2.weight|4.weight"):
        single = prune(_funnel_net(), "synflow", sparsity, input_shape=(8,), iterations=1)
    assert min(layer_density(single).values()) == 0.0
    # global magnitude pruning at the same sparsity collapses a layer too
    weights = [m.weight.detach().abs().reshape(-1) for m in prunable_modules(_funnel_net()).values()]
    flat = torch.cat(weights)
    threshold = torch.sort(flat, descending=True).values[keep_count(1 - sparsity, flat.numel()) - 1]
    assert min(int((w >= threshold).sum()) for w in weights) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", PruningWarning)
        iterative = prune(_funnel_net(), "synflow", sparsity, input_shape=(8,))  # 100 iterations
    assert min(layer_density(iterative).values()) > 0.0


def test_prospr_without_inner_steps_is_snip_and_meta_steps_change_the_mask(data):
    batches = [(data.tensors[0][i * 16:(i + 1) * 16], data.tensors[1][i * 16:(i + 1) * 16]) for i in range(4)]
    snip = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=batches, batch_size=16)
    zero_step = prune(build("resnet20", 10, seed=0), "prospr", 0.9, data=batches, batch_size=16, inner_steps=0)
    assert masks_digest(zero_step) == masks_digest(snip)
    meta = prune(build("resnet20", 10, seed=0), "prospr", 0.9, data=batches, batch_size=16)
    changed = sum(int((meta[n] ^ snip[n]).sum()) for n in snip)
    assert changed > 0.05 * 27090


@pytest.mark.parametrize("pruner", PRUNER_NAMES)
def test_same_seed_same_masks_different_seed_different_masks(pruner, data):
    a, b = run(pruner, 0.9, data, seed=0), run(pruner, 0.9, data, seed=0)
    assert masks_digest(a) == masks_digest(b)
    c = run(pruner, 0.9, data, seed=1)
    if pruner in SEED_FREE:  # deterministic given the weights
        assert masks_digest(a) == masks_digest(c)
    else:
        assert masks_digest(a) != masks_digest(c)


def test_random_pruners_do_not_touch_the_global_rng(data):
    models = {p: build("resnet20", 10, seed=0) for p in ("uniform", "snip", "grasp")}  # construction uses it
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    for pruner, model in models.items():
        run(pruner, 0.9, data, model=model)
    assert torch.equal(torch.rand(3), expected)


def test_sources_dataloader_generator_and_list_agree(data):
    x, y = data.tensors[0][:96], data.tensors[1][:96]
    reference = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=[(x[:64], y[:64])], batch_size=64)
    loader = DataLoader(TensorDataset(x, y), batch_size=24, shuffle=False)  # re-cut into 64 samples
    from_loader = prune(build("resnet20", 10, seed=0), "snip", 0.9, data=loader, batch_size=64)
    one_shot = prune(build("resnet20", 10, seed=0), "snip", 0.9, batch_size=64,
                     data=((x[i:i + 32], y[i:i + 32]) for i in range(0, 96, 32)))
    assert masks_digest(reference) == masks_digest(from_loader) == masks_digest(one_shot)


def test_dataset_name_resolves_through_sparsetopo_data():
    masks = prune(build("resnet20", 10, seed=0), "snip", 0.9, data="digits", batch_size=16)
    assert kept(masks) == 27090


def test_prunes_a_model_that_already_has_masks(data):
    model = build("resnet20", 10, seed=0)
    run("erk", 0.5, data, model=model)
    masks = run("snip", 0.9, data, model=model)
    assert masks_digest(get_masks(model)) == masks_digest(masks)
    assert kept(masks) == 27090


def test_user_cnn_without_registry_names():
    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU())
            self.head = nn.Linear(6 * 6 * 6, 3)

        def forward(self, x):
            return self.head(self.features(x).flatten(1))

    data = random_dataset(64, shape=(1, 10, 10), classes=3)
    for pruner in PRUNER_NAMES:
        opts = {"batch_size": 16} if pruner in ("snip", "prospr", "iter_snip", "force") else {}
        opts |= {"samples_per_class": 4} if pruner == "grasp" else {}
        opts |= {"steps": 3} if pruner in ("iter_snip", "force") else {}
        opts |= {"fc_density": 0.1} if pruner == "erk_plus" else {}  # its classifier is 72 % of the net
        opts |= FAST.get(pruner, {}) if pruner in ("ntk_sap", "phew") else {}
        masks = prune(Tiny(), pruner, 0.8, data=data, **opts)  # synflow infers (1, 10, 10) from it
        assert kept(masks) == keep_count(0.2, 36 + 216 + 648)


def test_prospr_meta_gradient_matches_finite_differences():
    """|∂L_meta/∂m| against central differences of an independently unrolled 3-step SGD (float64)."""
    from sparsetopo.pruning.prospr import prospr_scores

    model = _tiny_mlp(4).double()
    g = torch.Generator().manual_seed(5)
    batches = [(torch.randn(6, 4, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g))
               for _ in range(4)]
    lr, momentum = 0.5, 0.9
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss_grad = torch.func.grad(lambda p, x, y: F.cross_entropy(functional_call(model, p, (x,)), y))

    def meta_loss(mask0: torch.Tensor) -> float:
        params = {**base, "0.weight": base["0.weight"] * mask0}
        velocity = None
        for x, y in batches[:3]:
            grads = loss_grad(params, x, y)
            velocity = grads if velocity is None else {n: momentum * velocity[n] + grads[n] for n in grads}
            params = {n: params[n] - lr * velocity[n] for n in params}
        return float(F.cross_entropy(functional_call(model, params, (batches[3][0],)), batches[3][1]))

    scores = prospr_scores(model, batches, lr, momentum)
    h = 1e-6
    for index in range(0, base["0.weight"].numel(), 3):
        bump = torch.zeros(base["0.weight"].numel(), dtype=torch.float64)
        bump[index] = h
        bump = bump.reshape(base["0.weight"].shape)
        fd = (meta_loss(1 + bump) - meta_loss(1 - bump)) / (2 * h)
        assert abs(fd) == pytest.approx(float(scores["0.weight"].reshape(-1)[index]), rel=1e-4, abs=1e-8)


@pytest.mark.parametrize("name", ["conv6", "resnet20", "resnet32", "wrn28_2"])
def test_every_registry_model_prunes(name):
    side = 32 if name == "conv6" else 8  # Conv-6 flattens a 4x4 map: it needs 32x32 input
    data = random_dataset(8, shape=(3, side, side), classes=100)
    model = build(name, 100, seed=0)
    total = sum(m.weight.numel() for m in prunable_modules(model).values())
    assert kept(prune(model, "snip", 0.95, data=data, batch_size=4)) == keep_count(0.05, total)
    assert kept(prune(model, "erk", 0.95)) == keep_count(0.05, total)


def test_synflow_matches_a_direct_linearised_float64_computation():
    """Two rounds against an independent computation: eval mode, float64, |every state entry|,
    R = Σ f(ones), rescoring with the current mask, keep counts floor(N·d^(k/2) + 0.5)."""
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3),
                          nn.Flatten(), nn.Linear(12, 3))
    init_weights(model, torch.Generator().manual_seed(0))
    with torch.no_grad():  # negative BN entries: the abs() and the eval mode both change the scores
        g = torch.Generator().manual_seed(1)
        model[1].weight.copy_(-torch.rand(4, generator=g) - 0.5)
        model[1].bias.copy_(-torch.rand(4, generator=g))
        model[1].running_mean.copy_(-torch.rand(4, generator=g))
        model[1].running_var.copy_(torch.rand(4, generator=g) + 0.5)
    reference = copy.deepcopy(model).eval().double()
    with torch.no_grad():
        for tensor in reference.state_dict().values():
            if tensor.is_floating_point():
                tensor.abs_()
    layers = [m for m in reference if isinstance(m, (nn.Conv2d, nn.Linear))]
    originals = [m.weight.detach().clone() for m in layers]
    total = sum(w.numel() for w in originals)
    density = 0.2
    alive = np.ones(total, dtype=bool)
    for k in (1, 2):
        with torch.no_grad():
            for m, w, keep in zip(layers, originals, np.split(alive, np.cumsum([w.numel() for w in originals])[:-1])):
                m.weight.copy_(w * torch.from_numpy(keep).reshape(w.shape))
        grads = torch.autograd.grad(reference(torch.ones(1, 2, 4, 4, dtype=torch.float64)).sum(),
                                    [m.weight for m in layers])
        score = torch.cat([(m.weight * gr).abs().reshape(-1) for m, gr in zip(layers, grads)]).detach().numpy()
        score = np.where(alive, score, -np.inf)
        count = int(np.floor(total * density ** (k / 2) + 0.5))
        alive = np.zeros(total, dtype=bool)
        alive[np.lexsort((np.arange(total), -score))[:count]] = True
    masks = prune(model, "synflow", 1 - density, input_shape=(2, 4, 4), iterations=2)
    got = np.concatenate([m.numpy().ravel() for m in masks.values()])
    assert got.sum() == keep_count(density, total)
    assert np.array_equal(got, alive)
    train_mode = copy.deepcopy(reference).train()  # batch statistics would give other scores
    assert not torch.allclose(train_mode(torch.ones(1, 2, 4, 4, dtype=torch.float64)),
                              reference(torch.ones(1, 2, 4, 4, dtype=torch.float64)))
