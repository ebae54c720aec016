"""The unrolled input-aware MGE (paper §3.1–3.2, Appendix C; spec encoding.md).

Two passes over the traced ops (:mod:`sparsetopo.tracing`):

1. **Plan** (cost O(nodes)). Propagate a node map (:mod:`._nodemaps`) through every fx value.
   The input and every weighted layer (Conv2d, Linear) open a *provisional* node layer; a
   weighted layer records an edge job from the node map of its input to its own node ids.
   Parameter-free ops transform node maps (pooling makes set-valued maps, flatten permutes,
   padding selects, cat unions). A residual add identifies node sets position by position:

   - the *main* operand is the one that is the plain output of a weighted layer (through
     elementwise ops) with the most weighted layers on its longest path from the input (ties:
     the first operand); the result keeps its node map;
   - another operand that is the plain output of a weighted layer used by nothing but this add
     (a projection shortcut, or a second parallel branch) is *merged*: its layer opens no node
     layer and its edges go into the main node ids instead (two convs added = one node set);
   - any other operand (identity or parameter-free shortcut) contributes an identity job: one
     edge per element from each of its source nodes to the main node, weight 1 (skipped with
     ``identity_skips=False``, the official encoder's behaviour);
   - when no operand is the output of a weighted layer, the result is the union of the
     operands' node maps (both paths stay parameter-free).

2. **Build** (cost O(edges)). Resolve merges, order node layers topologically (creation order
   among ready layers), give final contiguous ids (layer offset + flat (C, H, W) index), and run
   the edge rule of each job (:mod:`._edges`) with final ids, grouped by destination layer.
   Duplicate (src, dst) pairs, possible only when a source id repeats in one map (overlapping
   pooling windows, repeated concatenation) or several jobs of one destination layer share
   sources, are merged with summed weights (sorted by (dst, src)); elsewhere edges keep their
   construction order. The same model and masks always give byte-identical arrays.
"""
from __future__ import annotations

import enum
import heapq
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from ..errors import UnsupportedOpError
from ..masks import effective_weights, get_masks, validate_masks
from ..tracing import VALUE_META, TracedNetwork, TracedOp, attention_error, is_product
from . import _nodemaps as nm
from ._edges import EDGE_COUNTS, EDGE_RULES, concat_and_free, merge_duplicates
from ..graph import MultipartiteGraph, id_dtype

CONSTANT = "<constant>"  #: env value of a tensor that does not depend on the network input


@dataclass(eq=False)
class _Value:
    """A traced tensor: its node map and where it comes from.

    ``owner`` is the provisional layer whose plain output map this is (through elementwise ops,
    identity-preserving index ops and adds as main operand), else ``None``; ``sole`` says that the
    chain from that layer's output to this value has one user at every step.
    """

    ids: torch.Tensor
    owner: int | None = None
    sole: bool = False


@dataclass
class _Layer:
    name: str
    start: int
    shape: tuple[int, ...]
    points: list[str]  # fx nodes whose value holds this node set (the layer call, then adds)
    merged_into: int | None = None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass
class _Job:
    """One edge-producing op: ``rule`` (a key of ``EDGE_RULES``) from the node map ``src`` into
    the id map ``dst`` (provisional ids); ``param`` / ``geometry`` for weighted layers."""

    rule: str
    src: torch.Tensor  # (K, ...) provisional ids, -1 = none
    dst: torch.Tensor  # provisional ids
    param: str | None = None
    geometry: dict = field(default_factory=dict)
    dst_layer: int = -1  # set by _resolve


class Residual(enum.Enum):
    """The cases of a residual add ``main + skip`` of two traced tensors (:meth:`_Planner.add`).

    ``main``: the operand owned by the deepest weighted layer; ``skip``: the other one.
    """

    #: neither operand is a weighted layer's own output (two parameter-free paths): the result's
    #: node map is the union of both maps (no new nodes, no edges)
    UNION = "union"
    #: ``y + y`` of one layer's output: an elementwise op on ``y``
    SAME = "same"
    #: ``skip`` is a weighted layer's output used only by this add (a convolutional shortcut): that
    #: layer writes into ``main``'s nodes (``meta["merged"]``), so its edges end there
    MERGE = "merge"
    #: ``skip`` is shared or parameter-free (an identity shortcut): weight-1 edges skip -> main
    IDENTITY = "identity"
    #: as IDENTITY with ``identity_skips=False`` (the official encoding): no edges
    DROPPED = "dropped"


