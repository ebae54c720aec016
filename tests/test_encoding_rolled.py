"""Rolled and rolled-channel BGEs: hand counts, brute-force cross-checks, the .npz format."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from sparsetopo.encoding import encode, load_bipartite_npz, load_graph, save_bipartite_npz
from sparsetopo.errors import CheckpointError
from sparsetopo.masks import effective_weights, prunable_modules
from sparsetopo.models import build


def random_masks(model, keep, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: torch.rand(m.weight.shape, generator=g) < keep for n, m in prunable_modules(model).items()}


def test_figure1_rolled_and_channel_counts():
    conv = nn.Conv2d(3, 2, 2, bias=False)
    (g,) = encode(nn.Sequential(conv), (3, 3, 3), kind="rolled")
    assert (g.name, g.num_left, g.num_right, g.num_edges) == ("0", 12, 2, 24)
    mask = torch.zeros(2, 3, 2, 2, dtype=torch.bool)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = mask[1, 2, 0, 1] = True
    (g,) = encode(nn.Sequential(conv), (3, 3, 3), kind="rolled", masks={"0.weight": mask})
    assert g.num_edges == 3
    assert sorted(zip(g.src.tolist(), g.dst.tolist())) == [(0, 0), (3, 0), (2 * 4 + 1, 1)]
    (c,) = encode(nn.Sequential(conv), (3, 3, 3), kind="rolled_channel", masks={"0.weight": mask})
    assert (c.num_left, c.num_right) == (3, 2)
    assert sorted(zip(c.src.tolist(), c.dst.tolist())) == [(0, 0), (2, 1)]
    w = conv.weight.detach()
    expected = float(torch.sqrt(w[0, 0, 0, 0] ** 2 + w[0, 0, 1, 1] ** 2))
    assert c.weight[c.dst == 0][0] == pytest.approx(expected)


def test_resnet20_first_layer_is_k_27_16():
    layers = encode(build("resnet20", seed=0), kind="rolled")
    first = layers[0]
    assert (first.name, first.num_left, first.num_right, first.num_edges) == ("conv1", 27, 16, 27 * 16)
    adj = first.biadjacency(weighted=False).toarray()
    assert adj.shape == (27, 16) and adj.all()
    channel = encode(build("resnet20", seed=0), kind="rolled_channel")[0]
    assert (channel.num_left, channel.num_right, channel.num_edges) == (3, 16, 48)


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_rolled_edges_equal_kept_weights_per_layer(shortcut):
    model = build("resnet20", shortcut=shortcut, seed=0)
    masks = random_masks(model, 0.2)
    layers = encode(model, kind="rolled", masks=masks)
    weights = effective_weights(model, masks)
    assert [g.name + ".weight" for g in layers] == list(masks)
    for g, (name, mask) in zip(layers, masks.items()):
        m2 = mask.reshape(mask.shape[0], -1)
        assert (g.num_left, g.num_right) == (m2.shape[1], m2.shape[0])
        assert g.num_edges == int(mask.sum())
        np.testing.assert_array_equal(g.weight, weights[name].reshape(mask.shape[0], -1)[g.dst, g.src].numpy())


def brute_force_channel(mask: torch.Tensor, weight: torch.Tensor, groups: int):
    """Explicit loops over (o, c') — the reference for the rolled-channel BGE."""
    c_out, cin_g = mask.shape[:2]
    edges = {}
    for o in range(c_out):
        for cp in range(cin_g):
            if mask[o, cp].any():
                c = (o // (c_out // groups)) * cin_g + cp
                edges[(c, o)] = float(torch.linalg.vector_norm((weight * mask)[o, cp].double()))
    return edges


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_rolled_channel_matches_brute_force(groups):
    torch.manual_seed(groups)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=groups), nn.Flatten(), nn.Linear(8, 5))
    masks = random_masks(model, 0.15, seed=groups)
    conv, lin = encode(model, kind="rolled_channel", masks=masks)
    assert (conv.num_left, conv.num_right) == (4, 8)
    got = {(int(s), int(d)): float(w) for s, d, w in zip(conv.src, conv.dst, conv.weight)}
    ref = brute_force_channel(masks["0.weight"], model[0].weight.detach(), groups)
    assert got.keys() == ref.keys() and all(got[k] == pytest.approx(ref[k], rel=1e-6) for k in ref)
    assert lin.num_edges == int(masks["2.weight"].sum()) and (lin.num_left, lin.num_right) == (8, 5)


def test_rolled_files_round_trip(tmp_path):
    model = build("resnet20", seed=0)
    layers = encode(model, kind="rolled_channel", masks=random_masks(model, 0.3))
    save_bipartite_npz(layers, tmp_path / "r.npz", kind="rolled_channel")
    back = load_bipartite_npz(tmp_path / "r.npz")
    assert [g.name for g in back] == [g.name for g in layers]
    for a, b in zip(layers, back):
        assert (a.num_left, a.num_right) == (b.num_left, b.num_right)
        for f in ("src", "dst", "weight"):
            assert getattr(a, f).tobytes() == getattr(b, f).tobytes()
    assert len(load_graph(tmp_path / "r.npz")) == len(layers)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError):
        load_bipartite_npz(tmp_path / "bad.npz")


def test_bipartite_as_multipartite_matches_biadjacency():
    model = build("conv6", seed=0, input_size=8)
    g = encode(model, kind="rolled", masks=random_masks(model, 0.1))[1]
    mp = g.as_multipartite()
    assert mp.num_edges == g.num_edges and mp.num_nodes == g.num_left + g.num_right
    block = mp.to_scipy(weighted=False)[: g.num_left, g.num_left:].toarray()
    np.testing.assert_array_equal(block, g.biadjacency(weighted=False).toarray())
