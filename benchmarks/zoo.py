"""torchvision's classification zoo through sparsetopo: 7 pruners, MGE / rolled / rolled-channel.

Needs torchvision (not a test dependency: `pip install sparsetopo[torchvision]`). Every model is
built untrained with 10 classes and run at the smallest input of 32, 64, 75, 96, 128, 224 (square,
3 channels) that its forward accepts. Per model: the seconds of each pruner at sparsity 0.9
(random data: ``--samples`` Gaussian images with labels 0..9; exact keep count checked), then the
three encodings of the ERK mask (nodes / edges / seconds). Vision transformers get the named
attention error. ``inception_v3_no_aux`` is Inception-v3 built with ``aux_logits=False``: the
default build's auxiliary classifier cannot run in train mode below about 299×299. Each model runs in its own subprocess (memory returns to the system between
models), under ``flock --lock`` when given (one heavy job at a time on a shared machine) and
``--timeout`` seconds; the load average at its start is recorded beside its figures. The MGE is
built under ``--max-memory`` (a refusal is a named error, shown with the |V| and |E| it counted).
Prints a Markdown table and, with ``--out``, writes it (rewritten after every model, atomically);
the raw rows as JSON with ``--json``.

    python benchmarks/zoo.py                       # the zoo below
    python benchmarks/zoo.py --models resnet18 vit_b_16
    python benchmarks/zoo.py --lock /work/heavy.lock --timeout 900 --out benchmarks/zoo_results.md
    python benchmarks/zoo.py --no-encodings --pruners synflow_l2 iter_snip force ntk_sap phew uniform_plus erk_plus igq
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

from sparsetopo.pruning import PRUNER_NAMES

ZOO = ("resnet18", "resnet50", "vgg11_bn", "alexnet", "squeezenet1_0", "mobilenet_v2", "mobilenet_v3_small",
       "mobilenet_v3_large", "shufflenet_v2_x1_0", "mnasnet1_0", "densenet121", "googlenet", "efficientnet_b0",
       "regnet_y_400mf", "convnext_tiny", "inception_v3", "inception_v3_no_aux", "vit_b_16")
#: zoo entries that are a torchvision model built with non-default arguments
VARIANTS = {"inception_v3_no_aux": ("inception_v3", {"aux_logits": False, "init_weights": True})}
SIZES = (32, 64, 75, 96, 128, 224)
PRUNERS = ("snip", "grasp", "synflow", "prospr", "uniform", "er", "erk")
#: small settings on 2 CPU cores (the spec defaults need minutes per pruner on the big models):
#: the table shows that every pruner runs and keeps exact counts, and what one iteration costs
OPTIONS = {"snip": {"batch_size": 10}, "grasp": {"samples_per_class": 1, "batch_size": 10},
           "prospr": {"batch_size": 5, "inner_steps": 1}, "synflow": {"iterations": 2},
           "synflow_l2": {"iterations": 2}, "iter_snip": {"steps": 2, "batch_size": 10},
           "force": {"steps": 2, "batch_size": 10}, "ntk_sap": {"iterations": 2, "rounds": 1, "samples_per_class": 1}}
SPARSITY = 0.9


def smallest_input(model) -> int | None:
    import torch

    for size in SIZES:
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(1, 3, size, size))
            return size
        except Exception:  # noqa: BLE001 - too small for this model: try the next size
            continue
    return None


def measure(name: str, samples: int, pruners: tuple[str, ...] = PRUNERS, max_memory: str = "8G",
            encodings: bool = True) -> dict:
    """All figures of one model (in this process)."""
    import torch
    import torchvision
    from torch.utils.data import TensorDataset

    from sparsetopo.encoding import count_mge, encode
    from sparsetopo.errors import SparsetopoError
    from sparsetopo.masks import prunable_modules
    from sparsetopo.pruning import prune
    from sparsetopo.pruning.core import PruningWarning, keep_count
    from sparsetopo.tracing import trace

    torch.manual_seed(0)
    base, kwargs = VARIANTS.get(name, (name, {}))
    build = lambda: torchvision.models.get_model(base, weights=None, num_classes=10, **kwargs)  # noqa: E731
    model = build()
    row: dict = {"model": name, "params": sum(m.weight.numel() for m in prunable_modules(model).values())}
    size = smallest_input(model)
    row["input"] = size
    if size is None:
        row["error"] = "no input size accepted"
        return row
    shape = (3, size, size)
    try:
        trace(model, shape)  # refused ops (attention, unknown ops): no encoding, the pruners still run
        encodable = True
    except SparsetopoError as exc:
        row.setdefault("errors", []).append(f"tracing (no encoding): {type(exc).__name__}: {exc}")
        encodable = False
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(samples, *shape, generator=g), torch.arange(samples) % 10)
    total = row["params"]
    masks = None
    for pruner in dict.fromkeys((*pruners, "erk") if encodings else pruners):  # ERK's masks are encoded
        candidate = build()
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PruningWarning)
                got = prune(candidate, pruner, SPARSITY, data=data, seed=0, input_shape=shape,
                            **OPTIONS.get(pruner, {}))
        except Exception as exc:  # noqa: BLE001 - a pruner failing on a zoo model is a finding: record it
            row.setdefault("errors", []).append(f"{pruner}: {type(exc).__name__}: {exc}")
            continue
        row[f"{pruner}_s"] = time.perf_counter() - t0
        row[f"{pruner}_exact"] = sum(int(m.sum()) for m in got.values()) == keep_count(1 - SPARSITY, total)
        if pruner == "erk":
            model, masks = candidate, got
    if masks is None or not encodable or not encodings:
        row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        return row
    row["mge_nodes"], row["mge_edges"] = count_mge(model, shape, masks)
    for kind in ("mge", "rolled", "rolled_channel"):
        t0 = time.perf_counter()
        try:
            graph = encode(model, shape, kind=kind, masks=masks, **({"max_memory": max_memory} if kind == "mge" else {}))
        except SparsetopoError as exc:
            row.setdefault("errors", []).append(f"{kind}: {type(exc).__name__}: {exc}")
            continue
        row[f"{kind}_s"] = time.perf_counter() - t0
        if kind == "mge":
            row["mge_nodes"], row["mge_edges"], row["mge_layers"] = graph.num_nodes, graph.num_edges, graph.num_layers
            row["mge_gates"] = sum("/" in n for n in graph.layer_names)
        else:
            row[f"{kind}_edges"] = sum(b.num_edges for b in graph)
            row[f"{kind}_layers"] = len(graph)
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return row


def header(pruners: tuple[str, ...]) -> str:
    """The table's header row for these pruners."""
    return ("| model | input | weights | load | pruner seconds (" + " / ".join(pruners) + ") | exact counts | "
            "MGE \\|V\\| / \\|E\\| (layers, gates), seconds | rolled: layers / edges, seconds | "
            "rolled-channel: edges, seconds | peak GB |\n|---|---|---|---|---|---|---|---|---|---|")