class _Planner:
    """Pass 1: node maps, provisional layers, merges and edge jobs (see the module docstring)."""

    def __init__(self, net: TracedNetwork, identity_skips: bool) -> None:
        self.net = net
        self.identity_skips = identity_skips
        self.env: dict[str, Any] = {}
        self.depth: dict[str, int] = {}
        self.layers: list[_Layer] = []
        self.jobs: list[_Job] = []
        self.merges: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.calls: dict[str, int] = {}
        self.next_id = 0

    # -- bookkeeping -------------------------------------------------------------------------
    def run(self) -> "_Planner":
        for op in self.net.ops:
            self.depth[op.name] = max((self.depth[i] for i in op.inputs), default=0)
            self.env[op.name] = PLAN_RULES[op.kind](self, op)
        return self

    def _new_layer(self, name: str, op: TracedOp) -> _Value:
        shape = tuple(op.shape[1:])
        layer = _Layer(name=name, start=self.next_id, shape=shape, points=[op.name])
        self.next_id += layer.size
        self.layers.append(layer)
        ids = torch.arange(layer.start, self.next_id, dtype=torch.int64).reshape(1, *shape)
        return _Value(ids, owner=len(self.layers) - 1, sole=self.net.num_users[op.name] == 1)

    def _maps(self, op: TracedOp) -> list[_Value]:
        return [self.env[n] for n in op.inputs if isinstance(self.env[n], _Value)]

    def _single(self, op: TracedOp) -> _Value:
        maps = self._maps(op)
        if len(maps) != 1:
            raise UnsupportedOpError(
                f"fx node {op.name!r} (module {op.module_path or '<top>'!r}) combines {len(maps)} traced "
                f"tensors in a {op.kind!r} op; only residual additions may combine two")
        return maps[0]

    def _checked(self, op: TracedOp, ids: torch.Tensor) -> torch.Tensor:
        # a traced value keeps the batch dimension of 1 in front (flatten(x), x.view(-1) and
        # x.squeeze() on a batch of one drop or fold it: the node map would be misread)
        if (op.shape is None or not op.shape or op.shape[0] != 1 or ids.dim() != len(op.shape)
                or tuple(ids.shape[1:]) != op.shape[1:]):
            raise UnsupportedOpError(
                f"fx node {op.name!r} (module {op.module_path or '<top>'!r}) mixes the batch dimension "
                f"or changes shape unexpectedly (node map {tuple(ids.shape)}, traced {op.shape})")
        return ids

    def _substituted(self, op: TracedOp) -> tuple[tuple, dict]:
        def sub(n: fx.Node):
            v = self.env[n.name]
            if isinstance(v, _Value):
                return v.ids
            if v is CONSTANT:
                meta = n.meta.get("tensor_meta")
                return torch.full(tuple(meta.shape), nm.NONE, dtype=torch.int64)
            return v

        return fx.node.map_arg((op.node.args, op.node.kwargs), sub)

    # -- rules per op kind -------------------------------------------------------------------
    def input(self, op: TracedOp) -> _Value:
        return self._new_layer("input", op)

    def constant(self, op: TracedOp) -> str:
        return CONSTANT

    def output(self, op: TracedOp) -> None:
        return None

    def elementwise(self, op: TracedOp) -> Any:
        maps = self._maps(op)
        if not maps:
            return CONSTANT
        v = self._single(op)
        self._checked(op, v.ids)
        return _Value(v.ids, v.owner, v.sole and self.net.num_users[op.name] == 1)

    def weighted(self, op: TracedOp) -> _Value:
        v = self._single(op)
        src = v.ids
        geometry: dict = {}
        if isinstance(op.module, nn.Conv2d):
            geometry = _conv_geometry(op.module)
            if op.module.padding_mode != "zeros":  # reflect / replicate / circular: padded ids
                pads = tuple(op.module._reversed_padding_repeated_twice)
                src = nm.pad_ids(src, pads, op.module.padding_mode)
                geometry["padding"] = (0, 0)
        path = op.module_path
        n = self.calls[path] = self.calls.get(path, -1) + 1
        self.depth[op.name] += 1
        out = self._new_layer(path if n == 0 else f"{path}:{n}", op)
        self.jobs.append(_Job(op.kind, src, out.ids[0], op.param_name, geometry))
        return out

    def add(self, op: TracedOp) -> Any:
        maps = self._maps(op)
        if not maps:
            return CONSTANT
        if len(maps) == 1 or (len(op.inputs) == 2 and op.inputs[0] == op.inputs[1]):
            return self.elementwise(op)
        if len(maps) > 2:
            raise UnsupportedOpError(f"fx node {op.name!r}: an add of {len(maps)} traced tensors")
        for v in maps:
            self._checked(op, v.ids)
        case, main, skip = self._residual_case(op, maps)
        if case is Residual.UNION:
            k = max(v.ids.shape[0] for v in maps)
            return _Value(nm.compact_slots(torch.cat([nm.pad_slots(v.ids, k) for v in maps])))
        if case is Residual.SAME:
            return _Value(main.ids, main.owner, False)
        if case is Residual.MERGE:
            self.merges.append((skip.ids[0], main.ids[0]))
            self.layers[skip.owner].merged_into = main.owner
        elif case is Residual.IDENTITY:
            self.jobs.append(_Job("identity", skip.ids, main.ids[0]))
        self.layers[main.owner].points.append(op.name)
        return _Value(main.ids, main.owner, main.sole and self.net.num_users[op.name] == 1)

    def _residual_case(self, op: TracedOp, maps: list[_Value]) -> tuple["Residual", _Value | None, _Value | None]:
        """Which :class:`Residual` case the add of two traced operands is, with its (main, skip).

        ``main`` is the operand owned by the deepest weighted layer (ties: the first operand),
        ``skip`` the other one."""
        owned = [v for v in maps if v.owner is not None and v.ids.shape[0] == 1]
        if not owned:
            return Residual.UNION, None, None
        deepest = max(self.depth[n] for n, v in zip(op.inputs, maps) if v in owned)
        main = next(v for n, v in zip(op.inputs, maps) if v in owned and self.depth[n] == deepest)
        skip = maps[1] if main is maps[0] else maps[0]
        if skip.owner == main.owner and torch.equal(skip.ids, main.ids):
            return Residual.SAME, main, skip
        if skip.owner and skip.sole and skip.ids.shape[0] == 1:  # never merge the input layer (owner 0)
            return Residual.MERGE, main, skip
        return (Residual.IDENTITY if self.identity_skips else Residual.DROPPED), main, skip

    def arith(self, op: TracedOp) -> Any:
        maps = self._maps(op)
        if len(maps) < 2 or (len(op.inputs) == 2 and op.inputs[0] == op.inputs[1]):
            return self.elementwise(op)  # x * const, x / const, -x, x * x
        if is_product(op.node) and len(maps) == 2 and torch.equal(maps[0].ids, maps[1].ids):
            # x * sigmoid(x) (SiLU written by hand): an elementwise activation, no gate
            return _Value(maps[0].ids, maps[0].owner, False)
        if is_product(op.node):
            return self.gate(op, maps)
        raise UnsupportedOpError(
            f"fx node {op.name!r} (module {op.module_path or '<top>'!r}) combines two traced tensors with "
            f"{_target(op)}; the encoder knows residual additions and multiplicative gating (x * g)")

    def gate(self, op: TracedOp, maps: list[_Value]) -> _Value:
        """Multiplicative gating ``x * g`` (encoding.md "Modern blocks"): the product opens a node
        layer of its own (giving it x's ids would close a cycle through the gate, which is
        computed from x). Each operand, broadcast to the product's shape, contributes one edge
        from each of its nodes to every element it multiplies, weight 1 (a ``gate`` job; kept with
        ``identity_skips=False``). Cost O(product size · slots)."""
        shape = op.shape[1:]
        for v in maps:
            if v.ids.dim() != len(op.shape):
                raise UnsupportedOpError(f"fx node {op.name!r} (module {op.module_path or '<top>'!r}) "
                                         "multiplies traced tensors of different ranks")
        out = self._new_layer(f"{op.module_path}/{op.name}" if op.module_path else op.name, op)
        for v in maps:
            src = v.ids.expand(v.ids.shape[0], *shape)
            self.jobs.append(_Job("gate", src, out.ids[0]))
        return out

    def matmul(self, op: TracedOp) -> Any:
        if len(self._maps(op)) >= 2:
            raise attention_error(op.node, f"a product of two traced tensors ({_target(op)})")
        raise UnsupportedOpError(
            f"fx node {op.name!r} (module {op.module_path or '<top>'!r}): {_target(op)} with a parameter is "
            "a weighted layer the encoder cannot see; write it as nn.Linear or nn.Conv2d")

    def value(self, op: TracedOp) -> Any:
        return op.node.meta[VALUE_META]  # evaluated by the traced forward pass on the batch of one

    def pool(self, op: TracedOp) -> _Value:
        v = self._single(op)
        if op.module is not None:
            geometry = nm.pool_geometry(op.module)
        else:
            args, kwargs = self._substituted(op)
            names = ("input", "kernel_size", "stride", "padding")
            names += ("dilation",) if op.node.target is not torch.nn.functional.avg_pool2d else ()
            geometry = nm.pool_geometry({**dict(zip(names, args)), **kwargs})
        return _Value(self._checked(op, nm.pool(v.ids, op.shape[-2:], **geometry)))

    def adaptive_pool(self, op: TracedOp) -> _Value:
        v = self._single(op)
        return _Value(self._checked(op, nm.adaptive_pool(v.ids, op.shape[-2:])))

    def reduce(self, op: TracedOp) -> _Value:
        v = self._single(op)
        args, kwargs = self._substituted(op)
        dims, keepdim = nm.reduce_args(args, kwargs)
        if any(d % v.ids.dim() == 0 for d in dims):
            raise UnsupportedOpError(f"fx node {op.name!r} (module {op.module_path or '<top>'!r}) "
                                     "reduces over the batch dimension")
        return _Value(self._checked(op, nm.reduce_dims(v.ids, dims, keepdim)))

    def pad(self, op: TracedOp) -> _Value:
        self._single(op)
        args, kwargs = self._substituted(op)
        return _Value(self._checked(op, nm.pad_map(args, kwargs, op.module)))

    def index(self, op: TracedOp) -> Any:
        values = self._maps(op)
        if not values and any(self.env[n] is CONSTANT for n in op.inputs):
            return CONSTANT
        args, kwargs = self._substituted(op)
        out = nm.apply_verbatim(op.node, args, kwargs, op.module)
        if not isinstance(out, torch.Tensor):
            return out  # sizes, tuples of maps (chunk / split), ...
        self._checked(op, out)
        same = len(values) == 1 and values[0].ids.shape == out.shape and torch.equal(values[0].ids, out)
        if same:  # contiguous(), view to the same shape, ...: node identity kept
            return _Value(values[0].ids, values[0].owner, values[0].sole and self.net.num_users[op.name] == 1)
        if len(values) == 1 and _is_permutation(values[0].ids, out):
            # permute / transpose / reshape of a layer's whole output (ConvNeXt's channels-last
            # Linear permuted back): still that layer's nodes, so a residual add finds its main
            # operand (the add's node map is this rearranged one, position by position)
            return _Value(out, values[0].owner, values[0].sole and self.net.num_users[op.name] == 1)
        return _Value(out)


