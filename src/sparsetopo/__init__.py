"""sparsetopo: topology of sparse neural networks pruned at initialization.

Public API (re-exports only; each lives in its stage module):

- ``sparsetopo.models.build``                      the four architectures of the paper
- ``sparsetopo.masks``                             masks in the torch.nn.utils.prune convention
- ``sparsetopo.encode``                            rolled BGE, rolled-channel BGE, unrolled MGE
- ``sparsetopo.topometrics`` / ``ramanujan_metrics``  graph metrics
- ``sparsetopo.prune``                             SNIP, GraSP, SynFlow, ProsPr, Uniform, ER, ERK
- ``sparsetopo.train``                             the paper's training recipe
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "encode": ("sparsetopo.encoding", "encode"),
    "MultipartiteGraph": ("sparsetopo.graph", "MultipartiteGraph"),
    "BipartiteGraph": ("sparsetopo.graph", "BipartiteGraph"),
    "topometrics": ("sparsetopo.metrics", "topometrics"),
    "ramanujan_metrics": ("sparsetopo.metrics", "ramanujan_metrics"),
    "prune": ("sparsetopo.pruning", "prune"),
    "train": ("sparsetopo.training", "train"),
    "build_model": ("sparsetopo.models", "build"),
}


def __getattr__(name: str):
    # Lazy re-exports keep `import sparsetopo` cheap (no torch import until needed).
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'sparsetopo' has no attribute {name!r}")


__all__ = sorted(_LAZY) + ["__version__"]
