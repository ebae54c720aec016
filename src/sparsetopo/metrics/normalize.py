"""Normalisation of the metric columns (spec ``metrics.md`` §2, ``analysis.md``), from the metric registry.

Pools store raw metric values beside ``nodes`` (|V|) and ``edges`` (|E|); the analysis calls
:func:`normalize` so that graph size / density is not a confounder (paper footnote 5). The same
divisors apply per network (MGE) and per layer (rolled BGEs). Each metric's divisor is its
registry record's ``divisor`` (:mod:`.registry`):

* ``/|E|``: ``neighbors_1hop``, ``neighbors_2hop``, ``motifs_4``, ``k_core``, ``node_strength``,
  ``cut_edges``, ``cut_nodes``, ``effective_edges``;
* ``/|V|``: ``sink_nodes``, ``source_nodes``, ``disconnected_nodes``, ``mean_component_size``
  (so the latter becomes 1/C), ``effective_nodes``;
* raw: ``n_components``, ``spectral_gap``, ``spectral_radius``, ``effective_paths``, and
  ``removable_out`` / ``removable_in``, whose raw definition (``metrics.md`` §1 rows 4-5) already
  divides by |E|.

A zero divisor gives NaN. Pure pandas/numpy; O(rows × columns).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..encoding.registry import ENCODINGS
from ..errors import PoolError
from ..validation import check_choice
from . import registry


def normalize(table: pd.DataFrame, encoding: str = "mge") -> pd.DataFrame:
    """Return a copy of ``table`` with the metric columns divided by |E| or |V| (see module doc).

    ``table`` holds raw values, one row per network (``encoding="mge"``) or per layer (rolled
    encodings), with ``nodes`` and ``edges`` columns. Columns without a divisor in the registry
    (keys, accuracy, Ramanujan metrics, ``layer_density``) are copied unchanged.
    """
    check_choice(encoding, ENCODINGS, "encoding")
    divisors = registry.divisors()
    missing = [c for c in registry.DIVISOR_COLUMNS if c not in table.columns]
    present = [c for c in divisors if c in table.columns]
    if missing and present:
        raise PoolError(f"cannot normalise: column(s) {', '.join(missing)} missing from the table")
    out = table.copy()
    for column in present:
        divisor = pd.to_numeric(out[divisors[column]], errors="coerce").astype(float)
        divisor = divisor.where(divisor != 0, np.nan)
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float) / divisor
    return out


def __getattr__(name: str):
    if name == "DIVISORS":  # the former table, derived from the registry when read
        return registry.divisors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
