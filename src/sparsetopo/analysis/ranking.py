"""Tables 4, 11, 12: ranking pruners per (model, dataset, sparsity), scored by RBO (spec ``analysis.md``).

Per (model, dataset, sparsity) cell every score and the accuracy are first averaged over seeds.
The true ranking sorts mean accuracy, descending. Strategies:

* ``layer_density``, ``delta_r``, ``delta_r_imdb``, ``lambda_imsg``: mean over the layers of the
  rolled BGE (Δr only over layers where Δr_imdb is defined); higher first; a network whose score
  is NaN in every layer is ranked first (an ascending sort then a reversal).
* ``topometric_mixture`` (paper Eq. 5): ``r^p = Σ_i x_i^p (w_i^M + w_i^s)/2`` with x the 16
  normalised topometrics, averaged over seeds, then min-max scaled within the model over the pool;
  ascending (NaN last).

Exact ties are broken by the alphabetical order of pruner names. A ranking is compared with the
true one by RBO (:mod:`.rbo`); a table cell is mean ± std (ddof 1) over datasets, and ``avg`` is
the mean of the sparsity means ± the mean of the sparsity stds. Cost O(networks × metrics).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .importance import weights
from ..metrics import registry
from .pool import KEY, features_of
from .rbo import rbo

#: per-layer columns averaged per network as ranking baselines (layer density, then the Ramanujan metrics)
BASELINES = registry.names(("layer_density",)) + registry.names(("ramanujan",))
MIXTURE = "topometric_mixture"
STRATEGIES = BASELINES + [MIXTURE]
PAI_PRUNERS = ("snip", "grasp", "synflow", "prospr")
RANDOM_PRUNERS = ("uniform", "er", "erk")
#: output table -> pruners it ranks (None = every pruner in the pool)
TABLES: dict[str, tuple[str, ...] | None] = {"table4": None, "table11": PAI_PRUNERS, "table12": RANDOM_PRUNERS}

WeightFn = Callable[[str, float], "np.ndarray | None"]


def baseline_scores(layers: pd.DataFrame) -> pd.DataFrame:
    """Per network (rolled rows): mean over layers of layer density and the Ramanujan metrics."""
    rows = layers[layers["encoding"] == "rolled"].copy()
    present = [c for c in BASELINES if c in rows.columns]
    if "delta_r" in rows and "delta_r_imdb" in rows:
        rows["delta_r"] = rows["delta_r"].where(rows["delta_r_imdb"].notna())
    return rows.groupby(KEY, sort=True)[present].mean().reset_index()


def scale_within_model(features: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Min-max scale ``metrics`` (default: the MGE topometrics) to [0, 1] over each model's rows
    (constant → 0, NaN kept)."""
    metrics = features_of("mge") if metrics is None else metrics
    out = features.copy()
    grouped = out.groupby("model")[metrics]
    lo, hi = grouped.transform("min"), grouped.transform("max")
    span = (hi - lo).where(hi > lo)
    out[metrics] = ((out[metrics] - lo) / span).where(hi > lo, 0.0).where(out[metrics].notna())
    return out


def mixture_scores(features: pd.DataFrame, weight_fn: WeightFn) -> pd.DataFrame:
    """Eq. 5 per network: ``KEY + [topometric_mixture]``; NaN where a cell has no weights.

    ``features``: per-network normalised MGE topometrics (:func:`network_features`);
    ``weight_fn(model, sparsity)`` returns the mixed weight vector (w^M + w^s)/2 or None.
    """
    scaled = scale_within_model(features)
    score = pd.Series(np.nan, index=scaled.index)
    for (model, sparsity), group in scaled.groupby(["model", "sparsity"], sort=True):
        w = weight_fn(model, sparsity)
        if w is not None:
            score.loc[group.index] = group[features_of("mge")].to_numpy(float) @ w
    out = scaled[[c for c in KEY if c in scaled.columns]].copy()
    out[MIXTURE] = score
    return out


def importance_weights(importance: pd.DataFrame) -> WeightFn:
    """(w^M + w^s)/2 from an importance table; falls back to the one available, None if neither."""
    def weight_fn(model: str, sparsity: float) -> np.ndarray | None:
        topometrics = features_of("mge")
        parts = [w for w in (weights(importance, "architecture", str(model), topometrics),
                             weights(importance, "sparsity", float(sparsity), topometrics)) if w is not None]
        return np.mean(parts, axis=0) if parts else None
    return weight_fn


def order(pruners: list[str], scores: np.ndarray, descending: bool, nan_first: bool) -> list[str]:
    """Pruners sorted by score (ties: alphabetical); NaN scores first or last as asked."""
    def key(i: int):
        s = scores[i]
        nan = np.isnan(s)
        return (not nan if nan_first else nan, 0.0 if nan else (-s if descending else s), pruners[i])
    return [pruners[i] for i in sorted(range(len(pruners)), key=key)]


