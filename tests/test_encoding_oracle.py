"""The Jacobian oracle of encoding.md, run on random small networks and on real architectures.

Oracle. Weights = mask × U(0.5, 1.5); activations -> identity; BN in eval with unit statistics (and
eps = 0, so it is exactly the identity); every max / average pool -> a *sum* pool of the same
geometry (the oracle's average pool times the window size, so that Jacobian entries equal the
summed MGE weights, not just their pattern). Every node layer is cut at the fx values that carry it
(``graph.meta["fx_nodes"]``: the weighted layer's output, then each add where it is the main
operand): there the value is replaced by ``value.detach() + δ_S`` (δ only for the perturbed layer
S). So the Jacobian of a layer T's values w.r.t. δ_S sees exactly one hop S -> T through
parameter-free ops, and, summed over T's cut points, must equal the MGE's S -> T weight matrix
(nonzero pattern and values). Skip edges land on the add cut point with the main branch cut off,
which is the "main branch's weights zeroed" check of the spec.

Modern blocks (encoding.md): normalisation of any kind, DropPath / stochastic depth and every
activation become the identity; every parameter other than the prunable weights (biases, norm
affines, layer scales) is 1, so a layer scale is the identity too; a product ``x * g`` of two
traced tensors becomes the broadcast sum ``x + g``, whose Jacobians are the product's Jacobians at
x = g = 1 (one weight-1 entry per element the operand multiplies): the product node layer's edges.
"""
from __future__ import annotations

import math
import operator

import numpy as np
import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from sparsetopo.encoding import encode
from sparsetopo.masks import prunable_modules
from sparsetopo.models import build

_ACTIVATION_MODULES = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Dropout,
                       nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)
_ACTIVATION_FUNCTIONS = {F.relu, torch.relu, F.relu6, F.gelu, F.silu, torch.sigmoid, torch.tanh, F.hardtanh,
                         F.hardswish, F.hardsigmoid, F.layer_norm, F.group_norm}
_ACTIVATION_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh"}
_PRODUCTS = {operator.mul, operator.imul, torch.mul, "mul", "mul_", "__mul__", "__rmul__"}


def _is_identity_function(target) -> bool:
    return target in _ACTIVATION_FUNCTIONS or getattr(target, "__name__", "") == "stochastic_depth"


