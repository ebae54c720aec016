"""torchvision's classification zoo through sparsetopo: 7 pruners, MGE / rolled / rolled-channel.

Needs torchvision (not a test dependency: `pip install sparsetopo[torchvision]`). Every model is
built untrained with 10 classes and run at the smallest input of 32, 64, 75, 96, 128, 224 (square,
3 channels) that its forward accepts. Per model: the seconds of each pruner at sparsity 0.9
(random data: ``--samples`` Gaussian images with labels 0..9; exact keep count checked), then the
three encodings of the ERK mask (nodes / edges / seconds). Vision transformers get the named
attention error. Each model runs in its own subprocess (memory returns to the system between
models); prints a Markdown table, and the raw rows as JSON with ``--json``.

    python benchmarks/zoo.py                       # the zoo below
    python benchmarks/zoo.py --models resnet18 vit_b_16
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

ZOO = ("resnet18", "resnet50", "vgg11_bn", "alexnet", "squeezenet1_0", "mobilenet_v2", "mobilenet_v3_small",
       "mobilenet_v3_large", "shufflenet_v2_x1_0", "mnasnet1_0", "densenet121", "googlenet", "efficientnet_b0",
       "regnet_y_400mf", "convnext_tiny", "inception_v3", "vit_b_16")
SIZES = (32, 64, 75, 96, 128, 224)
PRUNERS = ("snip", "grasp", "synflow", "prospr", "uniform", "er", "erk")
#: small settings on 2 CPU cores (the spec defaults need minutes per pruner on the big models):
#: the table shows that every pruner runs and keeps exact counts, and what one iteration costs
OPTIONS = {"snip": {"batch_size": 10}, "grasp": {"samples_per_class": 1, "batch_size": 10},
           "prospr": {"batch_size": 5, "inner_steps": 1}, "synflow": {"iterations": 2}}
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


def measure(name: str, samples: int, pruners: tuple[str, ...] = PRUNERS) -> dict:
    """All figures of one model (in this process)."""
    import torch
    import torchvision
    from torch.utils.data import TensorDataset

    from sparsetopo.encoding import encode
    from sparsetopo.errors import SparsetopoError
    from sparsetopo.masks import prunable_modules
    from sparsetopo.pruning import prune
    from sparsetopo.pruning.core import PruningWarning, keep_count
    from sparsetopo.tracing import trace

    torch.manual_seed(0)
    build = lambda: torchvision.models.get_model(name, weights=None, num_classes=10)  # noqa: E731
    model = build()
    row: dict = {"model": name, "params": sum(m.weight.numel() for m in prunable_modules(model).values())}
    size = smallest_input(model)
    row["input"] = size
    if size is None:
        row["error"] = "no input size accepted"
        return row
    shape = (3, size, size)
    try:
        trace(model, shape)  # refused ops (attention, unknown ops) end here, before pruning
    except SparsetopoError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
        return row
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(samples, *shape, generator=g), torch.arange(samples) % 10)
    total = row["params"]
    masks = None
    for pruner in dict.fromkeys((*pruners, "erk")):  # ERK's masks are the ones encoded
        candidate = build()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PruningWarning)
            got = prune(candidate, pruner, SPARSITY, data=data, seed=0, input_shape=shape, **OPTIONS.get(pruner, {}))
        row[f"{pruner}_s"] = time.perf_counter() - t0
        exact = sum(int(m.sum()) for m in got.values()) == keep_count(1 - SPARSITY, total)
        row[f"{pruner}_exact"] = exact
        if pruner == "erk":
            model, masks = candidate, got
    for kind in ("mge", "rolled", "rolled_channel"):
        t0 = time.perf_counter()
        try:
            graph = encode(model, shape, kind=kind, masks=masks)
        except SparsetopoError as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            return row
        row[f"{kind}_s"] = time.perf_counter() - t0
        if kind == "mge":
            row["mge_nodes"], row["mge_edges"], row["mge_layers"] = graph.num_nodes, graph.num_edges, graph.num_layers
            row["mge_gates"] = sum("/" in n for n in graph.layer_names)
        else:
            row[f"{kind}_edges"] = sum(b.num_edges for b in graph)
            row[f"{kind}_layers"] = len(graph)
    row["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    return row


def _fmt(row: dict) -> str:
    if "error" in row:
        return f"| {row['model']} | {row.get('input')} | {row['params'] / 1e6:.1f} M | " + row["error"][:220].replace("|", "/") + " |"
    prune_s = " / ".join(f"{row[f'{p}_s']:.1f}" if f"{p}_s" in row else "-" for p in PRUNERS)
    exact = "yes" if all(row.get(f"{p}_exact", True) for p in PRUNERS) else "NO"
    return (f"| {row['model']} | {row['input']} | {row['params'] / 1e6:.1f} M | {prune_s} | {exact} | "
            f"{row['mge_nodes']:.2e} / {row['mge_edges']:.2e} ({row['mge_layers']} layers, {row['mge_gates']} gate) "
            f"{row['mge_s']:.1f} s | {row['rolled_layers']} × / {row['rolled_edges']:.2e} {row['rolled_s']:.1f} s | "
            f"{row['rolled_channel_edges']:.2e} {row['rolled_channel_s']:.1f} s | {row['peak_gb']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(ZOO))
    parser.add_argument("--samples", type=int, default=20, help="random images for the data-driven pruners")
    parser.add_argument("--pruners", nargs="+", default=list(PRUNERS), choices=PRUNERS,
                        help="pruners to time (ERK always runs: its masks are encoded)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.samples, tuple(args.pruners))))
        return 0
    print(f"sparsity {SPARSITY}; pruner seconds {' / '.join(PRUNERS)} with {OPTIONS}; encodings of the ERK masks\n")
    print("| model | input | weights | pruner seconds | exact counts | MGE nodes / edges, seconds | rolled | rolled-channel | peak GB |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        proc = subprocess.run([sys.executable, __file__, "--one", name, "--samples", str(args.samples),
                               "--pruners", *args.pruners],
                              capture_output=True, text=True, env=os.environ)
        if proc.returncode != 0:
            row = {"model": name, "params": 0, "error": "crashed: " + proc.stderr.strip().splitlines()[-1]}
        else:
            row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(_fmt(row), flush=True)
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
