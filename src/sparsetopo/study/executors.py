"""Executors map :func:`~sparsetopo.study.cell.run_cell_task` over tasks; they schedule nothing else.

- ``local``: ``jobs`` spawned worker processes, each running one cell at a time and setting its torch
  threads so that jobs × threads ≤ cores; ``jobs=1`` runs the tasks in this process, in order. The
  workers are this module's own (not ``concurrent.futures``) so that a stop is always complete: on
  any exit of the consumer (Ctrl-C, SIGTERM turned into :class:`KeyboardInterrupt` by the runner,
  an error) every worker is terminated and joined, then killed if it lingers; a worker also dies
  with the runner (``PR_SET_PDEATHSIG`` on Linux), so even ``kill -9`` of the runner leaves no orphan.
  A worker ignores SIGINT: a Ctrl-C to the process group is the runner's to act on.
- ``ray``: one Ray task per cell with its CPU / GPU request; connects to ``address`` (or starts a
  local instance; an already initialised Ray is used as is). The study directory must be on a file
  system every node sees (cells claim themselves with file locks there).

Both yield :class:`~sparsetopo.study.cell.CellOutcome` as tasks finish.
"""
from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import wait
from typing import Iterable, Iterator

from . import states
from .cell import CellOutcome, CellTask, run_cell_task

#: seconds a terminated worker gets to exit before it is killed
TERMINATE_GRACE_S = 2.0


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
    """Run tasks in ``jobs`` spawned worker processes (in this process if 1); yield outcomes as
    cells finish. Closing the generator (or an exception in the consumer) stops every worker."""
    tasks = collections.deque(tasks)
    if jobs <= 1:
        while tasks:
            yield run_cell_task(tasks.popleft())
        return
    context = multiprocessing.get_context("spawn")
    workers = [_Worker(context) for _ in range(min(jobs, len(tasks)))]
    try:
        for worker in workers:
            worker.give(tasks.popleft())
        while any(w.task is not None for w in workers):
            busy = [w for w in workers if w.task is not None]
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.connection in ready or worker.process.sentinel in ready:
                    yield worker.collect()
                    if worker.process.is_alive() and tasks:
                        worker.give(tasks.popleft())
                    elif tasks:  # it died: a fresh worker takes the next cell
                        workers[workers.index(worker)] = worker = _Worker(context)
                        worker.give(tasks.popleft())
    finally:  # normal end, Ctrl-C, SIGTERM, consumer closed: no worker survives
        _stop(workers)


class _Worker:
    """One spawned worker process and the pipe it takes tasks from and returns outcomes on."""

    def __init__(self, context) -> None:
        self.connection, child = context.Pipe()
        # not a daemon: a cell may start processes of its own; the runner's finally stops it instead
        self.process = context.Process(target=_worker_loop, args=(child, os.getpid()))
        self.process.start()
        child.close()
        self.task: CellTask | None = None

    def give(self, task: CellTask) -> None:
        self.task = task
        self.connection.send(task)

    def collect(self) -> CellOutcome:
        """The outcome of the current task; a worker that died (killed, out of memory, segfault)
        counts as failed. No error.json is written (the worker could not): the cell stays pending and
        the next run resumes it from its files."""
        task, self.task = self.task, None
        try:
            if self.connection.poll():
                return self.connection.recv()
        except (EOFError, OSError):
            pass
        self.process.join(TERMINATE_GRACE_S)
        return _died(task, f"exit code {self.process.exitcode}")


def _worker_loop(connection, parent: int) -> None:
    """Body of a worker: run the tasks sent on ``connection`` until it closes or the runner is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        connection.send(run_cell_task(task))


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the runner dies (``prctl(PR_SET_PDEATHSIG)``)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux: the runner's clean-up still stops it
        pass
    if os.getppid() != parent:  # the runner died before prctl took effect
        os._exit(1)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT / SIGTERM back while a short clean-up runs (stopping workers, writing the pool), so
    a second Ctrl-C cannot cut it half way; they are delivered, and acted on, right after."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop(workers: list[_Worker]) -> None:
    """Terminate every worker, give them :data:`TERMINATE_GRACE_S` together, kill the rest, reap all."""
    with deferred_signals():
        _terminate_and_reap(workers)


def _terminate_and_reap(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.connection.close()
        if worker.process.is_alive():
            worker.process.terminate()
    deadline = time.monotonic() + TERMINATE_GRACE_S
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _died(task: CellTask, how: str) -> CellOutcome:
    from .config import CellSpec

    return CellOutcome(CellSpec.from_dict(task.spec).cell_id, states.FAILED, error=f"worker died: {how}")


def _outcome(get_result, task: CellTask) -> CellOutcome:
    """The Ray task's outcome; a worker that died counts as failed (see :meth:`_Worker.collect`)."""
    try:
        return get_result()
    except Exception as exc:
        return _died(task, f"{type(exc).__name__}: {exc}")


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
