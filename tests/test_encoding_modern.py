"""Modern blocks (encoding.md "Modern blocks") on replicas of torchvision's building blocks.

CI has no torchvision (it does not import beside the pinned CPU torch), so the blocks are written
here after torchvision's code: a MobileNetV3 squeeze-excitation inverted residual (hardswish,
hardsigmoid gate), a ShuffleNetV2 unit (chunk, concat, channel shuffle via ``x.size()``), an
EfficientNet MBConv (SiLU, sigmoid gate, stochastic depth as torchvision's fx-wrapped function), a
ConvNeXt block (depthwise 7×7, channels-last LayerNorm, Linear, GELU, Linear, layer scale,
DropPath), a DenseNet dense block (concatenations), an Inception block and normalisation written by
hand ((x - mean) / std by buffers, a per-channel affine by parameters). Each is checked against
the spec's Jacobian oracle (``test_encoding_oracle.check_oracle``, whose product node layer covers
gating), encodes rolled / rolled-channel, and every pruner keeps exact counts on it.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.encoding import encode
from sparsetopo.errors import AttentionError, UnsupportedOpError, ValidationError
from sparsetopo.masks import prunable_modules
from sparsetopo.pruning import PRUNER_NAMES, prune
from sparsetopo.pruning.core import PruningWarning, keep_count
from test_encoding_oracle import check_oracle, oracle_model, random_masks


# -- torchvision.ops replicas ------------------------------------------------------------------
def stochastic_depth(input, p: float, mode: str, training: bool = True):
    """torchvision.ops.stochastic_depth (same qualified name, fx-wrapped as torchvision does)."""
    if not training or p == 0.0:
        return input
    survival_rate = 1.0 - p
    size = [input.shape[0]] + [1] * (input.ndim - 1) if mode == "row" else [1] * input.ndim
    noise = torch.empty(size, dtype=input.dtype, device=input.device).bernoulli_(survival_rate)
    return input * noise.div_(survival_rate)


stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
torch.fx.wrap("stochastic_depth")


class StochasticDepth(nn.Module):
    def __init__(self, p: float, mode: str) -> None:
        super().__init__()
        self.p, self.mode = p, mode

    def forward(self, x):
        return stochastic_depth(x, self.p, self.mode, self.training)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: ``scale * input`` with scale computed from input."""

    def __init__(self, channels: int, squeeze: int, activation=nn.ReLU, scale_activation=nn.Sigmoid) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.activation, self.scale_activation = activation(), scale_activation()

    def forward(self, x):
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


def conv_bn_act(c_in: int, c_out: int, k: int = 1, stride: int = 1, groups: int = 1, act=nn.ReLU) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, *([act()] if act is not None else []))


# -- blocks ------------------------------------------------------------------------------------
class MobileNetV3Block(nn.Module):
    """MobileNetV3 inverted residual: expand (hardswish), depthwise (hardswish), SE (hardsigmoid), project."""

    def __init__(self, c: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            conv_bn_act(c, hidden, act=nn.Hardswish), conv_bn_act(hidden, hidden, 3, groups=hidden, act=nn.Hardswish),
            SqueezeExcitation(hidden, 4, scale_activation=nn.Hardsigmoid), conv_bn_act(hidden, c, act=None))

    def forward(self, x):
        return x + self.block(x)


class MBConv(nn.Module):
    """EfficientNet MBConv: expand (SiLU), depthwise (SiLU), SE (SiLU / sigmoid), project, stochastic depth."""

    def __init__(self, c: int = 4, hidden: int = 8) -> None:
        super().__init__()
        self.block = nn.Sequential(
            conv_bn_act(c, hidden, act=nn.SiLU), conv_bn_act(hidden, hidden, 3, groups=hidden, act=nn.SiLU),
            SqueezeExcitation(hidden, 2, activation=nn.SiLU), conv_bn_act(hidden, c, act=None))
        self.stochastic_depth = StochasticDepth(0.2, "row")

    def forward(self, x):
        return self.stochastic_depth(self.block(x)) + x


