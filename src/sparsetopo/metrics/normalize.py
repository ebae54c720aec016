"""Normalisation divisors of the topometrics (spec ``metrics.md`` §2, ``analysis.md``), in one place.

Pools store raw metric values beside ``nodes`` (|V|) and ``edges`` (|E|); the analysis calls
:func:`normalize` so that graph size / density is not a confounder (paper footnote 5). The same
divisors apply per network (MGE) and per layer (rolled BGEs):

* ``/|E|``: ``neighbors_1hop``, ``neighbors_2hop``, ``motifs_4``, ``k_core``, ``node_strength``,
  ``cut_edges``, ``cut_nodes``;
* ``/|V|``: ``sink_nodes``, ``source_nodes``, ``disconnected_nodes``, ``mean_component_size``
  (so the latter becomes 1/C);
* raw: ``n_components``, ``spectral_gap``, ``spectral_radius``, and ``removable_out`` /
  ``removable_in``, whose raw definition (``metrics.md`` §1 rows 4-5) already divides by |E|.

A zero divisor gives NaN. Pure pandas/numpy; O(rows × columns).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PoolError
from ..validation import check_choice

ENCODINGS = ("mge", "rolled", "rolled_channel")

#: metric column -> divisor column (``edges`` = |E|, ``nodes`` = |V|); absent columns are skipped.
DIVISORS: dict[str, str] = {
    "neighbors_1hop": "edges", "neighbors_2hop": "edges", "motifs_4": "edges", "k_core": "edges",
    "node_strength": "edges", "cut_edges": "edges", "cut_nodes": "edges",
    "sink_nodes": "nodes", "source_nodes": "nodes", "disconnected_nodes": "nodes",
    "mean_component_size": "nodes",
}


def normalize(table: pd.DataFrame, encoding: str = "mge") -> pd.DataFrame:
    """Return a copy of ``table`` with the metric columns divided by |E| or |V| (see module doc).

    ``table`` holds raw values, one row per network (``encoding="mge"``) or per layer (rolled
    encodings), with ``nodes`` and ``edges`` columns. Columns not listed in :data:`DIVISORS`
    (keys, accuracy, Ramanujan metrics, ``layer_density``) are copied unchanged.
    """
    check_choice(encoding, ENCODINGS, "encoding")
    missing = [c for c in ("nodes", "edges") if c not in table.columns]
    present = [c for c in DIVISORS if c in table.columns]
    if missing and present:
        raise PoolError(f"cannot normalise: column(s) {', '.join(missing)} missing from the table")
    out = table.copy()
    for column in present:
        divisor = pd.to_numeric(out[DIVISORS[column]], errors="coerce").astype(float)
        divisor = divisor.where(divisor != 0, np.nan)
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float) / divisor
    return out
