"""Time the demo study end to end and break its cost down by stage.

    python benchmarks/demo.py [--out runs/demo-bench] [--jobs 2] [--keep]

Runs ``sparsetopo study run --preset demo`` into a fresh directory (unless --keep resumes one), then
prints the wall time, the cells done / failed, and the seconds spent per stage summed over cells
(prune, train, encode / metrics per encoding) and per pruner, read from each cell's result.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import defaultdict
from pathlib import Path

from sparsetopo.study import load_preset, run_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/demo-bench")
    parser.add_argument("--jobs", type=int, default=None, help="override the preset's jobs")
    parser.add_argument("--keep", action="store_true", help="resume an existing directory")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    config = load_preset("demo").replace(jobs=args.jobs)
    start = time.perf_counter()
    report = run_study(config, out, progress=True)
    wall = time.perf_counter() - start
    print(f"demo: {report.total} cells, {report.count('done')} run now, {report.count('failed')} failed, "
          f"jobs={config.jobs}, wall {wall:.1f} s ({wall / 60:.1f} min)")
    stages, pruners = defaultdict(float), defaultdict(float)
    for path in sorted(out.glob("cells/*/result.json")):
        result = json.loads(path.read_text())
        for stage, seconds in result.get("timings", {}).items():
            stages[stage] += seconds
        pruners[result["spec"]["pruner"] or "dense"] += result.get("seconds", 0.0)
    print("seconds per stage (summed over cells):")
    for stage, seconds in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:24s} {seconds:8.1f}")
    print("seconds per pruner (whole cells, summed over sparsities):")
    for pruner, seconds in sorted(pruners.items(), key=lambda kv: -kv[1]):
        print(f"  {pruner:24s} {seconds:8.1f}")


if __name__ == "__main__":
    main()
