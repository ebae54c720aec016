"""Wall time of every pruner on ResNet-20 (C = 10) with CIFAR-sized input (3×32×32).

Uses CIFAR-10 through ``sparsetopo.data`` when its archive is in the data root, else random data of
CIFAR shape (balanced labels) — pruning cost does not depend on pixel values. Spec batch sizes
(SNIP 128, GraSP 25/class, ProsPr 4×512, SynFlow 100 iterations) unless overridden.

    .venv/bin/python benchmarks/prune.py --threads 2
    .venv/bin/python benchmarks/prune.py --pruners prospr --prospr-batch-size 128
"""
from __future__ import annotations

import argparse
import resource
import time

import torch
from torch.utils.data import TensorDataset

from sparsetopo.models import build
from sparsetopo.pruning import PRUNER_NAMES, PRUNERS, prune


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pruners", nargs="+", default=list(PRUNER_NAMES), choices=PRUNER_NAMES)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prospr-batch-size", type=int, default=512)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, source = cifar_or_random(2560)
    print(f"ResNet-20 C=10, input 3x32x32, sparsity {args.sparsity}, {args.threads} threads, data: {source}")
    print(f"{'pruner':<8} {'seconds':>8} {'peak RSS MiB':>13}  settings")
    for name in args.pruners:
        options = {"batch_size": args.prospr_batch_size} if name == "prospr" else {}
        model = build("resnet20", 10, seed=0)
        start = time.perf_counter()
        prune(model, name, args.sparsity, data=data if PRUNERS[name].needs_data else None, seed=0,
              device=args.device, input_shape=(3, 32, 32), **options)
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        settings = {**PRUNERS[name].options, **options}
        print(f"{name:<8} {seconds:>8.2f} {rss:>13.0f}  {settings}", flush=True)


if __name__ == "__main__":
    main()
