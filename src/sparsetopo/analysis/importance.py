"""Figures 3-4: feature importance (spec ``analysis.md``).

Importance of a topometric in a subset = Pearson r between the (min-max scaled) feature and the
pooled out-of-fold prediction of each regressor, averaged over the regressors and runs of the
regression study (NaN where a feature or a prediction is constant, ignored in the average).
Sparsity-Fixed subsets give ``w^s``, Architecture-Fixed subsets give ``w^M``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .regression import CVResult, run_cv, scenario_subsets, make_subset


def importance_table(results: list[CVResult], encoding: str = "mge") -> pd.DataFrame:
    """Long table ``scenario, subset, metric, pearson_r`` for the computed subsets of ``encoding``."""
    rows = []
    for res in results:
        sub = res.subset
        if sub.encoding != encoding or not res.importance.size:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN feature (constant column)
            mean = np.nanmean(res.importance, axis=(0, 1))
        rows += [dict(scenario=sub.scenario, subset=sub.subset, metric=m, pearson_r=float(r))
                 for m, r in zip(sub.features, mean)]
    return pd.DataFrame(rows, columns=["scenario", "subset", "metric", "pearson_r"])


def feature_importance(features: pd.DataFrame, runs: int = 100, jobs: int = 1, all_regressors: bool = False,
                       progress: bool = False) -> pd.DataFrame:
    """Importance over the Sparsity- and Architecture-Fixed subsets of a per-network MGE feature table.

    ``features`` is :func:`sparsetopo.analysis.pool.network_features` output for ``mge``.
    """
    results = run_cv(scenario_subsets(features, "mge"), runs=runs, jobs=jobs,
                     all_regressors=all_regressors, progress=progress)
    return importance_table(results)


def weights(importance: pd.DataFrame, scenario: str, subset: object, metrics: list[str]) -> np.ndarray | None:
    """The importance vector of one subset in ``metrics`` order (NaN → 0), or None if absent."""
    rows = importance[(importance["scenario"] == scenario) & (importance["subset"] == subset)]
    if rows.empty:
        return None
    return rows.set_index("metric")["pearson_r"].reindex(metrics).fillna(0.0).to_numpy(float)


def holdout_importance(features: pd.DataFrame, cells: list[tuple[str, float]], runs: int = 10, jobs: int = 1,
                       all_regressors: bool = False, progress: bool = False) -> dict[tuple[str, float], pd.DataFrame]:
    """Out-of-sample weights: for each (model, sparsity) cell, importance fitted without that cell.

    ``w^s`` comes from the sparsity subset without the model's rows, ``w^M`` from the model subset
    without the sparsity's rows. Returns {cell: importance table with those two subsets}.
    """
    subsets, owners = holdout_subsets(features, cells)
    results = run_cv(subsets, runs=runs, jobs=jobs, all_regressors=all_regressors, progress=progress)
    return holdout_tables(results, owners)


def holdout_subsets(features: pd.DataFrame, cells: list[tuple[str, float]]
                    ) -> tuple[list, list[tuple[str, float]]]:
    """The two subsets refitted per held-out (model, sparsity) cell, and the cell owning each."""
    subsets, owners = [], []
    for model, sparsity in cells:
        held = (features["model"] == model) & (features["sparsity"] == sparsity)
        rest = features[~held]
        subsets.append(make_subset(rest[rest["sparsity"] == sparsity], "sparsity", float(sparsity), "mge"))
        subsets.append(make_subset(rest[rest["model"] == model], "architecture", str(model), "mge"))
        owners += [(model, sparsity)] * 2
    return subsets, owners


def holdout_tables(results: list[CVResult], owners: list[tuple[str, float]]) -> dict[tuple[str, float], pd.DataFrame]:
    """{cell: importance table of its two held-out subsets} from :func:`holdout_subsets`' CV results."""
    out: dict[tuple[str, float], list[CVResult]] = {}
    for owner, res in zip(owners, results):
        out.setdefault(owner, []).append(res)
    return {cell: importance_table(res) for cell, res in out.items()}
