"""Dense ResNet-20 on the offline ``digits`` dataset with the paper's recipe, shortened.

Prints the final top-1 test accuracy, the epochs and the wall time. Usage:

    python benchmarks/train_digits.py [--epochs 15] [--threads 2] [--seed 0] [--out DIR]
"""
from __future__ import annotations

import argparse
import time

import torch

from sparsetopo.data import load_dataset
from sparsetopo.models import build
from sparsetopo.training import Recipe, train


def _print_epoch(epoch: int, h: dict) -> None:
    print(f"epoch {epoch:3d}  lr {h['lr']:.4f}  loss {h['train_loss']:.4f}  train acc {h['train_accuracy']:.4f}"
          f"  test acc {h['test_accuracy']:.4f}  {h['seconds']:.1f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--out", default=None, help="optional output dir (checkpoint + result.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_dataset("digits")
    model = build(args.model, bundle.num_classes, seed=args.seed)
    recipe = Recipe.paper(args.model, "digits").shortened(args.epochs)
    start = time.perf_counter()
    result = train(model, bundle, recipe, seed=args.seed, out_dir=args.out, progress=False,
                   on_epoch_end=_print_epoch)
    wall = time.perf_counter() - start
    print(f"{args.model} dense on digits: test accuracy {result.accuracy:.4f} after {result.epochs} epochs "
          f"(milestones {recipe.milestones}), wall time {wall:.1f}s on {args.threads} thread(s)")


if __name__ == "__main__":
    main()
