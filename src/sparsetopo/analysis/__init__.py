"""Analysis of pool tables (paper §4.1-4.3): regression study, feature importance, pruner ranking, report.

Pieces (scikit-learn-like plain functions; heavy libraries are imported inside them):

* :mod:`.pool` — ``load_pools``, ``validate_pool``, ``network_features`` (validation at the boundary);
* :mod:`.regression` — ``regression_study`` (Table 3: 6/8 regressors, repeated 5-fold CV, adjusted R², MAE);
* :mod:`.importance` — ``feature_importance``, ``holdout_importance`` (Figures 3-4, w^s and w^M);
* :mod:`.ranking` — ``ranking_tables`` (Tables 4, 11, 12: Eq. 5 mixture and the baselines);
* :mod:`.rbo` — ``rbo``, ``rbo_ext`` (extrapolated rank-biased overlap);
* :mod:`.figures`, :mod:`.report` — ``build_report`` (CSV + Markdown + PNG/PDF + index.md);
* :mod:`.recommend` — ``rank_pruners`` (predict the ranking of untrained candidate masks).
"""
from .importance import feature_importance, holdout_importance
from .pool import load_pools, network_features, read_table, validate_pool
from .rbo import rbo, rbo_ext
from .ranking import ranking_tables
from .recommend import rank_pruners
from .regression import regression_study
from .report import build_report

__all__ = ["build_report", "feature_importance", "holdout_importance", "load_pools", "network_features",
           "rank_pruners", "ranking_tables", "rbo", "rbo_ext", "read_table", "regression_study", "validate_pool"]
