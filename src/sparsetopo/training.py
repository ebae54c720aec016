"""Train a (masked) network with the paper's recipe (App. A.3; spec models-and-pruning.md §3).

>>> bundle = load_dataset("digits")
>>> model = build("resnet20", bundle.num_classes, seed=0)
>>> result = train(model, bundle, Recipe.paper("resnet20", "digits").shortened(10), masks=masks, out_dir="run")

SGD (lr 0.1, momentum 0.9, no Nesterov, dampening 0, weight decay 1e-4 / 5e-4 for wrn28_2) over the
trainable parameters (frozen biases excluded), cross-entropy, MultiStepLR ×0.1 stepped once per
epoch, batch 128 shuffled, drop_last False. Masks stay fixed through the ``torch.nn.utils.prune``
re-parametrisation (weight = weight_orig ⊙ weight_mask) with ``weight_orig`` zero at pruned
positions: its gradient there is grad_w ⊙ mask = 0, so momentum and weight decay (both proportional
to the zero entry or its zero gradient) keep it exactly 0; this is checked after training.

Reproducibility: epoch e's order and augmentation come from a ``torch.Generator`` seeded from
(seed, e) alone, so a run resumed from its end-of-epoch checkpoint ends bit-identical (on CPU, or
with ``deterministic=True``) to an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from ._io import atomic_path, atomic_write_json
from .data import DATASET_NAMES, DatasetBundle, ImageArrayDataset, iterate_batches
from .errors import CheckpointError, MaskError, ValidationError
from .masks import (apply_masks, effective_weights, freeze_biases, get_masks, global_density,
                    masks_digest, prunable_modules, prunable_parameters, warn_fully_pruned)
from .models.outputs import logits_of
from .validation import check_choice, check_device, check_scalar, check_seed

CHECKPOINT_NAME = "checkpoint.pt"
RESULT_NAME = "result.json"
_CHECKPOINT_FORMAT = "sparsetopo-checkpoint/1"
_EVAL_BATCH = 512


# --------------------------------------------------------------------------------------- recipe
@dataclass(frozen=True)
class Recipe:
    """Training hyper-parameters. ``milestones``: epochs (1-based counts of finished epochs) after
    which the learning rate is multiplied by ``gamma``."""

    epochs: int = 160
    milestones: tuple[int, ...] = (80, 120)
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    nesterov: bool = False
    dampening: float = 0.0
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(check_scalar(m, "milestones", int, min_val=1)
                                                    for m in self.milestones))
        check_scalar(self.epochs, "epochs", int, min_val=1)
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValidationError(f"milestones must be increasing positive epochs, got {self.milestones!r}")
        check_scalar(self.batch_size, "batch_size", int, min_val=1)
        for name in ("lr", "momentum", "weight_decay", "dampening", "gamma"):
            value = check_scalar(getattr(self, name), name, float, min_val=0.0,
                                 include_boundaries="right" if name == "lr" else "both")
            if not math.isfinite(value):
                raise ValidationError(f"{name} must be a finite number, got {value!r}")

    @classmethod
    def paper(cls, model_name: str, dataset_name: str, *, official_conv6_tiny: bool = False) -> "Recipe":
        """The paper's recipe. CIFAR-10/100 (and ``digits``): 160 epochs, milestones 80/120;
        Tiny-ImageNet: 100 epochs, 30/60/80 (20/60/80 for conv6 with ``official_conv6_tiny``).
        Weight decay 1e-4, 5e-4 for wrn28_2."""
        from .models import MODEL_NAMES

        check_choice(model_name, MODEL_NAMES, "model")
        check_choice(dataset_name, DATASET_NAMES, "dataset")
        wd = 5e-4 if model_name == "wrn28_2" else 1e-4
        if dataset_name == "tiny_imagenet32":
            milestones = (20, 60, 80) if official_conv6_tiny and model_name == "conv6" else (30, 60, 80)
            return cls(epochs=100, milestones=milestones, weight_decay=wd)
        return cls(epochs=160, milestones=(80, 120), weight_decay=wd)

    def shortened(self, epochs: int) -> "Recipe":
        """The same recipe over ``epochs`` epochs, milestones scaled proportionally
        (m → floor(m·epochs/self.epochs + 0.5), keeping those in [1, epochs − 1], deduplicated)."""
        if int(epochs) != epochs or epochs < 1:
            raise ValidationError(f"epochs must be a positive integer, got {epochs!r}")
        scaled = (math.floor(m * epochs / self.epochs + 0.5) for m in self.milestones)
        return dataclasses.replace(self, epochs=int(epochs),
                                   milestones=tuple(sorted({m for m in scaled if 1 <= m < epochs})))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (milestones as a list)."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d


@dataclass
class TrainResult:
    """``accuracy``: top-1 test accuracy in [0, 1] after the last epoch (eval mode); ``history``:
    one dict per epoch (epoch, lr, train_loss, train_accuracy, test_accuracy or None, seconds)."""

    accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)
    epochs: int = 0


# ------------------------------------------------------------------------------------ training
def train(model: nn.Module, dataset_bundle: DatasetBundle, recipe: Recipe, *,
          masks: Mapping[str, torch.Tensor] | None = None, out_dir: str | os.PathLike | None = None,
          seed: int = 0, device: str | torch.device | None = None, deterministic: bool = False,
          progress: bool = True, freeze_bias: bool = True, eval_every: int = 1,
          on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None) -> TrainResult:
    """Train ``model`` (in place) on ``dataset_bundle`` with ``recipe``; return the final accuracy.

    ``masks`` ({parameter name: bool tensor}) are attached with ``apply_masks``; masks already on
    the model are kept (and their ``weight_orig`` re-zeroed at pruned positions). ``freeze_bias``
    zeroes and freezes every conv/linear bias (spec default). ``out_dir``: an end-of-epoch checkpoint
    (``checkpoint.pt``) and ``result.json`` are written there atomically; a checkpoint already
    there is resumed from (it must come from the same run: seed, recipe, dataset, masks).
    ``device``: default CUDA when available, else CPU. ``deterministic``: deterministic kernels
    where torch has them (a warning names any op without one, e.g. adaptive-avg-pool backward on
    CUDA; settings restored afterwards). ``eval_every``: test accuracy every that many epochs (0: only at the end).
    ``on_epoch_end(epoch, record)`` runs after each epoch's checkpoint is written.
    """
    _check_train_args(model, dataset_bundle, recipe, seed, eval_every)
    device = check_device(device, default="auto")
    fixed = _attach_masks(model, masks, freeze_bias)
    model.to(device)
    optimizer = make_optimizer(model, recipe)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(recipe.milestones), gamma=recipe.gamma)
    identity = _run_identity(model, dataset_bundle, recipe, seed, fixed, freeze_bias)
    out = Path(out_dir) if out_dir is not None else None
    history: list[dict[str, Any]] = []
    if out is not None and (out / CHECKPOINT_NAME).exists():
        history = load_checkpoint(out / CHECKPOINT_NAME, model, optimizer, scheduler, identity, device)
    with _deterministic_mode(deterministic), _progress_bar(progress, recipe, dataset_bundle, len(history)) as bar:
        for epoch in range(len(history), recipe.epochs):
            record = _run_epoch(model, dataset_bundle, optimizer, recipe, seed, epoch, device, bar)
            scheduler.step()
            if eval_every and ((epoch + 1) % eval_every == 0 or epoch + 1 == recipe.epochs):
                record["test_accuracy"] = evaluate(model, dataset_bundle.test, device=device, seed=seed)
            history.append(record)
            test = record["test_accuracy"]
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_accuracy']:.3f}",
                            test="-" if test is None else f"{test:.3f}")
            if out is not None:
                save_checkpoint(out / CHECKPOINT_NAME, model, optimizer, scheduler, identity, history)
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, record)
        accuracy = _final_accuracy(model, dataset_bundle, device, seed, history)
    check_pruned_weights_zero(model, fixed)
    result = TrainResult(accuracy=accuracy, history=history, epochs=recipe.epochs)
    if out is not None:
        atomic_write_json(out / RESULT_NAME, {**identity, **dataclasses.asdict(result), "device": device.type,
                                              "deterministic": bool(deterministic)})
    return result


def _check_train_args(model: Any, bundle: Any, recipe: Any, seed: Any, eval_every: Any) -> None:
    if not isinstance(model, nn.Module):
        raise ValidationError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(bundle, DatasetBundle):
        raise ValidationError(f"dataset_bundle must be a DatasetBundle (load_dataset), got {type(bundle).__name__}")
    if not isinstance(recipe, Recipe):
        raise ValidationError(f"recipe must be a Recipe, got {type(recipe).__name__}")
    check_seed(seed)
    check_scalar(eval_every, "eval_every", int, min_val=0)


def _attach_masks(model: nn.Module, masks: Mapping[str, torch.Tensor] | None, freeze_bias: bool
                  ) -> dict[str, torch.Tensor]:
    """Attach ``masks`` (or re-apply those on the model), freeze biases; return the masked layers'
    masks (CPU bool), the ones that must stay fixed."""
    if masks is None:
        modules = prunable_modules(model)
        masks = {n: m for n, m in get_masks(model).items() if hasattr(modules[n], "weight_mask")}
    fixed = apply_masks(model, masks) if masks else {}
    warn_fully_pruned(get_masks(model), "training", stacklevel=4)
    if freeze_bias:
        freeze_biases(model)
    return fixed


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.SGD:
    """SGD over the parameters with ``requires_grad`` (frozen biases excluded)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, dampening=recipe.dampening,
                           weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The CPU generator of epoch ``epoch`` (0-based) of run ``seed``: order and augmentation."""
    state = np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def _run_epoch(model: nn.Module, bundle: DatasetBundle, optimizer: torch.optim.Optimizer, recipe: Recipe,
               seed: int, epoch: int, device: torch.device, bar: Any) -> dict[str, Any]:
    """One pass over the shuffled, augmented train split; returns the epoch's record."""
    start = time.perf_counter()
    lr = optimizer.param_groups[0]["lr"]
    model.train()
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    batches = iterate_batches(bundle.train, recipe.batch_size, generator=epoch_generator(seed, epoch))
    for step, (x, y) in enumerate(batches):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = logits_of(model(x), model)  # train mode: (logits, aux_logits...) -> logits
        if step == 0 and epoch == 0:
            _check_logits(logits, bundle)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach().double() * y.numel()
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.numel()
        bar.update(1)
    return {"epoch": epoch + 1, "lr": lr, "train_loss": float(loss_sum) / seen,
            "train_accuracy": int(correct) / seen, "test_accuracy": None,
            "seconds": round(time.perf_counter() - start, 3)}


