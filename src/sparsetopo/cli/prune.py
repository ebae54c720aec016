"""``sparsetopo prune``: prune a network at initialization and save its masks (safetensors)."""
from __future__ import annotations

import argparse

from ._checks import check_output_file, seed_arg, shortcut_option

EPILOG = """\
The model is built with Kaiming-normal init from --seed; the same --seed drives which samples the
data-driven pruners (snip, grasp, prospr, iter_snip, force) see and the random positions of the
random pruners, so a command gives the same masks every time on CPU. Pass the same --seed to
`sparsetopo train`. --effective-sparsity prunes to an effective sparsity (weights on no
input->output path, e.g. only seeing zero padding, do not count).

Examples:
  sparsetopo prune --model resnet20 --dataset digits --pruner snip --sparsity 0.9 --out m.safetensors
  sparsetopo prune --model resnet20 --num-classes 10 --pruner erk --sparsity 0.95 --out erk.safetensors
  sparsetopo prune --model wrn28_2 --dataset cifar10 --pruner synflow --sparsity 0.98 --out s.safetensors
  sparsetopo prune --model resnet20 --num-classes 10 --pruner igq --sparsity 0.99 --effective-sparsity --out e.safetensors
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..data import DATASET_NAMES
    from ..models import MODEL_NAMES
    from ..pruning import PRUNER_NAMES

    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, choices=MODEL_NAMES, help="architecture to prune")
    parser.add_argument("--pruner", required=True, choices=PRUNER_NAMES, help="pruning algorithm")
    parser.add_argument("--sparsity", required=True, type=float, help="fraction of weights removed, in (0, 1)")
    parser.add_argument("--out", required=True, metavar="FILE", help="mask file to write (safetensors)")
    parser.add_argument("--dataset", default="digits", choices=DATASET_NAMES,
                        help="training data of snip/grasp/prospr, and the number of classes (default: digits)")
    parser.add_argument("--num-classes", type=int, metavar="C",
                        help="classifier width (default: the dataset's; data-free pruners then skip loading it)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the init, the data drawn and the masks (default 0)")
    parser.add_argument("--shortcut", choices=("A", "B"), default="B",
                        help="ResNet shortcut: B = 1x1 conv + BN (official, default), A = zero padding")
    parser.add_argument("--device", help="torch device for scoring, e.g. cpu or cuda (default: cpu)")
    parser.add_argument("--data-root", metavar="DIR", help="where dataset archives and caches live")
    parser.add_argument("--download", action="store_true", help="download a missing dataset archive")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar (iterative pruners)")
    parser.add_argument("--effective-sparsity", action="store_true",
                        help="--sparsity is the effective sparsity: search the nominal sparsity until the kept "
                             "weights on input->output paths number (1 - sparsity) * N (one pruner run per step)")


def run(args: argparse.Namespace) -> int:
    from ..effective import effective_density
    from ..masks import global_density, layer_density, save_masks
    from ..models import MAX_NUM_CLASSES, build
    from ..validation import check_scalar
    from ..pruning import ITERATIVE_PRUNERS, PRUNERS, prune

    if args.num_classes is not None:
        check_scalar(args.num_classes, "--num-classes", int, min_val=2, max_val=MAX_NUM_CLASSES)
    check_output_file(args.out, "masks.safetensors")
    needs_data = PRUNERS[args.pruner].needs_data
    bundle = None
    if needs_data or args.num_classes is None:
        from ..data import load_dataset

        bundle = load_dataset(args.dataset, args.data_root, download=args.download, seed=args.seed)
    num_classes = args.num_classes if args.num_classes is not None else bundle.num_classes
    kwargs = shortcut_option(args.model, args.shortcut)
    model = build(args.model, num_classes, seed=args.seed, **kwargs)
    masks = prune(model, args.pruner, args.sparsity, data=bundle.train if needs_data else None, seed=args.seed,
                  device=args.device, input_shape=bundle.input_shape if bundle is not None else None,
                  progress=args.pruner in ITERATIVE_PRUNERS and not args.no_progress,
                  effective=args.effective_sparsity)
    save_masks(masks, args.out)
    kept = sum(int(m.sum()) for m in masks.values())
    total = sum(m.numel() for m in masks.values())
    shape = tuple(bundle.input_shape) if bundle is not None else None
    print(f"{args.pruner} on {args.model}: kept {kept} of {total} weights, "
          f"sparsity {1 - global_density(masks):.4f}, effective sparsity "
          f"{1 - effective_density(model, masks, shape):.4f} (requested {args.sparsity}"
          f"{' effective' if args.effective_sparsity else ''}); masks in {args.out}")
    width = max(len(name) for name in masks)
    for name, density in layer_density(masks).items():
        print(f"  {name:<{width}}  {masks[name].numel():>9}  density {density:.4f}")
    return 0