PLAN_RULES: dict[str, Callable[[_Planner, TracedOp], Any]] = {
    "input": _Planner.input, "constant": _Planner.constant, "output": _Planner.output,
    "elementwise": _Planner.elementwise, "arith": _Planner.arith, "add": _Planner.add,
    "conv2d": _Planner.weighted, "linear": _Planner.weighted, "pool": _Planner.pool,
    "adaptive_pool": _Planner.adaptive_pool, "reduce": _Planner.reduce, "pad": _Planner.pad,
    "index": _Planner.index, "matmul": _Planner.matmul, "value": _Planner.value,
}

def _is_permutation(ids: torch.Tensor, out: torch.Tensor) -> bool:
    """``out`` holds exactly the single-slot ids of ``ids``, rearranged. Cost O(n log n)."""
    return (ids.shape[0] == 1 == out.shape[0] and ids.numel() == out.numel()
            and torch.equal(ids.reshape(-1).sort().values, out.reshape(-1).sort().values))


def _target(op: TracedOp) -> str:
    target = op.node.target
    return f".{target}()" if isinstance(target, str) else getattr(target, "__name__", str(target))


def _conv_geometry(conv: nn.Conv2d) -> dict:
    """Stride, *left* padding, dilation and groups of a Conv2d (``padding="same"`` resolved as
    PyTorch does: total d·(k−1), left half rounded down; the output size comes from ShapeProp)."""
    if isinstance(conv.padding, str):
        padding = tuple(0 if conv.padding == "valid" else d * (k - 1) // 2
                        for d, k in zip(conv.dilation, conv.kernel_size))
    else:
        padding = tuple(conv.padding)
    return {"stride": tuple(conv.stride), "padding": padding, "dilation": tuple(conv.dilation),
            "groups": int(conv.groups)}


