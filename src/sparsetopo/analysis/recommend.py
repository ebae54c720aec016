"""Rank recommender (beyond the paper): predict how pruners will rank on a (model, sparsity) before training.

Given the MGE topometrics of candidate masks (one row per pruner, untrained) and a pool of trained
networks, :func:`rank_pruners`

1. learns the importance weights w^M (Architecture-Fixed subset of ``model``) and w^s (the
   Sparsity-Fixed subset at the pool sparsity nearest to ``sparsity``) from the pool,
2. scores each candidate by the topometric mixture (paper Eq. 5) with the features min-max
   scaled by the bounds of the model's pool rows (candidates may fall slightly outside [0, 1]),
3. predicts each candidate's accuracy drop with the averaged regressors of the regression study,
   fitted on the model's pool rows (or the nearest-sparsity rows when the model is not in the pool).

Lower mixture score = better expected accuracy (rank 1). Cost: ``runs`` × 2 subsets of 5-fold CV
plus one fit per regressor; seconds for a 1,260-network pool.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import PoolError
from ..metrics.normalize import normalize
from ..validation import check_sparsity
from .importance import importance_table
from .pool import features_of, network_features, validate_pool
from .ranking import MIXTURE, order
from .regression import N_FOLDS, make_regressor, make_subset, regressor_names, run_cv


def _bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min-max bounds of each column, ignoring NaN; a constant column gets span 0."""
    lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
    return lo, hi - lo


def _scale(x: np.ndarray, lo: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Apply min-max bounds (constant column → 0, as in the regression study)."""
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.0)


def _check_candidates(candidates: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(candidates, pd.DataFrame):
        raise PoolError(f"candidate metrics must be a DataFrame, got {type(candidates).__name__}")
    topometrics = features_of("mge")
    missing = [c for c in ["pruner"] + topometrics + ["nodes", "edges"] if c not in candidates.columns]
    if missing:
        raise PoolError(f"candidate metrics are missing column(s): {', '.join(missing)}")
    if candidates.empty:
        raise PoolError("candidate metrics have no rows")
    dup = candidates["pruner"].duplicated()
    if dup.any():
        raise PoolError(f"candidate metrics list pruner {candidates.loc[dup, 'pruner'].iloc[0]!r} twice")
    out = candidates.copy()
    out["pruner"] = out["pruner"].astype(str)
    for column in topometrics + ["nodes", "edges"]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    return out


def rank_pruners(candidate_metrics: pd.DataFrame, pool: pd.DataFrame, model: str, sparsity: float,
                 runs: int = 10, jobs: int = 1, all_regressors: bool = False) -> pd.DataFrame:
    """Predicted ranking of candidate pruners for ``model`` at ``sparsity``.

    ``candidate_metrics``: one row per pruner with ``pruner``, the 16 raw topometrics, ``nodes`` and
    ``edges`` (as :func:`sparsetopo.metrics.topometrics` returns them). ``pool``: an MGE pool table.
    Returns columns ``rank, pruner, mixture_score, predicted_drop, metrics_out_of_range`` (how many
    topometrics fall outside the model's pool range: an extrapolation) sorted by rank (ties:
    alphabetical; NaN scores last); ``result.attrs["notes"]`` says which pool rows were used.
    """
    sparsity = check_sparsity(sparsity)
    topometrics = features_of("mge")
    candidates = normalize(_check_candidates(candidate_metrics), "mge")
    features = network_features(validate_pool(pool), None, "mge")
    notes = []
    model_rows = features[features["model"] == model]
    if model_rows.empty:
        notes.append(f"model {model!r} is not in the pool: no Architecture-Fixed weights, "
                     "features scaled over the whole pool")
    levels = np.sort(features["sparsity"].unique())
    nearest = float(levels[np.argmin(np.abs(levels - sparsity))])
    if nearest != sparsity:
        notes.append(f"sparsity {sparsity:g} is not in the pool: Sparsity-Fixed weights from {nearest:g}")
    subsets = [make_subset(features[features["sparsity"] == nearest], "sparsity", nearest, "mge")]
    if not model_rows.empty:
        subsets.append(make_subset(model_rows, "architecture", str(model), "mge"))
    usable = [s for s in subsets if s.skipped is None]
    if not usable:
        raise PoolError(f"the pool has too few networks to learn weights for model {model!r} at sparsity "
                        f"{sparsity:g} (need {N_FOLDS} with complete metrics in a subset)")
    importance = importance_table(run_cv(usable, runs=runs, jobs=jobs, all_regressors=all_regressors,
                                         progress=False))
    w = (importance.groupby("metric")["pearson_r"].mean().reindex(topometrics).fillna(0.0).to_numpy(float))

    reference = model_rows if not model_rows.empty else features
    lo, span = _bounds(reference[topometrics].to_numpy(float))
    x_candidates = candidates[topometrics].to_numpy(float)
    scores = _scale(x_candidates, lo, span) @ w

    train = usable[-1]  # the model's rows when usable, else the nearest-sparsity rows
    notes.append(f"drop regressors fitted on {len(train.y)} pool networks ({train.scenario} {train.subset})")
    train_rows = (model_rows if train.scenario == "architecture" else
                  features[features["sparsity"] == nearest]).dropna(subset=topometrics + ["drop"])
    t_lo, t_span = _bounds(train_rows[topometrics].to_numpy(float))
    predicted = _predict_drop(train.x, train.y, _scale(x_candidates, t_lo, t_span), regressor_names(all_regressors))

    # Candidates outside the pool's range are extrapolations: count the metrics, say so.
    scaled = _scale(x_candidates, lo, span)
    outside = ((scaled < -1e-9) | (scaled > 1 + 1e-9)).sum(axis=1)
    names = candidates["pruner"].tolist()
    far = [f"{n} ({k})" for n, k in zip(names, outside) if k]
    if far:
        notes.append("outside the pool's range on some topometrics (count in brackets), so scores and drops "
                     "are extrapolated: " + ", ".join(far))
    ranked = order(names, scores, descending=False, nan_first=False)
    result = pd.DataFrame({"pruner": names, MIXTURE: scores, "predicted_drop": predicted,
                           "metrics_out_of_range": outside})
    result = result.set_index("pruner").loc[ranked].reset_index()
    result.insert(0, "rank", np.arange(1, len(result) + 1))
    result = result.rename(columns={MIXTURE: "mixture_score"})
    result.attrs["notes"] = notes
    return result


def _predict_drop(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, names: list[str]) -> np.ndarray:
    """Mean prediction of the regressors fitted on (x, y); NaN rows of x_new stay NaN."""
    ok = np.isfinite(x_new).all(axis=1)
    out = np.full(len(x_new), np.nan)
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[ok] = np.mean([make_regressor(n).fit(x, y).predict(x_new[ok]) for n in names], axis=0)
    return out
