"""Foundation pieces: validation, atomic IO, graph containers, CLI dispatcher."""
import json

import numpy as np
import pytest

from sparsetopo import _io
from sparsetopo.cli import main
from sparsetopo.graph import BipartiteGraph, MultipartiteGraph
from sparsetopo.errors import CheckpointError, ValidationError
from sparsetopo.validation import check_input_shape, check_sparsity


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, float("nan"), "x", None])
def test_check_sparsity_rejects_and_names_value(bad):
    with pytest.raises(ValidationError, match="sparsity"):
        check_sparsity(bad)


def test_check_sparsity_accepts_interior():
    assert check_sparsity(0.9) == 0.9 and check_sparsity(np.float32(0.5)) == 0.5
    with pytest.raises(ValidationError, match="sparsity must be a number, got '0.9'"):
        check_sparsity("0.9")  # a string is not a number (issue 15: one rule everywhere)
    assert check_input_shape([3, 32, 32]) == (3, 32, 32)
    with pytest.raises(ValidationError):
        check_input_shape((3, 0, 32))


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    _io.atomic_write_json(path, {"a": 1, "b": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1, "b": None}
    with pytest.raises(RuntimeError):
        with _io.atomic_path(path) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert json.loads(path.read_text())["a"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def small_graph():
    return MultipartiteGraph(src=[0, 1, 2, 3, 3], dst=[3, 3, 4, 5, 6], weight=[1, -2, 3, 4, 0.5],
                             num_nodes=7, layer_offsets=[0, 3, 5, 7], layer_names=("input", "a", "b"))


def test_multipartite_graph_exports_agree(tmp_path):
    g = small_graph()
    assert g.num_edges == 5 and g.num_layers == 3
    assert g.src.dtype == np.int32 and g.weight.dtype == np.float32
    assert list(g.layer_of(np.array([0, 2, 3, 6]))) == [0, 0, 1, 2]
    a = g.to_scipy()
    assert a.shape == (7, 7) and a[1, 3] == -2
    ig = g.to_igraph()
    assert ig.vcount() == 7 and ig.ecount() == 5 and ig.is_directed()
    nk = g.to_networkit()
    assert nk.numberOfNodes() == 7 and nk.numberOfEdges() == 5
    nx_g = g.to_networkx()
    assert nx_g[1][3]["weight"] == -2 and nx_g.nodes[6]["layer"] == 2
    with pytest.raises(ValidationError, match="refusing"):
        g.to_networkx(max_edges=3)
    path = tmp_path / "g.npz"
    g.save_npz(path)
    assert MultipartiteGraph.load_npz(path) == g
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(CheckpointError):
        MultipartiteGraph.load_npz(tmp_path / "bad.npz")


def test_graph_validation():
    with pytest.raises(ValidationError, match="layer_offsets"):
        MultipartiteGraph(src=[], dst=[], weight=[], num_nodes=3, layer_offsets=[0, 2], layer_names=("x",))
    with pytest.raises(ValidationError, match="endpoints"):
        MultipartiteGraph(src=[0], dst=[5], weight=[1], num_nodes=3, layer_offsets=[0, 1, 3], layer_names=("a", "b"))


def test_bipartite_as_multipartite():
    b = BipartiteGraph("conv", 3, 2, src=[0, 2], dst=[1, 0], weight=[-1.0, 2.0])
    m = b.as_multipartite()
    assert m.num_nodes == 5 and list(m.dst) == [4, 3] and list(m.layer_offsets) == [0, 3, 5]
    assert b.biadjacency().toarray().tolist() == [[0, 1], [0, 0], [2, 0]]


def test_cli_help_and_unknown_command(capsys):
    assert main([]) == 0
    assert "sparsetopo" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["frobnicate"])


def test_atomic_files_get_umask_permissions(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        _io.atomic_write_text(tmp_path / "x.txt", "hi")
    finally:
        os.umask(old)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_check_device():
    import torch

    from sparsetopo.validation import check_device

    assert check_device(None) == torch.device("cpu")
    assert check_device(None, default="auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValidationError, match="unknown device 'gpu0'"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValidationError, match="CUDA is not available"):
            check_device("cuda")
