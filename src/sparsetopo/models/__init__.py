"""Model registry: the four architectures of the paper (App. A.2, spec models-and-pruning.md §1),
plus torchvision's ImageNet ResNet-18 / ResNet-50 (1000 classes by default).

>>> model = build("resnet20", num_classes=10, seed=0)

Every constructor takes ``num_classes`` and ``in_channels``; models trace with ``torch.fx`` (no
tensor-valued control flow, no lambdas) so the encoders can read them.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ValidationError
from ..validation import check_choice, check_scalar, check_seed
from .conv6 import Conv6, conv6
from .imagenet_resnet import ImageNetResNet, resnet18, resnet50
from .init import init_weights
from .resnet import CifarResNet, resnet20, resnet32
from .small_cnn import SmallCNN, cnn_m, cnn_s
from .wide_resnet import WideResNet, wrn28_2

#: name -> constructor(num_classes, **kwargs)
MODELS: dict[str, Callable[..., nn.Module]] = {
    "conv6": conv6,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "wrn28_2": wrn28_2,
    "resnet18": resnet18,
    "resnet50": resnet50,
    # beyond the paper: small CNNs for the digits demo (minutes for a hundred networks on 2 cores)
    "cnn_s": cnn_s,
    "cnn_m": cnn_m,
}
MODEL_NAMES: tuple[str, ...] = tuple(MODELS)
#: bound on ``num_classes``: ImageNet-21k has 21,841 classes; 10^6 keeps the classifier of every
#: registered model under 1 GiB of float32 weights, where 10^9 would ask for hundreds of GB
MAX_NUM_CLASSES = 10 ** 6
#: bound on ``in_channels`` / ``input_size`` (a typo such as 320000 fails here, not in the allocator)
MAX_INPUT_DIM = 2 ** 16
#: name -> keyword options its constructor takes besides ``num_classes``
MODEL_OPTIONS: dict[str, tuple[str, ...]] = {
    "conv6": ("in_channels", "input_size"),
    "resnet20": ("in_channels", "shortcut"),
    "resnet32": ("in_channels", "shortcut"),
    "wrn28_2": ("in_channels",),
    "resnet18": ("in_channels",),
    "resnet50": ("in_channels",),
    "cnn_s": ("in_channels", "input_size"),
    "cnn_m": ("in_channels", "input_size"),
}
#: classes when ``build`` is not told (the paper's models: CIFAR-10; the ImageNet ones: 1000)
DEFAULT_NUM_CLASSES: dict[str, int] = {"resnet18": 1000, "resnet50": 1000}


def build(name: str, num_classes: int | None = None, *, seed: int | None = None, **kwargs) -> nn.Module:
    """Build model ``name`` with Kaiming-normal (fan_in) weights and zero biases.

    ``num_classes``: None gives the model's default (:data:`DEFAULT_NUM_CLASSES`, else 10).

    ``seed`` seeds a private ``torch.Generator`` for the init (the global RNG is not touched);
    ``None`` draws from the global RNG. Extra ``kwargs`` go to the constructor (``shortcut="A"``
    for the CIFAR ResNets, ``in_channels``, ``input_size`` for Conv-6).
    """
    check_choice(name, MODELS, "model")
    if num_classes is None:
        num_classes = DEFAULT_NUM_CLASSES.get(name, 10)
    num_classes = check_scalar(num_classes, "num_classes", int, min_val=2, max_val=MAX_NUM_CLASSES)
    if seed is not None:
        seed = check_seed(seed)
    unknown = sorted(set(kwargs) - set(MODEL_OPTIONS[name]))
    if unknown:
        raise ValidationError(f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
                              f"it takes: {', '.join(MODEL_OPTIONS[name])}")
    for key, least in (("in_channels", 1), ("input_size", 8)):  # input_size: Conv-6 pools 3 times
        check_scalar(kwargs.get(key, least), key, int, min_val=least, max_val=MAX_INPUT_DIM)
    # PyTorch's default init in the layer constructors draws from the global RNG; fork it so that
    # building a model never changes the caller's random stream (the init below replaces it all).
    with torch.random.fork_rng(devices=[]):
        model = MODELS[name](num_classes=int(num_classes), **kwargs)
    generator = None if seed is None else torch.Generator().manual_seed(int(seed))
    init_weights(model, generator)
    return model


__all__ = ["MODELS", "MODEL_NAMES", "build", "init_weights", "Conv6", "CifarResNet", "WideResNet",
           "conv6", "resnet20", "resnet32", "wrn28_2", "SmallCNN", "cnn_s", "cnn_m", "ImageNetResNet",
           "resnet18", "resnet50", "DEFAULT_NUM_CLASSES"]
