"""Small CNNs for the digits demo (beyond the paper): a few strided conv stages and one linear layer.

The paper's models at 32×32 give MGEs of 10⁷-10⁸ edges: minutes per network on a laptop. The
demo needs ~100 trained and measured networks in minutes, so it uses these: each stage is
conv3×3 (stride 2, padding 1) → BatchNorm → ReLU, halving the resolution; the last feature map is
flattened into one Linear classifier. ``cnn_s``: widths 8, 16, 32 (11,096 prunable weights at
3×32×32, 10 classes); ``cnn_m``: widths 16, 32, 64 with a fourth, stride-1 stage of width 32 first
(42,928 prunable weights). Both trace with ``torch.fx`` like every model of the registry.
"""
from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Strided conv stages then a linear classifier.

    Input (N, in_channels, S, S), S = ``input_size``; stage i has ``widths[i]`` channels and
    stride ``strides[i]``; output logits (N, num_classes). Biases exist and start at zero.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths: tuple[int, ...] = (8, 16, 32),
                 strides: tuple[int, ...] | None = None, input_size: int = 32) -> None:
        super().__init__()
        strides = strides or (2,) * len(widths)
        layers: list[nn.Module] = []
        c_in, size = in_channels, input_size
        for width, stride in zip(widths, strides):
            layers += [nn.Conv2d(c_in, width, 3, stride=stride, padding=1, bias=True), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            c_in, size = width, (size - 1) // stride + 1
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c_in * size * size, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.flatten(self.features(x)))


def cnn_s(num_classes: int = 10, **kwargs) -> SmallCNN:
    """Widths 8, 16, 32, all stride 2 (3×32×32 → 32×4×4 → Linear 512 → C)."""
    return SmallCNN(num_classes=num_classes, widths=(8, 16, 32), **kwargs)


def cnn_m(num_classes: int = 10, **kwargs) -> SmallCNN:
    """Widths 16, 32, 32, 64 with strides 2, 1, 2, 2 (3×32×32 → 64×4×4 → Linear 1024 → C)."""
    return SmallCNN(num_classes=num_classes, widths=(16, 32, 32, 64), strides=(2, 1, 2, 2), **kwargs)
