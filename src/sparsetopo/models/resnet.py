"""CIFAR ResNet-20 / ResNet-32 (He et al. 2016, after akamaster/pytorch_resnet_cifar10).

Shortcut option B (1×1 conv stride 2 + BN, the authors' release) by default, option A (subsample
and zero-pad channels, the akamaster default) with ``shortcut="A"``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..validation import check_choice


class ChannelPadShortcut(nn.Module):
    """Option-A shortcut: ``x[:, :, ::2, ::2]`` then zero-pad ``pad`` channels on each side.

    (N, C, H, W) → (N, C + 2·pad, ⌈H/2⌉, ⌈W/2⌉). Parameter-free.
    """

    def __init__(self, pad: int) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class BasicBlock(nn.Module):
    """Post-activation basic block: conv3×3(stride) → BN → ReLU → conv3×3 → BN, + shortcut, ReLU.

    (N, in_planes, H, W) → (N, planes, H/stride, W/stride).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.shortcut = ChannelPadShortcut(planes // 4)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """CIFAR ResNet with ``n`` blocks per stage (depth 6n + 2): widths 16, 32, 64.

    conv1 3×3 (3→16) → BN → ReLU → 3 stages (strides 1, 2, 2) → global average pool → Linear 64→C.
    Input (N, in_channels, H, W) → logits (N, C).
    """

    def __init__(self, n: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "B") -> None:
        super().__init__()
        check_choice(shortcut, ("A", "B"), "ResNet shortcut option")
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.in_planes = 16
        self.layer1 = self._stage(16, n, 1, shortcut)
        self.layer2 = self._stage(32, n, 2, shortcut)
        self.layer3 = self._stage(64, n, 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(64, num_classes)

    def _stage(self, planes: int, blocks: int, stride: int, shortcut: str) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(BasicBlock(self.in_planes, planes, s, shortcut))
            self.in_planes = planes
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        return self.linear(self.flatten(self.avgpool(out)))


def resnet20(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-20: 3 blocks per stage (option B: 270,256 + 64·C prunable weights)."""
    return CifarResNet(3, num_classes=num_classes, **kwargs)


def resnet32(num_classes: int = 10, **kwargs) -> CifarResNet:
    """ResNet-32: 5 blocks per stage (option B: 463,792 + 64·C prunable weights)."""
    return CifarResNet(5, num_classes=num_classes, **kwargs)