def channel_shuffle(x, groups: int):
    """torchvision.models.shufflenetv2.channel_shuffle: Python arithmetic on ``x.size()``."""
    batchsize, num_channels, height, width = x.size()
    channels_per_group = num_channels // groups
    x = x.view(batchsize, groups, channels_per_group, height, width)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batchsize, -1, height, width)


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: stride 1 splits the channels (chunk), stride 2 runs two branches; concat, shuffle."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        branch = c_out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn_act(c_in, c_in, 3, stride, groups=c_in, act=None),
                                         conv_bn_act(c_in, branch))
        self.branch2 = nn.Sequential(conv_bn_act(c_in if stride > 1 else branch, branch),
                                     conv_bn_act(branch, branch, 3, stride, groups=branch, act=None),
                                     conv_bn_act(branch, branch))

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's channels-first LayerNorm (permute, F.layer_norm, permute)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class Permute(nn.Module):
    def __init__(self, dims) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    """ConvNeXt block: depthwise 7×7, channels-last LayerNorm, Linear, GELU, Linear, layer scale, DropPath."""

    def __init__(self, dim: int = 3) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]), nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim), Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)
        self.stochastic_depth = StochasticDepth(0.1, "row")

    def forward(self, x):
        result = self.stochastic_depth(self.layer_scale * self.block(x))
        result += x
        return result


class DenseLayer(nn.Module):
    """torchvision _DenseLayer: takes the list of previous features, concatenates them."""

    def __init__(self, c_in: int, growth: int) -> None:
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(c_in), nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(c_in, 2 * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(2 * growth), nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        prev = [inputs] if isinstance(inputs, torch.Tensor) else inputs
        bottleneck = self.conv1(self.relu1(self.norm1(torch.cat(prev, 1))))
        return F.dropout(self.conv2(self.relu2(self.norm2(bottleneck))), p=0.0, training=self.training)


class DenseBlock(nn.ModuleDict):
    def __init__(self, layers: int, c_in: int, growth: int) -> None:
        super().__init__({f"denselayer{i + 1}": DenseLayer(c_in + i * growth, growth) for i in range(layers)})

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Inception(nn.Module):
    """GoogLeNet Inception block (1×1; 1×1→3×3; 1×1→3×3; max pool→1×1) plus an Inception-v3 style
    functional average-pool branch."""

    def __init__(self, c_in: int = 4) -> None:
        super().__init__()
        self.branch1 = conv_bn_act(c_in, 2)
        self.branch2 = nn.Sequential(conv_bn_act(c_in, 2), conv_bn_act(2, 3, 3))
        self.branch3 = nn.Sequential(conv_bn_act(c_in, 1), conv_bn_act(1, 2, 3))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), conv_bn_act(c_in, 2))
        self.branch_pool = conv_bn_act(c_in, 1)

    def forward(self, x):
        pooled = self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x), pooled], 1)


class HandNormalised(nn.Module):
    """Normalisation written by hand in a forward, as user models do: the input standardised by
    buffers (``(x - mean) / std``, torchvision's ``transforms.Normalize`` inside the model), a
    conv, then a per-channel affine by parameters (``x * gamma + beta``, LayerScale style) and a
    shift by a Python constant. Each is a per-channel affine map by a constant: node identity."""

    def __init__(self, c_in: int = 3, c_out: int = 4) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406][:c_in]).view(1, c_in, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225][:c_in]).view(1, c_in, 1, 1))
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, c_out).view(c_out, 1, 1))
        self.beta = nn.Parameter(torch.full((c_out, 1, 1), 0.1))

    @torch.no_grad()
    def unit_statistics_(self) -> None:
        """The oracle's convention for normalisation (like BN with unit statistics): scale 1."""
        self.std.fill_(1.0)
        self.gamma.fill_(1.0)

    def forward(self, x):
        x = x.sub(self.mean).div(self.std)
        return torch.relu(self.conv(x) * self.gamma + self.beta - 0.5)


