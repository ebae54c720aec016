"""MGE: hand-counted cases, registry sizes, determinism, masks, unsupported ops, exports."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsetopo.encoding import MultipartiteGraph, encode, load_graph
from sparsetopo.errors import MaskError, UnsupportedOpError, ValidationError
from sparsetopo.masks import apply_masks, prunable_modules
from sparsetopo.models import build


def edge_dict(graph: MultipartiteGraph) -> dict[tuple[int, int], float]:
    return {(int(s), int(d)): float(w) for s, d, w in zip(graph.src, graph.dst, graph.weight)}


def set_weights(model: nn.Module, *values) -> nn.Module:
    with torch.no_grad():
        for m, v in zip(prunable_modules(model).values(), values):
            m.weight.copy_(torch.as_tensor(v, dtype=torch.float32).view_as(m.weight))
    return model


# -- paper Figure 1 --------------------------------------------------------------------------
def test_figure1_dense():
    conv = nn.Conv2d(3, 2, 2, padding=0, stride=1, bias=False)
    g = encode(nn.Sequential(conv), (3, 3, 3))
    assert g.layer_offsets.tolist() == [0, 27, 35] and g.layer_names == ("input", "0")
    assert g.num_edges == 96
    expected = {(c * 9 + (i + u) * 3 + (j + v), 27 + o * 4 + i * 2 + j): float(conv.weight.detach()[o, c, u, v])
                for o in range(2) for c in range(3) for u in range(2) for v in range(2)
                for i in range(2) for j in range(2)}
    assert edge_dict(g) == pytest.approx(expected)


def test_figure1_sparse_counts_kept_weights_times_positions():
    conv = nn.Conv2d(3, 2, 2, bias=False)
    mask = torch.zeros(2, 3, 2, 2, dtype=torch.bool)
    mask[0, 0, 0, 0] = mask[1, 2, 1, 1] = mask[1, 1, 0, 1] = True
    g = encode(nn.Sequential(conv), (3, 3, 3), masks={"0.weight": mask})
    assert g.num_edges == 3 * 4
    assert edge_dict(g)[(0, 27)] == pytest.approx(float(conv.weight.detach()[0, 0, 0, 0]))


def test_padding_stride_dilation_by_hand():
    # 1 channel 4x4, 3x3 kernel, padding 1, stride 2 -> 2x2 output; only the centre tap kept
    conv = nn.Conv2d(1, 1, 3, stride=2, padding=1, bias=False)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    mask[0, 0, 1, 1] = True
    g = encode(nn.Sequential(conv), (1, 4, 4), masks={"0.weight": mask})
    assert sorted(edge_dict(g)) == [(0, 16), (2, 17), (8, 18), (10, 19)]
    # corner tap (0, 0): output (0, j) and (i, 0) read padding -> only output (1, 1) <- input (1, 1)
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.bool)
    mask[0, 0, 0, 0] = True
    g = encode(nn.Sequential(conv), (1, 4, 4), masks={"0.weight": mask})
    assert sorted(edge_dict(g)) == [(5, 19)]
    # dilation 2, no padding, 5x5 input: output 1x1 reads (0,0),(0,2),(0,4),(2,0),...
    g = encode(nn.Sequential(nn.Conv2d(1, 1, 3, dilation=2, bias=False)), (1, 5, 5))
    assert sorted(s for s, _ in edge_dict(g)) == [0, 2, 4, 10, 12, 14, 20, 22, 24]


# -- pooling -------------------------------------------------------------------------------------
def test_two_layers_with_pool_between():
    # conv 1x1 on 1x4x4 -> 16 nodes; max pool 2x2 -> 4 positions; conv 1x1 -> 4 nodes reading 4 each
    model = set_weights(nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.MaxPool2d(2), nn.Conv2d(1, 1, 1, bias=False)),
                        [2.0], [3.0])
    g = encode(model, (1, 4, 4))
    assert g.layer_offsets.tolist() == [0, 16, 32, 36]
    assert g.num_edges == 16 + 16
    e = edge_dict(g)
    assert e[(16 + 0, 32)] == e[(16 + 5, 32)] == 3.0 and (16 + 2, 32) not in e
    assert e[(16 + 15, 35)] == 3.0


def test_overlapping_pool_windows_merge_with_summed_weight():
    # 1x1x3 row; max pool (1,2) stride 1 -> windows {0,1}, {1,2}; conv (1,2) weights w0, w1
    model = set_weights(nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.MaxPool2d((1, 2), stride=1),
                                      nn.Conv2d(1, 1, (1, 2), bias=False)), [1.0], [[0.5, 2.0]])
    g = encode(model, (1, 1, 3))
    e = edge_dict(g)
    assert {k: v for k, v in e.items() if k[1] == 6} == {(3, 6): 0.5, (4, 6): 2.5, (5, 6): 2.0}


def test_global_pool_then_linear_connects_every_position():
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    g = encode(model, (1, 3, 3))
    assert g.layer_offsets.tolist() == [0, 9, 27, 30]
    assert g.num_edges == 9 * 2 + 18 * 3


# -- residual blocks -----------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, projection: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(1, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(1, 1, 1, bias=False) if projection else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


def test_residual_block_identity_by_hand():
    g = encode(set_weights(Block(False), [2.0], [3.0]), (1, 2, 2))
    assert g.layer_names == ("input", "conv1", "conv2") and g.num_nodes == 12
    e = edge_dict(g)
    assert len(e) == 12
    assert all(e[(p, 8 + p)] == 1.0 for p in range(4))      # identity skip input -> conv2 nodes
    assert all(e[(4 + p, 8 + p)] == 3.0 for p in range(4))  # conv2
    g_off = encode(Block(False), (1, 2, 2), identity_skips=False)
    assert g_off.num_edges == 8 and g_off.num_nodes == 12


def test_residual_block_projection_merges_into_main_nodes():
    g = encode(set_weights(Block(True), [2.0], [3.0], [5.0]), (1, 2, 2))
    assert g.layer_names == ("input", "conv1", "conv2") and g.num_nodes == 12
    assert g.meta["merged"] == {"shortcut": "conv2"}
    e = edge_dict(g)
    assert len(e) == 12 and all(e[(p, 8 + p)] == 5.0 for p in range(4))
    assert encode(Block(True), (1, 2, 2), identity_skips=False).num_edges == 12


def test_add_of_two_convs_writes_one_node_set():
    class TwoBranches(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False)

        def forward(self, x):
            return self.a(x) + self.b(x)

    g = encode(set_weights(TwoBranches(), [2.0], [3.0]), (1, 1, 2))
    assert g.layer_names == ("input", "a") and g.meta["merged"] == {"b": "a"}
    assert edge_dict(g) == {(0, 2): 5.0, (1, 3): 5.0}  # same (a, b) from both convs: summed


@pytest.mark.parametrize("shortcut,layers,merged", [("A", 21, 0), ("B", 21, 2)])
def test_resnet20_sizes(shortcut, layers, merged):
    model = build("resnet20", shortcut=shortcut, seed=0)
    g = encode(model, (3, 32, 32), masks=_random_masks(model, keep=0.01))
    assert g.num_layers == layers and len(g.meta["merged"]) == merged
    assert g.num_nodes == 3 * 1024 + 16 * 1024 * 7 + 32 * 256 * 6 + 64 * 64 * 6 + 10 == 191498
    assert g.meta["identity_jobs"] == (9 if shortcut == "A" else 7)
    layer_of_src, layer_of_dst = g.layer_of(g.src), g.layer_of(g.dst)
    assert (layer_of_src < layer_of_dst).all()  # a DAG in node-layer order


def test_wrn_and_conv6_node_counts():
    g = encode(build("wrn28_2", seed=0), (3, 8, 8))
    assert g.num_layers == 1 + 25 + 1 and len(g.meta["merged"]) == 3
    assert g.num_nodes == 3 * 64 + 16 * 64 + 32 * 64 * 8 + 64 * 16 * 8 + 128 * 4 * 8 + 10
    g = encode(build("conv6", seed=0, input_size=8), (3, 8, 8))
    assert g.layer_offsets.tolist()[-4:] == [g.num_nodes - 522, g.num_nodes - 266, g.num_nodes - 10, g.num_nodes]


# -- determinism, masks ---------------------------------------------------------------------------
def _random_masks(model, keep=0.3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {n: torch.rand(m.weight.shape, generator=gen) < keep for n, m in prunable_modules(model).items()}


def test_same_masks_give_byte_identical_arrays():
    model = build("resnet20", seed=0)
    masks = _random_masks(model)
    a, b = encode(model, (3, 16, 16), masks=masks), encode(model, (3, 16, 16), masks=masks)
    for name in ("src", "dst", "weight", "layer_offsets"):
        assert getattr(a, name).tobytes() == getattr(b, name).tobytes()
    assert a.src.dtype == np.int32 and a.weight.dtype == np.float32


def test_masks_from_prune_buffers_equal_mask_dict():
    model = build("resnet20", seed=0)
    masks = _random_masks(model)
    from_dict = encode(model, (3, 8, 8), masks=masks)
    apply_masks(model, masks)
    assert encode(model, (3, 8, 8)) == from_dict
    kept = sum(int(m.sum()) for m in masks.values())
    assert encode(model, (3, 8, 8), kind="rolled") and sum(
        g.num_edges for g in encode(model, (3, 8, 8), kind="rolled")) == kept


def test_bad_masks_name_the_parameter():
    model = build("resnet20", seed=0)
    with pytest.raises(MaskError, match="layer1.0.conv1.weight"):
        encode(model, (3, 8, 8), masks={"layer1.0.conv1.weight": torch.ones(3, 3, dtype=torch.bool)})
    with pytest.raises(MaskError, match="nope.weight"):
        encode(model, (3, 8, 8), masks={"nope.weight": torch.ones(1)})


def test_bad_input_shape_and_kind():
    model = build("resnet20", seed=0)
    with pytest.raises(ValidationError):
        encode(model, (3, 0, 8))
    with pytest.raises(ValidationError, match="encoding"):
        encode(model, (3, 8, 8), kind="unrolled")
    with pytest.raises(ValidationError, match="forward pass"):
        encode(model, (5, 8, 8))


# -- unsupported ops -------------------------------------------------------------------------------
class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * x

    @staticmethod
    def backward(ctx, g):
        return g


class WithCustomFunction(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        self.inner = nn.Sequential(InnerCustom())

    def forward(self, x):
        return self.inner(self.conv(x))


class InnerCustom(nn.Module):
    def forward(self, x):
        return Square.apply(x)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        self.gate = Gate()

    def forward(self, x):
        return self.gate(self.conv(x))


class Gate(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


class Quotient(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 1, 1), nn.Conv2d(1, 1, 1)

    def forward(self, x):
        return self.a(x) / self.b(x)


def test_custom_autograd_function_is_named():
    with pytest.raises(UnsupportedOpError, match=r"fx node .square_apply. \(module .inner\.0.*autograd\.Function Square"):
        encode(WithCustomFunction(), (1, 2, 2))


def test_data_dependent_control_flow_is_named():
    with pytest.raises(UnsupportedOpError, match=r"fx node 'gt'.*module 'gate'"):
        encode(DataDependent(), (1, 2, 2))


def test_unknown_module_and_quotient_are_named():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(1, 2, 1))
    model.add_module("up", nn.Upsample(scale_factor=2))
    with pytest.raises(UnsupportedOpError, match=r"fx node 'up' \(module 'up'\).*Upsample"):
        encode(model, (1, 2, 2))
    with pytest.raises(UnsupportedOpError, match=r"'truediv'.*two traced tensors with truediv"):
        encode(Quotient(), (1, 2, 2))


def test_rolled_encodings_do_not_need_tracing():
    assert len(encode(DataDependent(), (1, 2, 2), kind="rolled")) == 1


# -- exports and files -------------------------------------------------------------------------------
def test_exports_agree(tmp_path):
    model = build("resnet20", seed=0)
    g = encode(model, (3, 8, 8), masks=_random_masks(model, 0.05))
    a = g.to_scipy()
    assert a.shape == (g.num_nodes, g.num_nodes) and a.nnz == g.num_edges
    assert np.allclose(a[g.src[:50], g.dst[:50]], g.weight[:50])
    ig = g.to_igraph()
    assert ig.vcount() == g.num_nodes and ig.ecount() == g.num_edges and ig.is_directed() and ig.is_dag()
    nk = g.to_networkit()
    assert nk.numberOfNodes() == g.num_nodes and nk.numberOfEdges() == g.num_edges
    nxg = g.to_networkx()
    assert nxg.number_of_edges() == g.num_edges and nxg.nodes[0]["layer"] == 0
    with pytest.raises(ValidationError, match="networkx"):
        g.to_networkx(max_edges=10)
    g.save_npz(tmp_path / "g.npz")
    assert MultipartiteGraph.load_npz(tmp_path / "g.npz") == g
    assert load_graph(tmp_path / "g.npz") == g


def test_encoding_leaves_the_model_untouched():
    model = build("conv6", seed=0, input_size=8).train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    encode(model, (3, 8, 8))
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_module_called_twice_gives_two_node_layers():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 1, 1, bias=False)

        def forward(self, x):
            return self.c(self.c(x))

    g = encode(set_weights(Shared(), [3.0]), (1, 2, 2))
    assert g.layer_names == ("input", "c", "c:1")
    assert edge_dict(g) == {(p, 4 + p): 3.0 for p in range(4)} | {(4 + p, 8 + p): 3.0 for p in range(4)}
    assert len(encode(Shared(), (1, 2, 2), kind="rolled")) == 1


# -- bad input: clear sparsetopo errors, no torch traceback printed -----------------------------------
def test_forward_failure_names_the_fx_node_and_prints_nothing(capfd):
    with pytest.raises(ValidationError, match=r"input shape \(3, 32, 32\) at fx node 'classifier_0' "
                                              r"\(module 'classifier.0'\): RuntimeError: mat1 and mat2"):
        encode(build("conv6", seed=0, input_size=8), (3, 32, 32))
    assert capfd.readouterr().err == ""


class FoldsBatch(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how, self.conv, self.pool = how, nn.Conv2d(1, 2, 1), nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 if how == "flatten" else 2, 3)

    def forward(self, x):
        y = self.conv(x)
        if self.how == "cat":  # batch-wise concatenation: two samples, not two slots of one node
            return self.fc(torch.cat([self.pool(y), self.pool(-y)], 0).flatten(1))
        return self.fc(torch.flatten(y) if self.how == "flatten" else self.pool(y).squeeze())


@pytest.mark.parametrize("how", ["flatten", "squeeze", "cat"])
def test_ops_that_fold_the_batch_dimension_are_named(how):
    # runs at batch 1, but the node map would be misread: an UnsupportedOpError, not a numpy error
    with pytest.raises(UnsupportedOpError, match=f"fx node '{how}'.*batch dimension"):
        encode(FoldsBatch(how), (1, 2, 2))


def test_bad_model_and_shape_rejected_for_every_kind():
    for kind in ("mge", "rolled", "rolled_channel"):
        with pytest.raises(ValidationError, match="torch.nn.Module"):
            encode("resnet20", (3, 8, 8), kind=kind)
        with pytest.raises(ValidationError, match="input_shape"):
            encode(build("resnet20", seed=0), (3, 0, 8), kind=kind)
