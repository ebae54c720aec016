"""Trace a network with ``torch.fx`` and propagate shapes: a list of typed ops for the encoders.

:func:`trace` runs ``torch.fx`` symbolic tracing in eval mode (with a tracer that turns a custom
``torch.autograd.Function`` into one opaque node instead of tracing through it) and
a shape pass (``ShapeProp``'s real-tensor path, :class:`_ShapeProp`) on a zero input of shape (1, C, H, W). Every fx node is
classified by a small registry (module type / function / method name -> op kind); the encoders
then hold one connectivity rule per kind. Ops that are refused by kind (attention) raise before
any forward pass; an op the registry does not know is looked at once more after ``ShapeProp``:
if it produced no tensor it is Python arithmetic on sizes (``x.size(1) // 2``) and becomes a
``value``, else :class:`~sparsetopo.errors.UnsupportedOpError` names the fx node and its module
path. Feature-map sizes always come from ``ShapeProp``, never from formulas.

Op kinds
--------
``input``         the network input (the only placeholder)
``conv2d``        an ``nn.Conv2d`` module call (a weighted layer)
``linear``        an ``nn.Linear`` module call (a weighted layer; channels-last too: it acts on
                  the last dimension, one bipartite block per leading position)
``elementwise``   keeps node identity: normalisation of any kind, activations, dropout / DropPath /
                  stochastic depth, identity, unary math, dtype casts, ``x * const``
``arith``         ``* / -`` with a constant: elementwise; ``x * g`` of two traced tensors:
                  multiplicative gating (a node layer of its own); other pairs: unsupported
``add``           residual addition (``+``, ``torch.add``, ``Tensor.add``)
``matmul``        ``@`` / ``matmul`` / ``bmm`` / ``einsum``: refused (with two traced operands it
                  is data-dependent token mixing, i.e. attention)
``attention``     ``nn.MultiheadAttention``, ``scaled_dot_product_attention``: refused
``pool``          max / average pooling 2-D (module or functional)
``adaptive_pool`` adaptive max / average pooling 2-D (incl. global pooling)
``reduce``        ``mean`` / ``sum`` / ``amax`` over some dims (global pooling written by hand)
``statistic``     ``var`` / ``std`` / ``norm``: allowed only inside a normalisation statistic (below)
``pad``           constant / reflect / replicate padding
``index``         ops that only move or select scalars (flatten, view, reshape, permute, cat,
                  chunk, slicing, expand, ...): the encoder applies them verbatim to node ids
``value``         any op whose traced result holds no tensor (``x.size()``, ``x.shape[1]``,
                  ``c // 2``): its value, recorded during ``ShapeProp`` on the batch of one
``constant``      a parameter or buffer read with ``get_attr``, or a normalisation statistic
``output``        the graph output

Normalisation written by hand (``(x - x.mean(1, keepdim=True)) / (x.var(...) + eps).sqrt()``,
the original ConvNeXt LayerNorm, a GroupNorm over ``x.view(n, g, -1)``) is normalisation of any
kind (encoding.md "Modern blocks"): its statistics couple positions but carry no prunable
connection. A *statistic* is a reduction (``reduce`` / ``statistic`` kind) or an op computed only
from statistics and constants (``eps``, ``sqrt``, ``pow``, ...) whose every use outside the
statistic combines it (``+ - * /``) with a traced tensor; statistics become ``constant`` ops, so
``x - mean`` keeps the node identity of ``x``. A reduction used any other way (global pooling
feeding a Linear, a squeeze-excitation gate through its convs) stays a ``reduce``.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import operator
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator, NamedTuple

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .errors import AttentionError, UnsupportedOpError, ValidationError
from .validation import check_input_shape

def _module_classes(namespace, exclude=()) -> tuple[type[nn.Module], ...]:
    """Every ``nn.Module`` subclass defined in ``namespace`` (a ``torch.nn.modules`` submodule),
    so activations / normalisations added by future torch releases are known without a list."""
    return tuple(c for c in vars(namespace).values()
                 if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == namespace.__name__
                 and c not in exclude and not c.__name__.startswith("_"))


def _present(namespace, names: str) -> tuple:
    """The attributes ``names`` (space separated) of ``namespace`` that this torch has."""
    return tuple(getattr(namespace, n) for n in names.split() if hasattr(namespace, n))


#: modules that keep node identity (encoding.md "Modern blocks"): normalisation of any kind (its
#: statistics couple positions but carry no prunable connection), dropout / identity (eval
#: semantics) and every activation of torch.nn except the two that are not elementwise.
#: Softmax over the logits has no parameters; like the official encoder we let it keep node
#: identity (attention is refused at its matmul, see ``attention`` below).
_ELEMENTWISE_MODULES = (
    *_module_classes(nn.modules.activation, exclude=(nn.MultiheadAttention, nn.GLU)),
    nn.modules.batchnorm._NormBase,  # BatchNorm*, SyncBatchNorm, InstanceNorm* (also lazy ones)
    *_module_classes(nn.modules.normalization),  # LayerNorm, GroupNorm, LocalResponseNorm, RMSNorm
    *_module_classes(nn.modules.dropout), nn.Identity,
)

#: module type -> op kind (checked with isinstance, in this order)
MODULE_KINDS: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], str], ...] = (
    (nn.Conv2d, "conv2d"),
    (nn.Linear, "linear"),
    (nn.MultiheadAttention, "attention"),
    (_ELEMENTWISE_MODULES, "elementwise"),
    ((nn.MaxPool2d, nn.AvgPool2d), "pool"),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "adaptive_pool"),
    ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), "pad"),
    ((nn.Flatten, nn.Unflatten), "index"),
)

#: elementwise functions of one traced tensor (activations, normalisation, dropout, unary math,
#: dtype casts), as names looked up in torch.nn.functional / torch / Tensor where present
_ELEMENTWISE_F = ("relu relu_ relu6 leaky_relu leaky_relu_ elu elu_ selu celu gelu silu mish hardswish "
                  "hardsigmoid hardtanh hardtanh_ hardshrink softshrink tanhshrink softsign softplus "
                  "logsigmoid sigmoid tanh threshold rrelu prelu dropout dropout1d dropout2d "
                  "dropout3d alpha_dropout feature_alpha_dropout batch_norm instance_norm layer_norm "
                  "group_norm local_response_norm rms_norm softmax softmin log_softmax")
_ELEMENTWISE_TORCH = ("relu relu_ sigmoid sigmoid_ tanh tanh_ clamp clamp_ clip clamp_min clamp_max abs "
                      "exp log log1p sqrt rsqrt square reciprocal erf sin cos sign nan_to_num softmax "
                      "log_softmax batch_norm layer_norm group_norm instance_norm detach")
_ELEMENTWISE_METHODS = ("relu relu_ sigmoid sigmoid_ tanh tanh_ clamp clamp_ clip clamp_min clamp_max "
                        "abs abs_ exp log sqrt rsqrt square reciprocal erf sign softmax log_softmax float "
                        "double half bfloat16 to type detach detach_ contiguous")
#: functions of optional libraries, keyed by ``module.qualname`` (no import needed): stochastic
#: depth / DropPath is the identity at inference (torchvision wraps it for fx as a leaf function)
NAMED_FUNCTION_KINDS: dict[str, str] = {
    "torchvision.ops.stochastic_depth.stochastic_depth": "elementwise",
    "timm.layers.drop.drop_path": "elementwise",
    "timm.models.layers.drop.drop_path": "elementwise",
}

#: function -> op kind
FUNCTION_KINDS: dict[Callable, str] = {
    **{f: "elementwise" for f in _present(F, _ELEMENTWISE_F) + _present(torch, _ELEMENTWISE_TORCH)},
    **{f: "add" for f in (operator.add, operator.iadd, torch.add)},
    **{f: "arith" for f in (operator.mul, operator.imul, operator.truediv, operator.itruediv, operator.sub,
                            operator.isub, operator.neg, operator.pow, torch.mul, torch.div, torch.sub,
                            torch.neg, torch.pow)},
    **{f: "matmul" for f in (operator.matmul, torch.matmul, torch.mm, torch.bmm, torch.einsum,
                             torch.baddbmm, torch.addmm)},
    **{f: "attention" for f in _present(F, "scaled_dot_product_attention multi_head_attention_forward")},
    **{f: "pool" for f in (F.max_pool2d, F.avg_pool2d, torch.max_pool2d)},
    **{f: "adaptive_pool" for f in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)},
    **{f: "reduce" for f in (torch.mean, torch.sum, torch.amax)},
    **{f: "statistic" for f in (torch.var, torch.std, torch.norm, torch.linalg.vector_norm)},
    F.pad: "pad",
    **{f: "index" for f in (
        torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.swapaxes, torch.swapdims,
        torch.movedim, torch.squeeze, torch.unsqueeze, torch.cat, torch.concat, torch.stack, torch.chunk,
        torch.split, torch.unbind, torch.narrow, torch.select, torch.roll, torch.flip, torch.tile,
        operator.getitem, builtins.getattr)},
}

#: Tensor method name -> op kind
METHOD_KINDS: dict[str, str] = {
    **{m: "elementwise" for m in _ELEMENTWISE_METHODS.split()},
    **{m: "add" for m in ("add", "add_", "__add__", "__radd__", "__iadd__")},
    **{m: "arith" for m in ("mul", "mul_", "div", "div_", "sub", "sub_", "__mul__", "__rmul__", "__imul__",
                            "__truediv__", "__itruediv__", "neg", "pow", "__pow__")},
    **{m: "matmul" for m in ("matmul", "mm", "bmm", "__matmul__", "__rmatmul__")},
    **{m: "reduce" for m in ("mean", "sum", "amax")},
    **{m: "statistic" for m in ("var", "std", "norm")},
    **{m: "index" for m in ("view", "reshape", "flatten", "permute", "transpose", "swapaxes", "swapdims",
                            "movedim", "squeeze", "unsqueeze", "chunk", "split", "unbind", "narrow",
                            "select", "roll", "flip", "expand", "expand_as", "repeat", "tile", "unflatten",
                            "view_as", "reshape_as")},
}


@dataclass(frozen=True, eq=False)
class TracedOp:
    """One fx node, classified.

    ``shape`` is the traced output shape *including* the batch dimension of 1 (``None`` for a
    non-tensor output such as ``x.size(0)``); ``inputs`` are the names of the fx nodes among the
    arguments; ``module_path`` is the called module (``call_module``) or the innermost module
    whose ``forward`` created the node (``""`` for the top level).
    """

    name: str
    kind: str
    node: fx.Node = field(repr=False)
    module_path: str
    module: nn.Module | None = field(repr=False)
    shape: tuple[int, ...] | None
    inputs: tuple[str, ...]

    @property
    def param_name(self) -> str:
        """The weight parameter name of a weighted layer (``"layer1.0.conv1.weight"``)."""
        return f"{self.module_path}.weight" if self.module_path else "weight"


@dataclass(frozen=True, eq=False)
class TracedNetwork:
    """A traced model: its ops in topological order, the input shape and each op's number of users."""

    ops: tuple[TracedOp, ...]
    input_shape: tuple[int, int, int]
    num_users: dict[str, int] = field(repr=False)

    def __iter__(self) -> Iterator[TracedOp]:
        return iter(self.ops)


