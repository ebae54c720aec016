"""Recipe: the paper's hyper-parameters (App. A.3 / spec §3), shortening, validation."""
from __future__ import annotations

import pytest

from sparsetopo.errors import ValidationError
from sparsetopo.training import Recipe


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "digits"])
def test_paper_recipe_cifar_like(dataset):
    r = Recipe.paper("resnet20", dataset)
    assert (r.epochs, r.milestones, r.lr, r.momentum, r.weight_decay, r.batch_size) == (
        160, (80, 120), 0.1, 0.9, 1e-4, 128)
    assert (r.nesterov, r.dampening, r.gamma) == (False, 0.0, 0.1)


def test_paper_recipe_tiny_and_wrn():
    assert Recipe.paper("wrn28_2", "cifar10").weight_decay == 5e-4
    tiny = Recipe.paper("resnet32", "tiny_imagenet32")
    assert (tiny.epochs, tiny.milestones, tiny.weight_decay) == (100, (30, 60, 80), 1e-4)
    assert Recipe.paper("conv6", "tiny_imagenet32").milestones == (30, 60, 80)
    assert Recipe.paper("conv6", "tiny_imagenet32", official_conv6_tiny=True).milestones == (20, 60, 80)
    assert Recipe.paper("resnet20", "tiny_imagenet32", official_conv6_tiny=True).milestones == (30, 60, 80)


def test_shortened_scales_milestones():
    cifar = Recipe.paper("resnet20", "cifar10")
    assert cifar.shortened(16).milestones == (8, 12)
    assert cifar.shortened(10).milestones == (5, 8)      # 7.5 rounds half up
    assert cifar.shortened(3).milestones == (2,)         # 1.5 -> 2, 2.25 -> 2, deduplicated
    assert cifar.shortened(1).milestones == ()
    assert cifar.shortened(160) == cifar
    short = Recipe.paper("wrn28_2", "tiny_imagenet32").shortened(10)
    assert (short.epochs, short.milestones, short.weight_decay) == (10, (3, 6, 8), 5e-4)


@pytest.mark.parametrize("kwargs, word", [
    ({"epochs": 0}, "epochs"), ({"milestones": (5, 3)}, "milestones"), ({"milestones": (0,)}, "milestones"),
    ({"lr": 0.0}, "lr"), ({"momentum": -0.1}, "momentum"), ({"weight_decay": float("nan")}, "weight_decay"),
    ({"batch_size": 0}, "batch_size")])
def test_recipe_validation(kwargs, word):
    with pytest.raises(ValidationError, match=word):
        Recipe(**kwargs)


def test_unknown_names_and_bad_shortening():
    with pytest.raises(ValidationError, match="unknown model"):
        Recipe.paper("resnet101", "cifar10")
    with pytest.raises(ValidationError, match="unknown dataset"):
        Recipe.paper("resnet20", "imagenet")
    with pytest.raises(ValidationError, match="epochs"):
        Recipe().shortened(0)
