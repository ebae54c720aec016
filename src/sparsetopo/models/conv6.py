"""Conv-6 (Frankle & Carbin 2019, with BatchNorm): a small VGG, 6 conv + 3 linear layers."""
from __future__ import annotations

from torch import Tensor, nn


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=True), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class Conv6(nn.Module):
    """Conv-6: three stages of [conv3×3 → BN → ReLU] × 2 + MaxPool 2×2, then 3 linear layers.

    Input (N, in_channels, H, W) with H = W = ``input_size`` (32 in the paper) → logits (N, C).
    Stage widths 64, 128, 256; flatten in (C, H, W) order gives 256·(H/8)² = 4096 features at 32×32;
    Linear 4096→256 → BN1d → ReLU → Linear 256→256 → BN1d → ReLU → Linear 256→C. All layers have
    biases (zeroed and frozen by the training recipe).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for width in (64, 128, 256):
            layers += _conv_bn_relu(c_in, width) + _conv_bn_relu(width, width) + [nn.MaxPool2d(2, 2)]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        flat = 256 * (input_size // 8) ** 2
        self.classifier = nn.Sequential(
            nn.Linear(flat, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
            nn.Linear(256, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
            nn.Linear(256, num_classes),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


def conv6(num_classes: int = 10, **kwargs) -> Conv6:
    """Conv-6 for 3×32×32 inputs (2,258,624 + 256·C prunable weights)."""
    return Conv6(num_classes=num_classes, **kwargs)
