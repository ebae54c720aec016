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
    with pytest.raises(ValidationError, match="unknown model 'resnet18'"):
        build("resnet18")
    with pytest.raises(ValidationError, match="shortcut"):
        build("resnet20", shortcut="C")


def test_build_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build("resnet20", seed=0)
    assert torch.equal(torch.rand(3), expected)
