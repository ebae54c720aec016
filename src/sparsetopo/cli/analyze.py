"""``sparsetopo analyze``: turn a pool table into the paper's tables and figures (a report folder)."""
from __future__ import annotations

import argparse

EPILOG = """\
Input: POOL is the per-network table written by `sparsetopo study` (pool.parquet, or a CSV with the
same columns); --layers adds the per-layer table (pool_layers.parquet) needed for the rolled
encodings of Table 3, the Layer-Density / Ramanujan baselines of Tables 4, 11, 12 and Figures 2, 5.

Output (in --out): table3/4/11/12 and importance as CSV and Markdown, figures as PNG and PDF, and
index.md that ties them together and lists the cells a small pool could not fill.

Example:
  sparsetopo analyze runs/demo/pool.parquet --layers runs/demo/pool_layers.parquet --out report --jobs 2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("pool", metavar="POOL", help="per-network pool table (.parquet or .csv), MGE metrics")
    parser.add_argument("--layers", metavar="POOL_LAYERS", default=None,
                        help="per-layer pool table (rolled / rolled_channel rows); optional")
    parser.add_argument("--out", metavar="REPORT_DIR", required=True, help="folder to write the report into")
    parser.add_argument("--runs", type=int, default=100,
                        help="repetitions of 5-fold cross-validation per subset (default: 100, as the paper)")
    parser.add_argument("--oos-runs", type=int, default=None,
                        help="repetitions for the out-of-sample ranking weights, refitted per (model, sparsity) "
                             "cell (default: min(runs, 10); 0 skips the out-of-sample ranking)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--all-regressors", action="store_true",
                        help="average all 8 regressors (default: 6, leaving out Lasso and ElasticNet, "
                             "which predict a constant at their default alpha)")
    parser.add_argument("--stage", choices=("trained", "init"), default="trained",
                        help="metrics analysed: 'trained' (masks on the trained weights, the paper's; default) or "
                             "'init' (masks on the initial weights, before training; studies record both)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from ..analysis.pool import load_pools
    from ..analysis.report import build_report
    from ..errors import ValidationError
    from ..study.config import MAX_JOBS
    from ..validation import check_scalar
    from ._checks import check_output_dir

    if args.runs < 1:
        raise ValidationError(f"--runs must be at least 1, got {args.runs}")
    if args.jobs is not None:  # default None: every core
        check_scalar(args.jobs, "--jobs", int, min_val=1, max_val=MAX_JOBS)
    if args.oos_runs is not None and args.oos_runs < 0:
        raise ValidationError(f"--oos-runs must be 0 or more, got {args.oos_runs}")
    check_output_dir(args.out)  # before the analysis, which takes minutes
    pool, layers = load_pools(args.pool, args.layers)
    report = build_report(pool, layers, args.out, runs=args.runs, jobs=args.jobs, oos_runs=args.oos_runs,
                          all_regressors=args.all_regressors, progress=not args.no_progress,
                          stage=args.stage)
    print(f"report written to {report.out_dir / 'index.md'} ({len(report.files)} files)")
    for note in report.notes:
        print(f"note: {note}")
    return 0
