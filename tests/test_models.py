"""The four architectures: exact prunable-weight counts (spec table), shapes, init, fx-traceability."""
import pytest
import torch
from torch import nn

from sparsetopo.errors import ValidationError
from sparsetopo.masks import prunable_parameters
from sparsetopo.models import MODEL_NAMES, build

# (model, kwargs) -> (N = a + b·C, number of prunable tensors) from models-and-pruning.md §1
COUNTS = {
    ("conv6", "B"): (2_258_624, 256, 9),
    ("resnet20", "B"): (270_256, 64, 22),
    ("resnet32", "B"): (463_792, 64, 34),
    ("wrn28_2", "B"): (1_462_704, 128, 29),
    ("resnet20", "A"): (267_696, 64, 20),
    ("resnet32", "A"): (461_232, 64, 32),
}


@pytest.mark.parametrize("key", sorted(COUNTS))
@pytest.mark.parametrize("num_classes", [10, 100, 200])
def test_prunable_weight_counts(key, num_classes):
    name, shortcut = key
    kwargs = {"shortcut": shortcut} if name.startswith("resnet") else {}
    model = build(name, num_classes, seed=0, **kwargs)
    params = prunable_parameters(model)
    base, per_class, tensors = COUNTS[key]
    assert sum(p.numel() for p in params.values()) == base + per_class * num_classes
    assert len(params) == tensors


def test_resnet20_layer_sizes_match_spec():
    sizes = [p.numel() for p in prunable_parameters(build("resnet20", 10)).values()]
    # conv1; stage1 6 convs; stage2 4608, 9216 ×5, sc 512; stage3 18432, 36864 ×5, sc 2048; linear
    expected = [432] + [2304] * 6 + [4608, 9216, 512] + [9216] * 4 + [18432, 36864, 2048] + [36864] * 4 + [640]
    assert sorted(sizes) == sorted(expected)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_shape_and_fx_trace(name):
    model = build(name, 7, seed=1).eval()
    x = torch.randn(2, 3, 32, 32)
    y = model(x)
    assert y.shape == (2, 7)
    traced = torch.fx.symbolic_trace(model)
    torch.testing.assert_close(traced(x), y)


def test_option_a_shortcut_traces_and_runs():
    model = build("resnet20", 10, shortcut="A").eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(traced(x), model(x))


