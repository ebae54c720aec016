"""``compile_kernels`` (run by ``bash run.sh`` at set-up) leaves nothing for a real network to compile."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

MEASURE_AND_COUNT_MISSES = """
import sys
from numba.core.registry import CPUDispatcher
from sparsetopo.measure import measure
from sparsetopo.metrics import registry
from sparsetopo.models import build
from sparsetopo.pruning import prune

model = build("resnet20", 10, seed=0)
masks = prune(model, "erk", 0.9, input_shape=(3, 8, 8), seed=0)
measure(model, masks, (3, 8, 8), groups=registry.GROUPS)
kernels = [v for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith("sparsetopo")
           for v in vars(m).values() if isinstance(v, CPUDispatcher)]
print(len(kernels), sum(sum(k.stats.cache_misses.values()) for k in kernels),
      sum(sum(k.stats.cache_hits.values()) for k in kernels))
"""


@pytest.mark.slow
def test_after_warmup_a_real_network_compiles_no_kernel(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "compiled and cached" in run("-m", "sparsetopo.metrics.warmup")
    kernels, misses, hits = map(int, run("-c", MEASURE_AND_COUNT_MISSES).split())
    assert kernels >= 10 and hits > 0
    assert misses == 0  # every kernel a real MGE / rolled layer needs came from the cache


def test_warmup_graph_has_skips_and_sparse_sized_layers():
    from sparsetopo.metrics.expansion import DENSE_MAX_NODES
    from sparsetopo.metrics.warmup import tiny_mge

    graph = tiny_mge()
    src_layer, dst_layer = (np.searchsorted(graph.layer_offsets, ids, side="right") - 1 for ids in (graph.src, graph.dst))
    assert (dst_layer - src_layer == 2).any()  # skip edges: triangles in U(G)
    assert graph.num_nodes > DENSE_MAX_NODES and graph.num_layers == 4
