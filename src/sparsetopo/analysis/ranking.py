"""Tables 4, 11, 12: ranking pruners per (model, dataset, sparsity), scored by RBO, top-1 and regret.

One seed set per cell: the networks ranked are those present in every table a strategy reads (the
MGE pool and, when given, the rolled rows of the layer pool); the truth and every strategy are
averaged over exactly these seeds (spec ``analysis.md``). Strategies:

* ``layer_density``, ``delta_r``, ``delta_r_imdb``, ``lambda_imsg``: mean over the layers of the
  rolled BGE (Δr only over layers where Δr_imdb is defined, :func:`.pool.ramanujan_layers`); higher
  first; a network whose score is NaN in every layer is ranked first (an ascending sort then a
  reversal, as the paper's code does).
* ``effective_density``, ``effective_paths``, ``effective_nodes`` (beyond the paper, pool columns,
  ``metrics.md`` §5b): higher first, when the pool has them.
* ``fixed_global_ranking`` (beyond the paper): one fixed order of the pruners, their mean
  position in the true rankings of the *other* cells (the ranked (model, sparsity) held out, the
  same unit the out-of-sample mixture leaves out); lower first. A recommender must beat it.
* ``recommender`` (beyond the paper, when given): ``sparsetopo rank``'s drop model (init-stage
  metrics), fitted without the ranked (model, sparsity); the predicted drop, lower first.
* ``topometric_mixture`` (paper Eq. 5): ``r^p = Σ_i x_i^p (w_i^M + w_i^s)/2`` with x the 16
  normalised topometrics, averaged over seeds, then min-max scaled within the model over the pool;
  ascending (NaN last). ``_oos``: weights fitted without the ranked (model, sparsity).

Exact ties are broken by the alphabetical order of pruner names. Per cell and strategy: RBO with
the true ranking (:mod:`.rbo`), ``top1`` (1 when the first pick has the best mean accuracy of the
cell) and ``regret`` (best mean accuracy − that of the first pick, in accuracy points, i.e. %).
A table cell is mean ± std (ddof 1) of the RBO over datasets, and ``avg`` is the mean of the
sparsity means ± the mean of the sparsity stds. Cost O(networks × metrics + cells × pruners).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from .importance import weights
from ..metrics import registry
from .pool import KEY, features_of, network_extras, ramanujan_layers
from .rbo import rbo

#: per-layer columns averaged per network as ranking baselines (layer density, then the Ramanujan metrics)
LAYER_BASELINES = registry.names(("layer_density",)) + registry.names(("ramanujan",))
#: per-network pool columns ranked directly, higher first (metrics.md §5b; used when the pool has them)
NETWORK_BASELINES = ["effective_density", "effective_paths", "effective_nodes"]
BASELINES = LAYER_BASELINES + NETWORK_BASELINES
GLOBAL = "fixed_global_ranking"
MIXTURE = "topometric_mixture"
MIXTURE_OOS = MIXTURE + "_oos"
#: ``sparsetopo rank``'s drop model, fitted without the ranked (model, sparsity) (:mod:`.recommend`)
RECOMMENDER = "recommender"
STRATEGIES = BASELINES + [GLOBAL, MIXTURE, MIXTURE_OOS, RECOMMENDER]
#: strategies whose lower score is better (and whose NaN goes last); the rest rank higher first, NaN first.
ASCENDING = (GLOBAL, MIXTURE, MIXTURE_OOS, RECOMMENDER)
#: strategies fitted on the ranked cell itself (the paper's in-sample weights); every other one is out of sample.
IN_SAMPLE = (MIXTURE,)
PAI_PRUNERS = ("snip", "grasp", "synflow", "prospr")
RANDOM_PRUNERS = ("uniform", "er", "erk")
#: output table -> pruners it ranks (None = every pruner in the pool)
TABLES: dict[str, tuple[str, ...] | None] = {"table4": None, "table11": PAI_PRUNERS, "table12": RANDOM_PRUNERS}

WeightFn = Callable[[str, float], "np.ndarray | None"]


def baseline_scores(layers: pd.DataFrame) -> pd.DataFrame:
    """Per network (rolled rows): mean over layers of layer density and the Ramanujan metrics."""
    rows = ramanujan_layers(layers)
    present = [c for c in LAYER_BASELINES if c in rows.columns]
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


def global_ranking_scores(cells: pd.DataFrame) -> pd.Series:
    """``fixed_global_ranking`` per row of ``cells``: the pruner's mean relative position (0 = best,
    1 = worst) in the true rankings of the cells of *other* (model, sparsity) pairs; NaN when the
    pruner occurs nowhere else. ``cells``: seed-averaged, one row per (model, dataset, sparsity,
    pruner) with ``accuracy``. O(rows)."""
    position = pd.Series(np.nan, index=cells.index)
    for _, cell in cells.groupby(["model", "dataset", "sparsity"], sort=False):
        names = cell["pruner"].tolist()
        truth = order(names, cell["accuracy"].to_numpy(float), descending=True, nan_first=False)
        rank = {p: i / max(1, len(names) - 1) for i, p in enumerate(truth)}
        position.loc[cell.index] = cell["pruner"].map(rank).to_numpy(float)
    frame = cells[["model", "sparsity", "pruner"]].assign(position=position)
    total = frame.groupby("pruner")["position"].agg(["sum", "count"])
    own = frame.groupby(["model", "sparsity", "pruner"])["position"].agg(["sum", "count"])
    keys = pd.MultiIndex.from_frame(frame[["model", "sparsity", "pruner"]])
    own_sum, own_count = own["sum"].reindex(keys).to_numpy(), own["count"].reindex(keys).to_numpy()
    rest_sum = total["sum"].reindex(frame["pruner"]).to_numpy() - own_sum
    rest_count = total["count"].reindex(frame["pruner"]).to_numpy() - own_count
    with np.errstate(invalid="ignore", divide="ignore"):
        return pd.Series(np.where(rest_count > 0, rest_sum / np.maximum(rest_count, 1), np.nan), index=cells.index)


def pick_quality(accuracy: np.ndarray, names: list[str], ranked: list[str]) -> tuple[float, float]:
    """(top-1 hit, regret in accuracy points) of a ranking's first pick against the true accuracies.

    A hit when the first pick has the cell's best accuracy (ties in the truth all count as hits)."""
    best = float(np.nanmax(accuracy))
    chosen = float(accuracy[names.index(ranked[0])])
    return float(chosen >= best - 1e-12), 100.0 * (best - chosen)


