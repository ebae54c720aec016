"""Executors map :func:`~sparsetopo.study.cell.run_cell_task` over tasks; they schedule nothing else.

- ``local``: :class:`concurrent.futures.ProcessPoolExecutor` (spawn context; each worker sets its torch
  threads so that jobs × threads ≤ cores). ``jobs=1`` runs the tasks in this process, in order.
- ``ray``: one Ray task per cell with its CPU / GPU request; connects to ``address`` (or starts a
  local instance; an already initialised Ray is used as is). The study directory must be on a file
  system every node sees (cells claim themselves with file locks there).

Both yield :class:`~sparsetopo.study.cell.CellOutcome` as tasks finish.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Iterable, Iterator

from . import states
from .cell import CellOutcome, CellTask, run_cell_task


def cpu_count() -> int:
    """CPUs this process may use (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Torch threads per concurrent cell so that jobs × threads ≤ cores (at least 1)."""
    return max(1, cpu_count() // max(1, jobs))


def run_local(tasks: Iterable[CellTask], jobs: int = 1) -> Iterator[CellOutcome]:
    """Run tasks in a spawn-context process pool of ``jobs`` workers (in this process if 1)."""
    tasks = list(tasks)
    if jobs <= 1:
        for task in tasks:
            yield run_cell_task(task)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(run_cell_task, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                yield _outcome(future.result, futures[future])
        except BaseException:  # Ctrl-C, or the consumer stopped: stop the running cells too
            _terminate_workers(pool)
            raise


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel queued cells and end the workers now (safe: cells resume from their atomic files).

    ``ProcessPoolExecutor`` has no public way to stop running tasks before Python 3.14
    (``terminate_workers``); its process table is read instead.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()


def _outcome(get_result, task: CellTask) -> CellOutcome:
    """The task's outcome; a worker that died (killed, out of memory, segfault) counts as failed.

    Exceptions of the cell itself never get here (run_cell_task records them); this is the worker
    process dying. No error.json is written (the worker could not): the cell stays pending and the
    next run resumes it from its files.
    """
    try:
        return get_result()
    except Exception as exc:
        from .config import CellSpec

        cell_id = CellSpec.from_dict(task.spec).cell_id
        return CellOutcome(cell_id, states.FAILED, error=f"worker died: {type(exc).__name__}: {exc}")


def run_ray(tasks: Iterable[CellTask], address: str | None = None, cpus_per_cell: int = 1,
            gpus_per_cell: float = 0.0) -> Iterator[CellOutcome]:
    """Run tasks as Ray tasks (``num_cpus=cpus_per_cell``, ``num_gpus=gpus_per_cell`` each)."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is an optional extra
        from ..errors import StudyConfigError

        raise StudyConfigError("executor 'ray' needs Ray: pip install 'sparsetopo[ray]'") from exc
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=cpus_per_cell, num_gpus=gpus_per_cell, max_retries=0)(run_cell_task)
    tasks_of = {remote.remote(task): task for task in tasks}
    pending = list(tasks_of)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield _outcome(lambda: ray.get(done[0]), tasks_of[done[0]])
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


def execute(tasks: list[CellTask], executor: str = "local", *, jobs: int = 1, address: str | None = None,
            device: str | None = None) -> Iterator[CellOutcome]:
    """Dispatch to the chosen executor; yields outcomes as cells finish."""
    if executor == "ray":
        gpus = 1.0 if device and device.startswith("cuda") else 0.0
        cpus = (tasks[0].threads or 1) if tasks else 1
        return run_ray(tasks, address=address, cpus_per_cell=cpus, gpus_per_cell=gpus)
    return run_local(tasks, jobs=jobs)