# -- pass 2 ------------------------------------------------------------------------------------
def _resolve(plan: _Planner) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Final layer order (provisional indices), final layer offsets and the prov -> final id map."""
    redirect = np.arange(plan.next_id, dtype=np.int64)
    for fresh, target in plan.merges:
        redirect[fresh.reshape(-1).numpy()] = target.reshape(-1).numpy()
    while True:  # pointer jumping: chains of merges
        jumped = redirect[redirect]
        if np.array_equal(jumped, redirect):
            break
        redirect = jumped
    starts = np.array([l.start for l in plan.layers], dtype=np.int64)

    def layers_of(ids: torch.Tensor) -> np.ndarray:
        flat = ids.reshape(-1).numpy()
        layer = np.searchsorted(starts, redirect[flat[flat >= 0]], side="right") - 1
        return np.flatnonzero(np.bincount(layer, minlength=len(starts)))

    alive = [i for i, l in enumerate(plan.layers) if l.merged_into is None]
    deps: dict[int, set[int]] = {i: set() for i in alive}
    for job in plan.jobs:
        (dst_layer,) = layers_of(job.dst)
        deps[int(dst_layer)].update(int(s) for s in layers_of(job.src) if s != dst_layer)
        job.dst_layer = int(dst_layer)
    order = _topological(alive, deps)
    final_start = np.zeros(len(plan.layers), dtype=np.int64)
    offsets = [0]
    for i in order:
        final_start[i] = offsets[-1]
        offsets.append(offsets[-1] + plan.layers[i].size)
    prov_layer = np.searchsorted(starts, np.arange(plan.next_id), side="right") - 1
    final_of_alive = final_start[prov_layer] + (np.arange(plan.next_id) - starts[prov_layer])
    return order, np.array(offsets, dtype=np.int64), final_of_alive[redirect]


def _topological(alive: list[int], deps: dict[int, set[int]]) -> list[int]:
    """Kahn's algorithm over node layers; among ready layers the earliest created goes first."""
    indegree = {i: len(deps[i]) for i in alive}
    users: dict[int, list[int]] = {i: [] for i in alive}
    for i, ds in deps.items():
        for d in ds:
            users[d].append(i)
    ready = [i for i in alive if indegree[i] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            indegree[u] -= 1
            if indegree[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(alive):  # pragma: no cover - merges never create cycles
        raise UnsupportedOpError("the node layers of this network form a cycle")
    return order


def _to_final(ids: torch.Tensor, final_of_prov: np.ndarray) -> np.ndarray:
    flat = ids.numpy()
    out = np.where(flat >= 0, final_of_prov[np.maximum(flat, 0)], -1)
    return out.astype(id_dtype(final_of_prov.size))


def _may_repeat(srcs: list[np.ndarray]) -> bool:
    """True if a source id occurs twice among the maps of one destination layer (within one map or
    across maps): only then can two edges share (src, dst). One bincount over the id range."""
    ids = np.concatenate([s[s >= 0].reshape(-1) for s in srcs])
    if ids.size == 0:
        return False
    lo = ids.min()
    return bool((np.bincount(ids - lo) > 1).any())


def encode_mge(net: TracedNetwork, model: nn.Module, masks: Mapping[str, Any] | None = None,
               identity_skips: bool = True, progress: bool = False, plan: "_Planner | None" = None) -> MultipartiteGraph:
    """The MGE of a traced network (see the module docstring; spec encoding.md).

    ``masks`` (validated; layers absent keep the model's own masks, or stay dense) decide the edges,
    the masked weights ``W ⊙ M`` give their float32 weights. ``graph.meta`` holds ``fx_nodes``
    (per node layer, the fx nodes whose values carry it: the layer call, then each add where it is
    the main operand), ``merged`` (absorbed layer -> the layer whose nodes it writes into),
    ``identity_jobs`` and ``seconds``.
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    given = validate_masks(model, masks) if masks is not None else {}
    mask_of = {name: m.numpy() for name, m in {**get_masks(model), **given}.items()}
    weight_of = {name: w.numpy() for name, w in effective_weights(model, masks).items()}

    plan = _Planner(net, identity_skips).run() if plan is None else plan
    order, offsets, final_of_prov = _resolve(plan)
    num_nodes = int(offsets[-1])
    by_layer: dict[int, list[_Job]] = {}
    for job in plan.jobs:
        by_layer.setdefault(job.dst_layer, []).append(job)

    src_parts, dst_parts, w_parts = [], [], []
    bar = tqdm(total=len(plan.jobs), desc="encode mge", unit="layer", disable=not progress, leave=False)
    for layer in order:
        jobs = by_layer.get(layer, [])
        srcs = [_to_final(j.src, final_of_prov) for j in jobs]
        parts = []
        for job, src in zip(jobs, srcs):
            weights = {} if job.param is None else {"weight": weight_of[job.param], "mask": mask_of[job.param]}
            parts.extend(EDGE_RULES[job.rule](src, _to_final(job.dst, final_of_prov), **weights, **job.geometry))
            bar.update(1)
        if parts and _may_repeat(srcs):
            parts = [merge_duplicates(*(concat_and_free([p[i] for p in parts]) for i in range(3)), num_nodes)]
        for s, d, w in parts:
            src_parts.append(s)
            dst_parts.append(d)
            w_parts.append(w)
    bar.close()
    src = concat_and_free(src_parts or [np.empty(0, np.int32)])
    dst = concat_and_free(dst_parts or [np.empty(0, np.int32)])
    weight = concat_and_free(w_parts or [np.empty(0, np.float32)])
    names = {i: plan.layers[i].name for i in order}
    meta = {
        "kind": "mge",
        "fx_nodes": tuple(tuple(plan.layers[i].points) for i in order),
        "merged": {l.name: plan.layers[l.merged_into].name for l in plan.layers if l.merged_into is not None},
        "identity_jobs": sum(j.rule == "identity" for j in plan.jobs),
        "identity_skips": identity_skips,
        "input_shape": net.input_shape,
        "seconds": time.perf_counter() - t0,
    }
    return MultipartiteGraph(src=src, dst=dst, weight=weight, num_nodes=num_nodes, layer_offsets=offsets,
                             layer_names=tuple(names[i] for i in order), meta=meta)


def count_mge(net: TracedNetwork, model: nn.Module, masks: Mapping[str, Any] | None = None,
              identity_skips: bool = True) -> tuple[int, int, _Planner]:
    """(|V|, |E|, plan) of the MGE :func:`encode_mge` would build, from the plan (node maps,
    O(|V|)) and the masks, without building an edge: the edge count is exact before duplicate
    (src, dst) pairs are merged (overlapping pooling windows), so an upper bound, exact for
    convolution / linear / identity chains. Pass the plan on to :func:`encode_mge`."""
    given = validate_masks(model, masks) if masks is not None else {}
    mask_of = {name: m.numpy() for name, m in {**get_masks(model), **given}.items()}
    plan = _Planner(net, identity_skips).run()
    nodes = sum(layer.size for layer in plan.layers if layer.merged_into is None)
    edges = 0
    for job in plan.jobs:
        extra = {} if job.param is None else {"mask": mask_of[job.param]}
        edges += EDGE_COUNTS[job.rule](job.src.numpy(), dst_shape=tuple(job.dst.shape), **extra, **job.geometry)
    return int(nodes), int(edges), plan
