"""Shared core of every pruner: keep counts, global top-k ranking, layer-wise counts, checks.

Conventions (spec models-and-pruning.md §2):

* ``d = 1 − s``; ``N`` = number of prunable weights; a global pruner keeps exactly
  ``n_keep = floor(d·N + 0.5)`` weights (float64 arithmetic).
* Ranking = sort by (score descending, global flat index ascending); the global flat index runs over
  the layers in ``named_modules()`` order, each layer flattened row-major. Ties are thus broken by
  position, deterministically.
* A layer-wise pruner keeps exactly ``k_l`` weights in layer ``l``, with ``k_l`` the largest-remainder
  rounding of the quotas ``d_l·N_l`` so that ``Σ k_l = n_keep`` and ``0 ≤ k_l ≤ N_l``; positions are
  uniform without replacement (:func:`sample_exact` with the seeded generator: a Bernoulli draft
  fixed up to the exact count, about one pass over the weights).
* Scores are ``dict[str, Tensor]`` keyed by parameter name (like masks), one tensor per prunable
  weight, of the weight's shape. NaN/inf in a score is an error naming the layer.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.overrides import TorchFunctionMode

from ..errors import SparsetopoError, ValidationError
from ..masks import prunable_modules

ScoreDict = dict[str, torch.Tensor]
MaskDict = dict[str, torch.Tensor]


class PruningError(SparsetopoError):
    """Pruning cannot produce a valid mask (e.g. NaN/inf scores); the message names the layer."""


class PruningWarning(UserWarning):
    """A pruner produced a mask that is valid but suspicious (e.g. a fully pruned layer)."""


def keep_count(density: float, total: int) -> int:
    """``n_keep = floor(d·N + 0.5)`` in float64: the exact number of weights a pruner keeps."""
    return int(math.floor(float(density) * int(total) + 0.5))


def check_finite_scores(scores: Mapping[str, torch.Tensor], pruner: str) -> None:
    """Raise :class:`PruningError` naming the first layer whose score holds NaN or inf."""
    for name, score in scores.items():
        if not bool(torch.isfinite(score).all()):
            bad = int((~torch.isfinite(score)).sum())
            raise PruningError(f"{pruner} produced {bad} NaN/inf score(s) in layer {name!r} "
                               f"(non-finite weights, data or an overflowing network?)")


def global_topk(scores: Mapping[str, torch.Tensor], n_keep: int,
                eligible: Mapping[str, torch.Tensor] | None = None) -> MaskDict:
    """Masks keeping the ``n_keep`` highest scores over all layers jointly.

    Ranking = (score descending, global flat index ascending) over the concatenated float64 scores:
    with t = the n_keep-th largest score (``kthvalue``, O(N)), every score > t is kept, then the
    lowest-index scores == t fill the remaining places — the same set as a stable descending sort.
    With ``eligible`` (bool masks), only eligible weights can be kept (``n_keep`` must not exceed
    their number). Returns CPU bool masks of the scores' shapes. Cost O(N).
    """
    names = list(scores)
    flat = torch.cat([scores[n].detach().reshape(-1).to("cpu", torch.float64) for n in names])
    if eligible is not None:
        allowed = torch.cat([eligible[n].reshape(-1).to("cpu", torch.bool) for n in names])
        if n_keep > int(allowed.sum()):
            raise ValueError(f"cannot keep {n_keep} weights among {int(allowed.sum())} eligible ones")
        flat = torch.where(allowed, flat, torch.tensor(-math.inf, dtype=torch.float64))
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if n_keep > 0:
        threshold = torch.kthvalue(flat, flat.numel() - n_keep + 1).values
        keep = flat > threshold
        ties = torch.nonzero(flat == threshold).reshape(-1)
        keep[ties[: n_keep - int(keep.sum())]] = True
    return split_flat(keep, {n: scores[n].shape for n in names})


def split_flat(flat: torch.Tensor, shapes: Mapping[str, torch.Size]) -> MaskDict:
    """Cut a flat vector (layers concatenated in order, each row-major) into tensors of ``shapes``."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = flat[start:start + size].reshape(shape).clone()
        start += size
    return out


