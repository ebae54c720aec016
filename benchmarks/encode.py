"""Benchmark the MGE encoder: nodes, edges, seconds and peak memory per model and sparsity.

Masks are uniform random: every prunable layer keeps round(d·N_l) weights at random positions
(d = 1 − sparsity). Each configuration runs in its own subprocess, so its peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) is its own; "base" is the RSS after building the
model and masks, before encoding. "cold" is the first encode in the process (imports and first
calls included: what one CLI call pays), "warm" a second identical encode.

    python benchmarks/encode.py            # resnet20, resnet32, wrn28_2, conv6 × 0.6, 0.9, 0.98
    python benchmarks/encode.py --quick    # resnet20 × all, wrn28_2 @ 0.9
    flock /work/heavy.lock python benchmarks/encode.py --models resnet18 --sparsities 0.9 --input-shape 3 224 224
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODELS = ("resnet20", "resnet32", "wrn28_2", "conv6", "resnet18", "resnet50")
DEFAULT_MODELS = MODELS[:4]
SPARSITIES = (0.6, 0.9, 0.98)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(model_name: str, sparsity: float, seed: int = 0, input_shape=(3, 32, 32)) -> dict:
    """Encode one configuration in this process and return its figures."""
    import torch

    from sparsetopo.encoding import encode
    from sparsetopo.masks import prunable_modules
    from sparsetopo.models import build

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    model = build(model_name, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    masks = {}
    for name, module in prunable_modules(model).items():
        n = module.weight.numel()
        keep = torch.zeros(n, dtype=torch.bool)
        keep[torch.randperm(n, generator=gen)[: round((1 - sparsity) * n)]] = True
        masks[name] = keep.view_as(module.weight)
    base = _rss_mb()
    t0 = time.perf_counter()
    graph = encode(model, tuple(input_shape), kind="mge", masks=masks)
    cold = time.perf_counter() - t0
    peak = _rss_mb()
    nodes, edges = graph.num_nodes, graph.num_edges
    del graph
    t0 = time.perf_counter()
    encode(model, tuple(input_shape), kind="mge", masks=masks)
    warm = time.perf_counter() - t0
    return {"model": model_name, "sparsity": sparsity, "nodes": nodes, "edges": edges, "cold_s": round(cold, 2),
            "warm_s": round(warm, 2), "base_rss_mb": round(base), "peak_rss_mb": round(peak)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small subset")
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=MODELS)
    parser.add_argument("--input-shape", type=int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"),
                        help="e.g. 3 224 224 for resnet18 / resnet50 at ImageNet size (issue 16: <= 60 s)")
    parser.add_argument("--sparsities", nargs="+", type=float, default=SPARSITIES)
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "SPARSITY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], float(args.one[1]), input_shape=args.input_shape)))
        return 0
    configs = [(m, s) for m in args.models for s in args.sparsities]
    if args.quick:
        configs = [("resnet20", s) for s in SPARSITIES] + [("wrn28_2", 0.9)]
    print(f"{'model':10s} {'sparsity':>8s} {'nodes':>9s} {'edges':>12s} {'cold s':>7s} {'warm s':>7s} "
          f"{'base MB':>8s} {'peak MB':>8s}")
    for model_name, sparsity in configs:
        proc = subprocess.run([sys.executable, __file__, "--one", model_name, str(sparsity),
                               "--input-shape", *map(str, args.input_shape)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{model_name:10s} {sparsity:8.2f} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{r['model']:10s} {r['sparsity']:8.2f} {r['nodes']:9d} {r['edges']:12d} {r['cold_s']:7.2f} "
              f"{r['warm_s']:7.2f} {r['base_rss_mb']:8d} {r['peak_rss_mb']:8d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
