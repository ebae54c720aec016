"""Trace a network with ``torch.fx`` and propagate shapes: a list of typed ops for the encoders.

:func:`trace` runs ``torch.fx.symbolic_trace`` (with a tracer that turns a custom
``torch.autograd.Function`` into one opaque node instead of tracing through it) and
``torch.fx.passes.shape_prop.ShapeProp`` on a zero input of shape (1, C, H, W). Every fx node is
classified by a small registry (module type / function / method name -> op kind); the encoders
then hold one connectivity rule per kind. An op the registry does not know raises
:class:`~sparsetopo.errors.UnsupportedOpError` naming the fx node and its module path, before any
forward pass runs. Feature-map sizes always come from ``ShapeProp``, never from formulas.

Op kinds
--------
``input``         the network input (the only placeholder)
``conv2d``        an ``nn.Conv2d`` module call (a weighted layer)
``linear``        an ``nn.Linear`` module call (a weighted layer)
``elementwise``   keeps node identity (BatchNorm, activations, dropout, identity, ``x * const``)
``arith``         ``* / -`` with a constant: elementwise; between two traced tensors: unsupported
``add``           residual addition (``+``, ``torch.add``, ``Tensor.add``)
``pool``          max / average pooling 2-D (module or functional)
``adaptive_pool`` adaptive max / average pooling 2-D (incl. global pooling)
``reduce``        ``mean`` / ``sum`` / ``amax`` over some dims (global pooling written by hand)
``pad``           constant / reflect / replicate padding
``index``         ops that only move or select scalars (flatten, view, reshape, permute, cat,
                  chunk, slicing, ``size``, ...): the encoder applies them verbatim to node ids
``constant``      a parameter or buffer read with ``get_attr``
``output``        the graph output
"""
from __future__ import annotations

import builtins
import contextlib
import io
import operator
import sys
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from .errors import UnsupportedOpError, ValidationError
from .validation import check_input_shape

_ELEMENTWISE_MODULES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU,
    nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus, nn.PReLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity,
    # softmax couples the scalars of one row, but it has no parameters and sits on the logits;
    # like the official encoder we let it keep node identity.
    nn.Softmax, nn.LogSoftmax,
)

#: module type -> op kind (checked with isinstance, in this order)
MODULE_KINDS: tuple[tuple[type[nn.Module] | tuple[type[nn.Module], ...], str], ...] = (
    (nn.Conv2d, "conv2d"),
    (nn.Linear, "linear"),
    (_ELEMENTWISE_MODULES, "elementwise"),
    ((nn.MaxPool2d, nn.AvgPool2d), "pool"),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), "adaptive_pool"),
    ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), "pad"),
    ((nn.Flatten, nn.Unflatten), "index"),
)

#: function -> op kind
FUNCTION_KINDS: dict[Callable, str] = {
    **{f: "elementwise" for f in (
        F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.gelu, F.silu, F.hardswish, F.hardsigmoid,
        F.hardtanh, F.mish, F.softplus, F.sigmoid, F.tanh, F.dropout, F.dropout1d, F.dropout2d,
        F.batch_norm, F.softmax, F.log_softmax, torch.relu, torch.relu_, torch.sigmoid, torch.tanh,
        torch.clamp, torch.softmax, torch.log_softmax)},
    **{f: "add" for f in (operator.add, operator.iadd, torch.add)},
    **{f: "arith" for f in (operator.mul, operator.imul, operator.truediv, operator.sub,
                            operator.neg, torch.mul, torch.div, torch.sub)},
    **{f: "pool" for f in (F.max_pool2d, F.avg_pool2d, torch.max_pool2d)},
    **{f: "adaptive_pool" for f in (F.adaptive_avg_pool2d, F.adaptive_max_pool2d)},
    **{f: "reduce" for f in (torch.mean, torch.sum, torch.amax)},
    F.pad: "pad",
    **{f: "index" for f in (
        torch.flatten, torch.reshape, torch.permute, torch.transpose, torch.squeeze, torch.unsqueeze,
        torch.cat, torch.concat, torch.chunk, torch.split, operator.getitem, builtins.getattr)},
}

