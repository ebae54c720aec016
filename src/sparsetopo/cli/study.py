"""``sparsetopo study``: run / resume a study grid, show where its cells stand, rebuild its pool."""
from __future__ import annotations

import argparse
import sys

EPILOG = """\
Actions:
  run     run (or resume) a study: done cells are skipped, failed ones retried, interrupted ones
          resume from their masks and training checkpoint; the pool is rebuilt at the end.
  status  list every cell of a study directory as done / failed / running / pending, with the reason.
  pool    rebuild DIR/pool.parquet and DIR/pool_layers.parquet (+ CSV) from the finished cells.

Examples:
  sparsetopo study run --preset demo --out runs/demo
  sparsetopo study run my_study.toml --out runs/s1 --jobs 2
  sparsetopo study run --preset paper --out runs/paper --executor ray --address auto --device cuda
  sparsetopo study status runs/demo
  sparsetopo analyze runs/demo/pool.parquet --layers runs/demo/pool_layers.parquet --out runs/demo/report

Exit code: 0 when every cell is done, 1 when some failed or are still claimed by another runner
(or the pool could not be written), 2 for a bad study description (the offending key is named) or an
unusable output folder, 130 / 143 when stopped by SIGINT / SIGTERM (workers stopped, pool written).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..study.config import PRESETS

    parser.epilog = EPILOG
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run or resume a study")
    run.add_argument("config", nargs="?", metavar="CONFIG.toml", help="study file (or use --preset)")
    run.add_argument("--preset", choices=PRESETS, help="a packaged study instead of a file")
    run.add_argument("--out", required=True, metavar="DIR", help="study directory (created; resumable)")
    run.add_argument("--jobs", type=int, metavar="N",
                     help="cells run at once (local executor); each cell gets cores/N torch threads "
                          "(with Ray: requests that many CPUs)")
    run.add_argument("--executor", choices=("local", "ray"), help="local process pool or Ray")
    run.add_argument("--address", metavar="ADDR", help="Ray cluster address (e.g. auto, ray://host:10001)")
    run.add_argument("--device", metavar="DEV", help="torch device of every cell: cpu, cuda, cuda:N")
    run.add_argument("--data-root", metavar="DIR", help="dataset root (overrides [data] root)")
    run.add_argument("--download", action="store_true", default=None,
                     help="download missing dataset archives from their official URLs")
    run.add_argument("--epochs", metavar="N|paper", help="override [recipe] epochs")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    run.add_argument("--allow-custom-cell", action="store_true",
                     help="let run.cell_function name a function that no installed package registered "
                          "(it is code: only for study files you trust)")
    status = actions.add_parser("status", help="done / failed / running / pending cells of a study")
    status.add_argument("dir", metavar="DIR", help="study directory")
    status.add_argument("--all", action="store_true", help="list done cells too")
    pool = actions.add_parser("pool", help="rebuild the pool files from the finished cells")
    pool.add_argument("dir", metavar="DIR", help="study directory")


def run(args: argparse.Namespace) -> int:
    return {"run": _run, "status": _status, "pool": _pool}[args.action](args)


def _config(args: argparse.Namespace):
    from ..errors import StudyConfigError
    from ..study import load_config, load_preset

    if (args.config is None) == (args.preset is None):
        raise StudyConfigError("give either a study file CONFIG.toml or --preset demo|paper (not both)")
    config = load_preset(args.preset) if args.preset else load_config(args.config,
                                                                      allow_custom_cell=args.allow_custom_cell)
    epochs = args.epochs
    if epochs is not None and epochs != "paper":
        epochs = int(epochs) if epochs.isdigit() else epochs
    return config.replace(jobs=args.jobs, executor=args.executor, address=args.address, device=args.device,
                          data_root=args.data_root, download=args.download, epochs=epochs)


def _run(args: argparse.Namespace) -> int:
    from ._checks import check_output_dir
    from ..study import run_study, states

    config = _config(args)
    check_output_dir(args.out)
    config.check_runnable()  # device present, datasets present: before the banner and any cell
    cells = config.cells()
    print(f"study {config.source}: {len(cells)} cells ({sum(c.is_dense for c in cells)} dense) "
          f"-> {args.out} [{config.executor}, jobs={config.jobs}]", file=sys.stderr)
    report = run_study(config, args.out, progress=False if args.no_progress else None)
    failed, busy = report.count(states.FAILED), report.count(states.BUSY)
    print(f"{report.already_done + report.count('done') + report.count('skipped')}/{report.total} cells done"
          f" ({report.count('done')} now, {failed} failed, {busy} left to another runner) in "
          f"{report.seconds:.1f} s; pool: {report.pool_rows['pool']} rows, layer pool: "
          f"{report.pool_rows['layers']} rows in {args.out}", file=sys.stderr)
    for outcome in report.outcomes:
        if outcome.state == states.FAILED:
            print(f"  failed {outcome.cell_id}: {outcome.error}", file=sys.stderr)
    _warn_without_dense(report.pool_rows)
    if report.pool_error:
        print(f"error: the pool was not rewritten ({report.pool_error}); the previous pool files are intact. "
              f"Free space, then `sparsetopo study pool {args.out}` rebuilds it", file=sys.stderr)
    return 0 if report.complete and not report.pool_error else 1


def _warn_without_dense(rows: dict[str, int]) -> None:
    if rows.get("without_dense"):
        print(f"note: {rows['without_dense']} pool row(s) have no dense_accuracy yet (their dense baseline "
              f"cell is not done); the analysis refuses them until it is", file=sys.stderr)


def _status(args: argparse.Namespace) -> int:
    from ..study import StudyStore, states

    store = StudyStore(args.dir)
    statuses = store.statuses(store.load_config().cells())
    counts = {state: sum(s.state == state for s in statuses) for state in states.STATUSES}
    print(f"{args.dir}: {len(statuses)} cells: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    for status in statuses:
        if args.all or status.state != states.DONE:
            print(f"{status.state:8s} {status.spec.cell_id}  {status.reason}")
    return 0 if counts[states.DONE] == len(statuses) else 1


def _pool(args: argparse.Namespace) -> int:
    from ..study import StudyStore
    from ._checks import check_output_dir

    check_output_dir(args.dir, option="study directory")
    store = StudyStore(args.dir)
    rows = store.write_pool(store.load_config().cells())
    print(f"pool: {rows['pool']} rows -> {store.pool_path('pool')}; "
          f"layer pool: {rows['layers']} rows -> {store.pool_path('layers')}")
    _warn_without_dense(rows)
    return 0
