"""GraSP (Wang et al. 2020): gradient-signal preservation, score −w ⊙ Hg; remove the largest.

Spec models-and-pruning.md §2. Copy in train mode. Data: batches of ``batch_size`` (128) from the
shuffled, augmented stream, taking the first ``samples_per_class`` (25) samples of each class in
arrival order; samples are stacked by class (class 0 first) and split into the halves [0, M/2) and
[M/2, M) (class-disjoint). ``num_iters`` (1) such collections, each from a fresh stream. With
L_h = CE(model(x_h) / T, y_h), T = ``temperature`` (200):

    g  = Σ_h ∇_w L_h                       (detached)
    Hg = Σ_h ∇_w ⟨g, ∇_w L_h⟩              (double backward through each half's own forward)
    score = −w ⊙ Hg;  keep the n_keep smallest scores (= remove the s·N largest).

``reinit="official"`` re-samples every conv/linear weight of the scoring copy with Kaiming normal
(fan_in) from the seeded generator first, as the authors' release does (default ``False``: score the
real init). ``chunk_size`` bounds memory by running each half in chunks of at most that many
samples (each chunk's loss weighted by its share of the half, so the sums are unchanged) — but BN
then normalises with per-chunk batch statistics, so the scores are NOT those of whole halves. Cost: 2·num_iters forward/backward passes plus as many double-backward passes over M/2
samples each.
"""
from __future__ import annotations

import warnings
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ValidationError
from ..validation import check_scalar
from .core import (MaskDict, PruneContext, PruningWarning, ScoreDict, check_finite_scores, check_labels,
                   TwiceDifferentiable, global_topk, gradients, reinit_weights, weights_of)

OPTIONS = {"samples_per_class": 25, "num_iters": 1, "temperature": 200.0, "batch_size": 128, "reinit": False,
           "chunk_size": None}
#: consecutive batches that add no sample before collection gives up on missing classes
PATIENCE = 100


def collect_per_class(batches, num_classes: int, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First ``per_class`` samples of each class in arrival order, stacked by class (class 0 first).

    Stops when every class is full, the stream ends, or ``PATIENCE`` batches in a row add nothing
    (then missing classes are reported with a :class:`PruningWarning`).
    """
    xs: list[torch.Tensor] = []
    ys: list[torch.Tensor] = []
    counts = torch.zeros(num_classes, dtype=torch.int64)
    idle = 0
    for x, y in batches:
        check_labels(y, num_classes)
        y_cpu = y.cpu()
        onehot = F.one_hot(y_cpu, num_classes)
        rank = (onehot.cumsum(0) * onehot).sum(1) - 1 + counts[y_cpu]  # arrival rank within its class
        take = rank < per_class
        if bool(take.any()):
            xs.append(x[take.to(x.device)])
            ys.append(y[take.to(y.device)])
            counts += torch.bincount(y_cpu[take], minlength=num_classes)
            idle = 0
        else:
            idle += 1
        if bool((counts >= per_class).all()) or idle >= PATIENCE:
            break
    if not xs:
        raise ValidationError("GraSP: the data yielded no samples")
    short = [c for c in range(num_classes) if counts[c] < per_class]
    if short:
        warnings.warn(f"GraSP: {len(short)} class(es) have fewer than {per_class} samples in the data "
                      f"(e.g. class {short[0]}: {int(counts[short[0]])})", PruningWarning, stacklevel=2)
    x_all, y_all = torch.cat(xs), torch.cat(ys)
    order = torch.sort(y_all.cpu(), stable=True).indices.to(y_all.device)
    return x_all[order], y_all[order]


def grasp_scores(model: nn.Module, halves: list[tuple[torch.Tensor, torch.Tensor]], temperature: float,
                 chunk_size: int | None = None) -> ScoreDict:
    """``{name: −w ⊙ Hg}`` over the given halves (model used in its current mode).

    With ``chunk_size`` each half's mean loss is the size-weighted sum of its chunks' mean losses.
    """
    weights = weights_of(model)
    params = list(weights.values())
    pieces = [piece for x, y in halves for piece in _chunks(x, y, chunk_size or len(x))]

    def piece_loss(x: torch.Tensor, y: torch.Tensor, share: float) -> torch.Tensor:
        return F.cross_entropy(model(x) / temperature, y) * share

    g = [torch.zeros_like(p) for p in params]
    for piece in pieces:
        for acc, grad in zip(g, gradients(piece_loss(*piece), params)):
            acc += grad
    hg = [torch.zeros_like(p) for p in params]
    for piece in pieces:
        grads = gradients(piece_loss(*piece), params, create_graph=True)
        inner = sum((gi * fi).sum() for gi, fi in zip(g, grads))
        for acc, grad in zip(hg, gradients(inner, params)):
            acc += grad
    return {name: -w.detach() * h for (name, w), h in zip(weights.items(), hg)}


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """(x_c, y_c, len(x_c)/len(x)) for consecutive chunks of at most ``size`` samples."""
    return [(x[i:i + size], y[i:i + size], min(size, len(x) - i) / len(x)) for i in range(0, len(x), size)]


def prune_grasp(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """GraSP masks: keep the ``n_keep`` smallest −w ⊙ Hg (ranked as the largest w ⊙ Hg)."""
    opts = ctx.options
    if opts["reinit"] not in (False, None, "official"):
        raise ValidationError(f"GraSP option reinit must be False or 'official', got {opts['reinit']!r}")
    if opts["reinit"] == "official":
        reinit_weights(model, partial(nn.init.kaiming_normal_, mode="fan_in", nonlinearity="relu"), ctx.generator)
    model.train()
    halves = []
    for _ in range(int(opts["num_iters"])):
        x, y = collect_per_class(ctx.batches(int(opts["batch_size"])), ctx.num_outputs,
                                 int(opts["samples_per_class"]))
        half = x.shape[0] // 2
        halves += [(x[:half], y[:half]), (x[half:], y[half:])]
    chunk = opts["chunk_size"]
    if chunk is not None:
        chunk = check_scalar(chunk, "GraSP option chunk_size (or None)", int, min_val=1)
    with TwiceDifferentiable(ctx.pruner):
        scores = grasp_scores(model, [h for h in halves if h[0].shape[0]], float(opts["temperature"]), chunk)
    check_finite_scores(scores, ctx.pruner)
    return global_topk({name: -s for name, s in scores.items()}, ctx.n_keep)
