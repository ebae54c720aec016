"""``sparsetopo encode`` through ``sparsetopo.cli.main``."""
from __future__ import annotations

import torch

from sparsetopo.cli import main
from sparsetopo.encoding import MultipartiteGraph, encode, load_bipartite_npz
from sparsetopo.masks import prunable_modules, save_masks
from sparsetopo.models import build


def test_encode_mge_with_masks(tmp_path, capsys):
    model = build("resnet20", num_classes=10, seed=3)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(m.weight.shape, generator=gen) < 0.2 for n, m in prunable_modules(model).items()}
    save_masks(masks, tmp_path / "m.safetensors")
    out = tmp_path / "g.npz"
    code = main(["encode", "--model", "resnet20", "--seed", "3", "--masks", str(tmp_path / "m.safetensors"),
                 "--input-shape", "3", "8", "8", "--encoding", "mge", "--out", str(out), "--no-progress"])
    assert code == 0
    line = capsys.readouterr().out.strip()
    g = MultipartiteGraph.load_npz(out)
    assert line.startswith(f"mge: {g.num_nodes} nodes, {g.num_edges} edges, 20 layers in ")
    assert g == encode(model, (3, 8, 8), masks=masks)
    code = main(["encode", "--model", "resnet20", "--seed", "3", "--masks", str(tmp_path / "m.safetensors"),
                 "--input-shape", "3", "8", "8", "--out", str(tmp_path / "g2.npz"), "--no-identity-skips"])
    assert code == 0
    assert MultipartiteGraph.load_npz(tmp_path / "g2.npz").num_edges < g.num_edges


def test_encode_rolled_shortcut_a(tmp_path):
    out = tmp_path / "r.npz"
    assert main(["encode", "--model", "resnet20", "--shortcut", "A", "--encoding", "rolled", "--out", str(out)]) == 0
    layers = load_bipartite_npz(out)
    assert len(layers) == 20 and layers[0].num_left == 27 and layers[-1].name == "linear"


def test_encode_conv6_small_input(tmp_path):
    out = tmp_path / "c.npz"
    assert main(["encode", "--model", "conv6", "--input-shape", "3", "8", "8", "--encoding", "rolled_channel",
                 "--num-classes", "4", "--out", str(out)]) == 0
    assert load_bipartite_npz(out)[-1].num_right == 4


def test_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    save_masks({"conv1.weight": torch.ones(2, 2, dtype=torch.bool)}, bad)
    code = main(["encode", "--model", "resnet20", "--masks", str(bad), "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "conv1.weight" in err and err.count("\n") == 1
    code = main(["encode", "--model", "conv6", "--shortcut", "A", "--out", str(tmp_path / "x.npz")])
    assert code == 2 and "--shortcut" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_bad_num_classes_and_unwritable_out_are_one_line(tmp_path, capsys):
    code = main(["encode", "--model", "resnet20", "--num-classes", "1", "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: num_classes must be in [2, 1000000], got 1\n"
    (tmp_path / "file").write_text("")
    code = main(["encode", "--model", "resnet20", "--input-shape", "3", "4", "4", "--no-progress",
                 "--out", str(tmp_path / "file" / "x.npz")])
    err = capsys.readouterr().err
    # caught before any encoding work, in one line
    assert code == 2 and "is a file, not a directory" in err and err.count("\n") == 1


def test_mask_file_of_another_model_is_refused(tmp_path, capsys):
    import torch

    from sparsetopo.masks import prunable_parameters, save_masks
    from sparsetopo.models import build

    small = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in prunable_parameters(build("resnet20")).items()}
    save_masks(small, tmp_path / "r20.safetensors")
    code = main(["encode", "--model", "resnet32", "--masks", str(tmp_path / "r20.safetensors"),
                 "--input-shape", "3", "8", "8", "--out", str(tmp_path / "g.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "has no mask for" in err and not (tmp_path / "g.npz").exists()
