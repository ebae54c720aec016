"""Rank recommender (beyond the paper): predict how pruners will rank on a (model, sparsity) before training.

``sparsetopo rank`` measures *untrained* candidate masks, so it learns from the pool's
**initialization-stage** metrics (masks on the initial weights, recorded by every study; the
trained-stage metrics are used, with a note, only when a pool has no init rows). One model gives
both the order and the number printed beside it:

1. :class:`DropModel`: the averaged regressors of the regression study (six by default), fitted on
   the pool networks of ``model`` (all networks when the model is not in the pool) with features =
   the 16 normalised topometrics, min-max scaled by the bounds of those networks, plus one-hot
   ``dataset`` columns when the pool mixes datasets; target = the accuracy drop.
2. Candidates are ranked by their predicted drop, ascending (ties: alphabetical): the printed order
   and the printed prediction cannot disagree.
3. A candidate metric outside the training networks' [min, max] is an extrapolation: such metrics
   are counted and named per candidate.
4. Track record (:func:`track_record`): the same recipe, refitted without each (model, sparsity)
   of the training networks, ranks the pruners of every (model, dataset, sparsity) cell it left
   out; mean RBO, top-1 hit rate and regret against the true (seed-averaged) accuracies, beside the
   fixed global ranking of the other cells. That is how far the ranking can be trusted on this pool.

Cost: (1 + number of (model, sparsity) groups) × regressors fits on ≤ pool-size rows; seconds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import PoolError
from ..metrics.normalize import normalize
from ..validation import check_sparsity
from .pool import STAGES, features_of, network_features, select_stage, validate_pool
from .ranking import GLOBAL, RECOMMENDER, order, ranking_rbo
from .regression import fit_regressor, regressor_names

CELL = ["model", "dataset", "sparsity"]


def min_networks() -> int:
    """Fewest complete networks a drop model is fitted on: two more than the features (16)."""
    return len(features_of("mge")) + 2


@dataclass
class DropModel:
    """Averaged regressors predicting the accuracy drop from scaled topometrics (+ dataset one-hot).

    ``fit(table)`` takes per-network rows (:func:`network_features`: normalised topometrics,
    ``dataset``, ``drop``); ``predict(table)`` the same columns without ``drop``. NaN rows predict NaN.
    """

    names: list[str]
    datasets: list[str] = field(default_factory=list)
    lo: np.ndarray | None = None
    span: np.ndarray | None = None
    fitted: list = field(default_factory=list)

    def design(self, table: pd.DataFrame) -> np.ndarray:
        """Scaled topometrics (bounds of the fit), then one column per fitted dataset (if > 1)."""
        x = table[features_of("mge")].to_numpy(float)
        x = np.where(self.span > 0, (x - self.lo) / np.where(self.span > 0, self.span, 1.0), 0.0)
        if len(self.datasets) > 1:
            onehot = (table["dataset"].to_numpy()[:, None] == np.asarray(self.datasets)[None, :]).astype(float)
            x = np.hstack([x, onehot])
        return x

    def fit(self, table: pd.DataFrame) -> "DropModel":
        rows = table.dropna(subset=features_of("mge") + ["drop"])
        x = rows[features_of("mge")].to_numpy(float)
        self.lo, self.span = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        self.datasets = sorted(rows["dataset"].unique())
        design, y = self.design(rows), rows["drop"].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fitted = [fit_regressor(name, design, y) for name in self.names]
        return self

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        x = self.design(table)
        ok = np.isfinite(x).all(axis=1)
        out = np.full(len(table), np.nan)
        if ok.any():
            out[ok] = np.mean([model.predict(x[ok]) for model in self.fitted], axis=0)
        return out

    def outside(self, table: pd.DataFrame) -> list[list[str]]:
        """Per row, the topometrics outside the fitted [min, max] (an extrapolation)."""
        x = table[features_of("mge")].to_numpy(float)
        tol = 1e-9 * np.maximum(1.0, np.abs(self.lo) + self.span)
        far = (x < self.lo - tol) | (x > self.lo + self.span + tol)
        return [[m for m, f in zip(features_of("mge"), row) if f] for row in far]


def _check_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(candidates, pd.DataFrame):
        raise PoolError(f"candidate metrics must be a DataFrame, got {type(candidates).__name__}")
    missing = [c for c in ["pruner"] + features_of("mge") + ["nodes", "edges"] if c not in candidates.columns]
    if missing:
        raise PoolError(f"candidate metrics are missing column(s): {', '.join(missing)}")
    if candidates.empty:
        raise PoolError("candidate metrics have no rows")
    dup = candidates["pruner"].duplicated()
    if dup.any():
        raise PoolError(f"candidate metrics list pruner {candidates.loc[dup, 'pruner'].iloc[0]!r} twice")
    out = candidates.copy()
    out["pruner"] = out["pruner"].astype(str)
    for column in features_of("mge") + ["nodes", "edges"]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def learning_rows(pool: pd.DataFrame, stage: str = "init") -> tuple[pd.DataFrame, list[str]]:
    """Per-network features of the stage ``rank`` learns from (validated pool), and notes.

    Falls back to the trained stage, saying so, when the pool has no ``stage`` rows asked for; the
    stage used is ``rows.attrs["stage"]``."""
    pool = validate_pool(pool)
    notes = []
    if stage not in STAGES:
        raise PoolError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")
    if not (pool["stage"] == stage).any():
        other = "trained" if stage == "init" else "init"
        notes.append(f"the pool has no {stage}-stage metrics (a study from before they were recorded): learned "
                     f"from {other}-stage metrics instead; untrained candidates are then compared with "
                     f"{other} networks (weighted metrics such as strength and the spectral ones differ), "
                     "expect extrapolation")
        stage = other
    rows = network_features(select_stage(pool, stage), None, "mge")
    rows.attrs["stage"] = stage
    return rows, notes + [f"learned from {stage}-stage metrics"]


def training_networks(features: pd.DataFrame, model: str) -> tuple[pd.DataFrame, str]:
    """The networks the drop model learns from: the model's own if it has enough, else all."""
    own = features[features["model"] == model].dropna(subset=features_of("mge") + ["drop"])
    if len(own) >= min_networks():
        return features[features["model"] == model], f"the {len(own)} networks of {model}"
    reason = "is not in the pool" if own.empty else f"has only {len(own)} complete network(s) in the pool"
    complete = features.dropna(subset=features_of("mge") + ["drop"])
    return features, f"all {len(complete)} pool networks ({model} {reason})"


