"""Wall time and peak memory of every pruner on ResNet-20 (C = 10), input 3×32×32, and of the random
pruners on a synthetic 134 M-weight network.

Each pruner runs in its own child process, so "peak RSS" is that pruner's own high-water mark
(model, data and scoring included); "seconds" is the whole ``prune()`` call (model copy, scoring,
attaching the masks with torch's prune re-parametrisation); with ``--large`` the time of the mask
computation alone is printed too. Uses CIFAR-10 through ``sparsetopo.data`` when its archive is in
the data root, else random data of CIFAR shape (balanced labels) — pruning cost does not depend on
pixel values. Spec / reference defaults (SNIP 128, GraSP 25/class, ProsPr 4×512, SynFlow and
SynFlow-L2 100 iterations, iterative SNIP and FORCE 60 steps of 128, NTK-SAP 20×5 rounds of 100
noise inputs) unless overridden.

    python benchmarks/prune.py --threads 2
    python benchmarks/prune.py --pruners prospr --prospr-batch-size 256
    python benchmarks/prune.py --large --pruners uniform er erk uniform_plus erk_plus igq
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import torch
from torch import nn
from torch.utils.data import TensorDataset

from sparsetopo.models import build
from sparsetopo.pruning import PRUNER_NAMES, PRUNERS, prune

#: synthetic large network: 2 × Linear(8192, 8192) + a small head = 134,225,920 weights
LARGE_LAYERS = ((3, 8192), (8192, 8192), (8192, 8192), (8192, 10))


def cifar_or_random(num_samples: int, seed: int = 0):
    """(dataset, description): CIFAR-10's augmented train split if available, else random CIFAR-shaped data."""
    try:
        from sparsetopo.data import load_dataset

        return load_dataset("cifar10").train, "cifar10"
    except Exception as exc:  # noqa: BLE001 - any failure means: no CIFAR here
        g = torch.Generator().manual_seed(seed)
        labels = torch.arange(num_samples) % 10
        return TensorDataset(torch.randn(num_samples, 3, 32, 32, generator=g), labels), \
            f"random CIFAR-shaped data ({type(exc).__name__}: no cifar10 archive)"


def large_model() -> nn.Module:
    """An MLP with 134 M prunable weights, allocated without initialisation (values do not matter)."""
    return nn.Sequential(*[torch.nn.utils.skip_init(nn.Linear, a, b) for a, b in LARGE_LAYERS])


def run_one(args: argparse.Namespace) -> None:
    """Time one pruner in this process and print one result line."""
    torch.set_num_threads(args.threads)
    name = args.one
    options = {"batch_size": args.prospr_batch_size} if name == "prospr" else {}
    if args.large:
        model, data, shape, what = large_model(), None, (3,), "134M-weight MLP"
    else:
        data, _ = cifar_or_random(8192)
        model, shape, what = build("resnet20", 10, seed=0), (3, 32, 32), "resnet20"
    masks_only = ""
    if args.large:  # the pruner's mask computation alone (no model copy, no attaching)
        from sparsetopo.pruning.core import PruneContext, keep_count

        total = sum(m.weight.numel() for m in model)
        ctx = PruneContext(name, args.sparsity, keep_count(1 - args.sparsity, total), torch.Generator().manual_seed(0),
                           torch.device("cpu"), shape, False, dict(PRUNERS[name].options))
        start = time.perf_counter()
        PRUNERS[name].function(model, ctx)
        masks_only = f" (masks alone {time.perf_counter() - start:.2f} s)"
    start = time.perf_counter()
    masks = prune(model, name, args.sparsity, data=data if PRUNERS[name].needs_data else None, seed=0,
                  device=args.device, input_shape=shape, **options)
    seconds = time.perf_counter() - start
    kept = sum(int(m.sum()) for m in masks.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = {**PRUNERS[name].options, **options}
    print(f"{name:<13} {what:<16} {seconds:>8.2f} {rss:>13.0f} {kept:>11}  {settings}{masks_only}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pruners", nargs="+", default=None, choices=PRUNER_NAMES)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prospr-batch-size", type=int, default=512)
    parser.add_argument("--device", default=None)
    parser.add_argument("--large", action="store_true", help="the random pruners on the 134M-weight network")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args)
    random = [n for n in PRUNER_NAMES if not PRUNERS[n].needs_input]
    pruners = args.pruners or (random if args.large else list(PRUNER_NAMES))
    print(f"sparsity {args.sparsity}, {args.threads} threads, data: "
          f"{'none (data-free)' if args.large else cifar_or_random(16)[1]}")
    print(f"{'pruner':<13} {'model':<16} {'seconds':>8} {'peak RSS MiB':>13} {'kept':>11}  settings")
    for name in pruners:
        command = [sys.executable, __file__, "--one", name, "--sparsity", str(args.sparsity), "--threads",
                   str(args.threads), "--prospr-batch-size", str(args.prospr_batch_size)]
        command += (["--large"] if args.large else []) + (["--device", args.device] if args.device else [])
        subprocess.run(command, check=False)


if __name__ == "__main__":
    main()
