"""The study directory: per-cell folders, claims, results, errors, and the pool tables built from them.

Layout (every file written atomically through :mod:`sparsetopo._io`)::

    STUDY/
      study.toml              the resolved study description of the last run
      study.lock              held while study.toml or the pool files are (re)written
      cells/<cell_id>/        one folder per grid point, named by a hash of its full spec
        cell.json             the CellSpec
        .lock                 claim of the runner working on the cell (filelock, released on death)
        masks.safetensors     the pruning masks (sparse cells)
        train/                training checkpoints (resumed by the training stage)
        result.json           the finished cell: accuracy, timings, metric rows (its presence = done)
        error.json            the last failure: type, message, traceback (removed on success)
        cell.log              stage timings, appended across attempts
        init_metrics.json     metrics of the masks on the initial weights (reused on resume)
      pool.parquet / pool.csv                  MGE rows, one per sparse network and stage (init, trained)
      pool_layers.parquet / pool_layers.csv    rolled / rolled-channel rows, one per (network, stage, layer)

A cell is *done* when ``result.json`` exists; the pool is rebuilt from the result files, so it can
never hold a row twice and never loses one that was recorded.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import filelock

from .._io import atomic_path, atomic_write_json, atomic_write_text, describe_os_error
from ..errors import OutputError, StudyConfigError
from . import states
from .config import CellSpec, StudyConfig, config_from_dict

KEY = ["model", "dataset", "pruner", "sparsity", "seed"]
POOL_FILES = {"pool": "pool", "layers": "pool_layers"}


@dataclass(frozen=True)
class CellStatus:
    """Where one cell stands: ``state`` is done | failed | running | pending, ``reason`` says why."""

    spec: CellSpec
    state: str
    reason: str


class StudyStore:
    """Read and write one study directory (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    # --- paths ------------------------------------------------------------------------------------
    @property
    def cells_dir(self) -> Path:
        return self.root / "cells"

    def cell_dir(self, spec: CellSpec) -> Path:
        return self.cells_dir / spec.cell_id

    def result_path(self, spec: CellSpec) -> Path:
        return self.cell_dir(spec) / "result.json"

    def error_path(self, spec: CellSpec) -> Path:
        return self.cell_dir(spec) / "error.json"

    def pool_path(self, which: str, suffix: str = ".parquet") -> Path:
        return self.root / (POOL_FILES[which] + suffix)

    # --- study description ------------------------------------------------------------------------
    def save_config(self, config: StudyConfig) -> None:
        """Record the resolved study description (``study.toml``) under the study lock."""
        import tomli_w

        with self.study_lock():
            atomic_write_text(self.root / "study.toml", tomli_w.dumps(config.to_toml_dict()))

    def load_config(self) -> StudyConfig:
        """The study description recorded by the last ``study run`` in this directory.

        Its ``run.cell_function`` was accepted when that run started and is left out here: ``status``
        and ``pool`` never run a cell, so nothing a study file names is imported for them."""
        import tomllib

        path = self.root / "study.toml"
        if not path.is_file():
            raise StudyConfigError(f"{str(self.root)!r} is not a study directory (no study.toml)")
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise StudyConfigError(f"{str(path)!r} is corrupted ({exc}); `study run` with the study file "
                                   f"rewrites it") from None
        if isinstance(data.get("run"), dict):
            data["run"].pop("cell_function", None)
        return config_from_dict(data, source=str(path))

    # --- locks ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def study_lock(self, timeout: float = 600.0) -> Iterator[None]:
        """Exclusive study-level lock (pool rebuild, study.toml), waiting up to ``timeout`` s. A folder or
        lock file that cannot be created is an :class:`OutputError` (the guarded write path)."""
        lock = filelock.FileLock(str(self.root / "study.lock"), timeout=timeout)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except filelock.Timeout:  # an OSError too, but not a write failure: another runner holds it
            raise
        except OSError as exc:
            raise OutputError(f"cannot create {str(self.root / 'study.lock')!r}: {describe_os_error(exc)}") from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def claim(self, spec: CellSpec, timeout: float = 0.0) -> Iterator[bool]:
        """Try to claim a cell, waiting up to ``timeout`` s; yields True if this process holds it.

        The claim is an OS file lock: it disappears with the process that held it (kill -9 included),
        so an interrupted cell is never left claimed. (``status`` probes claims by taking them for an
        instant; runners wait a little, so a probe never makes them skip a cell.)
        """
        directory = self.cell_dir(spec)
        directory.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(directory / ".lock"), timeout=timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def is_claimed(self, spec: CellSpec) -> bool:
        """True if another process holds the cell's claim right now."""
        if not (self.cell_dir(spec) / ".lock").exists():
            return False
        with self.claim(spec) as mine:
            return not mine

    # --- cell files -------------------------------------------------------------------------------
    def write_spec(self, spec: CellSpec) -> None:
        path = self.cell_dir(spec) / "cell.json"
        if not path.exists():
            atomic_write_json(path, {"cell_id": spec.cell_id, "digest": spec.digest, "spec": spec.to_dict()})

    def read_result(self, spec: CellSpec) -> dict[str, Any] | None:
        """The cell's result, or None if it is not done.

        A corrupted result (not JSON, not a result of this cell, no accuracy in [0, 1]) is quarantined:
        renamed ``result.json.corrupt-<time>`` with a :class:`CorruptResultWarning` naming it, and the
        cell counts as not done, so the study re-runs it instead of stopping on it.
        """
        path = self.result_path(spec)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:  # unreadable: say so, but never block the study on one cell
            warnings.warn(f"result file {str(path)!r} cannot be read ({describe_os_error(exc)}); "
                          f"the cell counts as not done", CorruptResultWarning, stacklevel=2)
            return None
        problem = _result_problem(text, spec)
        if problem is None:
            return json.loads(text)
        self._quarantine(path, problem)
        return None

    def _quarantine(self, path: Path, problem: str) -> None:
        target = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        try:
            os.replace(path, target)
            where = f"moved to {target.name}; the cell will run again"
        except OSError as exc:
            where = f"could not be moved aside ({describe_os_error(exc)}); the cell counts as not done"
        warnings.warn(f"result file {str(path)!r} is corrupted ({problem}): {where}", CorruptResultWarning,
                      stacklevel=3)

    def write_result(self, spec: CellSpec, result: dict[str, Any]) -> None:
        """Record a finished cell (atomically), then forget its previous failure."""
        record = {"cell_id": spec.cell_id, "spec": spec.to_dict(), "finished_at": time.time(), **result}
        atomic_write_json(self.result_path(spec), record)
        with contextlib.suppress(OSError):  # the result is recorded: a stale error.json only misleads status
            self.error_path(spec).unlink()

    def write_error(self, spec: CellSpec, exc: BaseException) -> dict[str, str]:
        """Record a failed attempt: exception type, message and traceback (atomically)."""
        error = {"type": type(exc).__name__, "message": str(exc),
                 "traceback": "".join(traceback.format_exception(exc)), "failed_at": time.time()}
        atomic_write_json(self.error_path(spec), {"cell_id": spec.cell_id, **error})
        return error

    def read_error(self, spec: CellSpec) -> dict[str, Any] | None:
        path = self.error_path(spec)
        try:
            return json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # --- status -----------------------------------------------------------------------------------
    def status(self, spec: CellSpec) -> CellStatus:
        """done / failed / running / pending, with a one-line reason."""
        result = self.read_result(spec)
        if result is not None:
            return CellStatus(spec, states.DONE, f"accuracy {result.get('accuracy', float('nan')):.4f}")
        if self.is_claimed(spec):
            return CellStatus(spec, states.RUNNING, "claimed by another runner")
        error = self.read_error(spec)
        if error is not None:
            return CellStatus(spec, states.FAILED, f"{error.get('type')}: {error.get('message')}")
        return CellStatus(spec, states.PENDING, self._pending_reason(spec))

    def _pending_reason(self, spec: CellSpec) -> str:
        directory = self.cell_dir(spec)
        train_dir = directory / "train"
        if train_dir.is_dir() and any(train_dir.iterdir()):
            return "interrupted during training (resumes from its checkpoint)"
        if (directory / "masks.safetensors").is_file():
            return "interrupted after pruning (masks saved)"
        if directory.is_dir():
            return "interrupted before training (dense baseline)" if spec.is_dense else "interrupted before pruning"
        return "not started"

    def statuses(self, specs: Iterable[CellSpec]) -> list[CellStatus]:
        return [self.status(spec) for spec in specs]

    # --- pool -------------------------------------------------------------------------------------
    def build_pool(self, specs: Iterable[CellSpec]):
        """Pool tables from the results of ``specs``: (MGE rows, rolled rows), sorted by key.

        ``dense_accuracy`` of a row is the mean accuracy over the finished dense seeds of its
        (model, dataset); NaN when none has finished (the analysis then refuses the pool, naming it).
        """
        import pandas as pd

        results = [(spec, self.read_result(spec)) for spec in specs]
        done = [(spec, r) for spec, r in results if r is not None]
        dense: dict[tuple[str, str], list[float]] = {}
        for spec, result in done:
            if spec.is_dense:
                dense.setdefault((spec.model, spec.dataset), []).append(float(result["accuracy"]))
        pool_rows, layer_rows = [], []
        for spec, result in done:
            if spec.is_dense:
                continue
            seeds = dense.get((spec.model, spec.dataset))
            base = {"model": spec.model, "dataset": spec.dataset, "pruner": spec.pruner,
                    "sparsity": spec.sparsity, "seed": spec.seed, "accuracy": result["accuracy"],
                    "dense_accuracy": sum(seeds) / len(seeds) if seeds else float("nan")}
            tail = {"epochs": result.get("epochs"), "cell_id": spec.cell_id}
            # rows recorded before init-stage metrics existed have no stage: they are trained-stage
            pool_rows += [{**base, "stage": "trained", **row, **tail} for row in result.get("rows", [])]
            layer_rows += [{**base, "stage": "trained", **row, **tail} for row in result.get("layer_rows", [])]
        pool = _sorted_frame(pd.DataFrame(pool_rows), ["stage", "encoding"])
        layers = _sorted_frame(pd.DataFrame(layer_rows), ["stage", "encoding", "layer"])
        return pool, layers

    def write_pool(self, specs: Iterable[CellSpec]) -> dict[str, int]:
        """Rebuild the pool files (Parquet + CSV) under the study lock.

        Returns the rows per table and ``without_dense``: pool rows whose dense baseline is not done.
        """
        with self.study_lock():
            pool, layers = self.build_pool(list(specs))
            # all four files are written to temporaries first and replace the old ones only when every
            # write succeeded: a full disk leaves the previous pool whole, never half new
            with contextlib.ExitStack() as files:
                for which, table in (("pool", pool), ("layers", layers)):
                    for suffix in (".parquet", ".csv"):
                        tmp = files.enter_context(atomic_path(self.pool_path(which, suffix)))
                        if suffix == ".parquet":
                            table.to_parquet(tmp, index=False)
                        else:
                            table.to_csv(tmp, index=False)
        missing = int(pool["dense_accuracy"].isna().sum()) if len(pool) else 0
        return {"pool": len(pool), "layers": len(layers), "without_dense": missing}


class CorruptResultWarning(RuntimeWarning):
    """A cell's result file was unreadable or malformed and was set aside (the cell re-runs)."""


def _result_problem(text: bytes, spec: CellSpec) -> str | None:
    """What is wrong with the bytes of a result file of ``spec`` (None when it is a sound result)."""
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"not JSON: {exc}"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    if record.get("cell_id") != spec.cell_id:
        return f"cell_id {record.get('cell_id')!r} is not this cell's"
    accuracy = record.get("accuracy")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0.0 <= accuracy <= 1.0:
        return f"accuracy {accuracy!r} is not a number in [0, 1]"
    for key in ("rows", "layer_rows"):
        if not isinstance(record.get(key, []), list) or not all(isinstance(r, dict) for r in record.get(key, [])):
            return f"{key!r} is not a list of rows"
    return None


def _sorted_frame(table, extra: list[str]):
    """Key columns first, rows sorted by key (+ ``extra``), a fresh index."""
    if table.empty:
        return table
    order = KEY + ["accuracy", "dense_accuracy"] + extra
    columns = order + [c for c in table.columns if c not in order]
    return table[columns].sort_values(KEY + extra, kind="stable").reset_index(drop=True)
