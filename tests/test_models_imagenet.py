"""torchvision's ImageNet ResNet-18 / ResNet-50, written here: parameter counts, names, encoding."""
import pytest
import torch
from torch import nn

from sparsetopo.encoding import count_mge, encode
from sparsetopo.masks import prunable_parameters
from sparsetopo.models import build

# torchvision.models.resnet18() / resnet50(): total parameters at 1000 classes, prunable tensors
TORCHVISION = {"resnet18": (11_689_512, 21), "resnet50": (25_557_032, 54)}


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_counts_and_names_match_torchvision(name):
    model = build(name, seed=0)  # num_classes defaults to 1000 for the ImageNet models
    total, prunable = TORCHVISION[name]
    assert sum(p.numel() for p in model.parameters()) == total
    params = prunable_parameters(model)
    assert len(params) == prunable
    assert next(iter(params)) == "conv1.weight" and list(params)[-1] == "fc.weight"
    assert params["fc.weight"].shape == (1000, 512 if name == "resnet18" else 2048)
    assert "layer2.0.downsample.0.weight" in params and "layer1.0.downsample.0.weight" not in params or name == "resnet50"
    stem = model.conv1
    assert (stem.kernel_size, stem.stride, stem.padding) == ((7, 7), (2, 2), (3, 3))
    assert isinstance(model.maxpool, nn.MaxPool2d)


def test_bottleneck_stride_sits_on_the_3x3_conv():  # torchvision's "v1.5"
    block = build("resnet50", 10).layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2) and block.downsample[0].stride == (2, 2)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
@pytest.mark.slow
def test_imagenet_resnets_encode_and_count(name):
    model = build(name, num_classes=10, seed=0)
    gen = torch.Generator().manual_seed(0)
    masks = {k: torch.rand(p.shape, generator=gen) < 0.02 for k, p in prunable_parameters(model).items()}
    graph = encode(model, (3, 32, 32), masks=masks)
    assert graph.layer_names[0] == "input" and graph.layer_offsets[-1] - graph.layer_offsets[-2] == 10
    nodes, edges = count_mge(model, (3, 32, 32), masks)
    # the count is taken before merging duplicate pairs that overlapping max-pool windows create
    assert nodes == graph.num_nodes and edges >= graph.num_edges
