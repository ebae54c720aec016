"""Wide-ResNet-28-2 (Zagoruyko & Komodakis 2016, after xternalz/WideResNet-pytorch), dropout 0."""
from __future__ import annotations

import torch
from torch import Tensor, nn


class WideBasicBlock(nn.Module):
    """Pre-activation block. (N, in_planes, H, W) → (N, out_planes, H/stride, W/stride).

    If in_planes ≠ out_planes: x ← ReLU(BN1(x)); branch = conv1(x); shortcut = 1×1 conv(x)
    (``convShortcut``, no BN). Otherwise branch = conv1(ReLU(BN1(x))), shortcut = x.
    Then branch = conv2(ReLU(BN2(branch))) and the output is shortcut + branch.
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, stride=1, padding=1, bias=False)
        self.equal_in_out = in_planes == out_planes
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(
            in_planes, out_planes, 1, stride=stride, padding=0, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.equal_in_out:  # a Python bool fixed at build time: fx traces one branch
            out = self.conv1(self.relu1(self.bn1(x)))
            shortcut = x
        else:
            x = self.relu1(self.bn1(x))
            out = self.conv1(x)
            shortcut = self.convShortcut(x)
        out = self.conv2(self.relu2(self.bn2(out)))
        return torch.add(shortcut, out)


class NetworkBlock(nn.Module):
    """``n`` wide blocks; the first changes width and applies ``stride``."""

    def __init__(self, n: int, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1)
            for i in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k: widths [16, 16k, 32k, 64k], (depth − 4)/6 blocks per group, strides 1, 2, 2.

    conv1 3×3 (→16) → 3 groups → BN → ReLU → global average pool → Linear 64k → C.
    Input (N, in_channels, H, W) → logits (N, C).
    """

    def __init__(self, depth: int = 28, widen_factor: int = 2, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"Wide-ResNet depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, widths[0], widths[1], 1)
        self.block2 = NetworkBlock(n, widths[1], widths[2], 2)
        self.block3 = NetworkBlock(n, widths[2], widths[3], 2)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(widths[3], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(self.flatten(self.avgpool(out)))


def wrn28_2(num_classes: int = 10, **kwargs) -> WideResNet:
    """Wide-ResNet-28-2 (1,462,704 + 128·C prunable weights)."""
    return WideResNet(28, 2, num_classes=num_classes, **kwargs)
