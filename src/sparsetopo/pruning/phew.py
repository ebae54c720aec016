"""PHEW, Paths with Higher Edge Weights (Patil & Dovrolis 2021, "PHEW: Constructing Sparse Networks
that Learn Fast and Generalize Well without Training Data", ICML; reference code
ShreyasMalakarjunPatil/PHEW). Data-free: the mask is the union of biased random walks.

Units are channels (conv) or features (linear). For a prunable layer with weights w (C_out, C_in,
kh, kw) or (out, in), a step from input unit i goes to output unit j with probability
∝ Σ_k |w[j, i, k]| and within that kernel picks the tap k ∝ |w[j, i, k]| (backward steps: from j
to i with probability ∝ the same kernel sums); the weight w[j, i, k] is kept. Walks alternate:

* forward, from an input channel chosen round-robin, layer to layer until a layer whose output
  nobody reads (the classifier);
* backward, from a classifier output chosen round-robin, back to the input.

Between layers a unit keeps its index through normalisation, activations, pooling and residual
additions, and moves up by the preceding operands' channels through a channel concatenation
(DenseNet, Inception); where a tensor feeds several layers (a residual stream) or a layer reads a
sum of several (residual add) the next layer is chosen uniformly, as the reference does between a
block and its shortcut (backward through a concatenation: the operand that holds the unit); a
flatten maps channel c to a uniformly chosen feature of its block. Walks are
added until exactly ``n_keep = floor(d·N + 0.5)`` weights are kept: the last walk is cut at the
budget, so it alone may stop short of the output. Walks are channel-level paths; in the unrolled
network they are input→output paths as long as the feature maps are larger than the run of
same-direction tap offsets along the walk (true on 32×32 CIFAR inputs; tiny maps can break it). If ``max_walks`` (default: no limit) walks do
not reach the budget, or the walks stall (the last 1,000 walks added fewer than 50 new weights: at
low sparsity small weights are rarely walked), the rest is filled with the largest |w| not yet
kept and a :class:`PruningWarning` says so. The connectivity comes from a
``torch.fx`` trace (:mod:`sparsetopo.tracing`); ops that change the channel index otherwise
(channel padding of ResNet option-A shortcuts, channel shuffles and permutes, reshapes other than
a flatten) are a :class:`~sparsetopo.errors.UnsupportedOpError`. Grouped / depthwise convolutions
join each unit to its group only; a product of two tensors with the same channels (squeeze-
excitation gating) is a join like a residual add: a walk reaches or leaves it through either
operand (the gate's layers included). All randomness from the seeded
generator. Cost: O(walks × depth) Python steps, each an inverse-CDF draw.
"""
from __future__ import annotations

import bisect
import math
import random
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UnsupportedOpError
from ..tracing import trace
from .core import MaskDict, PruneContext, PruningWarning, global_topk, weights_of

OPTIONS = {"max_walks": None}
_PASS_KINDS = ("elementwise", "pool", "adaptive_pool", "reduce", "arith", "pad", "index")
INPUT = "input"


@dataclass
class LayerGraph:
    """Which layers (or the input) feed each prunable layer, with the flatten factor and the
    concatenation offset of the link.

    ``sources[B]`` = [(A, f, o)]: input unit u of B, for o ≤ u < o + f·(units of A), is output unit
    (u − o) // f of A. ``consumers[A]`` = the reverse links (B, f, o). ``outputs`` = the layers whose
    output reaches the network output.
    """

    sources: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    consumers: dict[str, list[tuple[str, int, int]]] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    input_channels: int = 0
    groups: dict[str, int] = field(default_factory=dict)


def layer_graph(model: nn.Module, input_shape: tuple[int, ...]) -> LayerGraph:
    """The unit-level connectivity between prunable layers, from a ``torch.fx`` trace."""
    net = trace(model, input_shape)
    shapes = {op.name: op.shape for op in net}
    links: dict[str, list[tuple[str, int]]] = {}
    graph = LayerGraph(input_channels=int(input_shape[0]))
    for op in net:
        tensors = [name for name in op.inputs if name in links]
        if op.kind == "input":
            links[op.name] = [(INPUT, 1, 0)]
        elif op.kind in ("conv2d", "linear"):
            graph.sources[op.param_name] = links[tensors[0]]
            graph.groups[op.param_name] = int(getattr(op.module, "groups", 1))
            links[op.name] = [(op.param_name, 1, 0)]
        elif op.kind == "arith" and len(tensors) > 1:
            links[op.name] = _gate_links(op, [shapes[name] for name in tensors], [links[name] for name in tensors])
        elif op.kind == "add":
            links[op.name] = [link for name in tensors for link in links[name]]
        elif op.node.target in (torch.cat, torch.concat) and tensors:
            links[op.name] = _concat_links(op, shapes, links)
        elif op.kind in _PASS_KINDS and tensors:
            links[op.name] = _pass_through(op, shapes[tensors[0]], shapes[op.name], links[tensors[0]])
        elif op.kind in ("constant", "value"):
            continue  # normalisation statistics and Python sizes carry no units
        elif op.kind == "output":
            graph.outputs = [name for name, *_ in links[tensors[0]] if name != INPUT]
        elif tensors:
            raise UnsupportedOpError(f"phew: op {op.name!r} (module {op.module_path or '<top>'!r}) of kind "
                                     f"{op.kind!r} has no unit-level rule")
    for layer, sources in graph.sources.items():
        for source, factor, offset in sources:
            graph.consumers.setdefault(source, []).append((layer, factor, offset))
    return graph


