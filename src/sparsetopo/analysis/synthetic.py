"""Synthetic pool tables with the real schema, for tests, benchmarks and demos (no training).

Raw metric values are random but plausible (counts scale with |V| and |E|); the accuracy drop is a
known function of the normalised features plus noise, so the analysis has something to find.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..encoding.registry import LAYER_ENCODINGS
from ..metrics import registry
from .pool import KEY, features_of

MODELS = ("conv6", "resnet20", "resnet32", "wrn28_2")
DATASETS = ("cifar10", "cifar100", "tiny_imagenet32")
SPARSITIES = (0.6, 0.8, 0.9, 0.95, 0.98)
PRUNERS = ("snip", "grasp", "synflow", "prospr", "uniform", "er", "erk")


def _raw_metrics(rng: np.random.Generator, n: int, nodes: np.ndarray, edges: np.ndarray,
                 columns: list[str]) -> dict[str, np.ndarray]:
    """Normalised values uniform in [0, 1), multiplied back by their divisor to give raw values."""
    out, divisors = {}, registry.divisors()
    for column in columns:
        value = rng.random(n)
        divisor = {"edges": edges, "nodes": nodes}.get(divisors.get(column, ""), 1.0)
        out[column] = value * divisor
    return out


def synthetic_pools(models=MODELS, datasets=DATASETS, sparsities=SPARSITIES, pruners=PRUNERS,
                    seeds=(0, 1, 2), layers_per_network: int = 4, noise: float = 0.01,
                    random_state: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pool, layer pool) with one row per network / per (network, layer) of the grid.

    drop = 0.3·sparsity + 0.2·(normalised ``sink_nodes``) - 0.1·(normalised ``k_core``) + noise,
    clipped to [0, 1]; dense accuracy 0.9.
    """
    rng = np.random.default_rng(random_state)
    grid = pd.MultiIndex.from_product([models, datasets, pruners, sparsities, seeds], names=KEY).to_frame(index=False)
    n = len(grid)
    nodes = rng.integers(1_000, 5_000, n).astype(float)
    edges = nodes * (1 - grid["sparsity"].to_numpy()) * 50
    pool = grid.copy()
    pool = pool.assign(nodes=nodes, edges=edges, **_raw_metrics(rng, n, nodes, edges, features_of("mge")))
    drop = (0.3 * pool["sparsity"] + 0.2 * pool["sink_nodes"] / nodes - 0.1 * pool["k_core"] / edges
            + noise * rng.standard_normal(n))
    pool["dense_accuracy"] = 0.9
    pool["accuracy"] = 0.9 * (1 - drop.clip(0, 1))
    pool["encoding"] = "mge"
    layer_rows = []
    for encoding in LAYER_ENCODINGS:
        rep = pool[KEY + ["accuracy", "dense_accuracy"]].loc[pool.index.repeat(layers_per_network)].reset_index(drop=True)
        m = len(rep)
        rep["layer"] = np.tile(np.arange(layers_per_network), n)
        rep["layer_name"] = "layer" + rep["layer"].astype(str)
        rep["encoding"] = encoding
        lnodes = rng.integers(20, 200, m).astype(float)
        ledges = lnodes * (1 - rep["sparsity"].to_numpy()) * 5
        rep = rep.assign(nodes=lnodes, edges=ledges, **_raw_metrics(rng, m, lnodes, ledges, features_of(encoding)))
        if encoding == "rolled":
            density = (1 - rep["sparsity"]) * rng.uniform(0.5, 1.5, m)
            rep["layer_density"] = density.clip(0, 1)
            for column, slope in zip(registry.names(("ramanujan",)), (2, 1, 3)):
                rep[column] = density * slope + 0.1 * rng.standard_normal(m)
        layer_rows.append(rep)
    return pool, pd.concat(layer_rows, ignore_index=True)