def _cell(row: dict, key: str, text) -> str:
    """``text()`` when ``row`` has ``key``, else a dash (that stage failed or was not reached)."""
    return text() if key in row else "-"


def _fmt(row: dict, pruners: tuple[str, ...]) -> str:
    """One Markdown table row; errors (named, one per failed stage) follow as a list item."""
    head = f"| {row['model']} | {row.get('input')} | {row['params'] / 1e6:.1f} M | {row.get('load', '-')} |"
    if "error" in row:
        return head + " " + row["error"][:160].replace("|", "/") + " | | | | | |"
    prune_s = " / ".join(f"{row[f'{p}_s']:.1f}" if f"{p}_s" in row else "✗" for p in pruners)
    exact = "yes" if all(row.get(f"{p}_exact", True) for p in pruners) else "NO"
    mge = _cell(row, "mge_nodes", lambda: f"{row['mge_nodes']:.2e} / {row['mge_edges']:.2e}") + _cell(
        row, "mge_s", lambda: f" ({row['mge_layers']}, {row['mge_gates']}) {row['mge_s']:.1f} s")
    rolled = _cell(row, "rolled_s", lambda: f"{row['rolled_layers']} / {row['rolled_edges']:.2e}, {row['rolled_s']:.1f} s")
    channel = _cell(row, "rolled_channel_s",
                    lambda: f"{row['rolled_channel_edges']:.2e}, {row['rolled_channel_s']:.1f} s")
    peak = _cell(row, "peak_gb", lambda: f"{row['peak_gb']:.1f}")
    return f"{head} {prune_s} | {exact} | {mge} | {rolled} | {channel} | {peak} |"


