"""`sparsetopo prune`: writes exact masks, prints the achieved sparsity and per-layer densities."""
from __future__ import annotations

import torch

from sparsetopo.cli import main
from sparsetopo.masks import load_masks, masks_digest

torch.set_num_threads(1)


def test_prune_erk_without_dataset(tmp_path, capsys):
    out = tmp_path / "erk.safetensors"
    rc = main(["prune", "--model", "resnet20", "--pruner", "erk", "--sparsity", "0.9", "--num-classes", "10",
               "--seed", "0", "--out", str(out)])
    assert rc == 0
    masks = load_masks(out)
    assert sum(int(m.sum()) for m in masks.values()) == 27090
    text = capsys.readouterr().out
    assert "kept 27090 of 270896 weights, sparsity 0.9000" in text
    assert "layer3.0.shortcut.0.weight" in text and "density 1.0000" in text  # dense linear (ERK)
    again = tmp_path / "again.safetensors"
    main(["prune", "--model", "resnet20", "--pruner", "erk", "--sparsity", "0.9", "--num-classes", "10",
          "--out", str(again)])
    assert masks_digest(load_masks(again)) == masks_digest(masks)


def test_prune_snip_on_digits(tmp_path, capsys):
    out = tmp_path / "snip.safetensors"
    rc = main(["prune", "--model", "resnet20", "--dataset", "digits", "--pruner", "snip", "--sparsity", "0.95",
               "--out", str(out)])
    assert rc == 0
    masks = load_masks(out)
    assert sum(int(m.sum()) for m in masks.values()) == 13545  # floor(0.05 * 270896 + 0.5)
    assert "requested 0.95" in capsys.readouterr().out


def test_bad_sparsity_is_one_line_error(tmp_path, capsys):
    rc = main(["prune", "--model", "resnet20", "--pruner", "uniform", "--sparsity", "1", "--num-classes", "10",
               "--out", str(tmp_path / "m.safetensors")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sparsity") and "Traceback" not in err
    assert not (tmp_path / "m.safetensors").exists()


def test_bad_num_classes_and_unwritable_out_are_one_line_errors(tmp_path, capsys):
    base = ["prune", "--model", "resnet20", "--pruner", "erk", "--sparsity", "0.9"]
    assert main(base + ["--num-classes", "0", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--num-classes" in capsys.readouterr().err
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for out in (tmp_path, blocker / "m.safetensors"):  # a directory; a path under a regular file
        assert main(base + ["--num-classes", "10", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: --out") and "Traceback" not in err
    assert blocker.read_text() == "x"
