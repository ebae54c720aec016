"""Figures 2-5 of the report (matplotlib, Agg backend), each saved as PNG and PDF.

* :func:`importance_heatmap` (Figures 3, 4): rows = topometrics grouped by family, columns =
  subsets, diverging colour map centred at 0 on [-1, 1].
* :func:`ramanujan_profiles` (Figure 2): per layer, Δr, Δr_imdb, λ_imsg and layer density, each
  scaled to sum to 1 over the layers, one panel per (model, pruner).
* :func:`ramanujan_density_heatmap` (Figure 5): Pearson r between each Ramanujan metric and layer
  density over the layers, per (model, sparsity); empty where the metric is undefined.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path
from ..metrics import registry
from .pool import features_of, ramanujan_layers


def _ramanujan() -> list[str]:
    return registry.names(("ramanujan",))


def _profile_columns() -> list[str]:
    """Figure 2's series: the Ramanujan metrics, then layer density."""
    return _ramanujan() + registry.names(("layer_density",))


def __getattr__(name: str):
    if name == "LABELS":  # the former table, derived from the metric registry when read
        return registry.labels()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: model names as the paper prints them (figures); other names are shown as they are.
DISPLAY_NAMES = {"conv6": "Conv-6", "resnet20": "ResNet-20", "resnet32": "ResNet-32", "wrn28_2": "WRN-28-2",
                 "resnet18": "ResNet-18", "resnet50": "ResNet-50", "cnn_s": "CNN-S", "cnn_m": "CNN-M"}


def display_name(name) -> str:
    """The printed name of a model (``wrn28_2`` → ``WRN-28-2``); sparsities as ``0.9``."""
    return DISPLAY_NAMES.get(name, subset_label(name))


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path_stem: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.pdf`` atomically; close it."""
    paths = []
    for suffix in (".png", ".pdf"):
        path = Path(str(path_stem) + suffix)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150, bbox_inches="tight")
        paths.append(path)
    _pyplot().close(fig)
    return paths


def subset_label(value) -> str:
    """A subset value as printed in tables and figures: sparsities as ``0.9``, names as they are."""
    return f"{value:g}" if isinstance(value, (float, np.floating)) else str(value)


def importance_heatmap(importance: pd.DataFrame, scenario: str, title: str, captions: dict | None = None):
    """Heatmap figure of ``pearson_r`` for one scenario (rows: metrics by family; columns: subsets,
    labelled with ``captions`` = {subset: text} when given, e.g. the network count and adjusted R²)."""
    plt = _pyplot()
    rows = importance[importance["scenario"] == scenario]
    metrics, labels = features_of("mge"), registry.labels()
    grid = rows.pivot(index="metric", columns="subset", values="pearson_r").reindex(metrics)
    grid = grid[sorted(grid.columns, key=lambda v: (isinstance(v, str), v))]
    fig, ax = plt.subplots(figsize=(2.2 + 0.9 * max(3, grid.shape[1]), 8.0))
    image = ax.imshow(grid.to_numpy(float), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(grid.to_numpy(float)):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(value) > 0.6 else "black")
    ax.set_xticks(range(grid.shape[1]), [display_name(c) + (f"\n{captions[c]}" if captions and c in captions else "")
                                         for c in grid.columns])
    ax.set_yticks(range(len(metrics)), [labels[m] for m in metrics])
    ax.set_xlabel("sparsity" if scenario == "sparsity" else "model")
    start = 0
    for family, members in registry.families("mge").items():
        if start:
            ax.axhline(start - 0.5, color="black", linewidth=1.2)
        ax.annotate(family, xy=(1.0, 1 - (start + len(members) / 2) / len(metrics)), xycoords="axes fraction",
                    xytext=(6, 0), textcoords="offset points", va="center", rotation=90, fontsize=9,
                    fontweight="bold")
        start += len(members)
    ax.set_title(title, fontsize=10)
    # Horizontal bar below the axis keeps the family labels on the right free.
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", pad=0.13, fraction=0.04, aspect=25)
    bar.set_label("Pearson r with predicted accuracy drop (red: larger drop)")
    return fig


def layer_profiles(layers: pd.DataFrame, dataset: str, sparsity: float) -> pd.DataFrame:
    """Seed-averaged per-layer Ramanujan metrics and density of the rolled BGE for one (dataset, sparsity)."""
    rows = ramanujan_layers(layers)
    rows = rows[(rows["dataset"] == dataset) & (rows["sparsity"] == sparsity)]
    present = [c for c in _profile_columns() if c in rows.columns]
    grouped = rows.groupby(["model", "pruner", "layer"], sort=True)
    return grouped[present].mean().join(grouped["seed"].nunique().rename("seeds")).reset_index()


def _profile_style(index: int, column: str) -> dict:
    """One colour per series in every panel; layer density dashed."""
    return {"color": f"C{index}", "linestyle": "--" if column == "layer_density" else "-"}


def ramanujan_profiles(layers: pd.DataFrame, dataset: str, sparsity: float, models: list[str] | None = None):
    """Figure 2: one panel per (model, pruner), lines over layer index, one shared y axis.

    Each series is divided by the sum of its absolute values over the layers (for a positive
    series: scaled to sum to 1, as the paper; a signed series such as Δr cannot blow up when its
    sum is near 0), so every value lies in [-1, 1] and panels compare directly. Layers where a
    metric is undefined leave a gap."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator
    prof = layer_profiles(layers, dataset, sparsity)
    models = [m for m in (models or sorted(prof["model"].unique())) if m in set(prof["model"])]
    pruners = sorted(prof["pruner"].unique())
    series = [c for c in _profile_columns() if c in prof.columns]
    fig, axes = plt.subplots(len(models), len(pruners), figsize=(2.6 * len(pruners), 2.2 * len(models) + 0.6),
                             squeeze=False, sharey=True)
    for i, model in enumerate(models):
        for j, pruner in enumerate(pruners):
            ax, data = axes[i, j], prof[(prof["model"] == model) & (prof["pruner"] == pruner)]
            absent, single = [], []
            for column in series:
                total = data[column].abs().sum(skipna=True)
                if data[column].notna().any() and total > 0:
                    ax.plot(data["layer"], data[column] / total, marker=".", linewidth=1.2,
                            **_profile_style(series.index(column), column))
                    if data[column].notna().sum() == 1:
                        single.append(registry.labels()[column])
                else:
                    absent.append(registry.labels()[column])
            # say it, rather than leave the reader to guess from a missing line or a lone point at ±1
            caption = ([f"undefined in every layer: {', '.join(absent)}"] if absent else []) + \
                ([f"one layer only (so ±1): {', '.join(single)}"] if single else [])
            if caption:
                ax.text(0.5, 0.03, "\n".join(caption), transform=ax.transAxes, ha="center", va="bottom",
                        fontsize=6.5, color="0.3")
            seeds = int(data["seeds"].max()) if len(data) else 0
            ax.set_title(f"{display_name(model)} / {pruner} (n={seeds})", fontsize=9)
            ax.axhline(0.0, color="0.8", linewidth=0.6, zorder=0)
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if i == len(models) - 1:
                ax.set_xlabel("layer index", fontsize=8)
            if j == 0:
                ax.set_ylabel("value / Σ|value|", fontsize=8)
    # Legend from proxies, not from one panel: a series can be NaN (absent) in any given panel.
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker=".", **_profile_style(k, c)) for k, c in enumerate(series)]
    labels = [registry.labels()[c] for c in series]
    fig.suptitle(f"Ramanujan metrics vs layer density ({dataset}, sparsity {sparsity:g}; n = seeds averaged); "
                 "each series divided by the sum of its |values| over the layers; a gap = undefined in that "
                 "layer (Δr also where Δr_imdb is)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955), ncol=len(series), fontsize=8,
               frameon=False)
    return fig