def held_out_predictions(features: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The recommender out of sample: per (model, dataset, sparsity, pruner), seed-averaged topometrics,
    ``accuracy``, ``drop`` and ``recommender``, the drop predicted by a :class:`DropModel` fitted
    without the row's (model, sparsity) (on the networks :func:`training_networks` picks from the
    rest, as ``rank`` does for a new cell); NaN where fewer than :func:`min_networks` remain.

    One implementation for ``rank``'s track record and the report's ranking tables. O(groups ×
    regressors × fit)."""
    complete = features.dropna(subset=features_of("mge") + ["drop"])
    averaged = (complete.groupby(CELL + ["pruner"], sort=True)[features_of("mge") + ["accuracy", "drop"]]
                .mean().reset_index())
    averaged[RECOMMENDER] = np.nan
    for (model, sparsity), group in averaged.groupby(["model", "sparsity"], sort=True):
        rest = complete[(complete["model"] != model) | (complete["sparsity"] != sparsity)]
        train, _ = training_networks(rest, model)
        if len(train.dropna(subset=features_of("mge") + ["drop"])) >= min_networks():
            averaged.loc[group.index, RECOMMENDER] = DropModel(names).fit(train).predict(group)
    return averaged


def track_record(train: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Out-of-sample scores of the recommender and of the fixed global ranking on ``train``'s cells.

    Each (model, dataset, sparsity) cell's pruners ranked by :func:`held_out_predictions` (and by
    the fixed ranking of the other cells), scored against the seed-averaged accuracies by
    :func:`sparsetopo.analysis.ranking.ranking_rbo`: one row per (cell, strategy) with ``rbo``,
    ``top1`` and ``regret`` (accuracy points); cells the recommender cannot score are left out."""
    record = ranking_rbo(held_out_predictions(train, names), [RECOMMENDER, GLOBAL])
    scored = record[(record["strategy"] == RECOMMENDER) & record["rbo"].notna()]
    keep = pd.MultiIndex.from_frame(record[CELL]).isin(pd.MultiIndex.from_frame(scored[CELL]))
    return record[keep & record["rbo"].notna()].reset_index(drop=True)


def track_record_text(record: pd.DataFrame) -> str:
    """One sentence: cells, and RBO / top-1 / regret of the recommender vs the fixed ranking."""
    if record.empty:
        return "no out-of-sample track record: the pool has too few (model, sparsity) groups to hold one out"
    summary = record.groupby("strategy")[["rbo", "top1", "regret"]].mean()
    cells = int((record["strategy"] == RECOMMENDER).sum())

    def part(strategy: str) -> str:
        if strategy not in summary.index:
            return "n/a"
        r = summary.loc[strategy]
        return f"RBO {r['rbo']:.2f}, top-1 hit rate {r['top1']:.2f}, regret {r['regret']:.2f} accuracy points"
    return (f"out-of-sample track record on this pool ({cells} cell(s), each ranked by a model fitted without "
            f"its (model, sparsity)): {part(RECOMMENDER)}; a fixed global ranking of the other cells scores "
            f"{part(GLOBAL)}")


