"""One grid point, end to end, and the task wrapper every executor runs.

:func:`run_cell` is the real pipeline: build model (seeded) -> prune (masks saved) -> train
(checkpointed, resumable) -> encode (MGE, rolled, rolled-channel) -> metrics -> a result dict.
:func:`run_cell_task` wraps any cell function with the study mechanics: claim the cell (skip it if
another runner holds it), skip it if it is already done, record the result or the error atomically,
time the stages in ``cell.log``. Executors only map :func:`run_cell_task` over pending cells.

A cell function has the signature ``fn(spec, cell_dir, *, data_root, device, log, download) -> dict``
and returns
``{"accuracy": float, "epochs": int, "rows": [MGE row dicts], "layer_rows": [rolled row dicts]}``
(rows hold ``encoding`` and the metric columns; layer rows also ``layer`` and ``layer_name``).
"""
from __future__ import annotations

import contextlib
import importlib
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .._io import atomic_write_text, describe_os_error
from ..errors import OutputError
from . import states
from .config import CellSpec

CellFunction = Callable[..., dict]
#: how long a runner waits for a claimed cell before leaving it to its owner (covers status probes)
CLAIM_WAIT_S = 1.0


class CellLog:
    """Per-cell log (``cell.log``): one line per stage with its wall and CPU time, kept across attempts.

    The whole file is rewritten atomically after each line (it is small), so it is never torn. A log
    that cannot be written (disk full) never fails the cell: the lines stay in memory and go out with
    the next write that succeeds; :attr:`write_error` says why the file is behind.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.lines = path.read_text("utf-8", errors="replace").splitlines()
        except OSError:
            self.lines = []
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.write_error: str | None = None

    def write(self, message: str) -> None:
        self.lines.append(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid={os.getpid()} {message}")
        try:
            atomic_write_text(self.path, "\n".join(self.lines) + "\n")
            self.write_error = None
        except OutputError as exc:
            self.write_error = str(exc)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage; the seconds land in :attr:`timings` and the log (also when it raises).

        Warnings raised inside (layer collapse, NaN metrics, ...) are written to the log and kept
        in :attr:`warnings` (they end up in result.json)."""
        start, cpu_start = time.perf_counter(), time.process_time()
        self.write(f"start {name}")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                yield
        except BaseException as exc:
            self.write(f"failed {name} after {time.perf_counter() - start:.2f} s: {type(exc).__name__}")
            raise
        finally:
            for warning in caught:
                text = f"{name}: {warning.category.__name__}: {warning.message}"
                if text not in self.warnings:
                    self.warnings.append(text)
                    self.write(f"warning {text}")
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        self.timings[name] = self.timings.get(name, 0.0) + seconds
        self.write(f"done {name} in {seconds:.2f} s (cpu {cpu:.2f} s)")


# --- the real pipeline -----------------------------------------------------------------------------

def run_cell(spec: CellSpec, cell_dir: Path, *, data_root: str | None = None, device: str | None = None,
             log: CellLog, download: bool = False) -> dict[str, Any]:
    """Run one cell: prune, train, encode and measure. Resumes from the files already in ``cell_dir``.

    Masks are saved once (``masks.safetensors``) and reloaded on a resumed attempt; training resumes
    from its checkpoint in ``cell_dir/train``. Metrics are computed on the trained weights (masked),
    on CPU. Dense cells stop after training. Cost: dominated by training, then by the MGE metrics
    (|E| ≈ density × MACs of one forward pass).
    """
    from ..models import build
    from ..training import Recipe, train

    with log.stage("data"):
        bundle = load_bundle(spec, data_root, download)
    with log.stage("build"):
        model = build(spec.model, num_classes=bundle.num_classes, seed=spec.seed)
    masks = None
    init_rows: tuple[list[dict], list[dict]] = ([], [])
    if not spec.is_dense:
        saved = cell_dir / "masks.safetensors"
        with log.stage("load masks" if saved.is_file() else "prune"):
            masks = _pruned_masks(model, spec, bundle, saved, device)
        init_rows = _init_stage_rows(model, masks, tuple(bundle.input_shape), spec, log, cell_dir)
    with log.stage("train"):
        recipe = Recipe.paper(spec.model, spec.dataset)
        if spec.epochs != "paper":
            recipe = recipe.shortened(int(spec.epochs))
        trained = train(model, bundle, recipe, masks=masks, out_dir=cell_dir / "train", seed=spec.seed,
                        device=device, progress=False, on_epoch_end=lambda epoch, record: log.write(
                            f"epoch {epoch}/{recipe.epochs} train_loss {record['train_loss']:.4f} "
                            f"test_accuracy {record.get('test_accuracy')}"))
    result: dict[str, Any] = {"accuracy": float(trained.accuracy), "epochs": int(trained.epochs)}
    if not spec.is_dense:
        model = model.cpu().eval()
        rows, layer_rows = measure(model, masks, tuple(bundle.input_shape), spec, log, stage="trained")
        result["rows"], result["layer_rows"] = init_rows[0] + rows, init_rows[1] + layer_rows
    return result


