"""Run a study: pending cells -> executor -> results -> pool tables, with a progress display.

Stopping: SIGINT (Ctrl-C, to the group or to the runner alone) and SIGTERM (a batch scheduler, ``kill``)
both raise :class:`Interrupted` in the runner; the executor then terminates its workers (their claims
are OS file locks and vanish with them), and the pool is rebuilt from the cells finished so far.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import OutputError
from . import states
from .cell import CellOutcome, CellTask, function_path
from .config import StudyConfig
from .executors import cpu_count, deferred_signals, execute, threads_per_job
from .store import StudyStore


class Interrupted(KeyboardInterrupt):
    """The run was stopped by signal ``signum`` (SIGINT or SIGTERM); exit code 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


@dataclass
class StudyReport:
    """Summary of one ``run_study`` call."""

    study_dir: Path
    total: int
    already_done: int
    outcomes: list[CellOutcome] = field(default_factory=list)
    pool_rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: why the pool files could not be rewritten (disk full, ...); the previous ones are intact
    pool_error: str | None = None

    def count(self, state: str) -> int:
        return sum(o.state == state for o in self.outcomes)

    @property
    def complete(self) -> bool:
        """True when every cell of the study is done."""
        return self.already_done + self.count(states.DONE) + self.count(states.SKIPPED) == self.total


def run_study(config: StudyConfig, study_dir: str | Path, *, cell_fn: Callable | None = None,
              progress: bool | None = None) -> StudyReport:
    """Run (or resume) every unfinished cell of ``config`` in ``study_dir``, then rebuild the pool.

    Done cells are skipped, failed ones retried, cells claimed by another live runner left to it.
    ``cell_fn`` (a top-level function, see :mod:`sparsetopo.study.cell`) replaces the real cell;
    ``progress=None`` shows the bar only on a terminal.
    """
    start = time.perf_counter()
    config.check_runnable()
    _warn_oversubscribed(config)
    store = StudyStore(study_dir)
    store.save_config(config)
    specs = config.cells()
    pending = [spec for spec in specs if store.read_result(spec) is None]
    report = StudyReport(Path(study_dir), len(specs), len(specs) - len(pending))
    cell_function = function_path(cell_fn) if cell_fn is not None else config.cell_function
    threads = threads_per_job(config.jobs)
    tasks = [CellTask(str(study_dir), spec.to_dict(), config.data_root, config.device, cell_function, threads,
                      config.download) for spec in pending]
    with _signals_interrupt():
        outcomes = execute(tasks, config.executor, jobs=config.jobs, address=config.address,
                           device=config.device) if tasks else iter(())
        try:
            _with_progress(outcomes, len(tasks), config.jobs, progress, report)
        finally:  # also when stopped: workers stopped first, then the pool holds every cell finished so far
            getattr(outcomes, "close", lambda: None)()
            with deferred_signals():
                _write_pool(store, specs, report)
    report.seconds = time.perf_counter() - start
    return report


def _write_pool(store: StudyStore, specs, report: StudyReport) -> None:
    """Rebuild the pool; a write that fails (disk full) leaves the previous pool files intact and is
    reported in ``report.pool_error`` rather than hiding the outcome of the run."""
    try:
        report.pool_rows = store.write_pool(specs)
    except OutputError as exc:
        report.pool_error = str(exc)
        report.pool_rows = {"pool": 0, "layers": 0, "without_dense": 0}


@contextlib.contextmanager
def _signals_interrupt():
    """While running, SIGTERM stops the run like Ctrl-C does (as :class:`Interrupted`), so the workers
    are stopped and the pool written instead of the runner vanishing and orphaning them. Only the main
    thread can install handlers; elsewhere (a library call from a thread) this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, _frame):
        raise Interrupted(signum)

    # a signal already ignored (SIGINT of a background job started by a script) stays ignored
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _warn_oversubscribed(config: StudyConfig) -> None:
    """More local cells at once than CPUs only makes them compete (each gets one thread): say so."""
    if config.executor == "local" and config.jobs > cpu_count():
        warnings.warn(f"jobs = {config.jobs} exceeds the {cpu_count()} CPU(s) of this machine: cells will "
                      f"compete for them (each gets 1 torch thread); jobs <= {cpu_count()} is faster",
                      RuntimeWarning, stacklevel=3)


def _with_progress(outcomes, total: int, jobs: int, progress: bool | None, report: StudyReport
                   ) -> list[CellOutcome]:
    """Drain ``outcomes`` behind a tqdm bar (done / failed / busy counts, ETA). Outcomes land in
    ``report.outcomes`` as they come, so an interrupted run still reports what finished."""
    from tqdm import tqdm

    enabled = sys.stderr.isatty() if progress is None else progress
    collected = report.outcomes
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
