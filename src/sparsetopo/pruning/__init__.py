"""Pruning at initialization on any Conv2d/Linear net: the paper's SNIP, GraSP, SynFlow, ProsPr, Uniform,
ER, ERK and the newer SynFlow-L2, iterative SNIP, FORCE, NTK-SAP, PHEW, Uniform+, ERK+, IGQ (one module each).

>>> from sparsetopo.models import build
>>> masks = prune(build("resnet20", seed=0), "erk", 0.9, seed=0)

:func:`prune` validates the request, scores a copy of the model (``masks.clone_model``; masks already
on the model are folded into its weights), turns the scores into masks with the shared core
(:mod:`.core`: exact keep counts, stable global ranking, largest-remainder layer counts) and
attaches them to the caller's model (``masks.attach_masks``: torch's prune re-parametrisation). Random
pruners read only the layer shapes, so they skip the copy. All randomness (which samples, their
augmentation, random positions) comes from one ``torch.Generator`` seeded with ``seed``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
from torch import nn

from ..errors import ValidationError
from ..masks import attach_masks, clone_model, prunable_modules, prunable_parameters, remove_masks
from ..validation import check_choice, check_device, check_input_shape, check_scalar, check_seed, check_sparsity
from . import (erk_plus, force, grasp, igq, iter_snip, layerwise, ntk_sap, phew, prospr, snip, synflow,
               synflow_l2, uniform_plus)
from .batches import batch_stream, resolve_data
from ..effective import default_input_shape
from ..models.outputs import logits_hook
from .effective_target import count_effective, reach_effective_count
from .core import (MaskDict, PruneContext, PruningError, PruningWarning, global_topk, keep_count,
                   largest_remainder_counts, probe_forward, warn_empty_layers, weights_of)


@dataclass(frozen=True)
class PrunerSpec:
    """One pruner: its function ``(scoring copy, context) -> masks``, whether it needs data / an
    input batch, its options, whether it iterates (a progress bar in the CLI) and whether it runs
    the model in train mode (its forward is then probed in that mode too)."""

    function: Callable[[nn.Module, PruneContext], MaskDict]
    needs_data: bool
    needs_input: bool
    options: Mapping[str, Any]
    iterative: bool = False
    train_mode: bool = False


PRUNERS: dict[str, PrunerSpec] = {
    "snip": PrunerSpec(snip.prune_snip, True, True, snip.OPTIONS, train_mode=True),
    "grasp": PrunerSpec(grasp.prune_grasp, True, True, grasp.OPTIONS, train_mode=True),
    "synflow": PrunerSpec(synflow.prune_synflow, False, True, synflow.OPTIONS, iterative=True),
    "prospr": PrunerSpec(prospr.prune_prospr, True, True, prospr.OPTIONS, iterative=True, train_mode=True),
    "uniform": PrunerSpec(layerwise.make_layerwise_pruner("uniform"), False, False, layerwise.OPTIONS_UNIFORM),
    "er": PrunerSpec(layerwise.make_layerwise_pruner("er"), False, False, layerwise.OPTIONS_ER),
    "erk": PrunerSpec(layerwise.make_layerwise_pruner("erk"), False, False, layerwise.OPTIONS_ERK),
    "synflow_l2": PrunerSpec(synflow_l2.prune_synflow_l2, False, True, synflow_l2.OPTIONS, iterative=True),
    "iter_snip": PrunerSpec(iter_snip.prune_iter_snip, True, True, iter_snip.OPTIONS, iterative=True, train_mode=True),
    "force": PrunerSpec(force.prune_force, True, True, force.OPTIONS, iterative=True, train_mode=True),
    "uniform_plus": PrunerSpec(uniform_plus.prune_uniform_plus, False, False, uniform_plus.OPTIONS),
    "erk_plus": PrunerSpec(erk_plus.prune_erk_plus, False, False, erk_plus.OPTIONS),
    "igq": PrunerSpec(igq.prune_igq, False, False, igq.OPTIONS),
    "ntk_sap": PrunerSpec(ntk_sap.prune_ntk_sap, False, True, ntk_sap.OPTIONS, iterative=True, train_mode=True),
    "phew": PrunerSpec(phew.prune_phew, False, True, phew.OPTIONS),
}
PRUNER_NAMES: tuple[str, ...] = tuple(PRUNERS)
#: pruners that iterate (progress bar in the CLI)
ITERATIVE_PRUNERS: tuple[str, ...] = tuple(name for name, spec in PRUNERS.items() if spec.iterative)


def prune(model: nn.Module, pruner: str, sparsity: float, data: Any = None, seed: int = 0,
          device: str | torch.device | None = None, input_shape: tuple[int, ...] | None = None,
          progress: bool = False, data_root: str | None = None, effective: bool = False,
          **options: Any) -> MaskDict:
    """Prune ``model`` at initialization with ``pruner``; attach and return the masks.

    ``sparsity`` s ∈ (0, 1): exactly ``n_keep = floor((1 − s)·N + 0.5)`` of the N prunable weights
    (every Conv2d/Linear ``weight``) are kept. ``data`` (snip, grasp, prospr): a dataset name
    (resolved with ``sparsetopo.data.load_dataset(name, root=data_root)``, train split), a torch
    Dataset, a DataLoader or an iterable of (x, y) batches. ``input_shape`` (C, H, W) is used by
    SynFlow; by default it is taken from ``data`` if given, else (in_channels of the first conv,
    32, 32) or (in_features,) for a net starting with a Linear. ``device``: where scores are
    computed (default CPU). ``options``: per-pruner settings (``PRUNERS[name].options`` lists them
    with their spec defaults, e.g. ``batch_size``, ``samples_per_class``, ``iterations``); the
    official-code variants ``bernoulli=True`` (ER/ERK) and ``uniform_variant="per_layer"`` do not
    keep exactly ``n_keep`` weights, by definition.

    ``effective=True``: ``sparsity`` is the requested *effective* sparsity (Vysogorets & Kempe
    2023): the nominal keep count is searched (:mod:`.effective_target`) until the masks' effective
    weights (:func:`sparsetopo.effective.effective_masks`, on ``input_shape``) number exactly
    ``n_keep`` — or as close as integer counts allow; the pruner's (nominal) masks are returned, they
    keep more than ``n_keep`` weights. Costs one pruner run per search step (≈ log2 N at worst).

    Models returning ``(logits, aux_logits…)`` in train mode (torchvision's GoogLeNet, Inception-v3)
    are scored on their logits: weights of auxiliary heads, like any weight the scoring forward does
    not use, score 0, so pruners ranking a magnitude (SNIP, SynFlow, ProsPr, ...) remove them first
    (a :class:`PruningWarning` names the emptied layers); GraSP ranks them with the weights that
    leave the gradient flow unchanged.

    Returns ``{parameter name: bool mask}`` on CPU (``named_modules()`` order). The caller's model is
    changed only by attaching the masks; scoring happens on a copy. Fully pruned layers raise a
    :class:`PruningWarning`; NaN/inf scores a :class:`PruningError` naming the layer.
    """
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module (e.g. sparsetopo.models.build({model!r})), "
                              f"got {type(model).__name__}")
    check_choice(pruner, PRUNERS, "pruner")
    spec = PRUNERS[pruner]
    seed = check_seed(seed)
    sparsity = check_sparsity(sparsity)
    layers = prunable_modules(model)
    if not layers:
        raise ValidationError(f"model {type(model).__name__} has no prunable layer (Conv2d or Linear)")
    options = _check_options(pruner, spec, options)
    if spec.needs_data and data is None:
        raise ValidationError(f"pruner {pruner!r} is data-driven: pass data (a dataset name, Dataset, "
                              f"DataLoader or iterable of (x, y) batches)")
    total = sum(w.numel() for w in prunable_parameters(model).values())
    n_keep = keep_count(1.0 - sparsity, total)
    if n_keep == 0:
        raise ValidationError(f"sparsity {sparsity} keeps no weight of the {total} prunable ones")
    input_shape = _check_shape(input_shape) if input_shape is not None else None
    device = check_device(device)

    def masks_at(count: int) -> MaskDict:
        """The pruner's masks keeping ``count`` weights (nominal sparsity 1 − count/N)."""
        scoring = scoring_model(model, spec, device)
        nominal = sparsity if count == n_keep else 1.0 - count / total  # official ER's ε search is sensitive
        ctx = PruneContext(pruner, nominal, count, torch.Generator().manual_seed(int(seed)), device,
                           input_shape, bool(progress), options)
        _attach_data(ctx, scoring, spec, data, data_root, int(seed))
        masks = spec.function(scoring, ctx)
        kept = sum(int(torch.count_nonzero(m)) for m in masks.values())
        if kept != count and layerwise.exact_count(options):  # internal invariant of the core
            raise PruningError(f"{pruner} kept {kept} weights instead of {count}")
        return masks

    if effective:
        shape = input_shape or _data_shape(data, data_root, int(seed)) or default_input_shape(model)
        masks = reach_effective_count(masks_at, lambda m: count_effective(model, m, shape), n_keep, total, pruner)
    else:
        masks = masks_at(n_keep)
    masks = {name: m.to("cpu", torch.bool) for name, m in masks.items()}  # no-op for the pruners' own
    warn_empty_layers(masks, pruner)
    attach_masks(model, masks)  # the pruner's own fresh masks of the model's shapes: no re-validation
    return masks


def scoring_model(model: nn.Module, spec: PrunerSpec, device: torch.device) -> nn.Module:
    """What the pruner function gets: a mask-free copy on ``device`` with trainable weights, or — for
    a pruner that needs no input (the random ones read only the layer shapes) — ``model`` itself,
    saving a copy of every weight (134 M weights: ≈ 0.3 s and 0.5 GB). The copy returns its logits
    only (:func:`~sparsetopo.models.outputs.logits_of`): weights of auxiliary heads score 0."""
    if not spec.needs_input:
        return model
    scoring = remove_masks(clone_model(model)).to(device)
    for weight in weights_of(scoring).values():
        weight.requires_grad_(True)
    scoring.register_forward_hook(logits_hook)  # (logits, aux_logits) in train mode -> logits
    return scoring


def _data_shape(data: Any, data_root: str | None, seed: int) -> tuple[int, ...] | None:
    """Input shape (without the batch dim) of the first sample of ``data``, or None without data."""
    if data is None:
        return None
    first = next(iter(batch_stream(resolve_data(data, data_root), 1, torch.Generator().manual_seed(seed),
                                   torch.device("cpu"))), None)
    return tuple(int(v) for v in first[0].shape[1:]) if first is not None else None


def _attach_data(ctx: PruneContext, scoring: nn.Module, spec: PrunerSpec, data: Any, data_root: str | None,
                 seed: int) -> None:
    """Give ``ctx`` its batch streams, input shape and number of outputs (one probe forward)."""
    probe_x = None
    if data is not None and (spec.needs_data or (spec.needs_input and ctx.input_shape is None)):
        source = resolve_data(data, data_root)
        ctx.batches = lambda batch_size: batch_stream(source, batch_size, ctx.generator, ctx.device)
        first = next(iter(batch_stream(source, 2, torch.Generator().manual_seed(seed), ctx.device)), None)
        if first is None:
            raise ValidationError(f"pruner {ctx.pruner!r}: the data yielded no batch")
        probe_x = first[0]
        ctx.input_shape = ctx.input_shape or tuple(int(v) for v in probe_x.shape[1:])
    if spec.needs_input:
        guessed = ctx.input_shape is None
        ctx.input_shape = ctx.input_shape or default_input_shape(scoring)
        probe = probe_x if spec.needs_data else torch.zeros((2, *ctx.input_shape), device=ctx.device)
        hint = f"; the input shape {ctx.input_shape} was a guess: pass input_shape=(C, H, W)" if guessed else ""
        ctx.num_outputs = probe_forward(scoring, probe, hint)
        if spec.train_mode:
            probe_forward(scoring, probe, hint, train_for=ctx.pruner)


#: option -> (type, smallest allowed value)
OPTION_RANGES: dict[str, tuple[type, float]] = {
    "batch_size": (int, 1), "samples_per_class": (int, 1), "num_iters": (int, 1), "iterations": (int, 1),
    "inner_steps": (int, 0), "temperature": (float, 1e-12), "lr": (float, 0.0), "momentum": (float, 0.0),
    "steps": (int, 1), "num_batches": (int, 1), "rounds": (int, 1), "epsilon": (float, 1e-12),
    "max_walks": (int, 1)}
#: switches that must be real booleans (a string such as "false" would otherwise count as True)
BOOL_OPTIONS: tuple[str, ...] = ("bernoulli", "snip_xavier_reinit", "detach_first_momentum")


def _check_options(pruner: str, spec: PrunerSpec, options: Mapping[str, Any]) -> dict[str, Any]:
    """Spec defaults overridden by ``options``; unknown names and out-of-range values are errors."""
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise ValidationError(f"unknown option(s) {', '.join(map(repr, unknown))} for pruner {pruner!r}; "
                              f"valid: {', '.join(spec.options) or '(none)'}")
    merged = {**spec.options, **options}
    for name, value in options.items():
        if name in BOOL_OPTIONS:
            merged[name] = check_scalar(value, f"option {name} of pruner {pruner!r}", bool)
        if name in OPTION_RANGES:
            kind, low = OPTION_RANGES[name]
            merged[name] = check_scalar(value, f"option {name} of pruner {pruner!r}", kind, min_val=low)
    return merged


def _check_shape(shape: Any) -> tuple[int, ...]:
    """(C, H, W) via ``check_input_shape``, or (F,) for nets that start with a Linear layer."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) == 0:
        raise ValidationError(f"input_shape must be a tuple of positive ints, got {shape!r}")
    if len(shape) == 3:
        return check_input_shape(shape)
    return tuple(check_scalar(v, f"input_shape {tuple(shape)!r}: each size", int, min_val=1) for v in shape)


__all__ = ["prune", "PRUNER_NAMES", "PRUNERS", "ITERATIVE_PRUNERS", "PrunerSpec", "PruneContext",
           "PruningError", "PruningWarning", "global_topk", "keep_count", "largest_remainder_counts"]
