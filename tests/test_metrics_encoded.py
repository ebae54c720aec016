"""Metrics of small encoded networks (sparsetopo.encoding.encode) against library oracles."""
from __future__ import annotations

import math

import igraph as ig
import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import sparsetopo.metrics as M
from sparsetopo.cli import main
from sparsetopo.encoding import encode


class TinyResNet(nn.Module):
    """conv -> (conv -> conv) + identity skip -> avg pool -> linear: triangles through the skip."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 3, 3, padding=1)
        self.conv1 = nn.Conv2d(3, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def encoded():
    torch.manual_seed(0)
    model = TinyResNet()
    gen = torch.Generator().manual_seed(1)
    masks = {name: torch.rand(p.shape, generator=gen) < 0.4
             for name, p in model.named_parameters() if name.endswith("weight")}
    return encode(model, (2, 3, 3), kind="mge", masks=masks), encode(model, (2, 3, 3), kind="rolled", masks=masks)


def test_encoded_mge_metrics_match_oracles(encoded):
    g, _ = encoded
    d = nx.DiGraph()
    d.add_nodes_from(range(g.num_nodes))
    d.add_weighted_edges_from(zip(g.src.tolist(), g.dst.tolist(), np.abs(g.weight).astype(float).tolist()))
    u = d.to_undirected()
    row = M.topometrics(g)
    assert row["nodes"] == g.num_nodes == 18 + 3 * 27 + 4
    two_hop = np.mean([len({a} | set(d.successors(a)) | {c for b in d.successors(a) for c in d.successors(b)})
                       for a in d])
    assert row["neighbors_2hop"] == pytest.approx(two_hop)
    ug = ig.Graph(n=g.num_nodes, edges=list(zip(g.src.tolist(), g.dst.tolist())), directed=False)
    assert row["motifs_4"] == sum(c for c in ug.motifs_randesu(size=4) if not math.isnan(c))
    assert sum(nx.triangles(u).values()) > 0  # the identity skip makes triangles
    core = nx.core_number(u)
    assert row["k_core"] == pytest.approx(np.mean([core[v] for v in range(g.num_nodes)]))
    assert row["n_components"] == nx.number_connected_components(u)
    assert row["cut_edges"] == sum(1 for _ in nx.bridges(u))
    assert row["cut_nodes"] == sum(1 for _ in nx.articulation_points(u))
    a = nx.to_numpy_array(u, nodelist=range(g.num_nodes), weight="weight")
    eig = np.linalg.eigvalsh(a)
    assert row["spectral_gap"] == pytest.approx(eig[-1] - eig[-2], abs=1e-6)
    assert row["spectral_radius"] == pytest.approx(np.linalg.eigvalsh(np.diag(a.sum(1)) - a)[-1], rel=1e-6)


def test_encoded_rolled_layers(encoded):
    _, layers = encoded
    assert [lay.name for lay in layers] == ["stem", "conv1", "conv2", "fc"]
    for layer in layers:
        row = M.topometrics(layer)
        assert set(row) == {"nodes", "edges", *M.ROLLED_COLUMNS}
        b = layer.biadjacency(weighted=False).toarray()
        assert row["motifs_4"] == sum(math.comb(int(x), 2) for x in np.concatenate([b.sum(0), b.sum(1)]))
        r = M.ramanujan_metrics(layer)
        assert set(r) == set(M.RAMANUJAN_COLUMNS)


def test_cli_encodes_a_model(tmp_path):
    from sparsetopo.masks import prunable_parameters, save_masks
    from sparsetopo.models import build

    model = build("resnet20", seed=0)
    gen = torch.Generator().manual_seed(0)
    masks = {n: torch.rand(p.shape, generator=gen) < 0.05 for n, p in prunable_parameters(model).items()}
    save_masks(masks, tmp_path / "m.safetensors")
    out = tmp_path / "layers.csv"
    assert main(["metrics", "--model", "resnet20", "--masks", str(tmp_path / "m.safetensors"),
                 "--encoding", "rolled", "--out", str(out)]) == 0
    import pandas as pd

    table = pd.read_csv(out)
    assert len(table) == len(masks)
    assert {"delta_r", "delta_r_imdb", "lambda_imsg", "layer_density", "k_core"} <= set(table.columns)
    expected = {n: float(m.float().mean()) for n, m in masks.items()}
    assert table["layer_density"].tolist() == pytest.approx([expected[f"{n}.weight"] for n in table["layer"]])
    out_mge = tmp_path / "mge.json"
    assert main(["metrics", "--model", "resnet20", "--masks", str(tmp_path / "m.safetensors"),
                 "--input-shape", "3", "4", "4", "--out", str(out_mge), "--no-progress"]) == 0
    assert '"spectral_radius"' in out_mge.read_text()


def test_cli_reads_a_rolled_graph_file(encoded, tmp_path):
    import pandas as pd

    from sparsetopo.encoding import save_bipartite_npz

    _, layers = encoded
    save_bipartite_npz(layers, tmp_path / "rolled.npz", kind="rolled")
    assert main(["metrics", str(tmp_path / "rolled.npz"), "--out", str(tmp_path / "r.csv")]) == 0
    table = pd.read_csv(tmp_path / "r.csv")
    assert table["layer"].tolist() == [lay.name for lay in layers]
    assert table["layer_density"].tolist() == pytest.approx(
        [lay.num_edges / (lay.num_left * lay.num_right) for lay in layers])
    assert table["delta_r"].tolist() == pytest.approx([M.delta_r(lay) for lay in layers], nan_ok=True)


def test_cli_rejects_motif_sample_on_rolled_layers(encoded, tmp_path, capsys):
    from sparsetopo.encoding import save_bipartite_npz

    save_bipartite_npz(encoded[1], tmp_path / "rolled.npz", kind="rolled")
    assert main(["metrics", str(tmp_path / "rolled.npz"), "--motif-sample", "3"]) == 2  # was silently ignored
    assert "--motif-sample applies to an MGE" in capsys.readouterr().err


def test_cli_says_when_the_layer_table_is_cut_to_the_terminal(encoded, tmp_path, capsys, monkeypatch):
    from sparsetopo.encoding import save_bipartite_npz

    monkeypatch.setenv("COLUMNS", "80")
    save_bipartite_npz(encoded[1], tmp_path / "rolled.npz", kind="rolled")
    assert main(["metrics", str(tmp_path / "rolled.npz")]) == 0
    assert "--out FILE.csv" in capsys.readouterr().out  # 17 columns never fit in 80: say where the values are
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["metrics", str(tmp_path / "rolled.npz")]) == 0
    assert "--out FILE.csv" not in capsys.readouterr().out
