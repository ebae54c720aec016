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

    ``layers=False``: the network pool (encoding ``mge``, the 16 topometrics; effective metrics
    optional). ``layers=True``: the layer pool (encodings ``rolled``/``rolled_channel``, ``layer``,
    ``layer_name`` and the 10 per-layer topometrics; Ramanujan columns and ``layer_density``
    optional). Required and optional columns come from the metric registry. Raises
    :class:`PoolError` naming the missing column, the duplicated key, or the out-of-range value.
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
    optional = [c for c in optional_columns(encoding) if c in table.columns]
    table = _check_numeric(table, ["sparsity", "accuracy", "dense_accuracy"] + metrics + ["nodes", "edges"]
                           + optional, what)
    for column in KEY + ["accuracy", "dense_accuracy"]:
        if table[column].isna().any():
            raise PoolError(f"{what}: column {column!r} has missing values")
    infinite = np.isinf(table[metrics + ["nodes", "edges"]]).any()
    if infinite.any():  # NaN marks a collapsed network; ±inf is a broken value (it would poison min-max scaling)
        column = str(infinite.idxmax())
        row = table.loc[np.isinf(table[column])].iloc[0]
        raise PoolError(f"{what}: column {column!r} has an infinite value for {_key_text(row)}")
    for column in ("seed",) + (("layer",) if layers else ()):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values != values.round())
        if bad.any():
            raise PoolError(f"{what}: column {column!r} must hold integers; got "
                            f"{_show(table.loc[bad, column].iloc[0])} (row {int(np.flatnonzero(bad)[0])})")
        table[column] = values.astype(int)
    for column in ("accuracy", "dense_accuracy"):
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
    unique = KEY + ["encoding"] + (["layer"] if layers else [])
    dup = table.duplicated(unique, keep=False)
    if dup.any():
        row = table.loc[dup].iloc[0]
        raise PoolError(f"{what} has duplicate key ({', '.join(unique)}): "
                        + ", ".join(f"{c}={_show(row[c])}" for c in unique))
    return table.reset_index(drop=True)


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


def network_features(pool: pd.DataFrame, layers: pd.DataFrame | None, encoding: str) -> pd.DataFrame:
    """One row per network: the key, ``accuracy``, ``dense_accuracy``, ``drop`` and the features.

    ``mge``: the 16 topometrics of ``pool`` normalised per network. Rolled encodings: the 10
    per-layer topometrics of ``layers`` normalised per layer, then averaged over the layers of the
    network (NaN layers ignored). Cost O(rows × features). Inputs must be validated pools.
    """
    columns = features_of(encoding)
    if encoding in NETWORK_ENCODINGS:
        table = normalize(pool, encoding)[KEY + ["accuracy", "dense_accuracy"] + columns]
    else:
        rows = layers[layers["encoding"] == encoding] if layers is not None else layers
        if rows is None or rows.empty:
            return pd.DataFrame(columns=KEY + ["accuracy", "dense_accuracy", "drop"] + columns)
        table = (normalize(rows, encoding).groupby(KEY, sort=True)[["accuracy", "dense_accuracy"] + columns]
                 .mean().reset_index())
    table = table.copy()
    table["drop"] = accuracy_drop(table)
    return table.reset_index(drop=True)