def _errors(rows: list[dict]) -> list[str]:
    """The named errors of every model, one Markdown list item each."""
    lines = []
    for row in rows:
        for error in ([row["error"]] if "error" in row else []) + row.get("errors", []):
            lines.append(f"- **{row['model']}** — {error.splitlines()[0][:400]}")
    return lines


def run_model(name: str, args: argparse.Namespace) -> dict:
    """One model in its own process (under ``flock args.lock`` and ``timeout args.timeout``)."""
    command = [sys.executable, __file__, "--one", name, "--samples", str(args.samples), "--max-memory",
               args.max_memory, "--pruners", *args.pruners, *(["--no-encodings"] if args.no_encodings else [])]
    command = ["timeout", str(args.timeout), *command]
    if args.lock:
        command = ["flock", args.lock, "sh", "-c", 'cat /proc/loadavg >&2; exec "$@"', "sh", *command]
    proc = subprocess.run(command, capture_output=True, text=True, env=os.environ)
    load = next((line.split()[0] for line in proc.stderr.splitlines() if line.count(" ") == 4), None)
    load = load or f"{os.getloadavg()[0]:.2f}"
    if proc.returncode == 124:
        return {"model": name, "params": 0, "load": load, "error": f"timed out after {args.timeout} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"model": name, "params": 0, "load": load, "error": f"crashed (exit {proc.returncode}): {last}"}
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "load": load}


def render(rows: list[dict], pruners: tuple[str, ...] = PRUNERS) -> str:
    """The whole Markdown document: settings, table, named errors."""
    import torch

    try:
        import torchvision
        versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
    except ImportError:
        versions = f"torch {torch.__version__}"
    lines = [f"# torchvision zoo through sparsetopo ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"Produced by `benchmarks/zoo.py`: {versions}, {torch.get_num_threads()} threads, "
             f"{os.cpu_count()} cores ({platform.machine()}); load = 1-minute load average when the model started.",
             f"Sparsity {SPARSITY}; pruner settings {OPTIONS} (others: spec defaults); data-driven pruners on "
             f"random Gaussian images with labels 0..9; the encodings are of the ERK masks; weights = prunable "
             f"(Conv2d / Linear) weights; ✗ = failed (named below).", "", header(pruners)]
    lines += [_fmt(row, pruners) for row in rows]
    errors = _errors(rows)
    if errors:
        lines += ["", "## Named errors", ""] + errors
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(ZOO))
    parser.add_argument("--samples", type=int, default=20, help="random images for the data-driven pruners")
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=PRUNER_NAMES,
                        help="pruners to time (default: the paper's 7; ERK always runs: its masks are encoded)")
    parser.add_argument("--no-encodings", action="store_true", help="time the pruners only")
    parser.add_argument("--max-memory", default="8G", help="the MGE's memory cap (a named error above it)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model")
    parser.add_argument("--lock", help="run each model under `flock LOCK` (a shared machine's heavy-job lock)")
    parser.add_argument("--out", help="write the Markdown document here (after every model)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.samples, tuple(args.pruners), args.max_memory,
                                 not args.no_encodings)))
        return 0
    rows = []
    for name in args.models:
        rows.append(run_model(name, args))
        print(_fmt(rows[-1], tuple(args.pruners)), flush=True)
        if args.out:
            from sparsetopo._io import atomic_write_text

            atomic_write_text(args.out, render(rows, tuple(args.pruners)))
    print("\n".join(_errors(rows)))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
