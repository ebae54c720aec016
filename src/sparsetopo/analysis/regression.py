"""Table 3: regression of the accuracy drop from topometrics, by repeated k-fold CV (spec ``analysis.md``).

Protocol (defaults reproduce the paper): features min-max scaled to [0, 1] over the subset; for each
run ``r`` a ``KFold(5, shuffle=True, random_state=r)``; each regressor's out-of-fold predictions are
pooled over the folds and scored by adjusted R² = 1 - (1 - R²)(n - 1)/(n - p - 1); MAE is the mean
of the fold MAEs. A cell is the mean over regressors and runs ± std (ddof 0) over runs of the
regressor-averaged value. Lasso and ElasticNet at alpha = 1 predict a constant on this data, so the
default averages the other six regressors (``all_regressors=True`` fits and averages all eight).

The same out-of-fold predictions give the feature importance (:mod:`.importance`), so one pass
computes both. Cost per subset: runs × regressors × folds fits on n × p data.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..encoding.registry import LAYER_ENCODINGS, NETWORK_ENCODINGS
from .linear_fits import fit_exact, fold_predictions
from .pool import network_features, features_of

N_FOLDS = 5
CONSTANT_REGRESSORS = ("lasso", "elastic_net")
REGRESSOR_NAMES = ("linear", "ridge", "lasso", "elastic_net", "huber", "pcr", "bayesian_ridge", "ard")


def make_regressor(name: str):
    """A fresh scikit-learn regressor with default settings (PCR = PCA → LinearRegression)."""
    from sklearn import linear_model as lm
    from sklearn.decomposition import PCA
    from sklearn.pipeline import make_pipeline
    factories = {
        "linear": lm.LinearRegression, "ridge": lm.Ridge, "lasso": lm.Lasso,
        "elastic_net": lm.ElasticNet, "huber": lm.HuberRegressor,
        "pcr": lambda: make_pipeline(PCA(), lm.LinearRegression()),
        "bayesian_ridge": lm.BayesianRidge, "ard": lm.ARDRegression,
    }
    return factories[name]()


def regressor_names(all_regressors: bool = False) -> list[str]:
    """The regressors entering the average: six by default, eight with ``all_regressors``."""
    return [n for n in REGRESSOR_NAMES if all_regressors or n not in CONSTANT_REGRESSORS]


def minmax_scale(x: np.ndarray) -> np.ndarray:
    """Scale each column to [0, 1] over the rows; a constant column becomes 0."""
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (x - lo) / span, 0.0)


def adjusted_r2(y: np.ndarray, pred: np.ndarray, n_features: int) -> float:
    """Adjusted R² of predictions ``pred``; NaN when n - p - 1 <= 0 or y is constant."""
    n = len(y)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if n - n_features - 1 <= 0 or ss_tot == 0:
        return float("nan")
    r2 = 1.0 - float(np.sum((y - pred) ** 2)) / ss_tot
    return 1.0 - (1.0 - r2) * (n - 1) / (n - n_features - 1)


def pearson_columns(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearson r between each column of ``x`` and vector ``v`` (NaN where either is constant)."""
    xc, vc = x - x.mean(axis=0), v - v.mean()
    denom = np.sqrt((xc ** 2).sum(axis=0) * (vc ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * vc[:, None]).sum(axis=0) / denom
    return np.where(denom > 1e-12 * max(1.0, float(np.abs(v).max())), r, np.nan)


def sklearn_fit_predict(name: str, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Fit scikit-learn's ``name`` regressor on the training rows and predict the test rows."""
    return make_regressor(name).fit(x_train, y_train).predict(x_test)


@dataclass
class LinearPredictor:
    """A fitted linear regressor: ``predict(x) = x @ coef + intercept``."""
    coef: np.ndarray
    intercept: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept


def fit_regressor(name: str, x: np.ndarray, y: np.ndarray):
    """Regressor ``name`` fitted on (x, y): the exact replica of :mod:`.linear_fits` where one
    applies, else scikit-learn's estimator; either has ``predict``."""
    fitted = fit_exact(name, x, y)
    return make_regressor(name).fit(x, y) if fitted is None else LinearPredictor(*fitted)


def cv_run(x: np.ndarray, y: np.ndarray, run: int, names: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run of 5-fold CV for every regressor in ``names``.

    Returns ``adj_r2[n_reg]``, ``mae[n_reg]`` and ``importance[n_reg, p]`` (Pearson r between each
    feature and the pooled out-of-fold prediction). ``x`` must already be scaled.
    """
    from sklearn.model_selection import KFold
    folds = list(KFold(N_FOLDS, shuffle=True, random_state=run).split(x))
    # PCA keeping every component is an orthogonal rotation (after centring), and least squares is
    # rotation-invariant (min-norm included): PCR predicts exactly what LinearRegression does, so
    # it reuses linear's out-of-fold predictions (one fit saved per fold) when both are asked for.
    reuse_pcr = "pcr" in names and "linear" in names and x.shape[0] > x.shape[1]
    predictions = fold_predictions([n for n in names if not (reuse_pcr and n == "pcr")], x, y, folds,
                                   sklearn_fit_predict)
    if reuse_pcr:
        predictions["pcr"] = predictions["linear"]
    adj, mae = np.empty(len(names)), np.empty(len(names))
    importance = np.empty((len(names), x.shape[1]))
    for i, name in enumerate(names):
        pred = predictions[name]
        fold_mae = [np.abs(pred[test] - y[test]).mean() for _, test in folds]
        adj[i], mae[i] = adjusted_r2(y, pred, x.shape[1]), float(np.mean(fold_mae))
        importance[i] = pearson_columns(x, pred)
    return adj, mae, importance


def _cv_chunk(x: np.ndarray, y: np.ndarray, runs: list[int], names: list[str]):
    # Worker: one process per core already, so keep BLAS single-threaded (threadpoolctl acts on
    # already-loaded BLAS libraries, unlike OMP_NUM_THREADS); silence convergence chatter.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [cv_run(x, y, run, names) for run in runs]


@dataclass
class Subset:
    """One regression subset: ``scenario`` (``sparsity``/``architecture``), its value, encoding, data."""
    scenario: str
    subset: object
    encoding: str
    features: list[str]
    x: np.ndarray
    y: np.ndarray
    n_dropped: int = 0
    skipped: str | None = None


@dataclass
class CVResult:
    """Per-run, per-regressor scores of a subset (arrays are empty when the subset was skipped)."""
    subset: Subset
    regressors: list[str]
    adj_r2: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))      # [runs, n_reg]
    mae: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))         # [runs, n_reg]
    importance: np.ndarray = field(default_factory=lambda: np.empty((0, 0, 0)))  # [runs, n_reg, p]


def make_subset(table: pd.DataFrame, scenario: str, subset: object, encoding: str) -> Subset:
    """Build a subset from per-network features: drop NaN rows (counted), min-max scale, check size."""
    features = features_of(encoding)
    clean = table.dropna(subset=features + ["drop"])
    x = minmax_scale(clean[features].to_numpy(float)) if len(clean) else np.empty((0, len(features)))
    sub = Subset(scenario, subset, encoding, features, x, clean["drop"].to_numpy(float),
                 n_dropped=len(table) - len(clean))
    if len(clean) < N_FOLDS:
        sub.skipped = f"not computed: {len(clean)} network(s) with complete metrics, fewer than {N_FOLDS} folds need"
    elif np.ptp(sub.y) == 0:
        sub.skipped = "not computed: the accuracy drop is constant over the subset"
    return sub


def scenario_subsets(table: pd.DataFrame, encoding: str) -> list[Subset]:
    """Sparsity-Fixed (one subset per sparsity) then Architecture-Fixed (one per model) subsets."""
    out = [make_subset(g, "sparsity", float(s), encoding) for s, g in table.groupby("sparsity", sort=True)]
    out += [make_subset(g, "architecture", str(m), encoding) for m, g in table.groupby("model", sort=True)]
    return out


def run_cv(subsets: list[Subset], runs: int | list[int] = 100, jobs: int = 1, all_regressors: bool = False,
           progress: bool = True, chunk: int = 10, desc: str = "cross-validation", bar=None) -> list[CVResult]:
    """Repeated k-fold CV of every computable subset, in parallel over (subset, block of runs).

    ``runs``: one count for every subset, or one per subset (so one call, one worker pool and one
    progress bar serve subsets with different run counts). ``jobs`` processes (joblib/loky; 1 = in
    this process); a tqdm bar counts blocks of ``chunk`` runs. ``bar``: an open tqdm bar to add
    the blocks to (a caller's bar over a longer job; left open), instead of a bar of its own.
    """
    from joblib import Parallel, delayed
    names = regressor_names(all_regressors)
    counts = [runs] * len(subsets) if isinstance(runs, int) else list(runs)
    tasks = [(i, list(range(start, min(start + chunk, counts[i]))))
             for i, s in enumerate(subsets) if s.skipped is None for start in range(0, counts[i], chunk)]
    parallel = Parallel(n_jobs=max(1, int(jobs)), return_as="generator")
    outputs = parallel(delayed(_cv_chunk)(subsets[i].x, subsets[i].y, block, names) for i, block in tasks)
    collected: dict[int, list] = {}
    own_bar = bar is None
    bar = progress_bar(len(tasks), desc, progress) if own_bar else bar
    if not own_bar:
        bar.total += len(tasks)
        bar.refresh()
    for (i, _), result in zip(tasks, outputs):
        collected.setdefault(i, []).extend(result)
        bar.update(1)
    if own_bar:
        bar.close()
    results = []
    for i, sub in enumerate(subsets):
        res = CVResult(sub, names)
        if i in collected:
            adj, mae, imp = zip(*collected[i])
            res.adj_r2, res.mae, res.importance = np.array(adj), np.array(mae), np.array(imp)
        results.append(res)
    return results


def progress_bar(total: int, desc: str, progress: bool = True):
    """A tqdm bar on stderr (hidden when ``progress`` is False or stderr is not a terminal)."""
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="step", disable=not progress or not _is_tty())


def _is_tty() -> bool:
    import sys
    return sys.stderr.isatty()


def regression_table(results: list[CVResult]) -> pd.DataFrame:
    """Table 3 rows: scenario, subset, encoding, adj_r2_mean, adj_r2_std, mae, n_networks (+ notes)."""
    rows = []
    for res in results:
        sub = res.subset
        row = dict(scenario=sub.scenario, subset=sub.subset, encoding=sub.encoding,
                   adj_r2_mean=np.nan, adj_r2_std=np.nan, mae=np.nan, n_networks=len(sub.y),
                   n_dropped=sub.n_dropped, note=sub.skipped or "")
        if res.adj_r2.size:
            per_run = res.adj_r2.mean(axis=1)  # regressor-averaged value of each run
            row.update(adj_r2_mean=float(per_run.mean()), adj_r2_std=float(per_run.std(ddof=0)),
                       mae=float(res.mae.mean()))
            dof = len(sub.y) - len(sub.features) - 1
            if np.isnan(per_run).all():
                row["note"] = f"adjusted R² undefined (n - p - 1 = {dof} <= 0); MAE shown"
            elif dof < 10:
                row["note"] = f"adjusted R² unstable: only n - p - 1 = {dof} residual degrees of freedom"
        rows.append(row)
    return pd.DataFrame(rows)


def regressor_table(results: list[CVResult]) -> pd.DataFrame:
    """Per subset and regressor: ``adj_r2_mean``, ``adj_r2_median`` over runs and ``mae`` (the parts
    Table 3 averages; computed subsets only)."""
    rows = []
    for res in results:
        sub = res.subset
        for k, name in enumerate(res.regressors if res.adj_r2.size else []):
            rows.append(dict(scenario=sub.scenario, subset=sub.subset, encoding=sub.encoding, regressor=name,
                             adj_r2_mean=float(res.adj_r2[:, k].mean()),
                             adj_r2_median=float(np.median(res.adj_r2[:, k])), mae=float(res.mae[:, k].mean())))
    return pd.DataFrame(rows, columns=["scenario", "subset", "encoding", "regressor", "adj_r2_mean",
                                       "adj_r2_median", "mae"])


def dominating_regressors(parts: pd.DataFrame, floor: float = -1.0) -> str | None:
    """A sentence when some regressors' mean adjusted R² of one subset is below ``floor`` (far worse
    than predicting the mean) and so dominates the regressor average: who, their values, and the
    average of the others. ``parts``: that subset's :func:`regressor_table` rows."""
    bad = parts[parts["adj_r2_mean"] < floor]
    if bad.empty or len(bad) == len(parts):
        return None
    rest = parts[parts["adj_r2_mean"] >= floor]
    values = ", ".join(f"{r.regressor} {r.adj_r2_mean:.2f} (median over runs {r.adj_r2_median:.2f})"
                       for r in bad.itertuples())
    return (f"the regressor average is pulled down by {values}, far worse than predicting the mean on these "
            f"{{n}} networks; the other {len(rest)} average {rest['adj_r2_mean'].mean():.2f} (per-regressor values "
            "in table3_regressors.csv)")


def regression_study(pool: pd.DataFrame, layers: pd.DataFrame | None = None, runs: int = 100,
                     jobs: int = 1, all_regressors: bool = False, progress: bool = True
                     ) -> tuple[pd.DataFrame, list[CVResult]]:
    """Table 3 over the three encodings (rolled ones only when ``layers`` is given).

    Returns the table (see :func:`regression_table`) and the raw CV results (for importance).
    """
    results = run_cv(regression_subsets(pool, layers), runs=runs, jobs=jobs, all_regressors=all_regressors,
                     progress=progress)
    return regression_table(results), results


def regression_subsets(pool: pd.DataFrame, layers: pd.DataFrame | None = None) -> list[Subset]:
    """Table 3's subsets: Sparsity- then Architecture-Fixed, per encoding (rolled ones with ``layers``)."""
    encodings = list(NETWORK_ENCODINGS) + (list(LAYER_ENCODINGS) if layers is not None else [])
    subsets = []
    for encoding in encodings:
        table = network_features(pool, layers, encoding)
        if len(table):
            subsets += scenario_subsets(table, encoding)
    return subsets