def largest_remainder_counts(quotas: Mapping[str, float], sizes: Mapping[str, int], n_keep: int) -> dict[str, int]:
    """Integer counts ``k_l`` with ``Σ k_l = n_keep``, ``0 ≤ k_l ≤ N_l``, closest to ``quotas``.

    Largest-remainder (Hamilton) rounding: start from ``floor(quota_l)`` (clipped to [0, N_l]) and
    give the missing units one each to the layers with the largest fractional parts (ties: layer
    order); if the floors overshoot (float round-off), take units from the smallest fractional parts.
    """
    names = list(quotas)
    q = torch.tensor([float(quotas[n]) for n in names], dtype=torch.float64)
    cap = torch.tensor([int(sizes[n]) for n in names], dtype=torch.int64)
    q = torch.minimum(torch.clamp(q, min=0.0), cap.to(torch.float64))
    k = torch.floor(q).to(torch.int64)
    frac = q - k.to(torch.float64)
    missing = int(n_keep) - int(k.sum())
    if not 0 <= int(n_keep) <= int(cap.sum()):
        raise ValueError(f"n_keep={n_keep} outside [0, {int(cap.sum())}]")
    while missing != 0:
        step = 1 if missing > 0 else -1
        room = torch.nonzero((k < cap) if step > 0 else (k > 0)).reshape(-1)
        key = frac[room] if step > 0 else -frac[room]
        order = room[torch.sort(key, descending=True, stable=True).indices[: abs(missing)]]
        k[order] += step
        frac[order] -= step  # a layer gets at most one unit per pass (ranks last in the next one)
        missing -= step * order.numel()
    return {n: int(v) for n, v in zip(names, k.tolist())}


def random_layer_masks(counts: Mapping[str, int], shapes: Mapping[str, torch.Size],
                       generator: torch.Generator) -> MaskDict:
    """Per layer, ``counts[l]`` kept positions drawn uniformly without replacement.

    Layers in order, each with :func:`sample_exact`, so the masks are a function of the generator
    state (deterministic per seed). Cost: about one pass over the weights.
    """
    return {name: sample_exact(math.prod(shape), counts[name], generator).reshape(shape)
            for name, shape in shapes.items()}


#: random 64-bit words drawn per call (32 MiB), each giving four 15-bit uniforms
RAND_CHUNK = 1 << 22
#: resolution of the Bernoulli draft: p is rounded to a multiple of 2**-15 (the fix-up corrects it)
DRAFT_BITS = 15