# -- oracle --------------------------------------------------------------------------------------
def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def sum_pool(x, kernel, stride, padding, dilation, out_hw):
    """Sum over PyTorch's pooling windows (window i starts at i·s − p, taps every d)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = map(_pair, (kernel, stride or kernel, padding, dilation))
    need_h, need_w = (out_hw[0] - 1) * sh + dh * (kh - 1) + 1, (out_hw[1] - 1) * sw + dw * (kw - 1) + 1
    x = F.pad(x, (pw, need_w - x.shape[-1] - pw, ph, need_h - x.shape[-2] - ph))
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), stride=(sh, sw))
    return cols.view(x.shape[0], x.shape[1], kh * kw, -1).sum(2).view(x.shape[0], x.shape[1], *out_hw)


def adaptive_sum_pool(x, out_hw):
    """Sum over PyTorch's adaptive windows [floor(i·n/m), ceil((i+1)·n/m))."""
    h, w = x.shape[-2:]
    rows = [((i * h) // out_hw[0], math.ceil((i + 1) * h / out_hw[0])) for i in range(out_hw[0])]
    cols = [((j * w) // out_hw[1], math.ceil((j + 1) * w / out_hw[1])) for j in range(out_hw[1])]
    return torch.stack([torch.stack([x[..., a:b, c:d].sum((-2, -1)) for c, d in cols], -1) for a, b in rows], -2)


def traced_nodes(gm: fx.GraphModule) -> set[str]:
    """Names of the fx nodes whose value depends on the network input."""
    traced: set[str] = set()
    for n in gm.graph.nodes:
        if n.op == "placeholder" or any(a.name in traced for a in n.all_input_nodes):
            traced.add(n.name)
    return traced


class _Oracle(fx.Interpreter):
    def __init__(self, gm, cut: dict[str, int], source: int, delta, layout: dict | None = None,
                 probe: bool = False):
        super().__init__(gm)
        self.cut, self.source, self.delta, self.recorded = cut, source, delta, []
        # layout[point] = node index (within its layer) of each flat position of a cut point whose
        # values are a rearrangement of the layer's first point (ConvNeXt: Linear out, permuted)
        self.layout, self.probe, self.first = layout or {}, probe, set()
        self.traced = traced_nodes(gm)
        self.gating = False

    def _gate(self, n, args):
        """``x * g`` of two traced tensors -> the broadcast sum (see the module docstring)."""
        operands = [a for a in n.args if isinstance(a, fx.Node)]
        return (n.target in _PRODUCTS and len(operands) == 2 and all(a.name in self.traced for a in operands)
                and operands[0] is not operands[1])

    def run_node(self, n):
        if self._gate(n, n.args):
            args, _ = self.fetch_args_kwargs_from_env(n)
            out = args[0] + args[1]
        else:
            out = super().run_node(n)
        if n.name in self.cut:
            self.recorded.append(out)
            layer = self.cut[n.name]
            if layer != self.source:
                return out.detach()
            if self.probe and layer in self.first:  # probe: later points carry the first one's ids
                return out
            self.first.add(layer)
            order = self.layout.get(n.name)
            return out.detach() + (self.delta if order is None else self.delta.reshape(-1)[order].reshape(out.shape))
        return out

    def call_module(self, target, args, kwargs):
        m = self.fetch_attr(target)
        if isinstance(m, _ACTIVATION_MODULES):
            return args[0]
        if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            out_hw = m(args[0].detach()).shape[-2:]
            return sum_pool(args[0], m.kernel_size, m.stride, m.padding, getattr(m, "dilation", 1), out_hw)
        if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            return adaptive_sum_pool(args[0], m(args[0].detach()).shape[-2:])
        return super().call_module(target, args, kwargs)

    def call_function(self, target, args, kwargs):
        if _is_identity_function(target):
            return args[0]
        if target in (F.max_pool2d, F.avg_pool2d):
            out_hw = target(args[0].detach(), *args[1:], **kwargs).shape[-2:]
            names = ("kernel_size", "stride", "padding") + (("dilation",) if target is F.max_pool2d else ())
            g = {**dict(zip(names, args[1:])), **kwargs}
            return sum_pool(args[0], g["kernel_size"], g.get("stride"), g.get("padding", 0), g.get("dilation", 1), out_hw)
        if target is F.adaptive_avg_pool2d:
            return adaptive_sum_pool(args[0], target(args[0].detach(), *args[1:], **kwargs).shape[-2:])
        return super().call_function(target, args, kwargs)

    def call_method(self, target, args, kwargs):
        if target in _ACTIVATION_METHODS:
            return args[0]
        if target == "mean":
            return args[0].sum(*args[1:], **kwargs)
        return super().call_method(target, args, kwargs)


def oracle_model(model: nn.Module, masks: dict, seed: int = 0) -> nn.Module:
    """Set weights = mask × U(0.5, 1.5), every other parameter to 1 (layer scales become the
    identity), BN to exact identity (eval, unit stats, eps 0); in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        prunable = set(prunable_modules(model))
        for name, p in model.named_parameters():
            if name not in prunable:
                p.fill_(1.0)
        for name, module in prunable_modules(model).items():
            u = torch.rand(module.weight.shape, generator=g) + 0.5
            module.weight.copy_(u * masks[name])
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.reset_parameters()
                m.eps = 0.0
    model.requires_grad_(False)
    return model.eval()


def random_masks(model: nn.Module, keep: float, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(m.weight.shape, generator=g) < keep for name, m in prunable_modules(model).items()}


def mge_block(adjacency, graph, s: int, t: int, cols: np.ndarray) -> np.ndarray:
    """Dense |T| × len(cols) matrix of summed MGE weights from nodes ``cols`` of layer s to layer t."""
    s0, (t0, t1) = graph.layer_offsets[s], graph.layer_offsets[t:t + 2]
    return adjacency[s0 + cols][:, t0:t1].toarray().T


def check_oracle(model: nn.Module, input_shape, masks: dict, identity_skips: bool = True,
                 max_sources: int | None = None, seed: int = 0) -> None:
    """Encode ``model`` (already oracle-weighted) and compare every layer pair with the Jacobian."""
    graph = encode(model, input_shape, masks=masks, identity_skips=identity_skips)
    key = np.sort(graph.src.astype(np.int64) * graph.num_nodes + graph.dst)
    assert (key[1:] != key[:-1]).all(), "duplicate edges"
    gm = fx.symbolic_trace(model.double().eval())
    nodes = {n.name: n for n in gm.graph.nodes}
    cut = {name: layer for layer, names in enumerate(graph.meta["fx_nodes"]) for name in names}
    sizes = np.diff(graph.layer_offsets)
    x = torch.zeros(1, *input_shape, dtype=torch.float64)
    shapes = {}

    layout: dict[str, torch.Tensor] = {}

    def values(source, delta, probe=False):
        interp = _Oracle(gm, cut, source, delta, layout, probe)
        interp.run(x)
        return tuple(interp.recorded)

    order = [name for name in nodes if name in cut]  # recording order = fx order
    clean = values(-1, 0.0)
    for name, value in zip(order, clean):
        shapes[name] = tuple(value.shape)
    # where a layer's later cut points (residual adds) hold its values rearranged, find how: inject
    # the node indices at its first point and read them back (the oracle network is affine)
    for names in graph.meta["fx_nodes"]:
        if len(names) > 1:
            ids = torch.arange(math.prod(shapes[names[0]]), dtype=torch.float64).reshape(shapes[names[0]])
            layer = cut[names[0]]
            probe = [a - b for a, b in zip(values(layer, ids, True), values(layer, ids * 0, True))]
            for name, diff in zip(order, probe):
                if name in names[1:]:
                    layout[name] = diff.reshape(-1).round().long()
    # node counts equal traced tensor sizes; layer names are the weighted modules they come from
    for layer, names in enumerate(graph.meta["fx_nodes"]):
        assert math.prod(shapes[names[0]]) == sizes[layer]
        first = nodes[names[0]]
        if layer == 0:
            assert first.op == "placeholder"
        elif first.op == "call_module":  # a weighted layer (":n" = its n-th call)
            assert str(first.target) == graph.layer_names[layer].split(":")[0]
        else:  # a product node layer, named "<module path>/<fx node>"
            assert first.target in _PRODUCTS and graph.layer_names[layer].split("/")[-1] == first.name
    rng = np.random.default_rng(seed)
    adjacency = graph.to_scipy().astype(np.float64).tocsr()
    for s in range(graph.num_layers):
        delta0 = torch.zeros(shapes[graph.meta["fx_nodes"][s][0]], dtype=torch.float64)
        cols = np.arange(sizes[s])
        if max_sources is not None and sizes[s] > max_sources:
            cols = np.sort(rng.choice(sizes[s], max_sources, replace=False))
            basis = torch.zeros(len(cols), sizes[s], dtype=torch.float64)
            basis[np.arange(len(cols)), cols] = 1.0
            jac = torch.func.vmap(lambda v: torch.func.jvp(lambda d: values(s, d), (delta0,), (v.view_as(delta0),))[1])(basis)
            jac = tuple(j.reshape(len(cols), -1).T for j in jac)
        else:
            jac = torch.autograd.functional.jacobian(lambda d: values(s, d), delta0, vectorize=True,
                                                     strategy="forward-mode")
            jac = tuple(j.reshape(-1, sizes[s]) for j in jac)
        per_layer = {}
        for name, j in zip(order, jac):
            t = cut[name]
            j = j.detach().numpy()
            if name in layout:  # rows in the point's positions -> rows in node order
                j = j[np.argsort(layout[name].numpy())]
            per_layer[t] = per_layer.get(t, 0) + j
        for t in range(graph.num_layers):
            if t == s:
                continue
            expected = per_layer[t]
            got = mge_block(adjacency, graph, s, t, cols)
            np.testing.assert_array_equal(got != 0, expected != 0,
                                          err_msg=f"edge pattern {graph.layer_names[s]} -> {graph.layer_names[t]}")
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9,
                                       err_msg=f"weights {graph.layer_names[s]} -> {graph.layer_names[t]}")


# -- random small networks ---------------------------------------------------------------------
class Residual(nn.Module):
    def __init__(self, main: nn.Module, shortcut: nn.Module | None, main_first: bool) -> None:
        super().__init__()
        self.main, self.shortcut, self.main_first = main, shortcut, main_first

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.main(x) + skip if self.main_first else skip + self.main(x)


class Concat(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], dim=1)


class ChannelPad(nn.Module):
    """ResNet option-A style shortcut: strided slice, then zero channels."""

    def __init__(self, stride: int, before: int, after: int) -> None:
        super().__init__()
        self.stride, self.before, self.after = stride, before, after

    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, 0, 0, 0, self.before, self.after))


class MeanHead(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))


def _shape(module: nn.Module, shape):
    with torch.no_grad():
        return tuple(module.eval()(torch.zeros(1, *shape)).shape[1:])


@st.composite
def conv_layer(draw, c_in: int, hw):
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if c_in % g == 0]))
    c_out = groups * draw(st.integers(1, 3))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dil = draw(st.integers(1, 2))
    stride = draw(st.integers(1, 2))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    if any((s + 2 * p - dil * (kk - 1)) < 1 for s, p, kk in zip(hw, pad, k)):
        k, dil = (1, 1), 1
    conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=pad, dilation=dil, groups=groups,
                     bias=draw(st.booleans()))
    layers = [conv] + ([nn.BatchNorm2d(c_out)] if draw(st.booleans()) else []) + [nn.ReLU()]
    return nn.Sequential(*layers)


@st.composite
def random_network(draw):
    c = draw(st.integers(1, 3))
    shape = (c, draw(st.integers(4, 7)), draw(st.integers(4, 7)))
    x_shape = shape
    blocks: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "pool", "residual", "concat", "pad"]))
        c_in, hw = shape[0], shape[1:]
        if kind == "conv":
            block = draw(conv_layer(c_in, hw))
        elif kind == "pool":
            k = draw(st.integers(1, 3))
            stride = draw(st.integers(1, 3))
            pad = draw(st.integers(0, k // 2))
            ceil = draw(st.booleans())
            if draw(st.booleans()):
                dil = draw(st.integers(1, 2))
                if min(hw) + 2 * pad < dil * (k - 1) + 1:
                    dil = 1
                block = nn.MaxPool2d(k, stride, pad, dilation=dil, ceil_mode=ceil)
            else:
                block = nn.AvgPool2d(k, stride, pad, ceil_mode=ceil)
            if min(hw) + 2 * pad < k:
                block = nn.MaxPool2d(1)
        elif kind == "residual":
            stride = draw(st.integers(1, 2))
            c_out = draw(st.integers(max(1, c_in), c_in + 2))
            convs = [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
            if draw(st.booleans()):
                convs += [nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out)]
            short = draw(st.sampled_from(["identity", "projection", "pad"]))
            if short == "identity" and (stride != 1 or c_out != c_in):
                short = "pad"
            shortcut = {"identity": None,
                        "projection": nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride), nn.BatchNorm2d(c_out)),
                        "pad": ChannelPad(stride, (c_out - c_in) // 2, c_out - c_in - (c_out - c_in) // 2)}[short]
            block = Residual(nn.Sequential(*convs), shortcut, draw(st.booleans()))
        elif kind == "concat":
            other = nn.MaxPool2d(3, 1, 1) if draw(st.booleans()) else nn.Conv2d(c_in, 2, 1)
            block = Concat(nn.Sequential(nn.Conv2d(c_in, 2, 3, padding=1), nn.ReLU()), other)
        else:
            p = (draw(st.integers(0, 1)), draw(st.integers(0, 1)), draw(st.integers(0, 1)), draw(st.integers(0, 1)))
            block = nn.ZeroPad2d(p)
        blocks.append(block)
        shape = _shape(block, shape)
    head = draw(st.sampled_from(["flatten", "gap", "mean", "none"]))
    if head == "flatten":
        blocks += [nn.Flatten(), nn.Linear(math.prod(shape), draw(st.integers(1, 4)))]
    elif head == "gap":
        blocks += [nn.AdaptiveAvgPool2d(draw(st.integers(1, 2))), nn.Flatten()]
        blocks += [nn.Linear(math.prod(_shape(nn.Sequential(*blocks[-2:]), shape)), 3)]
    elif head == "mean":
        blocks += [MeanHead(), nn.Linear(shape[0], 3), nn.ReLU(), nn.Linear(3, 2)]
    return nn.Sequential(*blocks), x_shape, draw(st.floats(0.3, 1.0)), draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_network())
def test_oracle_random_networks(spec):
    model, input_shape, keep, seed = spec
    masks = random_masks(model, keep, seed)
    oracle_model(model, masks, seed)
    check_oracle(model, input_shape, masks)
    # official behaviour: no identity-skip edges, everything else unchanged
    full = encode(model, input_shape, masks=masks)
    reduced = encode(model, input_shape, masks=masks, identity_skips=False)
    assert reduced.num_nodes == full.num_nodes and reduced.layer_names == full.layer_names
    # an identity job whose sources are all padding makes no edge: then the two graphs are equal
    assert (reduced != full) <= (full.meta["identity_jobs"] > 0)
    kept = set(zip(reduced.src.tolist(), reduced.dst.tolist()))
    assert kept <= set(zip(full.src.tolist(), full.dst.tolist()))


# -- registry models at small inputs -----------------------------------------------------------
@pytest.mark.parametrize("name,kwargs,input_shape,max_sources", [
    ("resnet20", {"shortcut": "A"}, (3, 6, 6), None),
    ("resnet20", {"shortcut": "B"}, (3, 6, 6), None),
    ("wrn28_2", {}, (3, 4, 4), None),
    ("wrn28_2", {}, (3, 8, 8), 128),
    ("conv6", {"input_size": 8}, (3, 8, 8), 64),  # 4096-node layers: 64 random source columns each
])
def test_oracle_registry_models(name, kwargs, input_shape, max_sources):
    model = build(name, num_classes=3, seed=0, **kwargs)
    masks = random_masks(model, 0.5, seed=1)
    oracle_model(model, masks)
    check_oracle(model, input_shape, masks, max_sources=max_sources)


# -- torchvision-style architectures, written here (no torchvision dependency) ------------------
class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyTorchvisionResNet(nn.Module):
    """torchvision ResNet layout: 7×7/2 stem + 3×3/2 max pool, Bottleneck stages, avgpool, fc."""

    def __init__(self, widths=(2, 4), blocks=(2, 1), num_classes: int = 3) -> None:
        super().__init__()
        self.inplanes = 4
        self.conv1 = nn.Conv2d(3, 4, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(widths[0], blocks[0], 1)
        self.layer2 = self._make_layer(widths[1], blocks[1], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[1] * 4, num_classes)

    def _make_layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes * 4:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))
        layers = [Bottleneck(self.inplanes, planes, stride, down)]
        self.inplanes = planes * 4
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand, 3×3 depthwise (groups = channels), 1×1 project, + x."""

    def __init__(self, c: int, expand: int = 3) -> None:
        super().__init__()
        hidden = c * expand
        self.conv = nn.Sequential(
            nn.Conv2d(c, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.conv(x)


def small_vgg() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(6 * 2 * 2, 8), nn.ReLU(), nn.Dropout(), nn.Linear(8, 3))


def mobilenet_block() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.BatchNorm2d(4), nn.ReLU6(), InvertedResidual(4),
                         InvertedResidual(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))


@pytest.mark.parametrize("make,input_shape", [
    (TinyTorchvisionResNet, (3, 12, 12)),
    (small_vgg, (3, 8, 8)),
    (mobilenet_block, (3, 6, 6)),
])
def test_oracle_torchvision_style(make, input_shape):
    torch.manual_seed(0)
    model = make()
    masks = random_masks(model, 0.6, seed=2)
    oracle_model(model, masks)
    check_oracle(model, input_shape, masks)
    graph = encode(model, input_shape, masks=masks)
    assert graph.meta["identity_jobs"] > 0 or make is small_vgg


class FunctionalOps(nn.Module):
    """chunk, cat, functional max / adaptive pooling with overlapping windows, F.pad, view(size(0), -1),
    padding="same", reflect and circular padding modes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 4, 3, padding="same")
        self.c2 = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
        self.c3 = nn.Conv2d(5, 2, (3, 2), padding=1, padding_mode="circular")
        self.fc = nn.Linear(2 * 3 * 3, 3)
        self.fc2 = nn.Linear(2 * 3 * 3, 3)

    def forward(self, x):
        a, b = torch.chunk(self.c1(x), 2, dim=1)
        y = torch.cat([self.c2(a), F.max_pool2d(b, 3, 1, 1)], 1)
        z = F.adaptive_avg_pool2d(self.c3(F.pad(y, (1, 0, 0, 1))), 3)
        return self.fc(z.reshape(1, -1)) + self.fc2(z.view(z.size(0), -1))  # two linears, one node set


def test_oracle_functional_ops():
    torch.manual_seed(0)
    model = FunctionalOps()
    masks = random_masks(model, 0.7, seed=3)
    oracle_model(model, masks)
    check_oracle(model, (2, 6, 6), masks)
    assert encode(model, (2, 6, 6), masks=masks).meta["merged"] == {"fc2": "fc"}


class DenseDAG(nn.Module):
    """Skips over several layers, a skip into a concatenation, and an add of three operands where
    two are convolutions (merged into one node set) and one is an earlier layer (identity edges)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(2, 3, 3, padding=1)
        self.b = nn.Conv2d(3, 3, 1)
        self.c = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.d = nn.Conv2d(5, 3, 3, padding=1, stride=2)
        self.e = nn.Conv2d(2, 3, 1, stride=2)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.head = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        a = self.a(x)
        c = self.c(self.b(F.relu(a))) + a
        d = self.d(torch.cat([c, x], 1))
        out = d + self.e(x) + self.pool(c)
        return self.head(torch.flatten(out, 1))


def test_oracle_dense_dag():
    torch.manual_seed(0)
    model = DenseDAG()
    masks = random_masks(model, 0.8, seed=4)
    oracle_model(model, masks)
    check_oracle(model, (2, 5, 5), masks)
    graph = encode(model, (2, 5, 5), masks=masks)
    assert graph.layer_names == ("input", "a", "b", "c", "d", "head")
    assert graph.meta["merged"] == {"e": "d"} and graph.meta["identity_jobs"] == 2
