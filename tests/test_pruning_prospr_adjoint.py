"""ProsPr's step-by-step adjoint meta-gradient equals the old one-graph unrolled implementation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from sparsetopo.masks import masks_digest
from sparsetopo.models import build, init_weights
from sparsetopo.pruning import prune
from sparsetopo.pruning.core import global_topk, weights_of
from sparsetopo.pruning.prospr import prospr_scores

torch.set_num_threads(1)


def unrolled_reference(model, batches, lr, momentum, detach_first_momentum=False):
    """The implementation ProsPr had before the adjoint rewrite (kept here as the reference):
    one autograd graph through all inner steps (create_graph=True), then ∂L_meta/∂m."""
    weights = weights_of(model)
    masks = {name: torch.ones_like(w, requires_grad=True) for name, w in weights.items()}
    fast = {name: p.detach().clone().requires_grad_(True) for name, p in model.named_parameters()
            if p.requires_grad and name not in weights}
    fast.update({name: w.detach() * masks[name] for name, w in weights.items()})
    names = list(fast)
    velocity = None
    *inner, (x_meta, y_meta) = batches
    for x, y in inner:
        loss = F.cross_entropy(functional_call(model, fast, (x,)), y)
        grads = torch.autograd.grad(loss, [fast[n] for n in names], create_graph=True)
        if velocity is None:
            velocity = [g.detach() for g in grads] if detach_first_momentum and momentum else list(grads)
        else:
            velocity = [momentum * v + g for v, g in zip(velocity, grads)]
        fast = {n: fast[n] - lr * v for n, v in zip(names, velocity)}
    meta_loss = F.cross_entropy(functional_call(model, fast, (x_meta,)), y_meta)
    meta_grads = torch.autograd.grad(meta_loss, list(masks.values()))
    return {name: g.abs() for name, g in zip(masks, meta_grads)}


def small_cnn() -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2),
                          nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    return init_weights(model, torch.Generator().manual_seed(0)).double().train()


@pytest.mark.parametrize("steps,momentum,detach", [(3, 0.9, False), (3, 0.9, True), (2, 0.0, False), (0, 0.9, False)])
def test_adjoint_scores_equal_the_unrolled_graph(steps, momentum, detach):
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(8, 3, 6, 6, generator=g, dtype=torch.float64), torch.randint(0, 4, (8,), generator=g))
               for _ in range(steps + 1)]
    model = small_cnn()
    for w in weights_of(model).values():
        w.requires_grad_(True)
    new = prospr_scores(model, batches, 0.5, momentum, detach_first_momentum=detach)
    old = unrolled_reference(model, batches, 0.5, momentum, detach)
    for name in old:
        assert torch.allclose(new[name], old[name], rtol=1e-9, atol=1e-12), name
    count = sum(s.numel() for s in old.values()) // 5
    assert masks_digest(global_topk(new, count)) == masks_digest(global_topk(old, count))


def test_adjoint_masks_equal_the_unrolled_graph_on_resnet20():
    """float32, spec settings (lr 0.5, momentum 0.9, 3 inner steps), small batches and input."""
    g = torch.Generator().manual_seed(2)
    batches = [(torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(4)]
    masks = prune(build("resnet20", 10, seed=0), "prospr", 0.9, data=batches, batch_size=16)
    model = build("resnet20", 10, seed=0).train()
    for w in weights_of(model).values():
        w.requires_grad_(True)
    reference = global_topk(unrolled_reference(model, batches, 0.5, 0.9), 27090)
    differing = sum(int((masks[n] ^ reference[n]).sum()) for n in masks)
    assert differing == 0


def _bn_hessian_vector(lean: bool):
    """(running mean, first derivatives, Hessian-vector products) of a train-mode BN inside a
    nonlinear loss, in float64, with or without the lean double backward."""
    from sparsetopo.pruning.second_order import LeanSecondOrder

    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 3, 4, 5, generator=g, dtype=torch.float64).requires_grad_(True)
    weight = (torch.rand(3, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    bias = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(True)
    running_mean, running_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    probe = torch.randn(6, 3, 4, 5, generator=g, dtype=torch.float64)
    vectors = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (x, weight, bias)]
    with LeanSecondOrder() if lean else torch.autograd.set_grad_enabled(True):
        y = F.batch_norm(x, running_mean, running_var, weight, bias, True, 0.1, 1e-5)
        grads = torch.autograd.grad((torch.tanh(y) * probe).sum(), [x, weight, bias], create_graph=True)
    hvp = torch.autograd.grad(grads, [x, weight, bias], grad_outputs=vectors)
    return running_mean, grads, hvp


def test_lean_batchnorm_double_backward_equals_torchs():
    """The closed-form second derivative of train-mode BN (ProsPr's Hessian-vector products) equals
    torch's generic one; first derivatives and the running-statistics update are torch's own."""
    lean_mean, lean_grads, lean_hvp = _bn_hessian_vector(True)
    torch_mean, torch_grads, torch_hvp = _bn_hessian_vector(False)
    assert all(type(g.grad_fn).__name__ == "_BatchNormTrainBackwardBackward" for g in lean_grads)  # lean path ran
    assert torch.equal(lean_mean, torch_mean) and not torch.equal(lean_mean, torch.zeros(3, dtype=torch.float64))
    for ours, theirs in zip(lean_grads, torch_grads):
        assert torch.equal(ours, theirs)
    for ours, theirs in zip(lean_hvp, torch_hvp):
        assert theirs.abs().max() > 0.1 and torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def _convolution_hessian_vector(lean: bool, dims: int, stride: int, groups: int, bias: bool, input_grad: bool):
    """(output, first derivatives, Hessian-vector products) of a convolution inside a nonlinear
    loss, in float64, with or without the lean double backward."""
    from sparsetopo.pruning.second_order import LeanSecondOrder

    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 4, *(7, 6, 5)[:dims], generator=g, dtype=torch.float64).requires_grad_(input_grad)
    weight = torch.randn(6, 4 // groups, *(3,) * dims, generator=g, dtype=torch.float64).requires_grad_(True)
    inputs = [x, weight] if input_grad else [weight]
    if bias:
        inputs.append(torch.randn(6, generator=g, dtype=torch.float64).requires_grad_(True))
    conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    with LeanSecondOrder() if lean else torch.autograd.set_grad_enabled(True):
        y = conv(x, weight, inputs[-1] if bias else None, stride=stride, padding=1, groups=groups)
        probe = torch.randn(y.shape, generator=g, dtype=torch.float64)
        grads = torch.autograd.grad((torch.tanh(y) * probe).sum(), inputs, create_graph=True)
    vectors = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in inputs]
    return y, grads, torch.autograd.grad(grads, inputs, grad_outputs=vectors)


@pytest.mark.parametrize("dims,stride,groups,bias,input_grad",
                         [(2, 2, 1, True, True), (2, 1, 2, False, True), (2, 2, 1, True, False), (1, 1, 1, True, True),
                          (3, 2, 2, False, True)])
def test_lean_convolution_double_backward_equals_torchs(dims, stride, groups, bias, input_grad):
    """The convolution's second derivative as three convolutions equals torch's generic double
    backward; the output and first derivatives are torch's own, bit for bit."""
    lean_y, lean_grads, lean_hvp = _convolution_hessian_vector(True, dims, stride, groups, bias, input_grad)
    torch_y, torch_grads, torch_hvp = _convolution_hessian_vector(False, dims, stride, groups, bias, input_grad)
    assert all(type(g.grad_fn).__name__ == "_ConvolutionBackwardBackward" for g in lean_grads)  # the lean path ran
    assert torch.equal(lean_y, torch_y)
    for ours, theirs in zip(lean_grads, torch_grads):
        assert torch.equal(ours, theirs)
    for ours, theirs in zip(lean_hvp, torch_hvp):
        assert theirs.abs().max() > 0.1 and torch.allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_lean_relu_double_backward_equals_torchs_bit_for_bit():
    """ReLU's lean second backward drops torch's all-zero term for the output: identical values."""
    from sparsetopo.pruning.second_order import LeanSecondOrder

    def hessian_vector(lean: bool):
        g = torch.Generator().manual_seed(4)
        x = torch.randn(5, 7, generator=g, dtype=torch.float64).requires_grad_(True)
        weight = torch.randn(7, 3, generator=g, dtype=torch.float64).requires_grad_(True)
        vectors = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (x, weight)]
        with LeanSecondOrder() if lean else torch.autograd.set_grad_enabled(True):
            y = F.relu(x @ weight)
            grads = torch.autograd.grad((y * torch.tanh(y)).sum(), [x, weight], create_graph=True)
        return y, grads, torch.autograd.grad(grads, [x, weight], grad_outputs=vectors)

    lean, reference = hessian_vector(True), hessian_vector(False)
    assert type(lean[0].grad_fn).__name__ == "_ReLUBackward"
    for ours, theirs in zip([lean[0], *lean[1], *lean[2]], [reference[0], *reference[1], *reference[2]]):
        assert torch.equal(ours, theirs) and theirs.abs().max() > 0.1


def test_lean_second_derivatives_pass_gradgradcheck():
    """conv → train-mode BN → ReLU under the lean mode: second derivatives against finite differences."""
    from sparsetopo.pruning.second_order import LeanSecondOrder

    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 2, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    gamma = (torch.rand(3, generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)

    def block(x, weight, gamma, beta):
        with LeanSecondOrder():
            y = F.batch_norm(F.conv2d(x, weight, stride=2, padding=1), None, None, gamma, beta, True)
            return F.relu(y)

    assert torch.autograd.gradgradcheck(block, (x, weight, gamma, beta))
