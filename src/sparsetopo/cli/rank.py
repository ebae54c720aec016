"""``sparsetopo rank``: predict which pruner will train best for a model and sparsity, without training.

Thin orchestration (the one CLI command allowed to chain stages): prune the model with every pruner,
encode each mask as an MGE, measure its topometrics, then rank with
:func:`sparsetopo.analysis.recommend.rank_pruners` using weights learned from a pool.
"""
from __future__ import annotations

import argparse

from ._checks import check_output_file, seed_arg

EPILOG = """\
The pool (from `sparsetopo study`) supplies what matters: how the topometrics of *untrained* masks
(the pool's init-stage metrics) go with the accuracy drop after training. One model, fitted on the
pool, predicts each candidate's drop (1 - accuracy / dense accuracy); rank 1 is the smallest
predicted drop, so the order and the numbers agree. A prediction beyond the drops the pool's
networks had is shown at that bound and flagged (drop_clipped; the model's own number stays in
raw_prediction). Candidates whose metrics fall outside the pool's range are flagged (out_of_range). The output starts with the recommender's out-of-sample track
record on this pool (RBO, top-1 hit rate, regret vs a fixed global ranking): how far to trust it.

Example:
  sparsetopo rank --model resnet20 --sparsity 0.9 --pool runs/demo/pool.parquet --dataset digits
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("--model", required=True, help="architecture: conv6, resnet20, resnet32, wrn28_2")
    parser.add_argument("--sparsity", type=float, required=True, help="fraction of weights to remove, in (0, 1)")
    parser.add_argument("--pool", required=True, help="pool table of trained networks (.parquet or .csv)")
    parser.add_argument("--dataset", default="digits",
                        help="dataset for the data-driven pruners and the number of classes (default: digits)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="seed of the initialisation and the pruners (default: 0)")
    parser.add_argument("--pruners", nargs="+", default=None,
                        help="pruners to compare (default: the pool's pruners, whose track record the pool "
                             "holds; any registered pruner, see `sparsetopo prune --help`)")
    parser.add_argument("--stage", choices=("init", "trained"), default="init",
                        help="pool metrics to learn from (default: init, what an untrained candidate is "
                             "comparable with; falls back to trained, with a note, for older pools)")
    parser.add_argument("--out", default=None, help="also write the ranking as CSV here")


def candidate_metrics(model_name: str, sparsity: float, dataset: str, seed: int, pruners: list[str]):
    """Prune a fresh ``model_name`` with each pruner, encode the MGE, return one topometric row per pruner."""
    import pandas as pd
    from .. import models
    from ..data import load_dataset
    from ..measure import measure
    from ..pruning import prune
    bundle = load_dataset(dataset)
    rows = []
    for pruner in pruners:
        net = models.build(model_name, num_classes=bundle.num_classes, seed=seed)
        masks = prune(net, pruner, sparsity, data=bundle.train, seed=seed, input_shape=bundle.input_shape)
        [row] = measure(net, masks, bundle.input_shape, ("mge",), ("topometrics",)).rows
        rows.append({"pruner": pruner, **row})
    return pd.DataFrame(rows)


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_path
    from ..analysis.pool import read_table, validate_pool
    from ..analysis.recommend import rank_pruners
    from ..models import MODEL_NAMES
    from ..pruning import PRUNER_NAMES
    from ..validation import check_choice, check_sparsity
    check_choice(args.model, MODEL_NAMES, "model")
    sparsity = check_sparsity(args.sparsity)
    for pruner in args.pruners or ():
        check_choice(pruner, PRUNER_NAMES, "pruner")
    if args.out:
        check_output_file(args.out, "ranking.csv")
    pool = validate_pool(read_table(args.pool))  # before the slow prune/encode/measure stage
    in_pool = set(pool["pruner"].dropna())
    pruners = args.pruners or [p for p in PRUNER_NAMES if p in in_pool]
    candidates = candidate_metrics(args.model, sparsity, args.dataset, args.seed, pruners)
    ranking = rank_pruners(candidates, pool, args.model, sparsity, dataset=args.dataset, stage=args.stage)
    print(f"predicted ranking for {args.model} at sparsity {sparsity:g} on {args.dataset} "
          "(rank 1 = smallest predicted accuracy drop):")
    print(ranking.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    notes = ranking.attrs.get("notes", [])
    if notes:
        print(f"trust: {notes[0]}")
    for note in notes[1:]:
        print(f"note: {note}")
    if args.out:
        with atomic_path(args.out) as tmp:
            ranking.to_csv(tmp, index=False)
    return 0
