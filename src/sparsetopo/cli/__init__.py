"""The ``sparsetopo`` command line: one sub-command per stage, each a thin call into the library.

Sub-command modules are imported only when their command runs, so ``sparsetopo --help`` and light
commands start fast (torch is imported only by the commands that need it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from typing import Sequence

from ..errors import FullyPrunedWarning, SparsetopoError

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


#: commands that meet masks and warn about fully pruned layers (``--refuse-fully-pruned`` makes it an error)
REFUSABLE = ("encode", "metrics", "train")


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
    if command in REFUSABLE:
        parser.add_argument("--refuse-fully-pruned", action="store_true",
                            help="stop with an error when a layer keeps no weight (default: a warning naming it)")
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
    warnings.formatwarning = _one_line_warning
    try:
        with warnings.catch_warnings():
            if getattr(args, "refuse_fully_pruned", False):
                warnings.simplefilter("error", FullyPrunedWarning)
            result = args._run(args)
        sys.stdout.flush()
    except SparsetopoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM during a study (study.runner.Interrupted)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `sparsetopo ... | head`: the reader left; that is not an error of ours
        _silence_stdout()
        return 128 + signal.SIGPIPE
    return int(result or 0)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line read ``warning: ...`` (no source file and line of the library)."""
    return f"warning: {message}\n"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not raise BrokenPipeError again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
