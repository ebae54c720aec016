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
