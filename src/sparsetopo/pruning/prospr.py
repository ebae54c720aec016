"""ProsPr (Alizadeh et al. 2022): prune by the meta-gradient through a few steps of training.

Spec models-and-pruning.md §2. Copy in train mode. Masks m = 1 on every prunable weight; fast
parameters θ⁰ = (w ⊙ m for prunable weights, copies of every other trainable parameter: biases,
BN γ/β). ``inner_steps`` (3) steps of SGD (``lr`` 0.5, ``momentum`` 0.9, no dampening, no weight
decay, first momentum buffer = gradient) on the cross-entropy of batches 1..3, keeping the graph
(``create_graph=True``); meta-loss = cross-entropy of θ³ on batch 4. Score = |∂L_meta/∂m| (full
second order), global top-``n_keep``. Batches: ``batch_size`` (512) samples each, from one fresh
shuffled, augmented stream. Layers pruned entirely are reported by a warning, not an error.
``detach_first_momentum=True`` reproduces the official/mil-ad functional SGD, whose first momentum
buffer is ``clone(grad).detach()`` (with momentum ≠ 0 this drops the second-order term of the first
inner step from the meta-gradient); default False = the full second-order meta-gradient.
Cost: (inner_steps + 1) forward/backward passes + inner_steps recomputed second-order passes and
Hessian-vector products, computed step by step (adjoint method, :func:`prospr_scores`): memory ~ one batch's second-order graph.
The second derivatives of train-mode BatchNorm, convolutions and ReLU are the lean ones of
:mod:`.second_order` (a Hessian-vector product in ≈ 2/3 of torch's generic time, same values up to
float rounding), and the C heap is trimmed before each second-order pass (:func:`release_free_heap`).
ResNet-20, batch 512, 2 cores: ≈ 27 s, peak RSS ≈ 2.5 GB (``benchmarks/prune.py``).
"""
from __future__ import annotations

import ctypes

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .core import (MaskDict, PruneContext, ScoreDict, TwiceDifferentiable, check_finite_scores, global_topk,
                   gradients, take_batches, weights_of)
from .second_order import LeanSecondOrder

OPTIONS = {"batch_size": 512, "inner_steps": 3, "lr": 0.5, "momentum": 0.9, "detach_first_momentum": False}


def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_heap() -> None:
    """Hand the C heap's free pages back to the OS (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Why: CPU tensors come from malloc, and glibc keeps the freed chunks of the previous pass
    resident (fragmented among live ones), so each second-order pass would start on top of the
    last one's leftovers. Trimming before each recomputed pass and each Hessian-vector product lowers
    ProsPr's peak RSS on ResNet-20 (batch 512, 2 cores) from ≈ 3.0 GB to ≈ 2.5 GB for ≈ 1–2 s of
    page faults (≈ 27 s in all). A process-wide malloc setting instead would cost everyone: a 4 MB
    mmap threshold gives ≈ 2.2 GB but ≈ 1.45× the time (every large tensor page-faults afresh), no
    mmap at all gives ≈ 0.8× the time but ≈ 4 GB. CUDA memory is unaffected (torch's caching allocator).
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def prospr_scores(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], lr: float,
                  momentum: float, progress: bool = False, detach_first_momentum: bool = False) -> ScoreDict:
    """``{name: |∂L_meta/∂m|}``: SGD with momentum on ``batches[:-1]``, meta-loss on ``batches[-1]``.

    Exact reverse-mode differentiation of the unrolled inner loop, one step at a time (adjoint
    method with recomputation) instead of one autograd graph over all steps:

    forward   θ_{t+1} = θ_t − lr·v_{t+1},  v_{t+1} = μ·v_t + g_t(θ_t),  v_0 = 0  (only θ_t, v_t kept)
    backward  θ̄_T = ∇L_meta(θ_T);  for t = T−1 … 0:  v̄_{t+1} += −lr·θ̄_{t+1};
              θ̄_t = θ̄_{t+1} + H_t(θ_t)·v̄_{t+1};  v̄_t = μ·v̄_{t+1}
    score     ∂L_meta/∂m = θ̄_0 ⊙ w  (θ_0 = w ⊙ m at m = 1)

    H_t·v is a Hessian-vector product of batch t's loss (double backward through that batch
    only), so memory holds one batch's second-order graph instead of all of them; the result is
    the same meta-gradient up to float rounding (summation order). Cost: T + 1 first-order
    forward/backward passes, then per inner step one recomputed forward/backward with its graph
    and one Hessian-vector product. Every step is recomputed, the last one included: keeping the
    last step's graph from the forward sweep would save one pass (≈ 5 % of the time) but hold it
    during the meta-gradient's pass (ResNet-20, batch 512, measured with torch's generic second
    derivatives: peak ≈ 3.3 GB instead of ≈ 3.0 GB).
    """
    weights = weights_of(model)
    start = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad}
    names = list(start)
    *inner, (x_meta, y_meta) = batches

    def loss_grad(theta: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, create_graph: bool):
        leaves = {n: t.detach().requires_grad_(True) for n, t in theta.items()}
        loss = F.cross_entropy(functional_call(model, leaves, (x,)), y)
        return leaves, gradients(loss, [leaves[n] for n in names], create_graph=create_graph)

    thetas, velocity = [start], None
    for x, y in tqdm(inner, desc="prospr", disable=None if progress else True, leave=False):
        _, grads = loss_grad(thetas[-1], x, y, False)
        velocity = grads if velocity is None else [momentum * v + g for v, g in zip(velocity, grads)]
        thetas.append({n: thetas[-1][n] - lr * v for n, v in zip(names, velocity)})
    _, adj_theta = loss_grad(thetas[-1], x_meta, y_meta, False)
    adj_theta = list(adj_theta)
    adj_v = [torch.zeros_like(a) for a in adj_theta]
    for t in reversed(range(len(inner))):
        adj_v = [v - lr * a for v, a in zip(adj_v, adj_theta)]
        if not (t == 0 and detach_first_momentum and momentum):  # official: v_1 = grad.detach()
            release_free_heap()
            leaves, grads = loss_grad(thetas[t], *inner[t], True)  # recomputed: one such graph alive
            release_free_heap()
            hvp = gradients(grads, [leaves[n] for n in names], grad_outputs=adj_v)
            adj_theta = [a + h for a, h in zip(adj_theta, hvp)]
        adj_v = [momentum * v for v in adj_v]
    adjoint = dict(zip(names, adj_theta))
    return {name: (adjoint[name] * w.detach()).abs() for name, w in weights.items()}


def prune_prospr(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """ProsPr masks: score by the meta-gradient w.r.t. the masks, keep the global top ``n_keep``."""
    opts = ctx.options
    batches = take_batches(ctx, int(opts["batch_size"]), int(opts["inner_steps"]) + 1)
    model.train()
    with TwiceDifferentiable(ctx.pruner), LeanSecondOrder():
        scores = prospr_scores(model, batches, float(opts["lr"]), float(opts["momentum"]), ctx.progress,
                               bool(opts["detach_first_momentum"]))
    check_finite_scores(scores, ctx.pruner)
    return global_topk(scores, ctx.n_keep)