#: Tensor method name -> op kind
METHOD_KINDS: dict[str, str] = {
    **{m: "elementwise" for m in ("relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "clamp",
                                  "clamp_", "clamp_min", "float", "softmax", "log_softmax")},
    **{m: "add" for m in ("add", "add_", "__add__", "__radd__", "__iadd__")},
    **{m: "arith" for m in ("mul", "mul_", "div", "div_", "sub", "sub_", "__mul__", "__rmul__",
                            "__truediv__", "neg")},
    **{m: "reduce" for m in ("mean", "sum", "amax")},
    **{m: "index" for m in ("view", "reshape", "flatten", "permute", "transpose", "contiguous",
                            "squeeze", "unsqueeze", "chunk", "split", "size", "dim", "unflatten")},
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
    """A traced model: its ops in topological order, the fx module and the number of users."""

    ops: tuple[TracedOp, ...]
    graph_module: fx.GraphModule = field(repr=False)
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
        with tracer.opaque_autograd_functions():
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


def _kind(node: fx.Node, gm: fx.GraphModule) -> str:
    """The op kind of ``node``; raises :class:`UnsupportedOpError` for an unknown op."""
    if node.op in ("placeholder", "output", "get_attr"):
        return {"placeholder": "input", "output": "output", "get_attr": "constant"}[node.op]
    if node.op == "call_module":
        module = gm.get_submodule(str(node.target))
        for types, kind in MODULE_KINDS:
            if isinstance(module, types):
                return kind
        what = f"module of type {type(module).__name__}"
    elif node.op == "call_function":
        kind = FUNCTION_KINDS.get(node.target)
        if kind is not None:
            return kind
        what = f"function {_target_name(node)}"
    else:
        kind = METHOD_KINDS.get(str(node.target))
        if kind is not None:
            return kind
        what = f"tensor method .{node.target}()"
    raise UnsupportedOpError(
        f"unsupported op at fx node {node.name!r} (module {_module_path(node) or '<top>'!r}): {what}; "
        "the encoder knows Conv2d, Linear, BatchNorm, activations, pooling, padding, reshapes, "
        "concatenation and additions")


def _traced_shape(node: fx.Node) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta")
    return tuple(int(s) for s in meta.shape) if hasattr(meta, "shape") else None


class _ShapeProp(ShapeProp):
    """``ShapeProp`` that remembers the fx node it is running (for the error message)."""

    current: fx.Node | None = None

    def run_node(self, n: fx.Node):
        self.current = n
        return super().run_node(n)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield
    finally:
        for m, training in modes.items():
            m.training = training


def trace(model: nn.Module, input_shape) -> TracedNetwork:
    """Trace ``model`` for an input of shape ``input_shape`` = (C, H, W) and classify its ops.

    The forward pass for shapes runs in eval mode on a zero batch of one (train / eval flags are
    restored afterwards; the model's parameters and buffers are not changed).

    Raises :class:`UnsupportedOpError` (fx cannot trace the model, or an op of unknown kind,
    naming the fx node and module path) and :class:`ValidationError` (the forward pass fails at
    this input shape).
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
    with torch.no_grad(), _eval_mode(gm):
        try:
            with contextlib.redirect_stderr(captured):
                prop.propagate(torch.zeros((1, *input_shape), **like))
        except Exception as exc:
            cause = exc.__cause__ or exc
            where = (f" at fx node {prop.current.name!r} (module {_module_path(prop.current) or '<top>'!r})"
                     if prop.current is not None else "")
            raise ValidationError(f"the forward pass fails for input shape {input_shape}{where}: "
                                  f"{type(cause).__name__}: {cause}") from exc
    if captured.getvalue():
        sys.stderr.write(captured.getvalue())
    ops = tuple(
        TracedOp(name=n.name, kind=kinds[n], node=n, module_path=_module_path(n),
                 module=gm.get_submodule(str(n.target)) if n.op == "call_module" else None,
                 shape=_traced_shape(n), inputs=tuple(a.name for a in n.all_input_nodes))
        for n in nodes)
    return TracedNetwork(ops=ops, graph_module=gm, input_shape=input_shape,
                         num_users={n.name: len(n.users) for n in nodes})