def _init_stage_rows(model, masks, input_shape: tuple[int, ...], spec: CellSpec, log: CellLog, cell_dir: Path
                     ) -> tuple[list[dict], list[dict]]:
    """Metrics of the masks on the *initial* weights (stage ``init``), measured before training.

    What ``sparsetopo rank`` can measure for an untrained candidate, so the pool must hold it too.
    Saved in ``init_metrics.json`` and reused when an interrupted cell resumes (training changes
    the weights, so the measurement cannot be redone after it)."""
    import json

    from .._io import atomic_write_json

    path = cell_dir / "init_metrics.json"
    if path.is_file():
        saved = json.loads(path.read_text("utf-8"))
        return saved["rows"], saved["layer_rows"]
    rows, layer_rows = measure(model.cpu().eval(), masks, input_shape, spec, log, stage="init")
    atomic_write_json(path, {"rows": rows, "layer_rows": layer_rows})
    return rows, layer_rows


def load_bundle(spec: CellSpec, data_root: str | None, download: bool = False):
    """The cell's dataset (augmentation seeded with the cell's seed), cut to ``train_subset`` /
    ``test_subset`` items when set: random items drawn with seed 0, so every cell of a study sees
    the same items whatever its own seed."""
    from ..data import load_dataset

    bundle = load_dataset(spec.dataset, root=data_root, download=download, seed=spec.seed)
    if spec.train_subset is not None or spec.test_subset is not None:
        bundle = bundle.subset(spec.train_subset, spec.test_subset, seed=0)
    return bundle


def _pruned_masks(model, spec: CellSpec, bundle, path: Path, device: str | None):
    """Masks of the cell: reloaded from ``path`` if saved (and attached), else pruned and saved."""
    from ..masks import apply_masks, load_masks, save_masks
    from ..pruning import prune

    if path.is_file():
        masks = load_masks(path)
        apply_masks(model, masks)
        return masks
    masks = prune(model, spec.pruner, spec.sparsity, data=bundle.train, seed=spec.seed, device=device,
                  input_shape=tuple(bundle.input_shape))
    save_masks(masks, path)
    return masks


def measure(model, masks, input_shape: tuple[int, ...], spec: CellSpec, log: CellLog, stage: str = "trained"
            ) -> tuple[list[dict], list[dict]]:
    """Encode the network and compute the requested metrics: (MGE rows, rolled layer rows), each
    encoding and its metrics timed as a stage of ``log``, each row tagged with the metric ``stage``
    (``init``: masks on the initial weights; ``trained``: after training; init log stages are
    prefixed ``init:``)."""
    from ..measure import measure as measure_network

    prefix = "" if stage == "trained" else f"{stage}: "
    result = measure_network(model, masks, input_shape, spec.encodings, spec.metrics,
                             stage=lambda name: log.stage(prefix + name))
    return ([{"stage": stage, **row} for row in result.rows],
            [{"stage": stage, **row} for row in result.layer_rows])


# --- the task every executor runs --------------------------------------------------------------------

@dataclass(frozen=True)
class CellTask:
    """Everything a worker needs to run one cell (picklable; crosses process and Ray boundaries)."""

    study_dir: str
    spec: dict
    data_root: str | None = None
    device: str | None = None
    cell_function: str | None = None
    threads: int | None = None
    download: bool = False


@dataclass
class CellOutcome:
    """What happened to one task: ``state`` is one of :data:`~sparsetopo.study.states.OUTCOMES`."""

    cell_id: str
    state: str
    seconds: float = 0.0
    error: str | None = None
    timings: dict = field(default_factory=dict)


def function_path(fn: Callable) -> str:
    """``module:qualname`` of an importable top-level function (what crosses process boundaries)."""
    return f"{fn.__module__}:{fn.__qualname__}"


