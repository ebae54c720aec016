"""ImageNet ResNet-18 / ResNet-50, torchvision's architecture (He et al. 2016, "v1.5": the stride
of a bottleneck sits on its 3×3 conv), written here so the package does not depend on torchvision.

Module and parameter names are torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``,
``layer2.0.downsample.0``, ``fc``), so a torchvision ``state_dict`` loads unchanged. Parameter
counts at 1000 classes: 11,689,512 (ResNet-18) and 25,557,032 (ResNet-50), as torchvision's.
"""
from __future__ import annotations

from torch import Tensor, nn


def _downsample(in_planes: int, planes: int, stride: int) -> nn.Module | None:
    """1×1 conv (stride) + BN projection when the shape changes, else None (identity)."""
    if stride == 1 and in_planes == planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))


class BasicBlock(nn.Module):
    """conv3×3(stride) → BN → ReLU → conv3×3 → BN, + identity or projection, ReLU.
    (N, in_planes, H, W) → (N, planes, H/stride, W/stride)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """conv1×1 → BN → ReLU → conv3×3(stride) → BN → ReLU → conv1×1 (×4 channels) → BN,
    + identity or projection, ReLU. (N, in_planes, H, W) → (N, 4·planes, H/stride, W/stride)."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_planes, out_planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ImageNetResNet(nn.Module):
    """Stem conv7×7/2 (64) → BN → ReLU → max-pool 3×3/2 → 4 stages (64, 128, 256, 512 planes;
    strides 1, 2, 2, 2) → global average pool → Linear → C logits.
    Input (N, in_channels, H, W), 224×224 for ImageNet; any H, W ≥ 32 trace."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks: tuple[int, int, int, int],
                 num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.in_planes = 64
        self.layer1 = self._stage(block, 64, blocks[0], 1)
        self.layer2 = self._stage(block, 128, blocks[1], 2)
        self.layer3 = self._stage(block, 256, blocks[2], 2)
        self.layer4 = self._stage(block, 512, blocks[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _stage(self, block, planes: int, count: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (count - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(self.flatten(self.avgpool(out)))


def resnet18(num_classes: int = 1000, **kwargs) -> ImageNetResNet:
    """torchvision ResNet-18: basic blocks (2, 2, 2, 2); 11,176,512 + 513·C parameters."""
    return ImageNetResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ImageNetResNet:
    """torchvision ResNet-50: bottlenecks (3, 4, 6, 3); 23,508,032 + 2049·C parameters."""
    return ImageNetResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, **kwargs)