def sample_exact(size: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """Flat bool mask of ``size`` entries with exactly ``k`` True, uniform over all k-subsets.

    Algorithm (one pass over the weights instead of a permutation of all of them):

    1. Bernoulli draft: entry i is drafted iff ``u_i < t``, the u_i i.i.d. uniform 15-bit integers
       (four per random 64-bit word, ``Tensor.random_`` with ``generator``) and
       ``t = round(p·2^15)``, ``p = k/size`` (the complement is drafted when ``k > size/2``, so the
       draft is the smaller side). The draft is exchangeable: given its size K', it is a uniform
       K'-subset.
    2. Exact fix-up: if K' > k, remove K' − k drafted entries chosen uniformly without
       replacement; if K' < k, add k − K' undrafted entries chosen uniformly without replacement
       (:func:`_first_distinct` on random draws). A uniform subset of a uniform subset, or a uniform
       subset plus a uniform extension, is again uniform, so the result is a uniform k-subset.

    |K' − k| ≲ size·2^-16 + sqrt(size·p), small next to step 1. Cost O(size) time: ~size/4 random
    words and a few vectorised passes; memory O(size) bits plus a 32 MiB buffer. The masks differ
    from the permutation-based sampler used before (both are uniform; each is deterministic per seed).
    """
    size, k = int(size), int(k)
    if not 0 <= k <= size:
        raise ValueError(f"cannot keep {k} of {size} positions")
    flip = 2 * k > size
    target = size - k if flip else k
    draft = torch.empty(size, dtype=torch.bool)
    threshold = round(target / size * (1 << DRAFT_BITS)) if size else 0
    for start in range(0, size, 4 * RAND_CHUNK):
        span = min(size - start, 4 * RAND_CHUNK)
        words = torch.empty((span + 3) // 4, dtype=torch.int64).random_(generator=generator)
        uniforms = torch.bitwise_and(words.view(torch.int16)[:span], (1 << DRAFT_BITS) - 1)
        torch.lt(uniforms, threshold, out=draft[start:start + span])
    have = int(torch.count_nonzero(draft))
    if have > target:
        _fix_up(draft, have - target, False, generator)
    elif have < target:
        _fix_up(draft, target - have, True, generator)
    return ~draft if flip else draft


def _fix_up(draft: torch.Tensor, count: int, value: bool, generator: torch.Generator) -> None:
    """Set ``count`` entries of ``draft`` that are ``not value`` to ``value``, uniformly without
    replacement: rejection sampling over all positions (expected size/|eligible| draws per pick),
    or indexing the eligible positions when they are too few for that to be cheap."""
    size = draft.numel()
    eligible = size - int(torch.count_nonzero(draft)) if value else int(torch.count_nonzero(draft))
    if 8 * count > eligible:  # rejection would cost more than ~size/8 draws
        positions = torch.nonzero(draft != value).reshape(-1)
        picks = positions[_first_distinct(lambda n: torch.randint(eligible, (n,), generator=generator), count)]
    else:
        def draw(n: int) -> torch.Tensor:
            candidates = torch.randint(size, (n * max(1, size // eligible),), generator=generator)
            return candidates[draft[candidates] != value]
        picks = _first_distinct(draw, count)
    draft[picks] = value


def _first_distinct(draw, m: int) -> torch.Tensor:
    """The first ``m`` distinct values of the stream ``draw(n)`` (n values per call), in order.

    If ``draw`` yields i.i.d. uniform values over a set S (|S| ≥ m), the first m distinct values of
    the stream form a uniform m-subset of S. Expected cost O(m) when m ≤ |S|/2 (the callers'
    case); the result is a function of the generator behind ``draw``.
    """
    chosen = torch.empty(0, dtype=torch.int64)
    while chosen.numel() < m:
        stream = torch.cat([chosen, draw(2 * (m - chosen.numel()) + 16)])
        values, inverse = torch.unique(stream, return_inverse=True)
        first = torch.full((values.numel(),), stream.numel(), dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(stream.numel()), reduce="amin")
        chosen = stream[torch.sort(first).values][:m]
    return chosen


def warn_empty_layers(masks: Mapping[str, torch.Tensor], pruner: str) -> list[str]:
    """Warn (:class:`PruningWarning`) naming every fully pruned layer; return their names."""
    empty = [name for name, m in masks.items() if not bool(m.any())]
    if empty:
        warnings.warn(f"{pruner} pruned {len(empty)} layer(s) entirely (layer collapse): {', '.join(empty)}",
                      PruningWarning, stacklevel=3)
    return empty


def expected_input(model: nn.Module) -> str:
    """Human description of what the first prunable layer of ``model`` expects as input."""
    first = next(iter(prunable_modules(model).items()), None)
    if first is None:
        return "unknown"
    name, module = first
    if isinstance(module, nn.Conv2d):
        return f"(N, {module.in_channels}, H, W) for its first conv {name!r}"
    return f"(N, {module.in_features}) for its first linear layer {name!r}"


@torch.no_grad()
def probe_forward(model: nn.Module, x: torch.Tensor, hint: str = "", train_for: str | None = None) -> int:
    """Run ``model`` once on (a few rows of) ``x``; return its number of outputs.

    Eval mode, or train mode with ``train_for`` (the name of a pruner that scores in train mode:
    some models compute more there, e.g. Inception-v3's auxiliary classifier). A RuntimeError
    becomes a :class:`ValidationError` naming the model class, the input shape and what the model
    expects. The model's mode and buffers (BN running statistics) are restored.
    """
    was_training = model.training
    buffers = {name: b.clone() for name, b in model.named_buffers()} if train_for else {}
    model.train(bool(train_for))
    try:
        out = model(x[:2])
    except RuntimeError as exc:
        said = str(exc).splitlines()[0]
        if train_for:
            raise ValidationError(
                f"model {type(model).__name__} runs in eval mode on input {tuple(x.shape[1:])} but fails in train "
                f"mode, in which {train_for!r} scores it (torch said: {said}); its train-mode forward computes "
                "more (e.g. Inception-v3's auxiliary classifier needs about 299x299 inputs): give a larger input, "
                "build it without auxiliary heads (aux_logits=False), or use a pruner that scores in eval mode "
                "(synflow, synflow_l2, phew, the random ones)") from None
        raise ValidationError(
            f"input of shape {tuple(x.shape[1:])} does not fit model {type(model).__name__}: it expects "
            f"{expected_input(model)} (torch said: {said}){hint}") from None
    finally:
        model.train(was_training)
        for name, b in model.named_buffers():
            if name in buffers:
                b.copy_(buffers[name])
    if out.ndim != 2:
        raise ValidationError(f"model {type(model).__name__} must return logits of shape (N, C), "
                              f"got {tuple(out.shape)}")
    return int(out.shape[1])


def check_labels(y: torch.Tensor, num_outputs: int) -> None:
    """Labels must be integers in ``[0, num_outputs)``; otherwise a ValidationError naming them."""
    if y.is_floating_point() or y.is_complex() or y.ndim != 1:
        raise ValidationError(f"labels must be a 1-d integer tensor, got {y.dtype} of shape {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_outputs):
        raise ValidationError(f"label {int(y.max()) if int(y.max()) >= num_outputs else int(y.min())} is "
                              f"outside the model's {num_outputs} outputs (wrong --num-classes?)")


@dataclass
class PruneContext:
    """Everything a pruner needs besides the scoring copy: the validated request.

    ``batches(batch_size)`` opens a new stream of (x, y) batches of exactly ``batch_size`` samples
    (the last one may be short), on ``device``, drawn with ``generator``; ``None`` for data-free calls.
    """

    pruner: str
    sparsity: float
    n_keep: int
    generator: torch.Generator
    device: torch.device
    input_shape: tuple[int, ...] | None
    progress: bool
    options: dict
    batches: Callable[[int], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None = None
    num_outputs: int | None = field(default=None)

    @property
    def density(self) -> float:
        """``d = 1 − s``."""
        return 1.0 - self.sparsity


def weights_of(model: nn.Module) -> dict[str, nn.Parameter]:
    """``{name: weight parameter}`` of every Conv2d/Linear of an unmasked model (scoring copies)."""
    return {name: module.weight for name, module in prunable_modules(model).items()}


def take_batches(ctx: PruneContext, batch_size: int, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``count`` batches of a fresh stream, label-checked; error if the data runs out."""
    stream = ctx.batches(batch_size)
    out = []
    for x, y in stream:
        check_labels(y, ctx.num_outputs)
        out.append((x, y))
        if len(out) == count:
            return out
    raise ValidationError(f"{ctx.pruner} needs {count} batch(es) of {batch_size} samples but the data "
                          f"provided only {len(out)}")


def gradients(outputs: torch.Tensor | list[torch.Tensor], inputs: list[torch.Tensor],
              grad_outputs: list[torch.Tensor] | None = None, create_graph: bool = False) -> list[torch.Tensor]:
    """``torch.autograd.grad(outputs, inputs, grad_outputs)`` with zeros for the inputs the outputs do
    not depend on: weights the scoring forward never uses (auxiliary classifiers whose outputs are
    dropped, branches skipped in eval mode) score 0 instead of stopping the pruner. Outputs that do
    not require grad (zero gradients of such weights, fed back for a second derivative) are skipped.
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    used = [i for i, out in enumerate(outputs) if out.requires_grad]
    seeds = None if grad_outputs is None else [grad_outputs[i] for i in used]
    grads = torch.autograd.grad([outputs[i] for i in used], inputs, grad_outputs=seeds,
                                create_graph=create_graph, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


@torch.no_grad()
def reinit_weights(model: nn.Module, init: Callable[..., torch.Tensor], generator: torch.Generator) -> None:
    """Re-sample every prunable weight of ``model`` in place with ``init(tensor, generator=...)``
    (drawn on CPU from ``generator``, layers in order, so the result is a function of the seed)."""
    for w in weights_of(model).values():
        fresh = torch.empty(w.shape)
        init(fresh, generator=generator)
        w.copy_(fresh)


class TwiceDifferentiable(TorchFunctionMode):
    """Within this context (``pruner`` names the caller in errors) two functions torch cannot
    differentiate twice run as their plain definitions (GraSP's Hg and ProsPr's meta-gradient
    differentiate twice):

    * ``F.hardsigmoid`` (module or functional; MobileNetV3's gates) as ``relu6(x + 3) / 6``;
    * scaled dot-product attention (``nn.MultiheadAttention``: vision transformers) on torch's
      math backend (``sdpa_kernel(SDPBackend.MATH)``, softmax(QKᵀ·scale)·V in plain ops) instead of
      the fused CPU kernel, which has no second derivative. The backend is chosen for the whole
      context because the attention call is nested inside ``multi_head_attention_forward``.

    Any other op without a second derivative ends in a :class:`PruningError` that says so.
    """

    def __init__(self, pruner: str = "this pruner"):
        super().__init__()
        self.pruner = pruner

    def __enter__(self):
        self._math_attention = sdpa_kernel(SDPBackend.MATH)
        self._math_attention.__enter__()
        return super().__enter__()

    def __exit__(self, kind, exc, traceback):
        try:
            super().__exit__(kind, exc, traceback)
        finally:
            self._math_attention.__exit__(kind, exc, traceback)
        said = str(exc).splitlines()[0] if isinstance(exc, RuntimeError) else ""
        if ("derivative for" in said and "not implemented" in said) or "differentiate twice" in said:
            raise PruningError(f"{self.pruner} differentiates the loss twice, but torch has no second "
                               f"derivative for an op of this model (torch said: {said}); use a first-order "
                               "pruner (snip, synflow, force, ...)") from exc
        return False

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is F.hardsigmoid:
            return F.relu6(args[0] + 3.0) / 6.0
        return func(*args, **(kwargs or {}))
