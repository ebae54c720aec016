"""``sparsetopo metrics``: topometrics (and per-layer Ramanujan metrics) of an encoded network."""
from __future__ import annotations

import argparse
import math
from pathlib import Path

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
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.add_argument("graph", nargs="?", metavar="GRAPH.npz", help="graph file from `sparsetopo encode` (an MGE or rolled layers)")
    parser.add_argument("--model", help="architecture to encode (instead of GRAPH.npz), e.g. resnet20")
    parser.add_argument("--masks", metavar="FILE", help="mask file (safetensors) for --model; omit for dense")
    parser.add_argument("--encoding", default="mge", choices=("mge", "rolled", "rolled_channel"),
                        help="encoding of --model (default: mge)")
    parser.add_argument("--num-classes", type=int, default=10, help="classes of --model (default 10)")
    parser.add_argument("--input-shape", type=int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"),
                        help="input shape of --model (default 3 32 32)")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed of --model (default 0)")
    parser.add_argument("--motif-sample", metavar="S",
                        help="estimate motifs_4 from S random roots (an int, or 'official' = 0.1%% of |V|) "
                             "instead of the exact count")
    parser.add_argument("--compat", choices=("default", "official"), default="default",
                        help="'official' reproduces the official code where it deviates (metrics.md §1, §4)")
    parser.add_argument("--out", metavar="FILE", help="write the values as .json or .csv")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _motif_sample(text: str | None):
    from ..errors import ValidationError

    if text is None or text == "official":
        return text
    try:
        return int(text)
    except ValueError:
        raise ValidationError(f"--motif-sample must be an int or 'official', got {text!r}") from None


def _encoded(args: argparse.Namespace):
    """The graph(s) to measure and the density of each prunable layer (empty if unknown)."""
    from ..errors import ValidationError

    if (args.graph is None) == (args.model is None):
        raise ValidationError("give either GRAPH.npz or --model (with --masks)")
    if args.graph is not None:
        from ..encoding.graph import load_graph

        if not Path(args.graph).is_file():
            raise ValidationError(f"graph file {args.graph!r} does not exist")
        graph = load_graph(args.graph)
        return graph, (_rolled_densities(graph) if _file_kind(args.graph) == "rolled" else {})
    try:
        from ..encoding import encode
    except ImportError as exc:
        from ..errors import SparsetopoError

        raise SparsetopoError(f"the encoder (sparsetopo.encoding.encode) is not available: {exc}") from None
    from .. import masks as masks_mod
    from ..metrics import layer_density
    from ..models import build

    model = build(args.model, num_classes=args.num_classes, seed=args.seed)
    masks = masks_mod.load_masks(args.masks) if args.masks else None
    if masks is not None:
        masks_mod.apply_masks(model, masks)
    else:
        masks = masks_mod.get_masks(model)
    graph = encode(model, tuple(args.input_shape), kind=args.encoding, masks=masks)
    return graph, layer_density(masks)


def _file_kind(path: str) -> str:
    import numpy as np

    with np.load(path, allow_pickle=False) as z:
        return str(z["kind"]) if "kind" in z.files else "mge"


def _rolled_densities(layers) -> dict[str, float]:
    """Density of each rolled layer: one edge per kept weight, so |E| / (left·right)."""
    return {f"{g.name}.weight": g.num_edges / (g.num_left * g.num_right) for g in layers}


def _rows(graph, densities: dict[str, float], motif_sample, compat: str, progress: bool) -> list[dict]:
    from ..metrics import ramanujan_metrics, topometrics

    if not isinstance(graph, list):
        return [topometrics(graph, motif_sample=motif_sample, compat=compat, progress=progress)]
    if motif_sample is not None:
        from ..errors import ValidationError

        raise ValidationError("--motif-sample applies to an MGE; rolled layers use the exact size-3 motif count")
    rows = []
    for layer in graph:
        row = {"layer": layer.name, **topometrics(layer, compat=compat), **ramanujan_metrics(layer, compat=compat)}
        row["layer_density"] = densities.get(f"{layer.name}.weight", float("nan"))
        rows.append(row)
    return rows


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
    graph, densities = _encoded(args)
    rows = _rows(graph, densities, motif_sample, args.compat, progress=not args.no_progress)
    _print_table(rows)
    if args.out:
        _write(rows, args.out)
    return 0
