"""Run a study: pending cells -> executor -> results -> pool tables, with a progress display."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import states
from .cell import CellOutcome, CellTask
from .config import StudyConfig
from .executors import execute, threads_per_job
from .store import StudyStore


@dataclass
class StudyReport:
    """Summary of one ``run_study`` call."""

    study_dir: Path
    total: int
    already_done: int
    outcomes: list[CellOutcome] = field(default_factory=list)
    pool_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def complete(self) -> bool:
        """True when every cell of the study is done."""
        return self.already_done + self.count(states.DONE) + self.count(states.SKIPPED) == self.total


def function_path(fn: Callable) -> str:
    """``module:qualname`` of an importable top-level function (what crosses process boundaries)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def run_study(config: StudyConfig, study_dir: str | Path, *, cell_fn: Callable | None = None,
              progress: bool | None = None) -> StudyReport:
    """Run (or resume) every unfinished cell of ``config`` in ``study_dir``, then rebuild the pool.

    Done cells are skipped, failed ones retried, cells claimed by another live runner left to it.
    ``cell_fn`` (a top-level function, see :mod:`sparsetopo.study.cell`) replaces the real cell;
    ``progress=None`` shows the bar only on a terminal.
    """
    start = time.perf_counter()
    store = StudyStore(study_dir)
    store.save_config(config)
    specs = config.cells()
    pending = [spec for spec in specs if not store.result_path(spec).is_file()]
    report = StudyReport(Path(study_dir), len(specs), len(specs) - len(pending))
    cell_function = function_path(cell_fn) if cell_fn is not None else config.cell_function
    threads = threads_per_job(config.jobs)
    tasks = [CellTask(str(study_dir), spec.to_dict(), config.data_root, config.device, cell_function, threads,
                      config.download) for spec in pending]
    try:
        if tasks:
            outcomes = execute(tasks, config.executor, jobs=config.jobs, address=config.address,
                               device=config.device)
            report.outcomes = _with_progress(outcomes, len(tasks), config.jobs, progress)
    finally:  # also on Ctrl-C: the pool then holds every cell finished so far
        report.pool_rows = store.write_pool(specs)
    report.seconds = time.perf_counter() - start
    return report


def _with_progress(outcomes, total: int, jobs: int, progress: bool | None) -> list[CellOutcome]:
    """Drain ``outcomes`` behind a tqdm bar (done / failed / busy counts, ETA)."""
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if progress is None else progress
    collected: list[CellOutcome] = []
    with tqdm(total=total, unit="cell", desc="study", disable=not enabled, file=sys.stderr) as bar:
        bar.set_postfix(running=min(jobs, total))
        for outcome in outcomes:
            collected.append(outcome)
            counts = {s: sum(o.state == s for o in collected) for s in (states.DONE, states.FAILED, states.BUSY)}
            bar.set_postfix(**counts, running=min(jobs, total - len(collected)))
            bar.update(1)
            if outcome.state == states.FAILED:
                bar.write(f"failed: {outcome.cell_id}: {outcome.error}")
    return collected