def ranking_rbo(cells: pd.DataFrame, strategies: list[str], pruners: tuple[str, ...] | None = None) -> pd.DataFrame:
    """RBO, top-1 hit and regret of each strategy's ranking vs the true one, per (model, dataset, sparsity).

    ``cells``: one row per (model, dataset, sparsity, pruner), seed-averaged, with ``accuracy`` and
    the strategy columns (``fixed_global_ranking`` is computed here, over ``pruners`` only). Cells
    with fewer than two of ``pruners`` are skipped.
    """
    columns = ["model", "dataset", "sparsity", "strategy", "rbo", "top1", "regret", "n_pruners"]
    rows = []
    if pruners is not None:
        cells = cells[cells["pruner"].isin(pruners)]
    if GLOBAL in strategies and len(cells):
        cells = cells.assign(**{GLOBAL: global_ranking_scores(cells)})
    for (model, dataset, sparsity), cell in cells.groupby(["model", "dataset", "sparsity"], sort=True):
        if len(cell) < 2:
            continue
        names = cell["pruner"].tolist()
        accuracy = cell["accuracy"].to_numpy(float)
        truth = order(names, accuracy, descending=True, nan_first=False)
        for strategy in strategies:
            if strategy not in cell:
                continue
            ascending = strategy in ASCENDING
            values = cell[strategy].to_numpy(float)
            value = top1 = regret = np.nan  # no score for any pruner: no ranking (not an alphabetical one)
            if not np.isnan(values).all():
                ranked = order(names, values, descending=not ascending, nan_first=not ascending)
                value = rbo(truth, ranked)
                top1, regret = pick_quality(accuracy, names, ranked)
            rows.append(dict(model=model, dataset=dataset, sparsity=sparsity, strategy=strategy,
                             rbo=value, top1=top1, regret=regret, n_pruners=len(names)))
    return pd.DataFrame(rows, columns=columns)


