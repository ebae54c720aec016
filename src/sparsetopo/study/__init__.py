"""Studies: a grid of (model, dataset, sparsity, pruner, seed) cells run end to end into pool tables.

- :mod:`.config`    the study file (TOML) / presets -> validated :class:`StudyConfig` -> :class:`CellSpec`
- :mod:`.cell`      one cell end to end (:func:`run_cell`) and the task wrapper executors run
- :mod:`.store`     the study directory: claims, results, errors, status, pool Parquet/CSV
- :mod:`.executors` local process pool and Ray
- :mod:`.runner`    :func:`run_study` ties them together

>>> from sparsetopo.study import load_preset, run_study
>>> report = run_study(load_preset("demo"), "runs/demo")          # doctest: +SKIP
"""
from __future__ import annotations

from .cell import CellLog, CellOutcome, CellTask, run_cell, run_cell_task
from .config import CellSpec, StudyConfig, config_from_dict, load_config, load_preset
from .executors import execute, run_local, run_ray
from .runner import StudyReport, run_study
from .store import CellStatus, StudyStore

__all__ = ["CellLog", "CellOutcome", "CellSpec", "CellStatus", "CellTask", "StudyConfig", "StudyReport",
           "StudyStore", "config_from_dict", "execute", "load_config", "load_preset", "run_cell",
           "run_cell_task", "run_local", "run_ray", "run_study"]
