"""NTK-SAP (Wang, Li, Lan, Sun & Ji 2023, "NTK-SAP: Improving Neural Network Pruning by Aligning
Training Dynamics", ICLR; reference code YiteWang/NTK-SAP, also in px-ntk-pruning). Data-free.

Saliency of the masks m for the NTK trace, estimated with finite differences of the network output
at random weights and random inputs:

    S(m) = Σ_x ‖f(x; w ⊙ m) − f(x; (w + ε·δ) ⊙ m)‖²,   score = |Σ_rounds ∂S/∂m| on kept weights

with, for every one of ``rounds`` (R = 5, ``--ntksap_R 5`` of the reference ResNet-20 script) per
iteration, freshly drawn weights w (Kaiming normal, fan_in, gain √2, "multi-sampling"), a
perturbation δ ~ N(0, 1) per weight, ε = ``epsilon`` (0.01, the reference default) and a batch of
x ~ N(0, 1) inputs of the input shape, ``samples_per_class`` × C of them (10·C, the reference's
prune-dataset ratio 10). BatchNorm: running statistics are reset and set to the batch statistics
of the unperturbed network (train-mode pass, momentum 1, no gradient); both networks are then
evaluated in eval mode with those statistics (so they are constants of the objective). Pruning is
iterative like SynFlow: ``iterations`` (T = 20, ``--prune-epochs 20``) rounds of the exponential
schedule ``floor(N·d^(t/T) + 0.5)``, the top scores among the weights still kept; exact
``n_keep`` at the end. All randomness comes from the seeded generator. Biases and BN affine
parameters keep their values (γ = 1, β = 0 at init). Cost: T·R·(3 forwards + 2 backwards) of the
batch.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from .core import MaskDict, PruneContext, ScoreDict, check_finite_scores, global_topk, gradients, weights_of
from .synflow import synflow_schedule

OPTIONS = {"iterations": 20, "rounds": 5, "epsilon": 0.01, "samples_per_class": 10}
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def kaiming_weights(model: nn.Module, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """Fresh Kaiming-normal (fan_in, gain √2) draws for every prunable weight, from ``generator``."""
    out = {}
    for name, w in weights_of(model).items():
        fan_in = math.prod(w.shape[1:])
        out[name] = (torch.randn(w.shape, generator=generator) * math.sqrt(2.0 / fan_in)).to(device, w.dtype)
    return out


def ntk_sap_gradient(model: nn.Module, weights: dict[str, torch.Tensor], deltas: dict[str, torch.Tensor],
                     masks: dict[str, torch.Tensor], x: torch.Tensor, epsilon: float) -> ScoreDict:
    """``{name: ∂S/∂m}`` of S = Σ_x ‖f(x; w ⊙ m) − f(x; (w + ε·δ) ⊙ m)‖² at the given float masks.

    BN running statistics are set from the unperturbed batch first (see module docstring).
    """
    m = {name: mask.detach().to(x.dtype).requires_grad_(True) for name, mask in masks.items()}
    norms = [module for module in model.modules() if isinstance(module, _NORMS)]
    momenta = [module.momentum for module in norms]
    with torch.no_grad():
        for module in norms:
            module.reset_running_stats()
            module.momentum = 1.0
        model.train()
        functional_call(model, {n: weights[n] * m[n] for n in m}, (x,))
    for module, momentum in zip(norms, momenta):
        module.momentum = momentum
    model.eval()
    clean = functional_call(model, {n: weights[n] * m[n] for n in m}, (x,))
    perturbed = functional_call(model, {n: (weights[n] + epsilon * deltas[n]) * m[n] for n in m}, (x,))
    objective = ((clean - perturbed) ** 2).sum()
    return dict(zip(m, gradients(objective, list(m.values()))))


def prune_ntk_sap(model: nn.Module, ctx: PruneContext) -> MaskDict:
    """NTK-SAP masks: ``iterations`` rounds of multi-sampled NTK-trace saliency, global top-k."""
    opts = ctx.options
    rounds, epsilon = int(opts["rounds"]), float(opts["epsilon"])
    samples = int(opts["samples_per_class"]) * int(ctx.num_outputs)
    weights = weights_of(model)
    for w in weights.values():
        w.requires_grad_(False)
    masks = {name: torch.ones(w.shape, dtype=torch.bool) for name, w in weights.items()}
    total = sum(w.numel() for w in weights.values())
    schedule = synflow_schedule(total, ctx.density, int(opts["iterations"]))
    for count in tqdm(schedule, desc=ctx.pruner, disable=None if ctx.progress else True, leave=False):
        summed = {name: torch.zeros(w.shape, dtype=torch.float64) for name, w in weights.items()}
        for _ in range(rounds):
            fresh = kaiming_weights(model, ctx.generator, ctx.device)
            deltas = {n: torch.randn(w.shape, generator=ctx.generator).to(ctx.device) for n, w in weights.items()}
            x = torch.randn((samples, *ctx.input_shape), generator=ctx.generator).to(ctx.device)
            device_masks = {n: m.to(ctx.device) for n, m in masks.items()}
            for name, grad in ntk_sap_gradient(model, fresh, deltas, device_masks, x, epsilon).items():
                summed[name] += grad.detach().cpu().double()
        scores = {name: summed[name].abs() for name in summed}
        check_finite_scores(scores, ctx.pruner)
        masks = global_topk(scores, count, eligible=masks)
    return masks