def ramanujan_density_correlation(layers: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Pearson r over the layers (all pruners and seeds) between each Ramanujan metric and density,
    over the layers where the metric is defined (``n_layers``; Δr masked as in Table 4)."""
    rows = ramanujan_layers(layers)
    rows = rows[rows["dataset"] == dataset]
    out = []
    for (model, sparsity), group in rows.groupby(["model", "sparsity"], sort=True):
        for metric in [c for c in _ramanujan() if c in group.columns]:
            pair = group[[metric, "layer_density"]].dropna()
            ok = len(pair) > 2 and pair[metric].std() > 0 and pair["layer_density"].std() > 0
            out.append(dict(model=model, sparsity=sparsity, metric=metric,
                            pearson_r=float(pair[metric].corr(pair["layer_density"])) if ok else np.nan,
                            n_layers=len(pair)))
    return pd.DataFrame(out, columns=["model", "sparsity", "metric", "pearson_r", "n_layers"])


def ramanujan_density_heatmap(correlation: pd.DataFrame, dataset: str):
    """Figure 5: one panel per model, rows = Ramanujan metrics, columns = sparsities."""
    plt = _pyplot()
    models = sorted(correlation["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(3.0 * len(models) + 1.6, 2.8), squeeze=False, sharey=True)
    image, ramanujan = None, _ramanujan()
    for ax, model in zip(axes[0], models):
        grid = (correlation[correlation["model"] == model]
                .pivot(index="metric", columns="sparsity", values="pearson_r").reindex(ramanujan))
        values = grid.to_numpy(float)
        image = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        counts = (correlation[correlation["model"] == model]
                  .pivot(index="metric", columns="sparsity", values="n_layers").reindex(ramanujan).to_numpy(float))
        for (i, j), value in np.ndenumerate(values):
            text = (f"{value:.2f}\nn={counts[i, j]:.0f}" if np.isfinite(value)
                    else "undefined" if counts[i, j] == 0 else f"–\nn={counts[i, j]:.0f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if np.isfinite(value) and abs(value) > 0.6 else "black")
        ax.set_xticks(range(grid.shape[1]), [f"{s:g}" for s in grid.columns], fontsize=8)
        ax.set_yticks(range(len(ramanujan)), [registry.labels()[m] for m in ramanujan], fontsize=9)
        ax.set_xlabel("sparsity", fontsize=8)
        ax.set_title(display_name(model), fontsize=9)
    bar = fig.colorbar(image, ax=list(axes[0]), shrink=0.9)
    bar.set_label("Pearson r with layer density", fontsize=8)
    fig.suptitle(f"Ramanujan metrics vs layer density, correlation over layers ({dataset}; n = layers where "
                 "the metric is defined; – = constant or n < 3)", fontsize=10, y=1.05)
    return fig
