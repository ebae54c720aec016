"""train(): fixed masks, learning, checkpoints, exact resume, result.json, boundary errors."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sparsetopo.data import load_dataset
from sparsetopo.errors import CheckpointError, MaskError, ValidationError
from sparsetopo.masks import effective_weights, get_masks, prunable_parameters
from sparsetopo.models import init_weights
from sparsetopo.training import CHECKPOINT_NAME, RESULT_NAME, Recipe, check_pruned_weights_zero, train


@pytest.fixture(scope="module")
def digits():
    torch.set_num_threads(1)
    return load_dataset("digits")


def tiny_model(seed: int = 0, num_classes: int = 10) -> nn.Module:
    """A 3-layer CNN (conv biases on, so bias freezing is exercised), Kaiming init from ``seed``."""
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, num_classes))
    init_weights(model, torch.Generator().manual_seed(seed))
    return model


def random_masks(model: nn.Module, density: float = 0.5, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {name: torch.rand(p.shape, generator=gen) < density for name, p in prunable_parameters(model).items()}


RECIPE = Recipe(epochs=4, milestones=(3,), weight_decay=5e-4)


def test_masked_training_keeps_pruned_weights_exactly_zero(digits):
    model = tiny_model()
    masks = random_masks(model)
    before = {k: v.clone() for k, v in effective_weights(model, masks).items()}
    result = train(model, digits, RECIPE, masks=masks, progress=False)
    after = effective_weights(model)
    orig = prunable_parameters(model)
    for name, mask in masks.items():
        assert torch.equal(get_masks(model)[name], mask)
        assert (after[name][~mask] == 0).all() and (orig[name].detach()[~mask] == 0).all()
        assert not torch.equal(after[name][mask], before[name][mask])    # kept weights did train
    assert all(m.bias is None or (m.bias == 0).all() and not m.bias.requires_grad
               for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert 0.0 <= result.accuracy <= 1.0 and result.epochs == 4 and len(result.history) == 4


def test_dense_training_learns(digits):
    result = train(tiny_model(), digits, RECIPE, progress=False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0] - 0.3
    assert result.accuracy > 0.4                                   # chance is 0.1
    assert [h["lr"] for h in result.history] == pytest.approx([0.1, 0.1, 0.1, 0.01])


def test_check_pruned_weights_zero_detects_a_leak(digits):
    model = tiny_model()
    masks = random_masks(model)
    train(model, digits.subset(64, 32), Recipe(epochs=1, milestones=()), masks=masks, progress=False)
    name = next(iter(masks))
    pruned = (~masks[name]).nonzero()[0].tolist()
    with torch.no_grad():
        prunable_parameters(model)[name][tuple(pruned)] = 0.5
    with pytest.raises(MaskError, match=name):
        check_pruned_weights_zero(model, masks)


class Stop(Exception):
    pass


def _stop_after(epoch_to_stop: int):
    def hook(epoch: int, record: dict) -> None:
        if epoch == epoch_to_stop:
            raise Stop
    return hook


def _strip_seconds(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_resume_equals_uninterrupted_run(digits, tmp_path):
    recipe = Recipe(epochs=3, milestones=(2,))
    full_model = tiny_model()
    masks = random_masks(full_model)
    full = train(full_model, digits, recipe, masks=masks, out_dir=tmp_path / "full", seed=3,
                 progress=False, deterministic=True)

    first = tiny_model()
    with pytest.raises(Stop):
        train(first, digits, recipe, masks=masks, out_dir=tmp_path / "cut", seed=3, progress=False,
              deterministic=True, on_epoch_end=_stop_after(1))
    ckpt = torch.load(tmp_path / "cut" / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["epoch"] == 1 and not (tmp_path / "cut" / RESULT_NAME).exists()

    resumed_model = tiny_model()
    epochs_run = []
    resumed = train(resumed_model, digits, recipe, masks=masks, out_dir=tmp_path / "cut", seed=3,
                    progress=False, deterministic=True, on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [2, 3]
    assert resumed.accuracy == full.accuracy
    assert _strip_seconds(resumed.history) == _strip_seconds(full.history)
    full_state, resumed_state = full_model.state_dict(), resumed_model.state_dict()
    assert full_state.keys() == resumed_state.keys()
    assert all(torch.equal(full_state[k], resumed_state[k]) for k in full_state)

    again_model, again_epochs = tiny_model(), []           # a finished run only reloads and reports
    again = train(again_model, digits, recipe, masks=masks, out_dir=tmp_path / "cut", seed=3,
                  progress=False, deterministic=True, on_epoch_end=lambda e, r: again_epochs.append(e))
    assert again_epochs == [] and again.accuracy == full.accuracy
    assert all(torch.equal(full_state[k], again_model.state_dict()[k]) for k in full_state)

    saved = json.loads((tmp_path / "cut" / RESULT_NAME).read_text())
    assert saved["accuracy"] == resumed.accuracy and saved["epochs"] == 3 and saved["seed"] == 3
    assert saved["density"] == pytest.approx(sum(int(m.sum()) for m in masks.values())
                                             / sum(m.numel() for m in masks.values()))


def test_different_seed_changes_the_run(digits):
    a = train(tiny_model(), digits.subset(256, 64), Recipe(epochs=1, milestones=()), seed=0, progress=False)
    b = train(tiny_model(), digits.subset(256, 64), Recipe(epochs=1, milestones=()), seed=1, progress=False)
    assert a.history[0]["train_loss"] != b.history[0]["train_loss"]


def test_corrupted_checkpoint_is_checkpoint_error(digits, tmp_path):
    small, recipe = digits.subset(64, 32), Recipe(epochs=2, milestones=())
    with pytest.raises(Stop):
        train(tiny_model(), small, recipe, out_dir=tmp_path, progress=False, on_epoch_end=_stop_after(1))
    path = tmp_path / CHECKPOINT_NAME
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        train(tiny_model(), small, recipe, out_dir=tmp_path, progress=False)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=CHECKPOINT_NAME):
        train(tiny_model(), small, recipe, out_dir=tmp_path, progress=False)
    path.write_bytes(good)
    with pytest.raises(CheckpointError, match="another run.*seed"):
        train(tiny_model(), small, recipe, out_dir=tmp_path, seed=5, progress=False)
    with pytest.raises(CheckpointError, match="masks_digest"):
        model = tiny_model()
        train(model, small, recipe, masks=random_masks(model), out_dir=tmp_path, progress=False)


def test_bad_arguments(digits):
    small = digits.subset(32, 16)
    with pytest.raises(ValidationError, match="num_classes=10"):
        train(tiny_model(num_classes=7), small, Recipe(epochs=1, milestones=()), progress=False)
    with pytest.raises(ValidationError, match="seed"):
        train(tiny_model(), small, Recipe(epochs=1, milestones=()), seed=-1, progress=False)
    with pytest.raises(ValidationError, match="device"):
        train(tiny_model(), small, Recipe(epochs=1, milestones=()), device="tpu9", progress=False)
    with pytest.raises(ValidationError, match="DatasetBundle"):
        train(tiny_model(), small.train, Recipe(epochs=1, milestones=()), progress=False)
    with pytest.raises(MaskError, match="unknown parameter"):
        train(tiny_model(), small, Recipe(epochs=1, milestones=()), masks={"nope.weight": torch.ones(1)},
              progress=False)


def test_checkpoint_of_a_same_class_other_size_model_is_another_run(digits, tmp_path):
    from sparsetopo.models import build

    small, recipe = digits.subset(16, 8), Recipe(epochs=2, milestones=(), batch_size=16)
    with pytest.raises(Stop):
        train(build("resnet20", seed=0), small, recipe, out_dir=tmp_path, progress=False,
              on_epoch_end=_stop_after(1))
    # resnet32 shares resnet20's class: the identity must still tell them apart
    with pytest.raises(CheckpointError, match="another run.*num_parameters"):
        train(build("resnet32", seed=0), small, recipe, out_dir=tmp_path, progress=False)