def network(block: nn.Module, c_block: int, c_head: int, stem=None) -> nn.Sequential:
    """stem conv -> block -> global average pool -> Linear(3)."""
    stem = stem or conv_bn_act(3, c_block, 3, act=nn.Hardswish)
    return nn.Sequential(stem, block, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_head, 3))


def mobilenet_v3():
    return network(MobileNetV3Block(4), 4, 4)


def efficientnet():
    return network(MBConv(4), 4, 4)


def shufflenet():
    return network(nn.Sequential(ShuffleUnit(4, 6, 2), ShuffleUnit(6, 6, 1)), 4, 6)


def convnext():
    """torchvision's layout: stem (conv, LayerNorm2d), blocks, downsample (LayerNorm2d, conv) straight
    into a block (whose residual add then has a conv output as skip), head (LayerNorm2d, Linear)."""
    stem = nn.Sequential(nn.Conv2d(3, 3, 2, stride=2), LayerNorm2d(3, eps=1e-6))
    return nn.Sequential(stem, CNBlock(3), LayerNorm2d(3), nn.Conv2d(3, 4, 2, stride=2), CNBlock(4),
                         nn.AdaptiveAvgPool2d(1), LayerNorm2d(4), nn.Flatten(1), nn.Linear(4, 3))


def densenet():
    transition = nn.Sequential(nn.BatchNorm2d(7), nn.ReLU(), nn.Conv2d(7, 3, 1, bias=False), nn.AvgPool2d(2, 2))
    return network(nn.Sequential(DenseBlock(2, 3, 2), transition), 3, 3)


def inception():
    return network(Inception(4), 4, 10)


BLOCKS = {"mobilenet_v3": (mobilenet_v3, (3, 5, 5)), "efficientnet": (efficientnet, (3, 5, 5)),
          "shufflenet": (shufflenet, (3, 6, 6)), "convnext": (convnext, (3, 8, 8)),
          "densenet": (densenet, (3, 4, 4)), "inception": (inception, (3, 4, 4)),
          "hand_normalised": (lambda: network(HandNormalised(), 4, 4, stem=nn.Identity()), (3, 5, 5))}


