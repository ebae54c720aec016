"""Pool tables: load, validate, and turn into one feature row per network (spec ``analysis.md``).

A pool has one row per trained sparse network (``pool.parquet``, encoding ``mge``) or one row per
(network, layer) (``pool_layers.parquet``, encodings ``rolled`` / ``rolled_channel``), keyed by
``model, dataset, pruner, sparsity, seed`` with ``accuracy``, ``dense_accuracy`` and raw metric
columns beside ``nodes`` and ``edges``. Validation happens here, once; later stages trust it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..encoding.registry import ENCODINGS, LAYER_ENCODINGS, NETWORK_ENCODINGS
from ..errors import PoolError
from ..metrics import registry
from ..metrics.normalize import normalize

KEY = ["model", "dataset", "pruner", "sparsity", "seed"]
CELL = ["model", "dataset", "sparsity"]

#: ``stage`` column: metrics of the masks on the trained weights (the paper's) or on the initial ones.
STAGES = ("trained", "init")
DEFAULT_STAGE = "trained"
#: per-network pool columns that are not metric records: effective density, computed from the masks
#: by the pruning stage (``metrics.md`` §5b); a ranking baseline when present.
MASK_COLUMNS = ["effective_density"]


def features_of(encoding: str) -> list[str]:
    """The regression features of an encoding, from the metric registry: the topometrics that apply
    to it (16 for ``mge``, 10 for rolled BGEs)."""
    return registry.feature_names(encoding)


def optional_columns(encoding: str) -> list[str]:
    """Registered metric columns of an encoding that a pool may hold but need not (Ramanujan,
    layer density, effective metrics): numeric-checked when present, never required."""
    return [m.name for m in registry.select(encoding=encoding) if m.group != registry.FEATURE_GROUP]


def __getattr__(name: str):
    # Former tables, derived from the registries when read (code calls the functions above).
    derived = {
        "FAMILIES": lambda: registry.families("mge"),
        "TOPOMETRICS": lambda: features_of("mge"),
        "ROLLED_FEATURES": lambda: features_of("rolled"),
        "RAMANUJAN": lambda: registry.names(("ramanujan",)),
        "LAYER_ENCODINGS": lambda: LAYER_ENCODINGS,
        "ENCODINGS": lambda: ENCODINGS,
    }
    if name in derived:
        return derived[name]()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet (``.parquet``/``.pq``) or CSV (``.csv``) table; PoolError if it cannot."""
    path = Path(path)
    if not path.is_file():
        raise PoolError(f"pool file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix == ".csv":
            return pd.read_csv(path)
    except Exception as exc:  # the reader's own message, attached to the file name
        raise PoolError(f"cannot read pool file {str(path)!r}: {exc}") from None
    raise PoolError(f"pool file {str(path)!r}: unknown format {suffix!r}; use .parquet or .csv")


def _require(table: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise PoolError(f"{what} is missing required column(s): {', '.join(missing)}")


def _check_numeric(table: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    table = table.copy()
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() & table[column].notna()
        if bad.any():
            raise PoolError(f"{what}: column {column!r} has non-numeric value "
                            f"{_show(table.loc[bad, column].iloc[0])} (row {int(np.flatnonzero(bad)[0])})")
        table[column] = values.astype(float)
    return table


def validate_pool(table: pd.DataFrame, layers: bool = False) -> pd.DataFrame:
    """Check a pool table and return a clean copy (numeric columns as float, keys as str/float/int).

    ``layers=False``: the network pool (encoding ``mge``, the 16 topometrics; effective metrics and
    ``effective_density`` optional). ``layers=True``: the layer pool (encodings ``rolled``/
    ``rolled_channel``, ``layer``, ``layer_name`` and the 10 per-layer topometrics; Ramanujan
    columns and ``layer_density`` optional). Required and optional columns come from the metric
    registry. An optional ``stage`` column (``trained`` | ``init``, default ``trained`` when
    absent) is part of the key. Raises :class:`PoolError` naming the missing column, the duplicated
    key, or the out-of-range value.

    Infinite values are handled here, once: ±inf in a Ramanujan column means "undefined in that
    layer" and becomes NaN; the counts per column are kept in ``result.attrs["infinite"]`` (the
    report prints them). ±inf anywhere else (topometrics, sizes, densities) is an error.
    """
    what = "layer pool" if layers else "pool"
    if not isinstance(table, pd.DataFrame):
        raise PoolError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    encoding = LAYER_ENCODINGS[0] if layers else NETWORK_ENCODINGS[0]
    metrics = features_of(encoding)
    extra = ["layer", "layer_name"] if layers else []
    _require(table, KEY + ["accuracy", "dense_accuracy", "encoding"] + extra + metrics + ["nodes", "edges"], what)
    if len(table) == 0:
        raise PoolError(f"{what} has no rows")
    allowed = LAYER_ENCODINGS if layers else NETWORK_ENCODINGS
    bad_enc = sorted(set(table["encoding"].astype(str)) - set(allowed))
    if bad_enc:
        raise PoolError(f"{what}: column 'encoding' has value(s) {bad_enc}; expected {list(allowed)}")
    optional = [c for c in optional_columns(encoding) + ([] if layers else MASK_COLUMNS + ["density"])
                if c in table.columns]
    table = _check_numeric(table, ["sparsity", "accuracy", "dense_accuracy"] + metrics + ["nodes", "edges"]
                           + optional, what)
    table = _with_stage(table, what)
    for column in KEY + ["accuracy", "dense_accuracy"]:
        if table[column].isna().any():
            raise PoolError(f"{what}: column {column!r} has missing values")
    # ±inf in a Ramanujan column: a spectral bound with no admissible degree, i.e. undefined there
    undefined = registry.names(("ramanujan",))
    table, infinite = _undefined_to_nan(table, [c for c in optional if c in undefined])
    _refuse_infinite(table, metrics + ["nodes", "edges"] + [c for c in optional if c not in undefined], what)
    for column in ("seed",) + (("layer",) if layers else ()):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            raise PoolError(f"{what}: column {column!r} must hold integers; got "
                            f"{_show(table.loc[bad, column].iloc[0])} (row {int(np.flatnonzero(bad)[0])})")
        table[column] = values.astype(int)
    for column in ("accuracy", "dense_accuracy") + tuple(c for c in ("layer_density", "effective_density")
                                                         if c in optional):
        out = (table[column] < 0) | (table[column] > 1)
        if out.any():
            row = table.loc[out].iloc[0]
            raise PoolError(f"{what}: {column} must lie in [0, 1]; got {_show(row[column])} for "
                            + _key_text(row))
    if (table["dense_accuracy"] == 0).any():
        raise PoolError(f"{what}: dense_accuracy is 0 for {_key_text(table.loc[table['dense_accuracy'] == 0].iloc[0])}")
    bad_s = (table["sparsity"] <= 0) | (table["sparsity"] >= 1)
    if bad_s.any():
        raise PoolError(f"{what}: sparsity must lie strictly between 0 and 1; got "
                        f"{_show(table.loc[bad_s, 'sparsity'].iloc[0])}")
    for column in ("model", "dataset", "pruner", "encoding") + (("layer_name",) if layers else ()):
        table[column] = table[column].astype(str)
    unique = KEY + ["stage", "encoding"] + (["layer"] if layers else [])
    dup = table.duplicated(unique, keep=False)
    if dup.any():
        row = table.loc[dup].iloc[0]
        raise PoolError(f"{what} has duplicate key ({', '.join(unique)}): "
                        + ", ".join(f"{c}={_show(row[c])}" for c in unique))
    table = table.reset_index(drop=True)
    table.attrs["infinite"] = infinite
    return table


def network_extras(table: pd.DataFrame) -> list[str]:
    """The optional per-network columns ``table`` holds (effective metrics, effective density)."""
    return [c for c in optional_columns("mge") + MASK_COLUMNS if c in table.columns]


def _with_stage(table: pd.DataFrame, what: str) -> pd.DataFrame:
    """Add ``stage = trained`` when absent (pools made before init-stage metrics); check values."""
    if "stage" not in table.columns:
        return table.assign(stage=DEFAULT_STAGE)
    stage = table["stage"].astype(str)
    bad = sorted(set(stage) - set(STAGES))
    if bad:
        raise PoolError(f"{what}: column 'stage' has value(s) {bad}; expected {list(STAGES)}")
    return table.assign(stage=stage)


def _undefined_to_nan(table: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """±inf → NaN in ``columns`` (undefined values); returns the table and {column: count}."""
    counts = {}
    for column in columns:
        infinite = np.isinf(table[column].to_numpy(float))
        if infinite.any():
            counts[column] = int(infinite.sum())
            table[column] = table[column].where(~infinite)
    return table, counts


def _refuse_infinite(table: pd.DataFrame, columns: list[str], what: str) -> None:
    """PoolError naming the first column and key with ±inf (NaN marks a collapsed network; ±inf
    is a broken value that would poison min-max scaling)."""
    infinite = np.isinf(table[columns].to_numpy(float)).any(axis=0)
    if infinite.any():
        column = columns[int(np.flatnonzero(infinite)[0])]
        row = table.loc[np.isinf(table[column])].iloc[0]
        raise PoolError(f"{what}: column {column!r} has an infinite value for {_key_text(row)}")


def select_stage(table: pd.DataFrame, stage: str) -> pd.DataFrame:
    """The rows of one metric stage (``trained`` or ``init``) of a validated pool.

    PoolError if the pool has none (a pool from a study without init-stage metrics, say)."""
    if stage not in STAGES:
        raise PoolError(f"unknown stage {stage!r}; choose one of: {', '.join(STAGES)}")
    rows = table[table["stage"] == stage]
    if rows.empty:
        have = sorted(set(table["stage"]))
        raise PoolError(f"the pool has no {stage!r}-stage rows (it has: {', '.join(have)}); "
                        + ("re-run the study with this version to record metrics at initialization"
                           if stage == "init" else "choose another --stage"))
    return rows.reset_index(drop=True)


def _show(value) -> str:
    """repr of a cell without numpy's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _key_text(row: pd.Series) -> str:
    return ", ".join(f"{c}={_show(row[c])}" for c in KEY)


def check_consistent(pool: pd.DataFrame, layers: pd.DataFrame) -> None:
    """Raise PoolError if a model or dataset appears in one table but not the other."""
    for column in ("model", "dataset"):
        a, b = set(pool[column]), set(layers[column])
        if a != b:
            only_pool, only_layers = sorted(a - b), sorted(b - a)
            parts = ([f"only in the pool: {only_pool}"] if only_pool else []) + \
                    ([f"only in the layer pool: {only_layers}"] if only_layers else [])
            raise PoolError(f"pool and layer pool disagree on column {column!r}: " + "; ".join(parts))


def load_pools(pool_path: str | os.PathLike, layers_path: str | os.PathLike | None = None
               ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read and validate ``pool`` (and optionally the layer pool); check they agree."""
    pool = validate_pool(read_table(pool_path))
    layers = None
    if layers_path is not None:
        layers = validate_pool(read_table(layers_path), layers=True)
        check_consistent(pool, layers)
    return pool, layers


def accuracy_drop(table: pd.DataFrame) -> pd.Series:
    """``drop = 1 - accuracy / dense_accuracy`` (paper §4.2)."""
    return 1.0 - table["accuracy"] / table["dense_accuracy"]


def _single_stage(table: pd.DataFrame) -> None:
    if "stage" in table.columns and table["stage"].nunique() > 1:
        raise PoolError("the table mixes metric stages (trained and init): select one first (select_stage)")


def network_features(pool: pd.DataFrame, layers: pd.DataFrame | None, encoding: str) -> pd.DataFrame:
    """One row per network: the key, ``accuracy``, ``dense_accuracy``, ``drop`` and the features.

    ``mge``: the 16 topometrics of ``pool`` normalised per network, plus the §5b columns
    (:func:`network_extras`) present. Rolled encodings: the 10 per-layer topometrics of ``layers``
    normalised per layer, then averaged over the layers of the network (NaN layers ignored).
    Cost O(rows × features). Inputs must be validated pools of one stage (:func:`select_stage`).
    """
    columns = features_of(encoding)
    if encoding in NETWORK_ENCODINGS:
        _single_stage(pool)
        table = normalize(pool, encoding)[KEY + ["accuracy", "dense_accuracy"] + columns + network_extras(pool)]
    else:
        rows = layers[layers["encoding"] == encoding] if layers is not None else layers
        if rows is None or rows.empty:
            return pd.DataFrame(columns=KEY + ["accuracy", "dense_accuracy", "drop"] + columns)
        _single_stage(rows)
        table = (normalize(rows, encoding).groupby(KEY, sort=True)[["accuracy", "dense_accuracy"] + columns]
                 .mean().reset_index())
    table = table.copy()
    table["drop"] = accuracy_drop(table)
    return table.reset_index(drop=True)


def ramanujan_layers(layers: pd.DataFrame) -> pd.DataFrame:
    """The rolled rows with Δr masked (NaN) where Δr_imdb is undefined, as the paper's Table 4 does.

    The one place this rule lives: the baselines and Figures 2 and 5 read these rows."""
    rows = layers[layers["encoding"] == "rolled"].copy()
    if "delta_r" in rows and "delta_r_imdb" in rows:
        rows["delta_r"] = rows["delta_r"].where(rows["delta_r_imdb"].notna())
    return rows


def coverage(pool: pd.DataFrame, layers: pd.DataFrame | None) -> pd.DataFrame:
    """Networks missing from some table: ``KEY`` + one boolean column per encoding (present?).

    A network counts as present in ``rolled`` / ``rolled_channel`` when the layer pool has at
    least one of its layers in that encoding. Only encodings that occur somewhere are compared;
    rows where every present encoding has the network are left out. O(networks).
    """
    tables = {"mge": pool}
    if layers is not None:
        tables.update({e: layers[layers["encoding"] == e] for e in LAYER_ENCODINGS})
    keys = {e: pd.MultiIndex.from_frame(t[KEY]).unique() for e, t in tables.items() if len(t)}
    everything = None
    for index in keys.values():
        everything = index if everything is None else everything.union(index)
    out = everything.to_frame(index=False)
    for encoding, index in keys.items():
        out[encoding] = everything.isin(index)
    missing = ~out[list(keys)].all(axis=1)
    return out[missing].sort_values(KEY).reset_index(drop=True)