def _opaque_autograd_call(function: type) -> Callable:
    """An fx call target standing for ``function.apply`` (a custom ``torch.autograd.Function``)."""
    call = _OPAQUE_CALLS.get(function)
    if call is None:
        def call(*args, **kwargs):
            return function.apply(*args, **kwargs)

        call.__name__ = call.__qualname__ = f"{function.__name__}_apply"
        call.autograd_function = function  # type: ignore[attr-defined]
        _OPAQUE_CALLS[function] = call
    return call


_OPAQUE_CALLS: dict[type, Callable] = {}


class _Tracer(fx.Tracer):
    """The default fx tracer, plus: remembers the module being traced when tracing fails (for the
    error message) and records a custom ``autograd.Function`` as one opaque node instead of
    tracing through its ``forward``."""

    def call_module(self, m, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception as exc:
            if not hasattr(exc, "sparsetopo_module_path"):
                with contextlib.suppress(AttributeError, TypeError):
                    exc.sparsetopo_module_path = self.path_of_module(m)
            raise

    @contextlib.contextmanager
    def opaque_autograd_functions(self) -> Iterator[None]:
        """Patch ``torch.autograd.Function.apply`` while tracing (restored on exit; tracing is
        not thread-safe anyway)."""
        original = torch.autograd.Function.__dict__["apply"]
        tracer = self

        def apply(cls, *args, **kwargs):
            if any(isinstance(a, fx.Proxy) for a in args):
                return tracer.create_proxy("call_function", _opaque_autograd_call(cls), args, kwargs)
            return original.__func__(cls, *args, **kwargs)

        torch.autograd.Function.apply = classmethod(apply)
        try:
            yield
        finally:
            torch.autograd.Function.apply = original


def _symbolic_trace(model: nn.Module) -> fx.GraphModule:
    tracer = _Tracer()
    try:
        with tracer.opaque_autograd_functions(), _eval_mode(model):  # eval semantics (DropPath, aux heads)
            graph = tracer.trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, NotImplementedError, ...
        last = next(reversed(tracer.graph.nodes), None) if getattr(tracer, "graph", None) is not None else None
        path = getattr(exc, "sparsetopo_module_path", "")
        node = f"past fx node {last.name!r}" if last is not None else "at its first fx node"
        raise UnsupportedOpError(
            f"torch.fx cannot trace the model {node} in module {path or '<top>'!r} "
            f"({type(exc).__name__}: {exc}); data-dependent control flow and untraceable calls "
            "are not supported") from exc
    return fx.GraphModule(tracer.root, graph)


def _module_path(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else ""


def _target_name(node: fx.Node) -> str:
    target = node.target
    if hasattr(target, "autograd_function"):
        return f"custom torch.autograd.Function {target.autograd_function.__name__}"
    return getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or str(target)


def _known_kind(node: fx.Node, gm: fx.GraphModule) -> str | None:
    """The op kind of ``node`` from the registries, or ``None`` when they do not know it."""
    if node.op in ("placeholder", "output", "get_attr"):
        return {"placeholder": "input", "output": "output", "get_attr": "constant"}[node.op]
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        return next((kind for types, kind in MODULE_KINDS if isinstance(module, types)), None)
    if node.op == "call_function":
        kind = FUNCTION_KINDS.get(node.target)
        if kind is None:
            target = node.target
            kind = NAMED_FUNCTION_KINDS.get(f"{getattr(target, '__module__', '')}.{getattr(target, '__qualname__', '')}")
        return kind
    return METHOD_KINDS.get(str(node.target))


def where(node: fx.Node) -> str:
    """``"fx node 'x' (module 'a.b')"``: how errors name an op."""
    return f"fx node {node.name!r} (module {_module_path(node) or '<top>'!r})"


ATTENTION_REASON = ("attention mixes tokens with weights computed from the data (a matmul of two traced "
                    "tensors, then softmax), so the network has no fixed edge set to encode; the MGE covers "
                    "CNNs (Conv2d / Linear layers with masks, parameter-free ops between them)")


def unsupported(node: fx.Node, gm: fx.GraphModule) -> UnsupportedOpError:
    """The error for an op the registries do not know, naming the fx node and module path."""
    if node.op == "call_module":
        what = f"module of type {type(gm.get_submodule(str(node.target))).__name__}"
    elif node.op == "call_function":
        what = f"function {_target_name(node)}"
    else:
        what = f"tensor method .{node.target}()"
    return UnsupportedOpError(
        f"unsupported op at {where(node)}: {what}; the encoder knows Conv2d, Linear, normalisation, "
        "activations, dropout / stochastic depth, pooling, padding, reshapes and permutations, "
        "concatenation, additions, multiplicative gating and Python arithmetic on sizes")


def attention_error(node: fx.Node, what: str) -> AttentionError:
    """The error for attention (or a matmul that stands for it) at ``node``."""
    return AttentionError(f"cannot encode {what} at {where(node)}: {ATTENTION_REASON}")


def _kind(node: fx.Node, gm: fx.GraphModule) -> str | None:
    """The op kind of ``node`` (``None``: unknown, decided after ShapeProp); raises
    :class:`AttentionError` at once for attention modules / functions."""
    kind = _known_kind(node, gm)
    if kind == "attention":
        what = (f"a {type(gm.get_submodule(str(node.target))).__name__} module" if node.op == "call_module"
                else f"{_target_name(node)}")
        raise attention_error(node, what)
    return kind


def _traced_shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(int(s) for s in meta.shape) if hasattr(meta, "shape") else None


VALUE_META = "sparsetopo_value"  #: fx node meta key of a recorded non-tensor result


class TensorMeta(NamedTuple):
    """What the encoder reads of a traced tensor (``node.meta["tensor_meta"]``)."""

    shape: torch.Size
    dtype: torch.dtype


class _ShapeProp(fx.Interpreter):
    """``ShapeProp``'s real-tensor path: records ``tensor_meta`` (:class:`TensorMeta`) of every
    node whose result holds a tensor, the value itself (:data:`VALUE_META`) of every other call,
    and remembers the fx node it is running (for the error message). Not ``ShapeProp`` itself:
    its ``run_node`` and its metadata (strides, memory format) import torch's symbolic-shapes
    machinery (sympy), 0.4 s of a fresh process's first encode, for fields nothing here reads."""

    current: fx.Node | None = None

    def run_node(self, n: fx.Node):
        self.current = n
        result = super().run_node(n)
        holds_tensor = False

        def metadata(value):
            nonlocal holds_tensor
            if isinstance(value, torch.Tensor):
                holds_tensor = True
                return TensorMeta(value.shape, value.dtype)
            return value

        meta = fx.node.map_aggregate(result, metadata)
        if holds_tensor:
            n.meta["tensor_meta"] = meta
        elif n.op.startswith("call"):
            n.meta[VALUE_META] = result  # no tensor inside: a size, an int, None, ...
        return result

    def propagate(self, *args):
        return self.run(*args)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


#: kinds an op may have inside a normalisation statistic, and kinds that combine one with a tensor
_STATISTIC_KINDS = ("reduce", "statistic", "elementwise", "arith", "add", "index")
_COMBINING_KINDS = ("arith", "add")
_REDUCTION_KINDS = ("reduce", "statistic")


_PRODUCT_METHODS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__"}


def is_product(node: fx.Node) -> bool:
    """Whether ``node`` multiplies (``*``, ``torch.mul``, ``Tensor.mul``): with two traced operands,
    multiplicative gating (encoding.md "Modern blocks")."""
    target = node.target
    return target in (operator.mul, operator.imul, torch.mul) or (isinstance(target, str) and target in _PRODUCT_METHODS)


def _traced_inputs(node: fx.Node, kinds: dict[fx.Node, str | None]) -> list[fx.Node]:
    """The inputs of ``node`` that hold traced tensors (not constants, statistics or Python values)."""
    return [a for a in node.all_input_nodes if kinds[a] not in ("constant", "value")]


def _statistics(nodes: list[fx.Node], kinds: dict[fx.Node, str | None]) -> set[fx.Node]:
    """The nodes that compute normalisation statistics (see the module docstring).

    Starts from every reduction and every op whose traced inputs are all statistics, then drops,
    until nothing changes, a node with a traced input that is not a statistic (reductions
    excepted) or with a use outside the statistics that is not an arithmetic combination with a
    traced tensor. Cost: O(|nodes| · rounds), rounds ≤ the nesting of statistics.
    """
    stats: set[fx.Node] = set()
    for n in nodes:  # topological order: a derived op sees its inputs' membership
        inputs = _traced_inputs(n, kinds)
        if inputs and (kinds[n] in _REDUCTION_KINDS
                       or (kinds[n] in _STATISTIC_KINDS and all(a in stats for a in inputs))):
            stats.add(n)
    changed = True
    while changed:
        changed = False
        for n in [n for n in nodes if n in stats]:
            derived_from_tensor = (kinds[n] not in _REDUCTION_KINDS
                                   and any(a not in stats for a in _traced_inputs(n, kinds)))
            bad_use = any(u not in stats and not (kinds[u] in _COMBINING_KINDS
                                                  and any(a not in stats for a in _traced_inputs(u, kinds)))
                          for u in n.users)
            if derived_from_tensor or bad_use:
                stats.discard(n)
                changed = True
    return stats


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the shape pass (restored after). A batch of one gains
    nothing from threads, and starting the pool there made a fresh process's first encode 3x
    slower (ResNet-20: 0.95 vs 0.29 s on the loaded 2-core machine)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def trace(model: nn.Module, input_shape) -> TracedNetwork:
    """Trace ``model`` for an input of shape ``input_shape`` = (C, H, W) and classify its ops.

    The forward pass for shapes runs in eval mode on a zero batch of one (train / eval flags are
    restored afterwards; the model's parameters and buffers are not changed).

    Raises :class:`UnsupportedOpError` (fx cannot trace the model, or an op of unknown kind,
    naming the fx node and module path), its subclass :class:`AttentionError` (attention, with the
    reason) and :class:`ValidationError` (the forward pass fails at this input shape).
    """
    input_shape = check_input_shape(input_shape)
    gm = _symbolic_trace(model)
    nodes = list(gm.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise UnsupportedOpError(
            f"the model's forward takes {len(placeholders)} inputs "
            f"({', '.join(n.name for n in placeholders)}); exactly one input tensor is supported")
    kinds = {n: _kind(n, gm) for n in nodes}
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    like = {"device": param.device, "dtype": param.dtype} if param is not None else {}
    prop, captured = _ShapeProp(gm), io.StringIO()
    # ShapeProp prints a full traceback to stderr before re-raising: capture stderr, drop it on
    # failure (the error below names the fx node and the original error), pass it on otherwise.
    with torch.no_grad(), _eval_mode(gm), _one_torch_thread():
        try:
            with contextlib.redirect_stderr(captured):
                prop.propagate(torch.zeros((1, *input_shape), **like))
        except Exception as exc:
            ran = nodes[:nodes.index(prop.current) + 1] if prop.current in nodes else nodes
            unknown = next((n for n in ran if kinds[n] is None and VALUE_META not in n.meta), None)
            if unknown is not None:  # an unknown tensor op ran before the failure: name it
                raise unsupported(unknown, gm) from exc
            cause = exc.__cause__ or exc
            at = f" at {where(prop.current)}" if prop.current is not None else ""
            raise ValidationError(f"the forward pass fails for input shape {input_shape}{at}: "
                                  f"{type(cause).__name__}: {cause}") from exc
    if captured.getvalue():
        sys.stderr.write(captured.getvalue())
    for n in nodes:  # results holding no tensor are Python values (sizes and arithmetic on them)
        if VALUE_META in n.meta:
            kinds[n] = "value"
        elif kinds[n] is None:
            raise unsupported(n, gm)
    statistics = _statistics(nodes, kinds)
    for n in nodes:
        if n in statistics:
            kinds[n] = "constant"
        elif kinds[n] == "statistic":
            raise UnsupportedOpError(
                f"unsupported op at {where(n)}: {_target_name(n)} is encoded only as a normalisation "
                "statistic (combined with the tensor it normalises by + - * /), not used as a feature")
    ops = tuple(
        TracedOp(name=n.name, kind=kinds[n], node=n, module_path=_module_path(n),
                 module=gm.get_submodule(str(n.target)) if n.op == "call_module" else None,
                 shape=_traced_shape(n), inputs=tuple(a.name for a in n.all_input_nodes))
        for n in nodes)
    return TracedNetwork(ops=ops, input_shape=input_shape,
                         num_users={n.name: len(n.users) for n in nodes})


def node_identity_module(model: nn.Module, input_shape) -> fx.GraphModule:
    """``model`` as an fx ``GraphModule`` (sharing its submodules) in which every op that keeps node
    identity is the identity — a traced tensor combined with constants: ``x * w + b`` (hand-written
    affine), ``x - mean`` and ``/ sqrt(var + eps)`` (normalisation statistics, see the module
    docstring), ``x / 0.25``; elementwise functions (``torch.sigmoid(x)``, ``F.relu``) — and in which
    a product of two traced tensors (gating ``x * g``) is their sum: in the MGE the product's node
    layer has edges from both operands, so a product node is reached through either one (``x·g``
    would need both). Module calls are kept as they are.

    This is the network the MGE encodes, for code that runs a forward pass to find connections
    (effective masks: a constant bias or a centring there would make dead units look alive).
    Raises what :func:`trace` raises. Cost: one trace.
    """
    net = trace(model, input_shape)
    shapes = {op.node: op.shape for op in net}
    kinds = {op.node: op.kind for op in net}
    gm = net.ops[0].node.graph.owning_module
    from_input: set[fx.Node] = set()  # nodes computed from the input (``w[:, None, None]`` is not)
    for op in net:
        if op.kind == "input" or any(a in from_input for a in op.node.all_input_nodes):
            from_input.add(op.node)
        if op.kind not in ("arith", "add", "elementwise") or op.node.op == "call_module":
            continue
        traced = [a for a in _traced_inputs(op.node, kinds) if a in from_input]
        if len(traced) == 1 and shapes[traced[0]] == op.shape:
            op.node.replace_all_uses_with(traced[0])
        elif len(traced) == 2 and op.kind == "arith" and is_product(op.node):
            with gm.graph.inserting_after(op.node):
                joined = gm.graph.call_function(operator.add, tuple(traced))
            kinds[joined], shapes[joined] = "add", op.shape  # later ops look their inputs up
            from_input.add(joined)
            op.node.replace_all_uses_with(joined)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm

