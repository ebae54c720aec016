"""``sparsetopo train``: train a (masked) network with the paper's recipe and record its accuracy."""
from __future__ import annotations

import argparse

from ._checks import check_masks_cover_model, check_output_dir, seed_arg, shortcut_option

EPILOG = """\
The model is built with Kaiming-normal init from --seed, so pass the same --seed you gave to
`sparsetopo prune` (the masks were computed on that init). Without --epochs the full paper recipe
runs (160 epochs for CIFAR / digits, 100 for Tiny-ImageNet); --epochs N scales the LR milestones.

Writes DIR/checkpoint.pt after every epoch and DIR/result.json at the end. Running the same command
again resumes from the checkpoint and gives the same result as an uninterrupted run.

Examples:
  sparsetopo train --model resnet20 --dataset digits --epochs 10 --out runs/dense
  sparsetopo train --model resnet20 --dataset digits --masks m.safetensors --epochs 10 --out runs/snip
  sparsetopo train --model wrn28_2 --dataset cifar10 --masks m.safetensors --out runs/c10 --download
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..data import DATASET_NAMES
    from ..models import MODEL_NAMES

    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, choices=MODEL_NAMES, help="architecture to train")
    parser.add_argument("--dataset", default="digits", choices=DATASET_NAMES,
                        help="dataset (default: digits, scikit-learn's offline 8x8 digits at 32x32)")
    parser.add_argument("--masks", metavar="FILE",
                        help="mask file from `sparsetopo prune` (safetensors); omit for a dense baseline")
    parser.add_argument("--epochs", type=int, metavar="N",
                        help="train N epochs, milestones scaled proportionally (default: the paper's count)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (checkpoint, result.json)")
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the weight init and of the data order/augmentation (default 0)")
    parser.add_argument("--shortcut", choices=("A", "B"), default="B",
                        help="ResNet shortcut: B = 1x1 conv + BN (official, default), A = zero padding")
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda (default: cuda if available)")
    parser.add_argument("--data-root", metavar="DIR",
                        help="where dataset archives and caches live (default: $SPARSETOPO_DATA or "
                             "~/.cache/sparsetopo/data)")
    parser.add_argument("--download", action="store_true",
                        help="download a missing dataset archive from its official URL")
    parser.add_argument("--deterministic", action="store_true", help="use deterministic kernels (GPU)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from ..data import load_dataset
    from ..masks import load_masks
    from ..models import build
    from ..training import Recipe, train

    check_output_dir(args.out)
    masks = load_masks(args.masks) if args.masks else None  # a bad mask file fails before any download
    bundle = load_dataset(args.dataset, args.data_root, download=args.download, seed=args.seed)
    kwargs = shortcut_option(args.model, args.shortcut)
    model = build(args.model, bundle.num_classes, seed=args.seed, **kwargs)
    if masks is not None:
        check_masks_cover_model(masks, model, args.masks)
    recipe = Recipe.paper(args.model, args.dataset)
    if args.epochs is not None:
        recipe = recipe.shortened(args.epochs)
    result = train(model, bundle, recipe, masks=masks, out_dir=args.out, seed=args.seed,
                   device=args.device, deterministic=args.deterministic, progress=not args.no_progress)
    print(f"test accuracy {result.accuracy:.4f} after {result.epochs} epochs; results in {args.out}/result.json")
    return 0
