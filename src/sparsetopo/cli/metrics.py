"""``sparsetopo metrics``: topometrics (and per-layer Ramanujan metrics) of an encoded network."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..encoding.registry import ENCODINGS
from ..metrics.registry import GROUPS
from ._checks import check_output_file, seed_arg

EPILOG = """\
Input: a graph file written by `sparsetopo encode` (.npz: an MGE, or the layers of a rolled /
rolled-channel encoding), or a model + masks that are encoded on the fly (--encoding mge |
rolled | rolled_channel). Values are raw (metrics.md §1); `sparsetopo analyze` normalises them.
For rolled encodings one row per layer is printed, with the Ramanujan metrics (delta_r,
delta_r_imdb, lambda_imsg) and layer_density (unknown, NaN, for a rolled_channel file).

Examples:
  sparsetopo metrics g.npz
  sparsetopo metrics g.npz --out g_metrics.json
  sparsetopo metrics --model resnet20 --masks m.safetensors --encoding rolled --out layers.csv
  sparsetopo metrics g.npz --motif-sample official     # the paper's 0.1%-root motif estimate
  sparsetopo metrics g.npz --metrics topometrics effective   # add effective nodes / edges / paths
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("graph", nargs="?", metavar="GRAPH.npz", help="graph file from `sparsetopo encode` (an MGE or rolled layers)")
    parser.add_argument("--model", help="architecture to encode (instead of GRAPH.npz), e.g. resnet20")
    parser.add_argument("--masks", metavar="FILE", help="mask file (safetensors) for --model; omit for dense")
    parser.add_argument("--encoding", default="mge", choices=ENCODINGS,
                        help="encoding of --model (default: mge)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="classes of --model (default: the model's, 10; 1000 for resnet18 / resnet50)")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"),
                        help="input shape of --model (default 3 32 32)")
    parser.add_argument("--seed", type=seed_arg, default=0, help="weight-init seed of --model (default 0)")
    parser.add_argument("--motif-sample", metavar="S",
                        help="estimate motifs_4 from S random roots (an int, or 'official' = 0.1%% of |V|) "
                             "instead of the exact count")
    parser.add_argument("--metrics", nargs="+", choices=GROUPS, default=None, metavar="GROUP",
                        help="metric groups to compute: " + ", ".join(GROUPS) + " (default: topometrics; "
                             "for rolled layers also ramanujan and layer_density)")
    parser.add_argument("--compat", choices=("default", "official"), default="default",
                        help="'official' reproduces the official code where it deviates (metrics.md §1, §4)")
    parser.add_argument("--out", metavar="FILE", help="write the values as .json or .csv")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="refuse (with the estimate) an MGE whose encoding or metrics would need more "
                             "than SIZE, e.g. 16G (default: this machine's memory)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _motif_sample(text: str | None):
    from ..errors import ValidationError

    if text is None or text == "official":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"--motif-sample must be an int or 'official', got {text!r}") from None


def _rows(args: argparse.Namespace, motif_sample) -> list[dict]:
    """Raw metric rows of GRAPH.npz, or of --model (+ --masks) encoded on the fly."""
    from ..errors import ValidationError

    if (args.graph is None) == (args.model is None):
        raise ValidationError("give either GRAPH.npz or --model (with --masks)")
    if args.graph is not None:
        from ..graph import load_graph

        _check_file_memory(args)
        graph = load_graph(args.graph)  # validated: a missing, truncated or crafted file is one named error
        kind = getattr(graph, "kind", "mge")
        _check_motif_sample(kind, motif_sample)
        from ..metrics import prepare
        from ..metrics.density import graph_layer_density
        from ..metrics.summary import graph_rows

        densities = graph_layer_density(graph)
        if kind == "mge":  # keep the CSR only: the edge list (12 bytes per edge) is freed first
            graph = prepare(graph)
        return _shown(graph_rows(graph, kind, _groups(args, kind), mask_values={"layer_density": densities},
                                 motif_sample=motif_sample, compat=args.compat, progress=not args.no_progress,
                                 max_memory=args.max_memory))
    _check_motif_sample(args.encoding, motif_sample)
    from .. import masks as masks_mod
    from ..measure import measure
    from ..models import build

    model = build(args.model, num_classes=args.num_classes, seed=args.seed)
    masks = masks_mod.load_masks(args.masks) if args.masks else None
    if masks is not None:
        masks_mod.apply_masks(model, masks)
    result = measure(model, masks, tuple(args.input_shape), (args.encoding,), _groups(args, args.encoding),
                     motif_sample=motif_sample, compat=args.compat, progress=not args.no_progress,
                     max_memory=args.max_memory)
    return _shown(result.rows + result.layer_rows)