def _check_logits(logits: torch.Tensor, bundle: DatasetBundle) -> None:
    if logits.ndim != 2 or logits.shape[1] != bundle.num_classes:
        raise ValidationError(f"the model outputs shape {tuple(logits.shape)} but dataset {bundle.name!r} "
                              f"has {bundle.num_classes} classes; build the model with "
                              f"num_classes={bundle.num_classes}")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: ImageArrayDataset, *, device: str | torch.device | None = None,
             batch_size: int = _EVAL_BATCH, seed: int = 0) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (eval mode, restored afterwards) on ``dataset``.

    Unshuffled; ``seed`` only matters if the dataset augments (official CIFAR-100 test bug option).
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    gen = torch.Generator().manual_seed(int(seed))
    for x, y in iterate_batches(dataset, batch_size, generator=gen, shuffle=False):
        correct += (logits_of(model(x.to(device)), model).argmax(1) == y.to(device)).sum()
    model.train(was_training)
    return int(correct) / len(dataset)


def _final_accuracy(model: nn.Module, bundle: DatasetBundle, device: torch.device, seed: int,
                    history: list[dict[str, Any]]) -> float:
    if history and history[-1]["test_accuracy"] is not None:
        return float(history[-1]["test_accuracy"])
    return evaluate(model, bundle.test, device=device, seed=seed)