# -- normalisation written by hand --------------------------------------------------------------
class HandLayerNorm2d(nn.Module):
    """The original ConvNeXt LayerNorm (channels_first): mean and variance over channels, by hand.

    ``stat_scale`` (a buffer, so the oracle's parameter reset leaves it alone) multiplies the
    statistics: at 0 the block is the identity, which is the spec's oracle for normalisation
    (statistics frozen, like BN in eval mode with unit statistics)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels))
        self.register_buffer("stat_scale", torch.ones(()))
        self.register_buffer("eps", torch.tensor(eps))

    def forward(self, x):
        u = x.mean(1, keepdim=True) * self.stat_scale
        s = (x - u).pow(2).mean(1, keepdim=True) * self.stat_scale + (1 - self.stat_scale)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class HandGroupNorm(nn.Module):
    """GroupNorm over ``x.view(n, groups, -1)`` with ``var`` / ``std``, then back to (n, c, h, w)."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x):
        n, c, h, w = x.shape
        g = x.view(n, self.groups, -1)
        g = (g - g.mean(-1, keepdim=True)) / (g.var(-1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        return g.view(n, c, h, w) / (x.std() + 1)


def hand_normalised(norm: nn.Module) -> nn.Sequential:
    """Input standardised by buffers, conv, hand-written normalisation, conv, global mean by hand, Linear."""

    class Standardise(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(0.25))

        def forward(self, x):
            return (x - self.mean) / self.std

    class MeanPool(nn.Module):
        def forward(self, x):
            return x.mean((2, 3))

    return nn.Sequential(Standardise(), nn.Conv2d(3, 4, 3, padding=1), norm, nn.ReLU(),
                         nn.Conv2d(4, 4, 3, stride=2), MeanPool(), nn.Linear(4, 3))



HAND_NORMALISED = {"hand_layer_norm": (lambda: hand_normalised(HandLayerNorm2d(4)), (3, 6, 6)),
                   "hand_group_norm": (lambda: hand_normalised(HandGroupNorm(2)), (3, 6, 6))}

# -- oracle ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BLOCKS)
def test_block_matches_the_jacobian_oracle(name):
    make, shape = BLOCKS[name]
    torch.manual_seed(0)
    model = make()
    masks = random_masks(model, 0.6, seed=5)
    oracle_model(model, masks)
    for module in model.modules():
        if isinstance(module, HandNormalised):
            module.unit_statistics_()
    check_oracle(model, shape, masks)
    # identity_skips=False drops the identity-skip edges only: product (gate) edges stay
    full = encode(model, shape, masks=masks)
    reduced = encode(model, shape, masks=masks, identity_skips=False)
    assert reduced.layer_offsets.tolist() == full.layer_offsets.tolist()
    kept = set(zip(reduced.src.tolist(), reduced.dst.tolist()))
    assert kept <= set(zip(full.src.tolist(), full.dst.tolist()))
    for t, layer in enumerate(full.layer_names):
        if "/" in layer:
            lo, hi = full.layer_offsets[t:t + 2]
            assert ((reduced.dst >= lo) & (reduced.dst < hi)).sum() == ((full.dst >= lo) & (full.dst < hi)).sum()


def test_hand_written_normalisation_keeps_node_identity_whatever_its_constants():
    """Per-channel affine maps by constants (buffers, parameters, Python numbers) change edge
    weights' meaning, not the edge set: the MGE is the one of the same net without them."""
    make, shape = BLOCKS["hand_normalised"]
    torch.manual_seed(0)
    model = make()
    masks = random_masks(model, 0.6, seed=5)
    plain = network(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()), 4, 4, stem=nn.Identity())
    with torch.no_grad():
        plain[1][0].weight.copy_(model[1].conv.weight)
        plain[4].weight.copy_(model[4].weight)
    normalised = encode(model, shape, masks=masks)
    reference = encode(plain, shape, masks={"1.0.weight": masks["1.conv.weight"], "4.weight": masks["4.weight"]})
    assert normalised.layer_offsets.tolist() == reference.layer_offsets.tolist()
    edges = lambda g: sorted(zip(g.src.tolist(), g.dst.tolist(), g.weight.tolist()))  # noqa: E731
    assert len(edges(normalised)) > 0 and edges(normalised) == edges(reference)


def _gate_layers(graph) -> list[str]:
    return [n for n in graph.layer_names if "/" in n]


def test_gating_opens_a_product_layer_with_the_spec_edges():
    """SE on a C×H×W map: the product layer has C·H·W nodes, H·W·C edges from the main operand (one
    per element) and H·W from each of the C gate nodes; identity_skips=False keeps them."""
    torch.manual_seed(0)
    model = mobilenet_v3()
    shape = (3, 5, 5)
    dense = encode(model, shape)
    (gate,) = _gate_layers(dense)
    assert gate == "1.block.2/mul"
    t = dense.layer_names.index(gate)
    lo, hi = dense.layer_offsets[t], dense.layer_offsets[t + 1]
    assert hi - lo == 8 * 5 * 5
    into = (dense.dst >= lo) & (dense.dst < hi)
    sources = dense.layer_of(dense.src[into])
    names = [dense.layer_names[i] for i in sources]
    assert names.count("1.block.1.0") == 8 * 5 * 5 and names.count("1.block.2.fc2") == 8 * 5 * 5
    assert np.all(dense.weight[into] == 1.0)
    without = encode(model, shape, identity_skips=False)
    assert without.meta["identity_jobs"] == 0 and _gate_layers(without) == [gate]
    assert without.num_edges == dense.num_edges - 4 * 5 * 5  # only the block's identity skip goes


def test_stochastic_depth_and_layer_scale_keep_node_identity_in_train_mode_too():
    torch.manual_seed(0)
    model = convnext().train()
    graph = encode(model, (3, 8, 8))
    assert model.training and all(m.training for m in model.modules())
    assert graph.layer_names == ("input", "0.0", "1.block.0", "1.block.3", "1.block.5", "3", "4.block.0",
                                 "4.block.3", "4.block.5", "8")
    assert graph == encode(model.eval(), (3, 8, 8))


def test_channels_last_linear_is_one_bipartite_block_per_position():
    model = convnext()
    masks = random_masks(model, 0.5, seed=1)
    graph = encode(model, (3, 8, 8), masks=masks)
    t = graph.layer_names.index("1.block.3")  # Linear(3, 12) on the (4, 4, 3) channels-last map
    lo, hi = graph.layer_offsets[t], graph.layer_offsets[t + 1]
    assert hi - lo == 4 * 4 * 12
    assert ((graph.dst >= lo) & (graph.dst < hi)).sum() == 16 * int(masks["1.block.3.weight"].sum())


def test_channel_shuffle_is_a_permutation():
    """The shuffle after the concat permutes channels: Linear input c reads shuffled channel c."""
    unit = ShuffleUnit(4, 4, 1)
    model = nn.Sequential(unit, nn.Flatten(), nn.Linear(4, 4, bias=False))
    graph = encode(model, (4, 1, 1))
    fc = graph.layer_names.index("2")
    into_fc = graph.dst >= graph.layer_offsets[fc]
    src = graph.src[into_fc].reshape(4, 4)  # edges in kept-weight order: (o, i) row-major
    # channel i of the shuffled tensor is channel (i % 2) * 2 + i // 2 of the concat: x1 (input nodes
    # 0, 1) then branch2 (its last conv's nodes)
    last = graph.layer_offsets[graph.layer_names.index("0.branch2.2.0")]
    concat = np.array([0, 1, last, last + 1])
    assert (src[0] == concat[[(i % 2) * 2 + i // 2 for i in range(4)]]).all()


@pytest.mark.parametrize("name", BLOCKS)
def test_rolled_encodings_cover_every_prunable_layer(name):
    make, _ = BLOCKS[name]
    model = make()
    masks = random_masks(model, 0.5, seed=2)
    for kind in ("rolled", "rolled_channel"):
        layers = encode(model, kind=kind, masks=masks)
        assert [g.name for g in layers] == [p[: -len(".weight")] for p in prunable_modules(model)]
    rolled = encode(model, kind="rolled", masks=masks)
    assert sum(g.num_edges for g in rolled) == sum(int(m.sum()) for m in masks.values())


# -- pruners -----------------------------------------------------------------------------------
FAST = {"snip": {"batch_size": 8}, "grasp": {"samples_per_class": 2, "batch_size": 8},
        "prospr": {"batch_size": 8, "inner_steps": 1}, "synflow": {"iterations": 3}, "synflow_l2": {"iterations": 3},
        "iter_snip": {"steps": 2, "batch_size": 8}, "force": {"steps": 2, "batch_size": 8},
        "ntk_sap": {"iterations": 2, "rounds": 1, "samples_per_class": 1}, "phew": {"max_walks": 100}}
#: newer pruners that refuse some blocks by a named error. PHEW: ops that change the channel index
#: (channel shuffles, channels-last permutes, group reshapes); it walks depthwise convolutions, SE
#: gates and concatenations. Uniform+: a dense first layer larger than the whole budget (tiny replicas only).
REFUSALS = {"phew": (UnsupportedOpError, {"shufflenet", "convnext", "hand_group_norm"}),
            "uniform_plus": (ValidationError, set(BLOCKS) | set(HAND_NORMALISED))}


@pytest.mark.parametrize("name", [*BLOCKS, *HAND_NORMALISED])
def test_every_pruner_keeps_exact_counts(name):
    make, shape = {**BLOCKS, **HAND_NORMALISED}[name]
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(12, *shape, generator=g), torch.arange(12) % 3)
    total = sum(m.weight.numel() for m in prunable_modules(make()).values())
    for pruner in PRUNER_NAMES:
        model = make()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PruningWarning)
                masks = prune(model, pruner, 0.7, data=data, seed=0, input_shape=shape, **FAST.get(pruner, {}))
        except REFUSALS.get(pruner, ((), ()))[0]:
            assert name in REFUSALS[pruner][1], (pruner, name)
            continue
        assert sum(int(m.sum()) for m in masks.values()) == keep_count(0.3, total), pruner
        graph = encode(model, shape)  # the model's own masks
        assert graph.num_edges > 0


# -- named errors ------------------------------------------------------------------------------
class SelfAttention(nn.Module):
    def __init__(self, dim: int = 4) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v


class TokenNet(nn.Module):
    """Patchify conv -> tokens -> attention (hand-written, or torch's nn.MultiheadAttention)."""

    def __init__(self, torch_mha: bool) -> None:
        super().__init__()
        self.patch = nn.Conv2d(3, 4, 2, stride=2)
        self.encoder = nn.Sequential()
        self.encoder.add_module("attn", nn.MultiheadAttention(4, 2, batch_first=True) if torch_mha else SelfAttention())
        self.torch_mha = torch_mha

    def forward(self, x):
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        if self.torch_mha:
            return self.encoder.attn(tokens, tokens, tokens, need_weights=False)[0]
        return self.encoder(tokens)


def test_attention_is_refused_naming_the_node_module_and_reason():
    with pytest.raises(AttentionError, match=r"fx node 'matmul' \(module 'encoder.attn'\).*no fixed edge set"):
        encode(TokenNet(torch_mha=False), (3, 4, 4))
    with pytest.raises(AttentionError, match=r"MultiheadAttention module at fx node .*module 'encoder.attn'.*data"):
        encode(TokenNet(torch_mha=True), (3, 4, 4))
    assert issubclass(AttentionError, UnsupportedOpError)
    # rolled encodings need no tracing: the Linear / Conv2d weights are encoded as they are
    assert len(encode(TokenNet(torch_mha=False), kind="rolled")) == 2


class MatmulWithParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(4, 2))

    def forward(self, x):
        return x.flatten(1) @ self.w


def test_size_arithmetic_is_evaluated_and_tensor_ops_stay_named():
    with pytest.raises(UnsupportedOpError, match=r"fx node 'matmul'.*nn.Linear"):
        encode(MatmulWithParameter(), (1, 2, 2))

    class FloorDivOfTensor(nn.Module):
        def forward(self, x):
            return x // 2

    with pytest.raises(UnsupportedOpError, match=r"unsupported op at fx node 'floordiv'.*floordiv"):
        encode(FloorDivOfTensor(), (1, 2, 2))


def test_twice_differentiable_hardsigmoid_is_the_same_function():
    from sparsetopo.pruning.core import TwiceDifferentiable

    x = torch.linspace(-5, 5, 101, dtype=torch.float64, requires_grad=True)
    with TwiceDifferentiable():
        y = nn.Hardsigmoid()(x)
        (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
        (h,) = torch.autograd.grad((g * x).sum(), x)  # a double backward: fails without the mode
    assert torch.equal(y.detach(), F.hardsigmoid(x.detach()))
    assert torch.equal(h, g.detach())  # hardsigmoid is piecewise linear: d(g·x)/dx = g


def test_hand_written_silu_is_an_activation_not_a_gate():
    class Swish(nn.Module):
        def __init__(self, silu: bool) -> None:
            super().__init__()
            self.conv, self.fc, self.silu = nn.Conv2d(2, 3, 3), nn.Linear(3 * 2 * 2, 2), silu

        def forward(self, x):
            y = self.conv(x)
            y = F.silu(y) if self.silu else y * torch.sigmoid(y)
            return self.fc(y.flatten(1))

    torch.manual_seed(0)
    by_hand, module = Swish(False), Swish(True)
    module.load_state_dict(by_hand.state_dict())
    assert encode(by_hand, (2, 4, 4)) == encode(module, (2, 4, 4))
    assert encode(by_hand, (2, 4, 4)).layer_names == ("input", "conv", "fc")


def test_too_small_input_with_size_arithmetic_is_a_validation_error():
    """ShuffleNet's `c // 2` ran fine before the forward pass failed: the error is the input size."""
    from sparsetopo.errors import ValidationError

    with pytest.raises(ValidationError, match=r"forward pass fails for input shape \(3, 1, 1\)"):
        encode(nn.Sequential(ShuffleUnit(3, 4, 2), nn.Conv2d(4, 4, 3)), (3, 1, 1))


@pytest.mark.parametrize("norm, library", [(lambda: HandLayerNorm2d(4), lambda: LayerNorm2d(4)),
                                           (lambda: HandGroupNorm(2), lambda: nn.GroupNorm(2, 4))])
def test_hand_written_normalisation_keeps_node_identity(norm, library):
    torch.manual_seed(0)
    by_hand, module = hand_normalised(norm()), hand_normalised(library())
    module.load_state_dict(by_hand.state_dict(), strict=False)
    masks = random_masks(by_hand, 0.6, seed=1)
    graph = encode(by_hand, (3, 6, 6), masks=masks)
    assert graph == encode(module, (3, 6, 6), masks=masks)
    assert graph.layer_names == ("input", "1", "4", "6")  # the global mean stays a pooling


def test_hand_written_layer_norm_matches_the_jacobian_oracle():
    torch.manual_seed(0)
    model = hand_normalised(HandLayerNorm2d(4))
    masks = random_masks(model, 0.6, seed=2)
    oracle_model(model, masks)
    model[0].std.fill_(1.0)  # constant scales are not edge weights (as BN's, set to 1 by the oracle)
    model[2].stat_scale.zero_()
    model[2].eps.zero_()
    check_oracle(model, (3, 6, 6), masks)


def test_a_statistic_used_as_a_feature_is_named():
    class StdPool(nn.Module):
        def forward(self, x):
            return x.std((2, 3))

    with pytest.raises(UnsupportedOpError, match=r"fx node 'std'.*normalisation statistic"):
        encode(nn.Sequential(nn.Conv2d(3, 4, 3), StdPool(), nn.Linear(4, 2)), (3, 6, 6))


@pytest.mark.parametrize("norm, library", [(lambda: HandLayerNorm2d(4), lambda: LayerNorm2d(4)),
                                           (lambda: HandGroupNorm(2), lambda: nn.GroupNorm(2, 4))])
def test_effective_masks_see_through_hand_written_normalisation(norm, library):
    """A centring or a bias written in a forward must not make dead units look reachable."""
    from sparsetopo.effective import effective_masks

    torch.manual_seed(0)
    by_hand, module = hand_normalised(norm()), hand_normalised(library())
    masks = random_masks(by_hand, 0.3, seed=1)
    masks["4.weight"][:, 1] = False  # a dead input channel of the second conv: its inputs are not effective
    masks["1.weight"][2] = False  # a dead output channel before the norm: its affine bias must not revive it
    expected = effective_masks(module, masks, (3, 6, 6))
    got = effective_masks(by_hand, masks, (3, 6, 6))
    assert all(torch.equal(got[n], expected[n]) for n in expected)
    assert sum(int(m.sum()) for m in got.values()) < sum(int(m.sum()) for m in masks.values())