def _gate_links(op, shapes, operand_links):
    """Links through ``x * g`` of two traced tensors (squeeze-excitation): unit c of the product is
    unit c of each operand, so a walk may come from either (like a residual add). Operands whose
    channels differ from the product's (a one-channel spatial gate) have no unit-level rule."""
    channels = {shape[1] if shape is not None and len(shape) > 1 else None for shape in shapes}
    if len(channels) != 1 or None in channels:
        raise UnsupportedOpError(f"phew: op {op.name!r} (module {op.module_path or '<top>'!r}) combines tensors "
                                 f"of shapes {shapes}: PHEW follows a unit through a product only when both "
                                 "operands have its channels")
    return [link for links in operand_links for link in links]


def _concat_links(op, shapes, links):
    """Links through a channel concatenation (DenseNet, Inception): the k-th operand's units move up
    by the channels of the operands before it."""
    parts = op.node.args[0]
    dim = op.node.kwargs.get("dim", op.node.args[1] if len(op.node.args) > 1 else 0)
    rank = len(shapes[op.name])
    if dim % rank != 1 or any(getattr(part, "name", None) not in links for part in parts):
        raise UnsupportedOpError(f"phew: op {op.name!r} (module {op.module_path or '<top>'!r}) concatenates along "
                                 f"dim {dim} or with constants; PHEW follows units only through channel concatenation")
    out, offset = [], 0
    for part in parts:
        out += [(source, f, o + offset) for source, f, o in links[part.name]]
        offset += shapes[part.name][1]
    return out


def _pass_through(op, before, after, links):
    """Links through an op that keeps the unit index (or flattens channel blocks into features)."""
    if before is None or after is None or after[1] == before[1]:
        return links  # same channels: normalisation, activation, pooling, global pooling, squeeze
    if len(before) == 4 and len(after) == 2 and after[1] == math.prod(before[1:]):
        factor = before[2] * before[3]
        return [(source, f * factor, o * factor) for source, f, o in links]
    raise UnsupportedOpError(f"phew: op {op.name!r} (module {op.module_path or '<top>'!r}, {op.kind}) changes the "
                             f"unit index ({before} -> {after}); PHEW follows channels only through ops that keep "
                             "them or flatten them")


class _Walker:
    """Samples PHEW steps layer by layer: inverse-CDF draws (``bisect``) on cumulative |w| sums,
    built lazily per row, from one ``random.Random`` seeded by the torch generator."""

    def __init__(self, weights: dict[str, torch.Tensor], groups: dict[str, int], generator: torch.Generator):
        self.rng = random.Random(int(torch.randint(2 ** 62, (1,), generator=generator)))
        self.kernels = {n: w.detach().abs().double().reshape(w.shape[0], w.shape[1], -1).cpu()
                        for n, w in weights.items()}  # (out, in / groups, taps)
        self.sums = {n: _unit_sums(k.sum(-1), groups.get(n, 1)) for n, k in self.kernels.items()}  # (out, in)
        self.cache: dict[tuple, list[float]] = {}

    def _pick(self, key: tuple, row: torch.Tensor) -> int:
        cumulative = self.cache.get(key)
        if cumulative is None:
            cumulative = self.cache[key] = torch.cumsum(row, 0).tolist()
        if cumulative[-1] <= 0:
            return self.rng.randrange(len(cumulative))
        return min(bisect.bisect_right(cumulative, self.rng.random() * cumulative[-1]), len(cumulative) - 1)

    def forward(self, layer: str, i: int) -> tuple[int, int]:
        """(output unit j, tap k) of a step from input unit ``i``."""
        j = self._pick(("f", layer, i), self.sums[layer][:, i])
        return j, self._tap(layer, j, i)

    def backward(self, layer: str, j: int) -> tuple[int, int]:
        """(input unit i, tap k) of a step from output unit ``j``."""
        i = self._pick(("b", layer, j), self.sums[layer][j])
        return i, self._tap(layer, j, i)

    def _tap(self, layer: str, j: int, i: int) -> int:
        """Tap k ∝ |w[j, i, k]| (input unit i sits at i mod (in / groups) in a grouped kernel)."""
        kernel = self.kernels[layer]
        return self._pick(("k", layer, j, i), kernel[j, i % kernel.shape[1]])