#: the cell functions a study *file* may name (``run.cell_function``): a study file is data, and
#: naming any importable function would let a file from elsewhere run code (``"os:system"``). Packages
#: add theirs with :func:`register_cell_function` or the entry-point group ``sparsetopo.cell_functions``;
#: anything else needs ``allow_custom_cell`` (CLI ``--allow-custom-cell``). A library caller passing
#: ``run_study(cell_fn=...)`` is already running code and needs no permission.
CELL_FUNCTIONS: dict[str, CellFunction] = {function_path(run_cell): run_cell}
ENTRY_POINT_GROUP = "sparsetopo.cell_functions"


def register_cell_function(fn: CellFunction) -> str:
    """Allow study files to name ``fn``; returns the ``module:function`` string they use."""
    path = function_path(fn)
    CELL_FUNCTIONS[path] = fn
    return path


def registered_cell_functions() -> dict[str, str]:
    """``module:function`` strings a study file may name: the registry plus installed entry points."""
    from importlib.metadata import entry_points

    names = {path: path for path in CELL_FUNCTIONS}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        names[point.value] = point.value
    return names


def resolve_cell_function(path: str | None) -> CellFunction:
    """``"package.module:function"`` -> the function; None -> :func:`run_cell`.

    Trusts ``path``: the study config has already checked it against the allow-list (or was told
    ``allow_custom_cell``). Raises :class:`~sparsetopo.errors.StudyConfigError` naming a function
    that cannot be imported or is not callable.
    """
    if path is None:
        return run_cell
    if path in CELL_FUNCTIONS:
        return CELL_FUNCTIONS[path]
    from ..errors import StudyConfigError

    module, _, name = path.partition(":")
    try:
        fn = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
    except (ImportError, AttributeError) as exc:
        raise StudyConfigError(f"cell function {path!r} cannot be imported: {exc}") from None
    if not callable(fn):
        raise StudyConfigError(f"cell function {path!r} is not callable")
    return fn


def run_cell_task(task: CellTask) -> CellOutcome:
    """Claim, run and record one cell. Never raises for a failure of the cell itself.

    Skips the cell if its result exists (re-checked after claiming: another runner may just have
    finished it) or if another live runner holds its claim.
    """
    from .store import StudyStore

    if task.threads:
        import torch

        torch.set_num_threads(task.threads)
    spec = CellSpec.from_dict(task.spec)
    store = StudyStore(task.study_dir)
    try:
        with store.claim(spec, timeout=CLAIM_WAIT_S) as mine:
            if not mine:
                return CellOutcome(spec.cell_id, states.BUSY)
            if store.read_result(spec) is not None:
                return CellOutcome(spec.cell_id, states.SKIPPED)
            return _run_claimed(store, spec, task)
    except OSError as exc:  # the cell folder or its claim cannot even be created (disk full, read-only)
        return CellOutcome(spec.cell_id, states.FAILED, error=f"OutputError: cannot set up "
                                                              f"{str(store.cell_dir(spec))!r}: {describe_os_error(exc)}")


def _run_claimed(store, spec: CellSpec, task: CellTask) -> CellOutcome:
    """Run the claimed cell and record its result; every write here may fail (disk full) and then
    fails this cell only, with the reason kept in the outcome even when error.json cannot be written."""
    cell_dir = store.cell_dir(spec)
    log = CellLog(cell_dir / "cell.log")
    log.write(f"attempt {spec.cell_id} on device {task.device or 'default'}")
    start = time.perf_counter()
    try:
        store.write_spec(spec)
        result = resolve_cell_function(task.cell_function)(
            spec, cell_dir, data_root=task.data_root, device=task.device, log=log, download=task.download)
        _check_result(result)
        seconds = time.perf_counter() - start
        store.write_result(spec, {**result, "seconds": seconds, "timings": log.timings, "warnings": log.warnings})
    except Exception as exc:  # isolate the failure: record it (if the disk lets us), the study goes on
        reason = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OutputError):
            store.write_error(spec, exc)
        log.write(f"cell failed: {reason}")
        return CellOutcome(spec.cell_id, states.FAILED, time.perf_counter() - start, reason, dict(log.timings))
    log.write(f"cell done in {seconds:.2f} s")
    return CellOutcome(spec.cell_id, states.DONE, seconds, None, dict(log.timings))


def _check_result(result: Any) -> None:
    """A cell function must return a dict with a finite accuracy in [0, 1]."""
    if not isinstance(result, dict) or "accuracy" not in result:
        raise TypeError(f"a cell function must return a dict with 'accuracy', got {type(result).__name__}")
    accuracy = float(result["accuracy"])
    if not (math.isfinite(accuracy) and 0.0 <= accuracy <= 1.0):
        raise ValueError(f"cell accuracy must lie in [0, 1], got {accuracy!r}")