def ranking_rbo(cells: pd.DataFrame, strategies: list[str], pruners: tuple[str, ...] | None = None) -> pd.DataFrame:
    """RBO of each strategy's ranking vs the true one, per (model, dataset, sparsity).

    ``cells``: one row per (model, dataset, sparsity, pruner), seed-averaged, with ``accuracy`` and
    the strategy columns. Cells with fewer than two of ``pruners`` are skipped.
    """
    rows = []
    if pruners is not None:
        cells = cells[cells["pruner"].isin(pruners)]
    for (model, dataset, sparsity), cell in cells.groupby(["model", "dataset", "sparsity"], sort=True):
        if len(cell) < 2:
            continue
        names = cell["pruner"].tolist()
        truth = order(names, cell["accuracy"].to_numpy(float), descending=True, nan_first=False)
        for strategy in strategies:
            if strategy not in cell:
                continue
            is_mix = strategy.startswith(MIXTURE)
            values = cell[strategy].to_numpy(float)
            # No score for any pruner (no weights for the cell, metric undefined everywhere): no ranking.
            value = np.nan if np.isnan(values).all() else rbo(
                truth, order(names, values, descending=not is_mix, nan_first=not is_mix))
            rows.append(dict(model=model, dataset=dataset, sparsity=sparsity, strategy=strategy,
                             rbo=value, n_pruners=len(names)))
    return pd.DataFrame(rows, columns=["model", "dataset", "sparsity", "strategy", "rbo", "n_pruners"])


def rbo_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Table layout: ``model, strategy, sparsity (value or 'avg'), rbo_mean, rbo_std, n_datasets``."""
    columns = ["model", "strategy", "sparsity", "rbo_mean", "rbo_std", "n_datasets"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    per = (long.groupby(["model", "strategy", "sparsity"], sort=True)["rbo"]
           .agg(rbo_mean="mean", rbo_std=lambda v: v.std(ddof=1) if v.count() > 1 else np.nan,
                n_datasets="count").reset_index())
    avg = (per.groupby(["model", "strategy"], sort=True)
           .agg(rbo_mean=("rbo_mean", "mean"), rbo_std=("rbo_std", "mean"), n_datasets=("n_datasets", "min"))
           .reset_index())
    avg["sparsity"] = "avg"
    per["sparsity"] = per["sparsity"].astype(object)
    out = pd.concat([per, avg[per.columns]], ignore_index=True)
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    out["_s"] = out["strategy"].map(lambda s: rank.get(s, len(rank)))
    out["_avg"] = out["sparsity"].eq("avg")
    out = out.sort_values(["model", "_s", "strategy", "_avg"], kind="stable").drop(columns=["_s", "_avg"])
    return out[columns].reset_index(drop=True)


CELL = ["model", "dataset", "sparsity", "pruner"]


def seed_average(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every numeric column, per (model, dataset, sparsity, pruner)."""
    value_cols = [c for c in scores.columns if c not in KEY]
    return scores.groupby(CELL, sort=True)[value_cols].mean().reset_index()


def ranking_tables(features: pd.DataFrame, layers: pd.DataFrame | None, importance: pd.DataFrame,
                   holdout: dict[tuple[str, float], pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Tables 4, 11, 12 (long RBO per dataset under ``<name>_long``, summaries under ``<name>``).

    ``features``: per-network normalised MGE topometrics with ``accuracy``; ``importance``: the
    in-sample importance table; ``holdout``: {(model, sparsity): importance without that cell},
    which adds the out-of-sample strategy ``topometric_mixture_oos``.
    """
    # Spec: average every metric and the accuracy over the seeds first; the min-max scaling of the
    # mixture then runs over these seed-averaged rows of each model.
    averaged = seed_average(features[KEY + ["accuracy"] + features_of("mge")])
    cells = averaged[CELL + ["accuracy"]].merge(mixture_scores(averaged, importance_weights(importance)), on=CELL)
    strategies = [MIXTURE]
    if holdout is not None:
        oos = mixture_scores(averaged, lambda m, s: importance_weights(holdout[(m, s)])(m, s)
                             if (m, s) in holdout else None)
        cells = cells.merge(oos.rename(columns={MIXTURE: MIXTURE + "_oos"}), on=CELL)
        strategies.append(MIXTURE + "_oos")
    if layers is not None:
        base = seed_average(baseline_scores(layers))
        cells = cells.merge(base, on=CELL, how="left")
        strategies = [c for c in BASELINES if c in base.columns] + strategies
    out = {}
    for name, pruners in TABLES.items():
        long = ranking_rbo(cells, strategies, pruners)
        out[name + "_long"], out[name] = long, rbo_summary(long)
    return out