def _unit_sums(sums: torch.Tensor, groups: int) -> torch.Tensor:
    """(out, in) unit-to-unit weights of a layer from its (out, in / groups) kernel sums: a grouped
    convolution joins output j only to the inputs of j's group (zeros elsewhere: never drawn)."""
    if groups == 1:
        return sums
    out, per_group = sums.shape
    full = torch.zeros(out, per_group * groups, dtype=sums.dtype)
    first = (torch.arange(out) // (out // groups)) * per_group  # first input unit of each row's group
    full[torch.arange(out)[:, None], first[:, None] + torch.arange(per_group)] = sums
    return full


def phew_walks(model: nn.Module, input_shape: tuple[int, ...], n_keep: int, generator: torch.Generator,
               max_walks: int | None = None, record: list | None = None) -> MaskDict:
    """PHEW masks keeping at most ``n_keep`` weights by walks alone (module docstring).

    ``record`` (a list) receives every walk as ``(direction, [(layer, j, i, tap), ...])`` in the
    order the steps were taken (``i`` the input unit; its index in the weight is ``i mod (in / groups)``) (tests check that walks are connected input→output paths).
    """
    weights = weights_of(model)
    graph = layer_graph(model, input_shape)
    walker = _Walker(weights, graph.groups, generator)
    masks = {n: torch.zeros(w.shape[0], w.shape[1], math.prod(w.shape[2:]), dtype=torch.bool)
             for n, w in weights.items()}
    kept, walks, starts = 0, 0, {"forward": 0, "backward": 0}
    limit = max_walks if max_walks is not None else math.inf
    history = [0]  # kept after each walk, for the stall rule
    while kept < n_keep and walks < limit and not _stalled(history):
        direction = "forward" if walks % 2 == 0 else "backward"
        steps = _walk(graph, walker, direction, starts[direction])
        starts[direction] += 1
        walks += 1
        taken = []
        for layer, j, i, tap in steps:
            if kept == n_keep:
                break
            local = i % masks[layer].shape[1]  # the input's index within its group
            if not masks[layer][j, local, tap]:
                masks[layer][j, local, tap] = True
                kept += 1
            taken.append((layer, j, i, tap))
        history.append(kept)
        if record is not None:
            record.append((direction, taken))
    return {n: m.reshape(weights[n].shape) for n, m in masks.items()}


#: the walks stop when the last STALL_WINDOW walks added fewer than STALL_RATE new weights per walk
STALL_WINDOW, STALL_RATE = 1000, 0.05


def _stalled(history: list[int]) -> bool:
    return len(history) > STALL_WINDOW and history[-1] - history[-1 - STALL_WINDOW] < STALL_RATE * STALL_WINDOW


def _walk(graph: LayerGraph, walker: _Walker, direction: str, start: int) -> list[tuple[str, int, int, int]]:
    """One walk: [(layer, out unit, in unit, tap)] from the input to an output layer or back."""
    steps = []
    if direction == "forward":
        unit, layer, factor, offset = start % graph.input_channels, *walker.rng.choice(graph.consumers[INPUT])
        unit = unit * factor + walker.rng.randrange(factor) + offset
        while True:
            j, tap = walker.forward(layer, unit)
            steps.append((layer, j, unit, tap))
            if layer not in graph.consumers:
                return steps
            layer, factor, offset = walker.rng.choice(graph.consumers[layer])
            unit = j * factor + walker.rng.randrange(factor) + offset
    layer = walker.rng.choice(graph.outputs)
    unit = start % walker.sums[layer].shape[0]
    while True:
        i, tap = walker.backward(layer, unit)
        steps.append((layer, unit, i, tap))
        source, factor, offset = walker.rng.choice([link for link in graph.sources[layer]
                                                     if _covers(graph, walker, link, i)])
        if source == INPUT:
            return steps
        layer, unit = source, (i - offset) // factor


def _covers(graph: LayerGraph, walker: _Walker, link: tuple[str, int, int], unit: int) -> bool:
    """Whether input ``unit`` of a layer comes through ``link`` (all links of a residual sum do;
    of a concatenation, the one whose block holds it)."""
    source, factor, offset = link
    units = graph.input_channels if source == INPUT else walker.sums[source].shape[0]
    return offset <= unit < offset + units * factor


def prune_phew(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """PHEW masks: walks until ``n_keep`` weights are kept (then the largest |w| if walks stall)."""
    max_walks = ctx.options["max_walks"]
    masks = phew_walks(model, ctx.input_shape, ctx.n_keep, ctx.generator, max_walks)
    kept = sum(int(m.sum()) for m in masks.values())
    if kept < ctx.n_keep:
        warnings.warn(f"phew: the walks kept {kept} of {ctx.n_keep} weights; the rest are the largest |w| "
                      "not walked (low sparsity: small weights are rarely visited)", PruningWarning, stacklevel=3)
        scores = {n: w.detach().abs().cpu().double() + 2.0 * masks[n] * (1 + w.detach().abs().max().cpu())
                  for n, w in weights_of(model).items()}
        masks = global_topk(scores, ctx.n_keep)
    return masks
