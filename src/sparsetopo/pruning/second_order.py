"""Train-mode BatchNorm with a lean double backward, for the pruners that differentiate twice.

ProsPr's Hessian-vector products spend about a third of their time in torch's generic BatchNorm
double backward (``batchnorm_double_backward``: ≈ 25 full-size tensor operations per call). Within
:class:`LeanBatchNormSecondOrder`, ``F.batch_norm`` in training mode with an affine (γ, β) runs as
two small autograd functions: the forward and first backward are torch's own kernels
(``native_batch_norm``, ``native_batch_norm_backward``: identical values), the second backward
is the closed form below (≈ 12 full-size operations). Same function, same derivatives up to float
rounding; anything else (eval mode, no affine) is left to torch.

Closed form, per channel over its M = N·H·W values, with r = 1/√(σ² + ε), x̂ = (x − μ)·r:

    first backward  gx = γ·r·(gy − ā − x̂·b),  gγ = M·b,  gβ = M·ā,   ā = mean(gy), b = mean(gy·x̂)

    second backward, given (ggx, ggγ, ggβ) and S₁ = Σ ggx, S₂ = Σ ggx·x̂, G = Σ ggx·gy:
      ∂/∂gy = γr·ggx + (ggγ − γr·S₂/M)·x̂ + ggβ − γr·S₁/M
      ∂/∂γ  = r·(G − ā·S₁ − b·S₂)
      ∂/∂x  = r·c₁·gy + r·c₂·ggx + k₀ + k₁·x̂,   with c₁ = ggγ − γr·S₂/M,  c₂ = −γr·b,
              k₀ = −r·(c₁·ā + c₂·S₁/M),  k₁ = −r·(c₁·b + c₂·S₂/M) − r²·γ·(G − ā·S₁ − b·S₂)/M

(∂/∂x chains ∂x̂ᵢ/∂xⱼ = r·(δᵢⱼ − 1/M − x̂ᵢx̂ⱼ/M) and ∂r/∂xⱼ = −r²·x̂ⱼ/M; checked against torch's
double backward and by ``gradgradcheck`` in the tests.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _per_channel(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A (C,) tensor viewed to broadcast over ``like`` (N, C, ...)."""
    return t.reshape((1, -1) + (1,) * (like.dim() - 2))


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Σ over every dim but the channel dim 1, kept for broadcasting."""
    return t.sum(dim=[0, *range(2, t.dim())], keepdim=True)


class _BatchNormTrain(torch.autograd.Function):
    """``y = γ·x̂ + β`` with batch statistics (running statistics updated as torch does)."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight, mean, invstd = ctx.saved_tensors
        gx, gw, gb = _BatchNormTrainBackward.apply(gy, x, weight, mean, invstd, ctx.eps)
        return gx, gw, gb, None, None, None, None


class _BatchNormTrainBackward(torch.autograd.Function):
    """torch's first backward of train-mode BatchNorm; its own backward is the closed form."""

    @staticmethod
    def forward(ctx, gy, x, weight, mean, invstd, eps):
        ctx.save_for_backward(gy, x, weight, mean, invstd)
        return torch.ops.aten.native_batch_norm_backward(gy, x, weight, None, None, mean, invstd, True, eps,
                                                         [True, True, True])

    @staticmethod
    def backward(ctx, ggx, ggw, ggb):
        gy, x, weight, mean, invstd = ctx.saved_tensors
        count = x.numel() // x.shape[1]
        r, gamma = _per_channel(invstd, x), _per_channel(weight, x)
        ggx = torch.zeros_like(x) if ggx is None else ggx
        ggw = torch.zeros_like(r) if ggw is None else _per_channel(ggw, x)
        ggb = torch.zeros_like(r) if ggb is None else _per_channel(ggb, x)
        xhat = (x - _per_channel(mean, x)) * r
        a, b = _channel_sum(gy) / count, _channel_sum(gy * xhat) / count
        s1, s2, g = _channel_sum(ggx), _channel_sum(ggx * xhat), _channel_sum(ggx * gy)
        gr = gamma * r
        bracket = g - a * s1 - b * s2
        grad_gy = gr * ggx + (ggw - gr * s2 / count) * xhat + (ggb - gr * s1 / count)
        c1, c2 = ggw - gr * s2 / count, -gr * b
        k0 = -r * (c1 * a + c2 * s1 / count)
        k1 = -r * (c1 * b + c2 * s2 / count) - r * r * gamma * bracket / count
        grad_x = (r * c1) * gy + (r * c2) * ggx + k0 + k1 * xhat
        grad_w = (r * bracket).reshape(-1)
        return grad_gy, grad_x, grad_w, None, None, None


def _batch_norm_args(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                     eps=1e-5):
    return input, running_mean, running_var, weight, bias, training, momentum, eps


class LeanBatchNormSecondOrder(TorchFunctionMode):
    """Within this context, train-mode affine ``F.batch_norm`` has the lean double backward."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.batch_norm:
            x, running_mean, running_var, weight, bias, training, momentum, eps = _batch_norm_args(*args, **kwargs)
            if training and weight is not None and bias is not None and x.dim() >= 2:
                return _BatchNormTrain.apply(x, weight, bias, running_mean, running_var,
                                             0.0 if momentum is None else momentum, eps)
        return func(*args, **kwargs)
