"""Memory estimates before encode / metrics runs: exact counts from the masks, a named error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import sparsetopo.metrics as M
from sparsetopo import _memory
from sparsetopo.cli import main
from sparsetopo.encoding import count_mge, encode
from sparsetopo.errors import MemoryEstimateError, ValidationError
from sparsetopo.masks import prunable_parameters, save_masks
from sparsetopo.models import build


def _masks(model, density, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.rand(p.shape, generator=gen) < density for k, p in prunable_parameters(model).items()}


@pytest.mark.parametrize("name,shape", [("resnet20", (3, 16, 16)), ("conv6", (3, 16, 16)), ("wrn28_2", (3, 8, 8))])
@pytest.mark.parametrize("identity_skips", [True, False])
def test_counts_match_the_encoded_graph(name, shape, identity_skips):
    kwargs = {"input_size": shape[1]} if name == "conv6" else {}
    model = build(name, seed=1, **kwargs)
    masks = _masks(model, 0.3)
    graph = encode(model, shape, masks=masks, identity_skips=identity_skips)
    assert count_mge(model, shape, masks, identity_skips) == (graph.num_nodes, graph.num_edges)


def test_measure_traces_once_and_a_plan_is_reused_only_for_its_own_arguments(monkeypatch):
    from sparsetopo import tracing
    from sparsetopo.encoding import plan_mge, unrolled
    from sparsetopo.measure import measure

    model = build("resnet20", seed=1)
    masks = _masks(model, 0.3)
    plan = plan_mge(model, (3, 8, 8), masks)
    calls = []
    real_trace = tracing.trace
    monkeypatch.setattr(tracing, "trace", lambda *a: calls.append(a) or real_trace(*a))
    planned = encode(model, (3, 8, 8), masks=masks, plan=plan)
    assert not calls and (plan.nodes, plan.edges) == (planned.num_nodes, planned.num_edges)
    fresh = encode(model, (3, 8, 8), masks=masks)
    assert len(calls) == 1
    np.testing.assert_array_equal(planned.src, fresh.src)
    np.testing.assert_array_equal(planned.weight, fresh.weight)
    other = encode(model, (3, 8, 8), masks=_masks(model, 0.5), plan=plan)  # not its masks: planned anew
    assert len(calls) == 2 and other.num_edges != planned.num_edges
    plans = []
    real_run = unrolled._Planner.run
    monkeypatch.setattr(unrolled._Planner, "run", lambda self: plans.append(self) or real_run(self))
    measure(model, masks, (3, 8, 8), encodings=("mge",), groups=("topometrics",))
    assert len(plans) == 1  # the memory check's plan is the encoder's


def test_parse_memory():
    assert _memory.parse_memory("16G") == 16 * 2**30
    assert _memory.parse_memory("512 MiB") == 512 * 2**20
    assert _memory.parse_memory(1000) == 1000 and _memory.parse_memory(None) is None
    for bad in ("lots", "-1G", "0", True):
        with pytest.raises(ValidationError, match="max_memory"):
            _memory.parse_memory(bad)


def test_encode_refuses_above_max_memory_with_the_estimate():
    model = build("resnet20", seed=0)
    with pytest.raises(MemoryEstimateError, match=r"needs about [0-9.]+ GiB, more than max_memory \(1.0 GiB\)"):
        encode(model, (3, 16, 16), max_memory="1G")
    assert encode(model, (3, 8, 8), max_memory="64G").num_edges > 0


def test_machine_memory_is_the_default_limit(monkeypatch):
    monkeypatch.setattr(_memory, "machine_memory", lambda: 2**30)
    with pytest.raises(MemoryEstimateError, match="this machine's memory"):
        encode(build("resnet20", seed=0), (3, 16, 16))


def test_topometrics_refuses_above_max_memory():
    graph = encode(build("resnet20", seed=0), (3, 8, 8), masks=_masks(build("resnet20", seed=0), 0.1))
    estimate = M.estimate_memory(graph.num_nodes, graph.num_edges)
    assert estimate > M.estimate_memory(graph.num_nodes, 0)
    with pytest.raises(MemoryEstimateError, match=f"{graph.num_edges} edges"):
        M.topometrics(graph, max_memory=estimate - 1)
    assert M.topometrics(graph, max_memory=estimate)["edges"] == graph.num_edges
    # the prepared graph alone (its caller freed the edge list): the lower estimate applies
    freed = M.estimate_memory(graph.num_nodes, graph.num_edges, edge_list_kept=False)
    assert freed < estimate
    with pytest.raises(MemoryEstimateError):
        M.topometrics(M.prepare(graph), max_memory=freed - 1)
    assert M.topometrics(M.prepare(graph), max_memory=freed)["edges"] == graph.num_edges


def test_estimate_without_the_edge_list_still_covers_the_csr_build():
    from sparsetopo.metrics import _prepared

    nodes, edges = 10**6, 10**9  # edge-dominated: the CSR build (edge list + CSR) is the peak
    freed = M.estimate_memory(nodes, edges, edge_list_kept=False)
    assert freed >= (_prepared.EDGE_LIST_BYTES + _prepared.CSR_BYTES) * edges
    assert M.estimate_memory(nodes, edges) > freed + _prepared.TRIANGLE_BYTES * edges


def test_cli_encode_and_metrics_report_the_estimate(tmp_path, capsys):
    code = main(["encode", "--model", "resnet18", "--input-shape", "3", "64", "64", "--max-memory", "1G",
                 "--out", str(tmp_path / "g.npz"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "error:" in err and "GiB" in err and "max_memory" in err
    assert not (tmp_path / "g.npz").exists()
    model = build("resnet20", seed=0)
    save_masks(_masks(model, 0.1), tmp_path / "m.safetensors")
    code = main(["metrics", "--model", "resnet20", "--masks", str(tmp_path / "m.safetensors"), "--input-shape", "3", "16",
                 "16", "--max-memory", "1.001G"])
    assert code == 2 and "metrics of CifarResNet" in capsys.readouterr().err
    assert main(["encode", "--model", "resnet20", "--masks", str(tmp_path / "m.safetensors"), "--input-shape", "3", "8",
                 "8", "--out", str(tmp_path / "small.npz"), "--no-progress"]) == 0
    code = main(["metrics", str(tmp_path / "small.npz"), "--max-memory", "1G"])
    assert code == 2 and "small.npz" in capsys.readouterr().err
    assert main(["metrics", str(tmp_path / "small.npz"), "--max-memory", "8G", "--no-progress"]) == 0
