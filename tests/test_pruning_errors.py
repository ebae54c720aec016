"""Bad input to sparsetopo.pruning.prune: each gives a clear sparsetopo error naming the problem."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.errors import SparsetopoError, ValidationError
from sparsetopo.models import build
from sparsetopo.pruning import PruningError, prune

torch.set_num_threads(1)


def dataset(shape=(3, 8, 8), n=64, classes=10):
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(n, *shape, generator=g), torch.randint(0, classes, (n,), generator=g))


@pytest.fixture(scope="module")
def model():
    return build("resnet20", 10, seed=0)


@pytest.mark.parametrize("sparsity", [0, 1, 1.5, -0.1, math.nan, "abc"])
def test_sparsity_outside_open_interval(model, sparsity):
    with pytest.raises(ValidationError, match="sparsity"):
        prune(model, "uniform", sparsity)


def test_unknown_pruner_lists_the_valid_ones(model):
    with pytest.raises(ValidationError, match=r"unknown pruner 'snipp'.*snip, grasp, synflow, prospr"):
        prune(model, "snipp", 0.9)


def test_model_without_prunable_layer():
    with pytest.raises(ValidationError, match="Sequential has no prunable layer"):
        prune(nn.Sequential(nn.ReLU(), nn.BatchNorm1d(3)), "erk", 0.9)


@pytest.mark.parametrize("pruner", ["snip", "grasp", "prospr"])
def test_data_driven_pruner_without_data(model, pruner):
    with pytest.raises(ValidationError, match=f"pruner '{pruner}' is data-driven"):
        prune(model, pruner, 0.9)


def test_dataset_shape_not_fitting_the_model():
    with pytest.raises(ValidationError, match=r"\(3, 8, 8\) does not fit model Conv6"):
        prune(build("conv6", 10, seed=0), "snip", 0.9, data=dataset((3, 8, 8)), batch_size=8)
    with pytest.raises(ValidationError, match=r"\(1, 8, 8\) does not fit model CifarResNet: it expects \(N, 3, H, W\)"):
        prune(build("resnet20", 10, seed=0), "grasp", 0.9, data=dataset((1, 8, 8)))
    with pytest.raises(ValidationError, match=r"does not fit model CifarResNet"):
        prune(build("resnet20", 10, seed=0), "synflow", 0.9, input_shape=(2, 8, 8))


def test_labels_outside_the_model_outputs(model):
    with pytest.raises(ValidationError, match="outside the model's 10 outputs"):
        prune(model, "snip", 0.9, data=dataset(classes=20), batch_size=32)


def test_nan_scores_name_the_layer():
    broken = build("resnet20", 10, seed=0)
    with torch.no_grad():
        broken.linear.weight[0, 0] = math.nan
    with pytest.raises(PruningError, match=r"snip produced \d+ NaN/inf score\(s\) in layer '[\w.]+weight'"):
        prune(broken, "snip", 0.9, data=dataset(), batch_size=16)
    assert issubclass(PruningError, SparsetopoError)


def test_bad_options_data_and_device(model):
    with pytest.raises(ValidationError, match="unknown option.*'batchsize'.*valid: batch_size"):
        prune(model, "snip", 0.9, data=dataset(), batchsize=3)
    with pytest.raises(ValidationError, match=r"option batch_size of pruner 'snip' must be in \[1, inf\), got 0"):
        prune(model, "snip", 0.9, data=dataset(), batch_size=0)
    with pytest.raises(ValidationError, match="yielded no batch"):
        prune(model, "snip", 0.9, data=[])
    with pytest.raises(ValidationError, match="data must be"):
        prune(model, "snip", 0.9, data=5)
    with pytest.raises(ValidationError, match="device"):
        prune(model, "erk", 0.9, device="bogus")
    with pytest.raises(ValidationError, match="keeps no weight"):
        prune(nn.Linear(3, 2), "erk", 0.95)
    with pytest.raises(ValidationError, match="input_shape"):
        prune(model, "synflow", 0.9, input_shape=(3, 0, 8))


def test_switch_options_must_be_booleans(model):
    # "false" is a truthy string: taken as is, it would silently switch Bernoulli sampling on
    with pytest.raises(ValidationError, match="bernoulli .*must be true or false, got 'false'"):
        prune(model, "erk", 0.9, bernoulli="false")
    with pytest.raises(ValidationError, match="snip_xavier_reinit"):
        prune(model, "snip", 0.9, data=dataset(), snip_xavier_reinit=1)
    with pytest.raises(ValidationError, match="detach_first_momentum"):
        prune(model, "prospr", 0.9, data=dataset(), detach_first_momentum="yes")
