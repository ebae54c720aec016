"""Effective masks against brute-force reachability on explicitly unrolled graphs (networkx)."""
from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsetopo.effective import effective_density, effective_masks
from sparsetopo.errors import MaskError
from sparsetopo.masks import apply_masks, get_masks
from sparsetopo.models import build
from sparsetopo.pruning import prune


class Unrolled:
    """An explicit unrolled graph: nodes (stage, c, h, w) or (stage, f); edges tagged with weights."""

    def __init__(self, shape):
        self.graph = nx.DiGraph()
        self.weight_edges: dict[tuple, list[tuple]] = {}
        self.stage = 0
        c, h, w = shape
        self.nodes = {(ci, hi, wi): (0, ci, hi, wi) for ci in range(c) for hi in range(h) for wi in range(w)}
        self.shape = shape
        self.graph.add_nodes_from(self.nodes.values())
        self.inputs = set(self.nodes.values())

    def _new(self, keys):
        self.stage += 1
        nodes = {k: (self.stage, *k) for k in keys}
        self.graph.add_nodes_from(nodes.values())
        return nodes

    def conv(self, name, mask, stride=1, padding=0):
        c_out, c_in, kh, kw = mask.shape
        _, h, w = self.shape
        ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
        out = self._new([(o, i, j) for o in range(c_out) for i in range(ho) for j in range(wo)])
        for o, ci, a, b in itertools.product(range(c_out), range(c_in), range(kh), range(kw)):
            if not mask[o, ci, a, b]:
                continue
            for i, j in itertools.product(range(ho), range(wo)):
                y, x = i * stride + a - padding, j * stride + b - padding
                if 0 <= y < h and 0 <= x < w:  # padding positions are not nodes
                    edge = (self.nodes[(ci, y, x)], out[(o, i, j)])
                    self.graph.add_edge(*edge)
                    self.weight_edges.setdefault((name, o, ci, a, b), []).append(edge)
        self.nodes, self.shape = out, (c_out, ho, wo)

    def maxpool(self, k):
        c, h, w = self.shape
        out = self._new([(ci, i, j) for ci in range(c) for i in range(h // k) for j in range(w // k)])
        for (ci, i, j), node in out.items():
            for a, b in itertools.product(range(k), range(k)):
                self.graph.add_edge(self.nodes[(ci, i * k + a, j * k + b)], node)
        self.nodes, self.shape = out, (c, h // k, w // k)

    def global_pool(self):
        c = self.shape[0]
        out = self._new([(ci,) for ci in range(c)])
        for (ci, *_), node in self.nodes.items():
            self.graph.add_edge(node, out[(ci,)])
        self.nodes, self.shape = out, (c,)

    def flatten(self):
        c, h, w = self.shape
        self.nodes = {(ci * h * w + i * w + j,): node for (ci, i, j), node in self.nodes.items()}
        self.shape = (c * h * w,)

    def linear(self, name, mask):
        out = self._new([(o,) for o in range(mask.shape[0])])
        for o, i in itertools.product(range(mask.shape[0]), range(mask.shape[1])):
            if mask[o, i]:
                edge = (self.nodes[(i,)], out[(o,)])
                self.graph.add_edge(*edge)
                self.weight_edges[(name, o, i)] = [edge]
        self.nodes, self.shape = out, (mask.shape[0],)

    def add(self, other_nodes):
        """Residual add: a new node layer fed by both operands (identity-skip edges)."""
        out = self._new(list(self.nodes))
        for key, node in out.items():
            self.graph.add_edge(self.nodes[key], node)
            self.graph.add_edge(other_nodes[key], node)
        self.nodes = out

    def effective(self, masks):
        forward = set().union(*(nx.descendants(self.graph, n) | {n} for n in self.inputs))
        outputs = set(self.nodes.values())
        backward = set().union(*(nx.ancestors(self.graph, n) | {n} for n in outputs))
        result = {name: torch.zeros_like(m) for name, m in masks.items()}
        for (name, *index), edges in self.weight_edges.items():
            if any(u in forward and v in backward for u, v in edges):
                result[name][tuple(index)] = True
        return result


class Plain(nn.Module):
    """conv(pad 1) - BN - ReLU - conv(stride 2, pad 1) - ReLU - maxpool 2 - conv(pad 1) - flatten - linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
        self.c2, self.pool = nn.Conv2d(3, 4, 3, stride=2, padding=1), nn.MaxPool2d(2)
        self.c3, self.fc = nn.Conv2d(4, 3, 3, padding=1), nn.Linear(3, 4)

    def forward(self, x):
        x = self.pool(F.relu(self.c2(F.relu(self.bn(self.c1(x))))))
        return self.fc(torch.flatten(self.c3(x), 1))


def brute_plain(masks, shape=(2, 4, 4)):
    g = Unrolled(shape)
    g.conv("c1.weight", masks["c1.weight"], padding=1)
    g.conv("c2.weight", masks["c2.weight"], stride=2, padding=1)
    g.maxpool(2)
    g.conv("c3.weight", masks["c3.weight"], padding=1)  # on a 1x1 map: only the centre sees a pixel
    g.flatten()
    g.linear("fc.weight", masks["fc.weight"])
    return g.effective(masks)


class Residual(nn.Module):
    """conv - [conv - ReLU - conv] + identity - global average pool - linear."""

    def __init__(self):
        super().__init__()
        self.stem, self.a, self.b = nn.Conv2d(1, 3, 3, padding=1), nn.Conv2d(3, 3, 3, padding=1), nn.Conv2d(3, 3, 1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = self.stem(x)
        x = self.b(F.relu(self.a(x))) + x
        return self.head(F.adaptive_avg_pool2d(x, 1).flatten(1))


def brute_residual(masks, shape=(1, 3, 3)):
    g = Unrolled(shape)
    g.conv("stem.weight", masks["stem.weight"], padding=1)
    skip = g.nodes
    g.conv("a.weight", masks["a.weight"], padding=1)
    g.conv("b.weight", masks["b.weight"])
    g.add(skip)
    g.global_pool()
    g.linear("head.weight", masks["head.weight"])
    return g.effective(masks)


def random_masks(model, density, seed):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(m.weight.shape, generator=g) < density
            for n, m in ((f"{k}.weight", m) for k, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear)))}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("net,brute,shape,density", [
    *((Plain, brute_plain, (2, 4, 4), d) for d in (0.15, 0.35, 0.7)),
    *((Residual, brute_residual, (1, 3, 3), d) for d in (0.2, 0.5)),
], ids=["plain-0.15", "plain-0.35", "plain-0.7", "residual-0.2", "residual-0.5"])
def test_effective_masks_match_brute_force(seed, net, brute, shape, density):
    model = net()
    masks = random_masks(model, density, seed)
    got = effective_masks(model, masks, shape)
    expected = brute(masks)
    for name in masks:
        assert torch.equal(got[name], expected[name]), name


def test_padding_only_weights_are_not_effective():
    """Dense Plain net: c3 runs on a 1x1 map, so its 8 off-centre taps only ever see zero padding."""
    model = Plain()
    dense = {n: torch.ones_like(m) for n, m in get_masks(model).items()}
    got = effective_masks(model, dense, (2, 4, 4))
    centre = torch.zeros(3, 3, dtype=torch.bool)
    centre[1, 1] = True
    assert torch.equal(got["c3.weight"], centre.expand(3, 4, 3, 3))
    assert got["c1.weight"].all() and got["c2.weight"].all() and got["fc.weight"].all()
    assert torch.equal(got["c3.weight"], brute_plain(dense)["c3.weight"])
    total = sum(m.numel() for m in dense.values())
    assert effective_density(model, dense, (2, 4, 4)) == pytest.approx((total - 3 * 4 * 8) / total)


def test_dead_units_remove_what_they_feed_and_read():
    model = Plain()
    masks = {n: torch.ones_like(m) for n, m in get_masks(model).items()}
    masks["c2.weight"][1] = False  # unit 1 of c2 reads nothing: everything reading it is dead
    masks["fc.weight"][:, 2] = False  # c3 channel 2 is read by nothing: everything feeding it is dead
    got = effective_masks(model, masks, (2, 4, 4))
    assert not got["c3.weight"][:, 1].any() and not got["c3.weight"][2].any()
    assert got["c3.weight"][0, 0, 1, 1] and int(got["fc.weight"].sum()) == 8


def test_masks_on_the_model_are_the_default_and_the_model_is_untouched():
    model = build("resnet20", 10, seed=0)
    masks = prune(model, "uniform", 0.995, seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    from_model = effective_masks(model, input_shape=(3, 32, 32))
    given = effective_masks(model, masks, (3, 32, 32))
    assert all(torch.equal(from_model[n], given[n]) for n in masks)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    kept = sum(int(m.sum()) for m in masks.values())
    effective = sum(int(m.sum()) for m in given.values())
    assert 0 < effective < kept  # at 99.5 % random pruning many kept weights are dead
    assert all(bool((given[n] <= masks[n]).all()) for n in masks)


def test_deep_dense_network_does_not_overflow():
    """40 dense 3x3 convs: path counts near 1e200, every weight still effective."""
    model = nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(40)], nn.Flatten(), nn.Linear(64, 2))
    got = effective_masks(model, None, (4, 4, 4))
    assert all(bool(m.all()) for m in got.values())


@pytest.mark.parametrize("arch, pruner, sparsity", [("resnet20", "synflow", 0.995), ("conv6", "erk", 0.99),
                                                    ("resnet20", "uniform", 0.99)])
def test_float32_reachability_equals_float64(monkeypatch, arch, pruner, sparsity):
    """The fast float32 pass is exact (non-negative sums: zero iff every term is zero)."""
    import sparsetopo.effective as effective

    model = build(arch, seed=0)
    masks = prune(model, pruner, sparsity, seed=0, **({"iterations": 5} if pruner == "synflow" else {}))
    fast = effective_masks(model, masks, (3, 32, 32))
    monkeypatch.setattr(effective, "REACHABILITY_DTYPE", torch.float64)
    slow = effective_masks(model, masks, (3, 32, 32))
    assert all(torch.equal(fast[n], slow[n]) for n in masks)
    assert 0 < sum(int(m.sum()) for m in fast.values()) < sum(int(m.sum()) for m in masks.values())


def mge_effective_masks(model, masks, shape):
    """Oracle from the MGE itself (metrics.md §5b): effective nodes are reachable from the input
    layer and reach the output layer (networkx); a kept weight is effective iff one of its edges
    joins two effective nodes. Every weight is set to a distinct id >= 2 first, so each edge names
    its weight (skip and gate edges weigh 1)."""
    import copy

    from sparsetopo.encoding import encode
    from sparsetopo.masks import prunable_modules

    model, first_id, start = copy.deepcopy(model), {}, 2
    with torch.no_grad():
        for name, module in prunable_modules(model).items():
            first_id[name] = start
            module.weight.copy_(torch.arange(start, start + module.weight.numel()).reshape(module.weight.shape))
            start += module.weight.numel()
    graph = encode(model, shape, masks=masks)
    g = graph.to_networkx()
    g.add_edges_from(("source", v) for v in graph.layer_range(0))
    g.add_edges_from((v, "sink") for v in graph.layer_range(-1))
    alive = nx.descendants(g, "source") & nx.ancestors(g, "sink")
    ids = {int(w) for u, v, w in zip(graph.src.tolist(), graph.dst.tolist(), graph.weight.tolist())
           if u in alive and v in alive and w >= 2}
    out = {}
    for name, mask in masks.items():
        flat = torch.tensor([first_id[name] + k in ids for k in range(mask.numel())])
        out[name] = flat.reshape(mask.shape) & mask
    return out


class FunctionalGate(nn.Module):
    """conv -> x * sigmoid(conv(mean(x))) written with functions, then functional ops on the
    product (a rewritten gate read by later rewritten ops), conv, pool, linear."""

    def __init__(self):
        super().__init__()
        self.c1, self.gate, self.c2, self.fc = nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 3, 1), nn.Linear(3, 2)

    def forward(self, x):
        x = self.c1(x)
        x = F.relu(x * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True)))) * 0.5
        return self.fc(self.c2(x).mean((2, 3)))


@pytest.mark.parametrize("block", ["mobilenet_v3", "efficientnet", "inception", "densenet", "functional_gate"])
@pytest.mark.parametrize("density", [0.25, 0.5])
def test_effective_masks_equal_the_mge_oracle_on_modern_blocks(block, density):
    """Gates included: a product node is reached through either operand (its MGE node layer has
    edges from both), so a live gate keeps the product alive where x's channel is dead."""
    from test_encoding_modern import BLOCKS

    make, shape = {**BLOCKS, "functional_gate": (FunctionalGate, (3, 5, 5))}[block]
    for seed in range(4):
        torch.manual_seed(seed)
        model = make()
        masks = random_masks(model, density, seed)
        got, expected = effective_masks(model, masks, shape), mge_effective_masks(model, masks, shape)
        assert all(torch.equal(got[n], expected[n]) for n in masks), (block, seed)


def test_bad_masks_are_named_errors():
    with pytest.raises(MaskError, match="unknown parameter"):
        effective_masks(Plain(), {"nope.weight": torch.ones(1)}, (2, 4, 4))
    model = Plain()
    apply_masks(model, random_masks(model, 0.5, 0))
    assert effective_density(model, input_shape=(2, 4, 4)) <= 0.5 + 0.2


# --- pruning to an effective sparsity ---------------------------------------------------------------

def _deep_narrow() -> nn.Module:
    """A narrow deep MLP: random pruning at high sparsity leaves many dead weights."""
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 12),
                         nn.ReLU(), nn.Linear(12, 3))


@pytest.mark.parametrize("pruner", ["uniform", "synflow", "igq"])
def test_effective_option_hits_the_effective_count(pruner):
    from sparsetopo.pruning import keep_count

    total = 6 * 12 + 12 * 12 * 2 + 36
    target = keep_count(0.15, total)
    torch.manual_seed(0)  # the models' initial weights (SynFlow's scores depend on them)
    nominal = prune(_deep_narrow(), pruner, 0.85, input_shape=(6,), seed=1)
    model = _deep_narrow()
    masks = prune(model, pruner, 0.85, input_shape=(6,), seed=1, effective=True)
    effective = sum(int(m.sum()) for m in effective_masks(model, masks, (6,)).values())
    kept_nominal = sum(int(m.sum()) for m in effective_masks(model, nominal, (6,)).values())
    assert kept_nominal < target or pruner == "synflow"  # plain random requests leave dead weights ...
    # ... the search gets closer. Random masks change with n, and SynFlow's iterative schedule
    # changes with n too (its masks are not nested), so E(n) can jump over the target by one.
    assert abs(effective - target) < max(abs(kept_nominal - target), 2) and abs(effective - target) <= 0.1 * target
    assert sum(int(m.sum()) for m in masks.values()) >= target
    assert torch.equal(get_masks(model)["0.weight"], masks["0.weight"])  # attached as usual


def test_unreachable_effective_target_warns():
    from sparsetopo.pruning import PruningWarning

    with pytest.warns(PruningWarning, match="not reachable"):  # dense c3 taps see only padding
        prune(Plain(), "uniform", 0.02, input_shape=(2, 4, 4), effective=True)
