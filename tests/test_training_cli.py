"""``sparsetopo train`` through sparsetopo.cli.main."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from sparsetopo.cli import main
from sparsetopo.masks import prunable_parameters, save_masks
from sparsetopo.models import build


def test_train_command_with_masks(tmp_path, capsys):
    torch.set_num_threads(1)
    model = build("resnet20", 10, seed=0)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=gen) < 0.3 for n, p in prunable_parameters(model).items()}
    mask_file = tmp_path / "m.safetensors"
    save_masks(masks, mask_file)
    digest = hashlib.sha256(mask_file.read_bytes()).hexdigest()
    out = tmp_path / "run"
    rc = main(["train", "--model", "resnet20", "--dataset", "digits", "--masks", str(mask_file),
               "--epochs", "1", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert hashlib.sha256(mask_file.read_bytes()).hexdigest() == digest       # mask file untouched
    result = json.loads((out / "result.json").read_text())
    assert 0.0 <= result["accuracy"] <= 1.0 and result["epochs"] == 1
    assert result["density"] == pytest.approx(0.3, abs=0.01)
    assert "test accuracy" in capsys.readouterr().out
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    for name, mask in masks.items():
        module = name.rsplit(".", 1)[0]
        assert torch.equal(state[f"{module}.weight_mask"] != 0, mask)
        assert (state[f"{module}.weight_orig"][~mask] == 0).all()


def test_train_command_errors_are_one_line(tmp_path, capsys):
    rc = main(["train", "--model", "resnet20", "--masks", str(tmp_path / "missing.safetensors"),
               "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "missing.safetensors" in err and "Traceback" not in err
    rc = main(["train", "--model", "resnet20", "--dataset", "cifar10", "--data-root", str(tmp_path),
               "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "cifar-10-binary.tar.gz" in err and "c32a1d4ab5d03f1284b67883e8d87530" in err


def test_train_help_explains_the_flags(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--model", "--dataset", "--masks", "--epochs", "--out", "--seed", "--device", "--data-root"):
        assert flag in text
    assert "resumes" in text


def test_masks_of_another_model_and_out_file_are_one_line_errors(tmp_path, capsys):
    model = build("resnet20", 10, seed=0)
    mask_file = tmp_path / "r20.safetensors"
    save_masks({n: torch.ones(p.shape, dtype=torch.bool) for n, p in prunable_parameters(model).items()}, mask_file)
    # ResNet-20 masks name a subset of ResNet-32's layers: the rest would silently stay dense
    rc = main(["train", "--model", "resnet32", "--masks", str(mask_file), "--epochs", "1",
               "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "r20.safetensors" in err and "layer1.3.conv1.weight" in err
    assert not (tmp_path / "o").exists()
    # option-B masks on an option-A ResNet-20 name unknown shortcut convs (already an error); the
    # other way round, option-A masks leave the option-B shortcut convs unmasked
    model_a = build("resnet20", 10, seed=0, shortcut="A")
    a_file = tmp_path / "a.safetensors"
    save_masks({n: torch.ones(p.shape, dtype=torch.bool) for n, p in prunable_parameters(model_a).items()}, a_file)
    rc = main(["train", "--model", "resnet20", "--masks", str(a_file), "--epochs", "1",
               "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2 and "shortcut" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc = main(["train", "--model", "resnet20", "--epochs", "1", "--out", str(blocker), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --out") and "Traceback" not in err
