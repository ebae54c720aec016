"""Masks: prune convention, safetensors round trip, validation errors naming the parameter."""
import pytest
import torch
from torch.nn.utils import prune

from sparsetopo import masks as M
from sparsetopo.errors import CheckpointError, MaskError
from sparsetopo.models import build


def random_masks(model, density=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(p.shape, generator=g) < density for n, p in M.prunable_parameters(model).items()}


def test_apply_masks_uses_prune_reparametrisation_and_zeroes_orig():
    model = build("resnet20", seed=0)
    masks = random_masks(model)
    M.apply_masks(model, masks)
    conv = model.layer1[0].conv1
    assert prune.is_pruned(conv) and hasattr(conv, "weight_orig") and hasattr(conv, "weight_mask")
    pruned = ~masks["layer1.0.conv1.weight"]
    assert torch.all(conv.weight_orig[pruned] == 0)
    model(torch.randn(2, 3, 32, 32))
    assert torch.all(conv.weight[pruned] == 0)
    got = M.get_masks(model)
    assert all(torch.equal(got[n], masks[n]) for n in masks)


def test_apply_masks_equals_torch_custom_from_mask():
    """The fast attach builds torch's own re-parametrisation: same state_dict, forward, gradients,
    an SGD step keeps pruned weights at 0, and ``prune.remove`` makes it permanent as torch does."""
    ours, theirs = build("resnet20", seed=0), build("resnet20", seed=0)
    masks = random_masks(ours, 0.3, seed=2)
    M.apply_masks(ours, masks)
    with torch.no_grad():
        for name, module in M.prunable_modules(theirs).items():
            prune.custom_from_mask(module, "weight", masks[name])
            module.weight_orig.mul_(module.weight_mask)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    x = torch.randn(4, 3, 32, 32)
    for model in (ours, theirs):
        model(x).square().sum().backward()
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4).step()
        model(x)
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
    conv = ours.layer1[0].conv1
    assert torch.all(conv.weight_orig[~masks["layer1.0.conv1.weight"]] == 0)
    M.remove_masks(ours)
    assert not prune.is_pruned(ours) and isinstance(conv.weight, torch.nn.Parameter)
    assert torch.equal(conv.weight, theirs.layer1[0].conv1.weight)


def test_reapplying_replaces_the_mask_instead_of_multiplying():
    model = build("resnet20", seed=0)
    first = random_masks(model, 0.5, seed=1)
    M.apply_masks(model, first)
    full = {n: torch.ones_like(m) for n, m in first.items()}
    M.apply_masks(model, full)
    assert all(M.get_masks(model)[n].all() for n in full)


def test_partial_masks_leave_other_layers_dense():
    model = build("resnet20", seed=0)
    M.apply_masks(model, {"conv1.weight": torch.zeros(16, 3, 3, 3)})
    dens = M.layer_density(M.get_masks(model))
    assert dens["conv1.weight"] == 0.0 and dens["linear.weight"] == 1.0


def test_safetensors_round_trip(tmp_path):
    model = build("resnet20", seed=0)
    masks = random_masks(model)
    path = tmp_path / "m.safetensors"
    M.save_masks(masks, path)
    loaded = M.load_masks(path)
    assert list(loaded) == list(masks)
    assert M.masks_digest(loaded) == M.masks_digest(masks)
    assert M.global_density(loaded) == pytest.approx(M.global_density(masks))


def test_effective_weights_and_clone_after_forward():
    model = build("resnet20", seed=0)
    masks = random_masks(model)
    M.apply_masks(model, masks)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    copy = M.clone_model(model)
    eff = M.effective_weights(copy)
    assert all(torch.all(eff[n][~masks[n]] == 0) for n in masks)
    assert torch.equal(eff["conv1.weight"], M.effective_weights(model)["conv1.weight"])


def test_errors_name_the_parameter(tmp_path):
    model = build("resnet20", seed=0)
    with pytest.raises(MaskError, match="unknown parameter 'layer9.weight'"):
        M.apply_masks(model, {"layer9.weight": torch.ones(1)})
    with pytest.raises(MaskError, match=r"'conv1.weight' has shape \(16, 3, 3\)"):
        M.apply_masks(model, {"conv1.weight": torch.ones(16, 3, 3)})
    with pytest.raises(MaskError, match="'conv1.weight' is not binary"):
        M.apply_masks(model, {"conv1.weight": torch.full((16, 3, 3, 3), 0.5)})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupted"):
        M.load_masks(bad)
    with pytest.raises(MaskError, match="does not exist"):
        M.load_masks(tmp_path / "missing.safetensors")


def test_freeze_biases():
    model = build("conv6", seed=0)
    M.freeze_biases(model)
    conv = model.features[0]
    assert conv.bias is not None and not conv.bias.requires_grad and conv.bias.abs().sum() == 0


def test_malformed_masks_raise_mask_errors_naming_the_parameter(tmp_path):
    model = build("resnet20", seed=0)
    with pytest.raises(MaskError, match="mapping"):
        M.validate_masks(model, [torch.ones(16, 3, 3, 3)])
    for bad in ("abc", None, [[1], [1, 0]]):
        with pytest.raises(MaskError, match="'conv1.weight' is not a numeric array"):
            M.validate_masks(model, {"conv1.weight": bad})
    # saving never turns a non-binary mask into zeros silently
    with pytest.raises(MaskError, match="'conv1.weight' is not binary"):
        M.save_masks({"conv1.weight": torch.full((16, 3, 3, 3), 0.7)}, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    M.save_masks({"conv1.weight": torch.ones(2, 2), "linear.weight": [[0, 1]]}, tmp_path / "m.safetensors")
    loaded = M.load_masks(tmp_path / "m.safetensors")
    assert loaded["conv1.weight"].all() and loaded["linear.weight"].tolist() == [[False, True]]
