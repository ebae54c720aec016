"""The cell-state vocabulary of a study, in one place.

Two related sets of words, one per question:

* the *status* of a cell on disk (:meth:`StudyStore.status`, ``sparsetopo study status``):
  ``done`` (result recorded), ``failed`` (error recorded), ``running`` (claimed by a live runner),
  ``pending`` (none of these yet);
* the *outcome* of one attempt to run it (:func:`~sparsetopo.study.cell.run_cell_task`):
  ``done``, ``failed``, ``skipped`` (it was already done) or ``busy`` (another runner holds it).
"""
from __future__ import annotations

DONE = "done"
FAILED = "failed"
RUNNING = "running"
PENDING = "pending"
SKIPPED = "skipped"
BUSY = "busy"

#: a cell's status on disk, in display order
STATUSES: tuple[str, ...] = (DONE, FAILED, RUNNING, PENDING)
#: the outcome of one attempt to run a cell
OUTCOMES: tuple[str, ...] = (DONE, FAILED, SKIPPED, BUSY)