def displayed_drops(predicted: np.ndarray, observed: np.ndarray, pruners: list[str]
                    ) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The predicted drops as shown: clipped to the range of drops the training networks had.

    The drop is 1 − accuracy / dense accuracy. A linear model extrapolates without bound (a drop
    above 1 is an accuracy below 0), and the pool says nothing about drops beyond the ones it saw,
    so a prediction outside [min, max] of the observed drops is shown at that bound and flagged.
    Clipping is monotone, so the shown drops never contradict the order (which follows the raw
    prediction: equal shown values keep the raw order). Returns (shown, clipped flags, note or None)."""
    lo, hi = float(np.min(observed)), float(np.max(observed))
    shown = np.clip(predicted, lo, hi)
    clipped = np.isfinite(predicted) & (shown != predicted)
    if not clipped.any():
        return shown, clipped, None
    raw = ", ".join(f"{p} {v:.3f}" for p, v, c in zip(pruners, predicted, clipped) if c)
    return shown, clipped, (f"predicted drop outside the {len(observed)} training networks' drops "
                            f"[{lo:.3f}, {hi:.3f}], shown at that bound (drop_clipped; raw model output "
                            f"in raw_prediction: {raw}); the order follows the raw output")


def rank_pruners(candidate_metrics: pd.DataFrame, pool: pd.DataFrame, model: str, sparsity: float,
                 dataset: str | None = None, stage: str = "init", all_regressors: bool = False,
                 with_track_record: bool = True) -> pd.DataFrame:
    """Predicted ranking of candidate pruners for ``model`` at ``sparsity`` (on ``dataset``).

    ``candidate_metrics``: one row per pruner with ``pruner``, the 16 raw topometrics, ``nodes`` and
    ``edges`` (as :func:`sparsetopo.metrics.topometrics` returns them). ``pool``: an MGE pool table.
    Returns columns ``rank, pruner, predicted_drop`` (clipped to the training networks' drops,
    :func:`displayed_drops`), ``raw_prediction``, ``drop_clipped``, ``metrics_out_of_range,
    out_of_range`` (count and names of the topometrics outside the training networks' range) sorted
    by the raw predicted drop (ties: alphabetical; NaN last). ``result.attrs``: ``notes`` (what was learned from what) and
    ``track_record`` (:func:`track_record` rows; its summary sentence is the first note).
    """
    sparsity = check_sparsity(sparsity)
    candidates = normalize(_check_candidates(candidate_metrics), "mge")
    features, notes = learning_rows(pool, stage)
    train, described = training_networks(features, model)
    complete = train.dropna(subset=features_of("mge") + ["drop"])
    if len(complete) < min_networks():
        raise PoolError(f"the pool has too few networks to learn from for model {model!r}: {len(complete)} "
                        f"with complete metrics, need at least {min_networks()}")
    names = regressor_names(all_regressors)
    drop_model = DropModel(names).fit(train)
    datasets = drop_model.datasets
    candidates["dataset"] = "" if dataset is None else str(dataset)
    if len(datasets) > 1 and str(dataset) not in datasets:
        notes.append(f"dataset {dataset!r} is not among the pool's ({', '.join(datasets)}): predicted without a "
                     "dataset effect")
    levels = np.sort(train["sparsity"].unique())
    if not np.isclose(levels, sparsity).any():
        notes.append(f"sparsity {sparsity:g} is not in the training networks (they have "
                     f"{', '.join(f'{s:g}' for s in levels)}): the prediction interpolates")
    notes.append(f"drop model ({len(names)} averaged regressors) fitted on {described}"
                 + (f", with the dataset as a feature ({', '.join(datasets)})" if len(datasets) > 1 else ""))
    predicted = drop_model.predict(candidates)
    outside = drop_model.outside(candidates)
    pruners = candidates["pruner"].tolist()
    far = [f"{p} ({', '.join(o)})" for p, o in zip(pruners, outside) if o]
    if far:
        notes.append("outside the training networks' range, so the drop is extrapolated: " + "; ".join(far))
    shown, clipped, note = displayed_drops(predicted, complete["drop"].to_numpy(float), pruners)
    if note:
        notes.append(note)
    ranked = order(pruners, predicted, descending=False, nan_first=False)
    result = pd.DataFrame({"pruner": pruners, "predicted_drop": shown, "raw_prediction": predicted,
                           "drop_clipped": clipped, "metrics_out_of_range": [len(o) for o in outside],
                           "out_of_range": [", ".join(o) for o in outside]})
    result = result.set_index("pruner").loc[ranked].reset_index()
    result.insert(0, "rank", np.arange(1, len(result) + 1))
    record = track_record(train, names) if with_track_record else pd.DataFrame()
    if with_track_record:
        notes.insert(0, track_record_text(record))
    result.attrs["notes"] = notes
    result.attrs["track_record"] = record
    return result