def rbo_summary(long: pd.DataFrame) -> pd.DataFrame:
    """Table layout: ``model, strategy, sparsity (value or 'avg'), rbo_mean, rbo_std, top1_rate,
    regret_mean, n_datasets`` (top-1 rate and regret: means over datasets, then over sparsities)."""
    columns = ["model", "strategy", "sparsity", "rbo_mean", "rbo_std", "top1_rate", "regret_mean", "n_datasets"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    long = long.assign(**{c: np.nan for c in ("top1", "regret") if c not in long.columns})
    per = (long.groupby(["model", "strategy", "sparsity"], sort=True)
           .agg(rbo_mean=("rbo", "mean"), rbo_std=("rbo", lambda v: v.std(ddof=1) if v.count() > 1 else np.nan),
                top1_rate=("top1", "mean"), regret_mean=("regret", "mean"), n_datasets=("rbo", "count"))
           .reset_index())
    avg = (per.groupby(["model", "strategy"], sort=True)
           .agg(rbo_mean=("rbo_mean", "mean"), rbo_std=("rbo_std", "mean"), top1_rate=("top1_rate", "mean"),
                regret_mean=("regret_mean", "mean"), n_datasets=("n_datasets", "min"))
           .reset_index())
    avg["sparsity"] = "avg"
    per["sparsity"] = per["sparsity"].astype(object)
    out = pd.concat([per, avg[per.columns]], ignore_index=True)
    out["_s"] = out["strategy"].map(_strategy_position)
    out["_avg"] = out["sparsity"].eq("avg")
    out = out.sort_values(["model", "_s", "strategy", "_avg"], kind="stable").drop(columns=["_s", "_avg"])
    return out[columns].reset_index(drop=True)


def _strategy_position(strategy: str) -> int:
    return STRATEGIES.index(strategy) if strategy in STRATEGIES else len(STRATEGIES)


def strategy_summary(long: pd.DataFrame) -> pd.DataFrame:
    """One row per strategy over every ranked cell: ``strategy, in_sample, cells, rbo_mean,
    top1_rate, regret_mean`` and, against the fixed global ranking, ``cells_won`` / ``cells_lost``
    (higher / lower RBO in the same cell). Cells a strategy cannot score are left out of its means."""
    columns = ["strategy", "in_sample", "cells", "rbo_mean", "top1_rate", "regret_mean", "cells_won", "cells_lost"]
    if long.empty:
        return pd.DataFrame(columns=columns)
    scored = long.dropna(subset=["rbo"])
    out = scored.groupby("strategy").agg(cells=("rbo", "size"), rbo_mean=("rbo", "mean"),
                                         top1_rate=("top1", "mean"), regret_mean=("regret", "mean")).reset_index()
    out["in_sample"] = out["strategy"].isin(IN_SAMPLE)
    wide = scored.pivot_table(index=["model", "dataset", "sparsity"], columns="strategy", values="rbo")
    if GLOBAL in wide:
        diff = wide.sub(wide[GLOBAL], axis=0)
        out["cells_won"] = out["strategy"].map((diff > 1e-12).sum()).where(out["strategy"] != GLOBAL)
        out["cells_lost"] = out["strategy"].map((diff < -1e-12).sum()).where(out["strategy"] != GLOBAL)
    else:
        out["cells_won"] = out["cells_lost"] = np.nan
    out = out.assign(_s=out["strategy"].map(_strategy_position)).sort_values(["_s", "strategy"])
    return out[columns].reset_index(drop=True)


CELL = ["model", "dataset", "sparsity", "pruner"]


def seed_average(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every numeric column, per (model, dataset, sparsity, pruner)."""
    value_cols = [c for c in scores.columns if c not in KEY]
    return scores.groupby(CELL, sort=True)[value_cols].mean().reset_index()


def ranked_networks(features: pd.DataFrame, layers: pd.DataFrame | None) -> pd.DataFrame:
    """The networks every strategy can see, one row each: MGE features (+ §5b columns) joined
    with the layer baselines on the key (inner join: a network in one table only is left out, so
    truth and strategies average the same seeds)."""
    networks = features[KEY + ["accuracy"] + features_of("mge") + network_extras(features)]
    if layers is not None:
        networks = networks.merge(baseline_scores(layers), on=KEY, how="inner")
    return networks


def ranking_tables(features: pd.DataFrame, layers: pd.DataFrame | None, importance: pd.DataFrame,
                   holdout: dict[tuple[str, float], pd.DataFrame] | None = None,
                   extra: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Tables 4, 11, 12 (long scores per dataset under ``<name>_long``, summaries under ``<name>``,
    per-strategy summaries under ``<name>_strategies``) and ``networks``, the ranked network count.

    ``features``: per-network normalised MGE topometrics with ``accuracy``; ``importance``: the
    in-sample importance table; ``holdout``: {(model, sparsity): importance without that cell},
    which adds the out-of-sample strategy ``topometric_mixture_oos``; ``extra``: scores of further
    strategies per (model, dataset, sparsity, pruner) (e.g. :data:`RECOMMENDER`), joined on that key.
    """
    networks = ranked_networks(features, layers)
    # Spec: average every metric and the accuracy over the seeds first; the min-max scaling of the
    # mixture then runs over these seed-averaged rows of each model.
    averaged = seed_average(networks)
    cells = averaged.merge(mixture_scores(averaged, importance_weights(importance)), on=CELL)
    if holdout is not None:
        oos = mixture_scores(averaged, lambda m, s: importance_weights(holdout[(m, s)])(m, s)
                             if (m, s) in holdout else None)
        cells = cells.merge(oos.rename(columns={MIXTURE: MIXTURE_OOS}), on=CELL)
    if extra is not None:
        cells = cells.merge(extra, on=CELL, how="left")
    strategies = [s for s in STRATEGIES if s in cells.columns or s == GLOBAL]
    out: dict[str, pd.DataFrame] = {"networks": networks[KEY]}
    for name, pruners in TABLES.items():
        long = ranking_rbo(cells, strategies, pruners)
        out[name + "_long"], out[name] = long, rbo_summary(long)
        out[name + "_strategies"] = strategy_summary(long)
    return out
