"""Weight initialisation shared by every model (paper A.3, official ``utils/init.py``)."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def init_weights(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Kaiming-normal (fan_in, gain √2) every Conv2d/Linear weight; zero their biases.

    BatchNorm keeps PyTorch's defaults (γ = 1, β = 0). Modules are visited in
    ``named_modules()`` order, so a seeded ``generator`` gives the same weights every time.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu", generator=generator)
            if module.bias is not None:
                module.bias.zero_()
    return model
