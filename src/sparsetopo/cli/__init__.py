"""The ``sparsetopo`` command line: one sub-command per stage, each a thin call into the library.

Sub-command modules are imported only when their command runs, so ``sparsetopo --help`` and light
commands start fast (torch is imported only by the commands that need it).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from ..errors import SparsetopoError

#: command -> (module under sparsetopo.cli, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "encode": ("encode", "encode a (pruned) network as a graph: mge, rolled or rolled_channel"),
    "metrics": ("metrics", "topometrics / Ramanujan metrics / layer density of an encoded network"),
    "prune": ("prune", "prune a network at initialization and save its masks (safetensors)"),
    "train": ("train", "train a (masked) network with the paper's recipe and record accuracy"),
    "study": ("study", "run / resume / inspect a study grid (model x dataset x sparsity x pruner x seed)"),
    "analyze": ("analyze", "analyse a pool table: Tables 3, 4, 11, 12 and Figures 2-5, as a report"),
    "rank": ("rank", "rank pruning algorithms for a model and sparsity from their topology (no training)"),
}

DESCRIPTION = """\
sparsetopo: what the topology of a network pruned at initialization says about how well it trains.

Typical flow:
  sparsetopo prune   --model resnet20 --dataset digits --pruner snip --sparsity 0.9 --out m.safetensors
  sparsetopo encode  --model resnet20 --masks m.safetensors --encoding mge --out g.npz
  sparsetopo metrics g.npz
  sparsetopo study run --preset demo --out runs/demo
  sparsetopo analyze runs/demo/pool.parquet --layers runs/demo/pool_layers.parquet --out report
"""


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsetopo", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=sorted(COMMANDS), metavar="COMMAND",
                        help="one of: " + "; ".join(f"{k} ({v[1]})" for k, v in COMMANDS.items()))
    return parser


def build_parser(command: str) -> argparse.ArgumentParser:
    """The argparse parser of one sub-command (imports only that command's module)."""
    module = importlib.import_module(f".{COMMANDS[command][0]}", __name__)
    parser = argparse.ArgumentParser(prog=f"sparsetopo {command}", description=COMMANDS[command][1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    parser.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sparsetopo`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        top = _top_parser()
        if not argv or argv[0] in ("-h", "--help"):
            top.print_help()
            return 0
        top.parse_args(argv[:1])  # exits with a clear "invalid choice" message
    args = build_parser(argv[0]).parse_args(argv[1:])
    try:
        result = args._run(args)
    except SparsetopoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
