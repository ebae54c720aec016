"""Runner of the kill/resume torture test (``test_study_signals.py``), started as a subprocess.

``python -c "from _torture import main; main()" STUDY.toml OUT JOBS`` runs the study with
:func:`torture_cell`; with ``TORTURE_POOL_DELAY`` seconds the pool's Parquet writes dwell inside
their temporary files, so a kill can be aimed at the pool write (the test watches for ``*.tmp``).
"""
from __future__ import annotations

import os
import sys
import time

from test_study_runner import fake_cell


def torture_cell(spec, cell_dir, *, log, **kwargs):
    """``fake_cell`` (3 checkpointed steps, rows a function of the spec) and then a ``metrics`` stage
    that takes ``TORTURE_METRICS_DELAY`` seconds, so that kills can land while metrics are computed."""
    result = fake_cell(spec, cell_dir, log=log, **kwargs)
    if not spec.is_dense:
        with log.stage("metrics"):
            time.sleep(float(os.environ.get("TORTURE_METRICS_DELAY", "0")))
    return result


def _slow_parquet_writes(delay: float) -> None:
    import pandas as pd

    write = pd.DataFrame.to_parquet

    def to_parquet(self, path, *args, **kwargs):
        result = write(self, path, *args, **kwargs)
        time.sleep(delay)  # still inside the atomic temporary file: the old pool is in place
        return result

    pd.DataFrame.to_parquet = to_parquet


def main() -> None:
    from sparsetopo.study import load_config, run_study

    config_path, out, jobs = sys.argv[1:4]
    _slow_parquet_writes(float(os.environ.get("TORTURE_POOL_DELAY", "0")))
    config = load_config(config_path).replace(jobs=int(jobs))
    report = run_study(config, out, cell_fn=torture_cell, progress=False)
    sys.exit(0 if report.complete else 1)