def check_pruned_weights_zero(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Raise :class:`MaskError` unless, for every masked layer, ``weight_orig`` and the effective
    weight are exactly 0 wherever the mask is False, and the mask on the model equals ``masks``."""
    params = prunable_parameters(model)
    on_model = get_masks(model)
    effective = effective_weights(model)
    for name, mask in masks.items():
        if not torch.equal(on_model[name], mask):
            raise MaskError(f"the mask of {name!r} changed during training")
        orig = params[name].detach().cpu()
        if not bool(torch.isfinite(orig).all()):
            raise MaskError(f"weights of {name!r} are NaN/inf after training (the run diverged), so "
                            f"pruned weights are no longer exactly 0")
        if bool((orig[~mask] != 0).any()) or bool((effective[name][~mask] != 0).any()):
            raise MaskError(f"pruned weights of {name!r} are not exactly 0 after training")


# --------------------------------------------------------------------------------- checkpoints
def _run_identity(model: nn.Module, bundle: DatasetBundle, recipe: Recipe, seed: int,
                  masks: Mapping[str, torch.Tensor], freeze_bias: bool) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (and what result.json records about the run)."""
    return {"model": type(model).__name__, "num_parameters": sum(p.numel() for p in model.parameters()),
            "dataset": bundle.name, "num_train": len(bundle.train),
            "num_test": len(bundle.test), "recipe": recipe.to_dict(), "seed": int(seed),
            "freeze_bias": bool(freeze_bias), "masks_digest": masks_digest(masks) if masks else None,
            "density": global_density(get_masks(model))}


def save_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, identity: dict[str, Any],
                    history: list[dict[str, Any]]) -> None:
    """Write the end-of-epoch state atomically: model (incl. masks), optimizer, scheduler, RNG
    states, epoch, history and the run identity. Loadable with ``torch.load(weights_only=True)``."""
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    state = {"format": _CHECKPOINT_FORMAT, "epoch": len(history), "identity": identity, "history": history,
             "model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": rng}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler, identity: dict[str, Any],
                    device: torch.device) -> list[dict[str, Any]]:
    """Restore a checkpoint written by :func:`save_checkpoint`; return its history.

    Raises :class:`CheckpointError` if the file is unreadable or corrupted, or was written by
    another run (different seed, recipe, dataset, model or masks).
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip / pickle stream
        raise CheckpointError(f"checkpoint {str(path)!r} is corrupted or unreadable ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it to start over") from None
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a sparsetopo training checkpoint")
    _check_identity(path, state.get("identity"), identity)
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        history = list(state["history"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is damaged ({exc}); delete it to start over") from None
    if len(history) != state["epoch"]:
        raise CheckpointError(f"checkpoint {str(path)!r} is inconsistent: epoch {state['epoch']} but "
                              f"{len(history)} history records")
    return history


def _check_identity(path: Path, saved: Any, expected: dict[str, Any]) -> None:
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {str(path)!r} has no run identity; delete it to start over")
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {v!r}" for k, v in expected.items() if saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"checkpoint {str(path)!r} belongs to another run ({'; '.join(diffs)}); use "
                              f"another output directory or delete the checkpoint")


# -------------------------------------------------------------------------------------- helpers
@contextlib.contextmanager
def _deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels inside the block (restoring the previous global settings after)."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)  # warn for ops with no such kernel
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[2], previous[3]


@contextlib.contextmanager
def _progress_bar(progress: bool, recipe: Recipe, bundle: DatasetBundle, done_epochs: int) -> Iterator[Any]:
    """A tqdm bar over batches of all epochs (disabled when ``progress`` is False or not a TTY)."""
    from tqdm.auto import tqdm

    per_epoch = math.ceil(len(bundle.train) / recipe.batch_size)
    bar = tqdm(total=per_epoch * recipe.epochs, initial=per_epoch * done_epochs, unit="batch",
               desc=f"train {bundle.name}", disable=None if progress else True, dynamic_ncols=True)
    try:
        yield bar
    finally:
        bar.close()
