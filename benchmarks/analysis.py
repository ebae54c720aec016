"""Benchmark: wall time of the default analysis (`sparsetopo analyze`, 100 runs) on a synthetic pool.

The pool has the paper's grid: 4 models x 3 datasets x 5 sparsities x 7 pruners x 3 seeds = 1,260
networks (MGE rows) plus a layer pool (rolled and rolled-channel rows, 20 layers per network by
default, 4% of the rolled Δr values -inf as in real pools) and an effective-density column.
Prints seconds per stage and the load average (timings on a busy machine are upper bounds).

    .venv/bin/python benchmarks/analysis.py --jobs 2            # the default protocol (100 runs)
    .venv/bin/python benchmarks/analysis.py --runs 5 --jobs 2   # a quick look
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--oos-runs", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: every core)")
    parser.add_argument("--layers-per-network", type=int, default=20)
    parser.add_argument("--out", default=None, help="report folder (default: a temporary one)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from sparsetopo.analysis.pool import validate_pool
    from sparsetopo.analysis.report import build_report
    from sparsetopo.analysis.synthetic import synthetic_pools

    t0 = time.perf_counter()
    import numpy as np

    pool, layers = synthetic_pools(layers_per_network=args.layers_per_network)
    rng = np.random.default_rng(0)
    rolled = (layers["encoding"] == "rolled").to_numpy()
    layers.loc[rolled & (rng.random(len(layers)) < 0.04), "delta_r"] = -np.inf
    pool["effective_density"] = (1 - pool["sparsity"]) * rng.uniform(0.8, 1.0, len(pool))
    pool, layers = validate_pool(pool), validate_pool(layers, layers=True)
    load_before = os.getloadavg()[0]
    t1 = time.perf_counter()
    out = args.out or tempfile.mkdtemp(prefix="sparsetopo-bench-")
    report = build_report(pool, layers, out, runs=args.runs, jobs=args.jobs, oos_runs=args.oos_runs, progress=True)
    t2 = time.perf_counter()
    print(f"pool: {len(pool)} networks, {len(layers)} layer rows; runs={args.runs}, jobs={args.jobs or os.cpu_count()}, "
          f"cpus={os.cpu_count()}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print(f"build + validate pools: {t1 - t0:8.2f} s")
    print(f"full report           : {t2 - t1:8.2f} s  ({len(report.files)} files in {out})")


if __name__ == "__main__":
    main()