def _check_file_memory(args: argparse.Namespace) -> None:
    """Before loading an MGE file: would it and its metrics fit? |E| from the stored array header."""
    import zipfile

    import numpy as np

    from .._memory import check_memory
    from ..metrics import estimate_memory

    try:
        with zipfile.ZipFile(args.graph) as archive:
            if "src.npy" not in archive.namelist() or "num_nodes.npy" not in archive.namelist():
                return  # not an MGE file: load_graph says what is wrong with it
            with archive.open("src.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape = read_header(fh)[0]
            with archive.open("num_nodes.npy") as fh:
                nodes = int(np.lib.format.read_array(fh, allow_pickle=False))
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # load_graph reports a damaged file
    edges = int(shape[0]) if len(shape) == 1 else 0
    check_memory(estimate_memory(nodes, edges, args.compat, edge_list_kept=False), args.max_memory,  # freed in _rows
                 f"the metrics of {args.graph} ({nodes} nodes, {edges} edges)")


def _groups(args: argparse.Namespace, encoding: str) -> tuple[str, ...]:
    """What the command measures: --metrics, else the topometrics, plus per layer the Ramanujan
    metrics and density."""
    from ..encoding.registry import ENCODING_REGISTRY

    if args.metrics:
        return tuple(args.metrics)
    layered = ENCODING_REGISTRY[encoding].layered
    return ("topometrics", "ramanujan", "layer_density") if layered else ("topometrics",)


def _check_motif_sample(encoding: str, motif_sample) -> None:
    from ..encoding.registry import ENCODING_REGISTRY
    from ..errors import ValidationError

    if motif_sample is not None and ENCODING_REGISTRY[encoding].layered:
        raise ValidationError("--motif-sample applies to an MGE; rolled layers use the exact size-3 motif count")


def _shown(rows: list[dict]) -> list[dict]:
    """Rows as printed: an MGE row is its metrics; a layer row starts with the layer's name."""
    shown = []
    for row in rows:
        metrics = {k: v for k, v in row.items() if k not in ("encoding", "layer", "layer_name")}
        shown.append({"layer": row["layer_name"], **metrics} if "layer_name" in row else metrics)
    return shown


def _print_table(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    def fmt(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "nan"
            return str(int(v)) if v.is_integer() and abs(v) < 2**53 else f"{v:.6g}"
        return str(v)

    table = Table(title="topometrics (raw)")
    if len(rows) == 1:
        table.add_column("metric")
        table.add_column("value", justify="right")
        for key, value in rows[0].items():
            table.add_row(key, fmt(value))
    else:
        for key in rows[0]:
            table.add_column(key, justify="right" if key != "layer" else "left")
        for row in rows:
            table.add_row(*(fmt(v) for v in row.values()))
    console = Console()
    console.print(table)
    if console.measure(table, options=console.options.update_width(10_000)).maximum > console.width:
        console.print("note: columns are cut to the terminal width; --out FILE.csv (or .json) keeps every value")


def _write(rows: list[dict], out: str) -> None:
    from .._io import atomic_write_json, atomic_write_text

    if Path(out).suffix.lower() == ".json":
        clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
        atomic_write_json(out, clean[0] if len(clean) == 1 else clean)
    else:
        import pandas as pd

        atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False))


def run(args: argparse.Namespace) -> int:
    from ..errors import ValidationError

    motif_sample = _motif_sample(args.motif_sample)
    if args.out and Path(args.out).suffix.lower() not in (".json", ".csv"):
        raise ValidationError(f"--out must end in .json or .csv, got {args.out!r}")
    if args.out:
        check_output_file(args.out, "metrics.csv")
    rows = _rows(args, motif_sample)
    _print_table(rows)
    if args.out:
        _write(rows, args.out)
    return 0