def test_kaiming_init_is_seeded_and_fan_in():
    a, b, c = build("resnet20", seed=3), build("resnet20", seed=3), build("resnet20", seed=4)
    wa, wb, wc = (m.layer3[0].conv2.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    # fan_in = 64·3·3 → std = sqrt(2 / 576)
    assert abs(wa.std().item() - (2 / 576) ** 0.5) < 0.003
    conv6 = build("conv6", seed=0)
    assert all(m.bias.abs().sum() == 0 for m in conv6.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_bad_names_are_rejected():
    with pytest.raises(ValidationError, match="unknown model 'resnet101'"):
        build("resnet101")
    with pytest.raises(ValidationError, match="shortcut"):
        build("resnet20", shortcut="C")


def test_build_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build("resnet20", seed=0)
    assert torch.equal(torch.rand(3), expected)


# per-layer sizes in mask-list order (named_modules(); in a block conv1, conv2, shortcut), spec §1
LAYER_SIZES = {
    "conv6": [1728, 36864, 73728, 147456, 294912, 589824, 1048576, 65536, 2560],
    "resnet20": [432] + [2304] * 6 + [4608, 9216, 512] + [9216] * 4 + [18432, 36864, 2048] + [36864] * 4 + [640],
    "wrn28_2": [432, 4608, 9216, 512] + [9216] * 6 + [18432, 36864, 2048] + [36864] * 6
               + [73728, 147456, 8192] + [147456] * 6 + [1280],
}


@pytest.mark.parametrize("name", sorted(LAYER_SIZES))
def test_layer_sizes_in_mask_order(name):
    assert [p.numel() for p in prunable_parameters(build(name, 10)).values()] == LAYER_SIZES[name]


# non-prunable parameters (C = 10), spec table: conv/linear biases and BatchNorm (γ, β)
@pytest.mark.parametrize("key,bias,bn", [
    (("conv6", "B"), 1418, 2816), (("resnet20", "B"), 10, 1568), (("resnet32", "B"), 10, 2464),
    (("wrn28_2", "B"), 10, 3616), (("resnet20", "A"), 10, 1376), (("resnet32", "A"), 10, 2272)])
def test_bias_and_batchnorm_counts(key, bias, bn):
    name, shortcut = key
    model = build(name, 10, **({"shortcut": shortcut} if name.startswith("resnet") else {}))
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert sum(m.bias.numel() for m in weighted if m.bias is not None) == bias
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert sum(p.numel() for m in norms for p in m.parameters()) == bn
    assert all(m.eps == 1e-5 and m.momentum == 0.1 and m.affine and m.track_running_stats for m in norms)
    assert all(torch.all(m.weight == 1) and torch.all(m.bias == 0) for m in norms)
    assert not any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())


def test_block_layouts_follow_the_spec():
    # ResNet (post-activation): conv1 → BN → ReLU → conv2 → BN, + shortcut (1×1 conv + BN), ReLU
    r20 = build("resnet20")
    block = r20.layer2[0]
    seq = [n.op + ":" + (str(n.target) if n.op == "call_module" else n.target.__name__)
           for n in torch.fx.symbolic_trace(block).graph.nodes if n.op in ("call_module", "call_function")]
    assert seq == ["call_module:conv1", "call_module:bn1", "call_function:relu", "call_module:conv2",
                   "call_module:bn2", "call_module:shortcut.0", "call_module:shortcut.1", "call_function:add",
                   "call_function:relu"]
    assert (block.conv1.stride, block.conv2.stride, block.shortcut[0].stride) == ((2, 2), (1, 1), (2, 2))
    assert r20.layer1[0].conv1.stride == (1, 1) and r20.layer3[0].conv1.stride == (2, 2)
    assert isinstance(r20.avgpool, nn.AdaptiveAvgPool2d) and r20.avgpool.output_size == 1
    assert r20.linear.bias is not None
    assert all(m.bias is None for m in r20.modules() if isinstance(m, nn.Conv2d))
    assert all(m.padding == ((1, 1) if m.kernel_size == (3, 3) else (0, 0))
               for m in r20.modules() if isinstance(m, nn.Conv2d))
    # WRN (pre-activation): C_in ≠ C_out: x = ReLU(BN1(x)) feeds conv1 and convShortcut (no BN)
    wrn = build("wrn28_2")
    first, plain = wrn.block2.layer[0], wrn.block2.layer[1]
    seq = [str(n.target) if n.op == "call_module" else n.target.__name__
           for n in torch.fx.symbolic_trace(first).graph.nodes if n.op in ("call_module", "call_function")]
    assert seq == ["bn1", "relu1", "conv1", "convShortcut", "bn2", "relu2", "conv2", "add"]
    gm = torch.fx.symbolic_trace(first)
    relu1 = next(n for n in gm.graph.nodes if n.target == "relu1")
    assert {u.target for u in relu1.users} == {"conv1", "convShortcut"}
    assert (first.conv1.stride, first.convShortcut.stride, first.conv2.stride) == ((2, 2), (2, 2), (1, 1))
    assert plain.convShortcut is None and wrn.block1.layer[0].convShortcut is not None
    assert wrn.block1.layer[0].conv1.stride == (1, 1)
    # Conv-6: [conv → BN → ReLU] × 2 + max pool 2×2, then Linear → BN1d → ReLU (×2) → Linear
    c6 = build("conv6")
    kinds = [type(m).__name__ for m in c6.features] + ["|"] + [type(m).__name__ for m in c6.classifier]
    assert kinds == (["Conv2d", "BatchNorm2d", "ReLU"] * 2 + ["MaxPool2d"]) * 3 + ["|"] + \
        ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert all(m.bias is not None and m.stride == (1, 1) for m in c6.features if isinstance(m, nn.Conv2d))
    assert all(m.kernel_size == 2 and m.stride == 2 for m in c6.features if isinstance(m, nn.MaxPool2d))


def test_build_rejects_bad_arguments_with_validation_errors():
    for bad in (1, 0, "ten", 2.5, True):
        with pytest.raises(ValidationError, match="num_classes"):
            build("resnet20", bad)
    with pytest.raises(ValidationError, match="'shortcut' for model 'conv6'"):
        build("conv6", shortcut="A")
    with pytest.raises(ValidationError, match="'input_size' for model 'wrn28_2'"):
        build("wrn28_2", input_size=8)
    with pytest.raises(ValidationError, match="seed"):
        build("resnet20", seed="x")
    with pytest.raises(ValidationError, match=r"in_channels must be in \[1, 65536\], got 0"):
        build("wrn28_2", in_channels=0)
    with pytest.raises(ValidationError, match=r"input_size must be in \[8, 65536\], got 4"):
        build("conv6", input_size=4)
