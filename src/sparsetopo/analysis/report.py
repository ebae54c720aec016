"""The analysis report: every table as CSV + Markdown, every figure as PNG + PDF, and ``index.md``.

:func:`build_report` runs the whole protocol of spec ``analysis.md`` on validated pools and writes
one folder. Cells that cannot be computed on a small pool (fewer than 5 networks for 5-fold CV,
adjusted R² with n - p - 1 <= 0, a single dataset for the RBO std, no layer pool) are left empty
and listed under "Notes" in ``index.md``; nothing crashes on them.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import atomic_path, atomic_write_text
from . import figures
from ..encoding.registry import ENCODING_REGISTRY, LAYER_ENCODINGS
from ..metrics import registry
from .figures import display_name, subset_label
from .importance import holdout_subsets, holdout_tables, importance_table
from .pool import DEFAULT_STAGE, KEY, coverage, network_features, select_stage
from .ranking import CELL, GLOBAL, IN_SAMPLE, MIXTURE, MIXTURE_OOS, RECOMMENDER, TABLES, ranked_networks, ranking_tables
from .recommend import held_out_predictions, learning_rows, min_networks
from .regression import (dominating_regressors, progress_bar, regression_subsets, regression_table,
                         regressor_names, regressor_table, run_cv)

#: what the report does after cross-validation (one progress-bar step each)
AFTER_CV_STEPS = ("rankings", "figures", "tables")
TABLE3_COLUMNS = ["scenario", "subset", "encoding", "adj_r2_mean", "adj_r2_std", "mae", "n_networks"]
RANK_COLUMNS = ["model", "strategy", "sparsity", "rbo_mean", "rbo_std", "top1_rate", "regret_mean"]
ENCODING_LABELS = {name: encoding.label for name, encoding in ENCODING_REGISTRY.items()}
STRATEGY_LABELS = {"layer_density": "Layer-Density", **{m: registry.labels()[m] for m in registry.names(("ramanujan",))},
                   "effective_density": "Effective density", "effective_paths": "Effective paths",
                   "effective_nodes": "Effective nodes", GLOBAL: "Fixed global ranking (other cells)",
                   MIXTURE: "Ours (in-sample, as the paper)", MIXTURE_OOS: "Ours (out-of-sample)",
                   RECOMMENDER: "rank's recommender (out-of-sample)"}
STAGE_TEXT = {"trained": "trained (masks on the trained weights, as the paper)",
              "init": "init (masks on the initial weights, before training)"}
TABLE_TITLES = {"table4": "Table 4: mean RBO, all pruners", "table11": "Table 11: mean RBO, PaI pruners",
                "table12": "Table 12: mean RBO, layer-wise random pruners"}


def paper_number(value: float, digits: int = 2) -> str:
    """The paper's style: ``.54``, ``-.05``, ``1.0``; ``–`` for NaN."""
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:.{digits}f}"
    if text.startswith("0.") or text.startswith("-0."):
        text = text.replace("0.", ".", 1)
    return text


def pm(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std`` in the paper's style (std omitted when NaN)."""
    text = paper_number(mean, digits)
    return text if text == "–" or not math.isfinite(std) else f"{text} ± {paper_number(std, digits)}"


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of a small frame of strings."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule] + body)


def table3_markdown(table: pd.DataFrame) -> str:
    """Table 3 as in the paper: adjusted R² and MAE per encoding (rows) and subset (columns)."""
    order = [(s, v) for s in ("sparsity", "architecture")
             for v in table.loc[table["scenario"] == s, "subset"].drop_duplicates()]
    columns = [f"{'Sparsity' if s == 'sparsity' else 'Arch.'} {subset_label(v)}" for s, v in order]
    parts = []
    for metric, fmt in (("Adjusted R² (↑)", lambda r: pm(r.adj_r2_mean, r.adj_r2_std)),
                        ("MAE (↓)", lambda r: paper_number(r.mae, 3)),
                        ("Networks n (p = 16 MGE, 10 rolled features; adjusted R² needs n > p + 1)",
                         lambda r: str(int(r.n_networks)))):
        rows = []
        for encoding in [e for e in ENCODING_LABELS if e in set(table["encoding"])]:
            cells = []
            for scenario, value in order:
                hit = table[(table["encoding"] == encoding) & (table["scenario"] == scenario) & (table["subset"] == value)]
                cells.append(fmt(hit.iloc[0]) if len(hit) else "–")
            rows.append([ENCODING_LABELS[encoding]] + cells)
        parts.append(f"**{metric}**\n\n" + markdown_table(pd.DataFrame(rows, columns=["Encoding"] + columns)))
    return "\n\n".join(parts)


def rank_markdown(summary: pd.DataFrame) -> str:
    """Tables 4/11/12 as in the paper: rows (model, strategy), columns sparsities + Avg."""
    if summary.empty:
        return "_No (model, dataset, sparsity) cell has two or more of these pruners._"
    sparsities = sorted(v for v in summary["sparsity"].unique() if v != "avg")
    rows = []
    for (model, strategy), group in summary.groupby(["model", "strategy"], sort=False):
        by = {row.sparsity: pm(row.rbo_mean, row.rbo_std) for row in group.itertuples()}
        rows.append([model, STRATEGY_LABELS.get(strategy, strategy)] + [by.get(s, "–") for s in sparsities]
                    + [by.get("avg", "–")])
    return markdown_table(pd.DataFrame(rows, columns=["Model", "Strategy"] + [f"{s:g}" for s in sparsities] + ["Avg."]))


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


@dataclass
class Report:
    """What :func:`build_report` produced: tables (DataFrames), file paths, and notes."""
    out_dir: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stage: str = DEFAULT_STAGE


def _pool_summary(pool: pd.DataFrame) -> str:
    parts = [f"{len(pool)} networks"] + [
        f"{c if c != 'sparsity' else 'sparsitie'}s: {', '.join(subset_label(v) for v in sorted(pool[c].unique()))}"
        for c in ("model", "dataset", "pruner", "sparsity", "seed")]
    return "; ".join(parts)


def accuracy_table(pool: pd.DataFrame) -> pd.DataFrame:
    """Tables 8-10 of the paper: test accuracy (%) per (dataset, model, pruner) and sparsity.

    Long format, one row per (dataset, model, pruner, sparsity) with the mean and std (ddof 0, as
    ``numpy.std``; NaN for one seed) over seeds, plus one ``dense`` row per (dataset, model) from ``dense_accuracy``.
    """
    keys = ["dataset", "model", "pruner", "sparsity"]
    # std over seeds (ddof 0); undefined (NaN) for a single seed rather than a misleading 0
    sparse = pool.groupby(keys, sort=True)["accuracy"].agg(
        ["mean", lambda a: float(np.std(a)) if len(a) > 1 else float("nan")])
    sparse.columns = ["accuracy_mean", "accuracy_std"]
    dense = pool.groupby(["dataset", "model"], sort=True)["dense_accuracy"].first().rename("accuracy_mean")
    dense = dense.reset_index().assign(pruner="dense", sparsity=np.nan, accuracy_std=np.nan)
    table = pd.concat([sparse.reset_index(), dense], ignore_index=True)
    table[["accuracy_mean", "accuracy_std"]] *= 100.0
    return table[keys + ["accuracy_mean", "accuracy_std"]]


def accuracy_markdown(table: pd.DataFrame) -> str:
    """Pruners as rows, sparsities as columns, one block per (dataset, model); ``mean ± std`` in %."""
    sparsities = sorted(table["sparsity"].dropna().unique())
    rows = []
    for (dataset, model), block in table.groupby(["dataset", "model"], sort=True):
        for pruner, part in block.groupby("pruner", sort=False):
            cells = {s: pm(m, sd, 1) for s, m, sd in part[["sparsity", "accuracy_mean", "accuracy_std"]].itertuples(
                index=False)}
            values = [cells.get(s, "") for s in sparsities] if pruner != "dense" else \
                [pm(part["accuracy_mean"].iloc[0], float("nan"), 1)] + [""] * (len(sparsities) - 1)
            rows.append([dataset, model, pruner] + values)
    frame = pd.DataFrame(rows, columns=["Dataset", "Model", "Pruner"] + [subset_label(s) for s in sparsities])
    return markdown_table(frame)


def build_report(pool: pd.DataFrame, layers: pd.DataFrame | None, out_dir: str | os.PathLike, runs: int = 100,
                 jobs: int | None = None, oos_runs: int | None = None, all_regressors: bool = False,
                 progress: bool = True, figure_dataset: str | None = None,
                 figure_sparsity: float | None = None, stage: str = DEFAULT_STAGE) -> Report:
    """Run Table 3, importance (Figures 3-4), Tables 4/11/12 and Figures 2/5; write ``out_dir``.

    ``pool``/``layers`` must be validated (:func:`sparsetopo.analysis.pool.load_pools`); ``stage``
    picks the metric stage analysed (``trained``, the paper's, or ``init``). ``runs`` CV
    repetitions for Table 3 and the in-sample importance; ``oos_runs`` (default min(runs, 10))
    for the out-of-sample weights, refitted once per (model, sparsity) cell. ``jobs`` processes
    (default: every core).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = Report(out, stage=stage)
    infinite = {"pool": pool.attrs.get("infinite", {}), "layer pool": (layers.attrs.get("infinite", {})
                                                                       if layers is not None else {})}
    both_stages, pool = pool, select_stage(pool, stage)
    layers = select_stage(layers, stage) if layers is not None else None
    oos_runs = min(runs, 10) if oos_runs is None else oos_runs
    jobs = jobs or os.cpu_count() or 1
    _protocol_notes(report, pool, layers, runs, oos_runs, all_regressors, infinite)

    # One pass of cross-validation for the whole report (one worker pool, one progress bar): the
    # Table 3 subsets (``runs`` runs) and, for the out-of-sample ranking, the subsets refitted
    # without each (model, sparsity) cell (``oos_runs`` runs).
    features = network_features(pool, layers, "mge")
    cells = sorted(set(zip(features["model"], features["sparsity"])))
    table3_subsets = regression_subsets(pool, layers)
    held_subsets, owners = holdout_subsets(features, cells) if oos_runs > 0 else ([], [])
    # One bar for the whole report: the CV blocks (added by run_cv) and the steps after them.
    bar = progress_bar(len(AFTER_CV_STEPS), "report", progress)
    everything = run_cv(table3_subsets + held_subsets, runs=[runs] * len(table3_subsets) + [oos_runs] * len(held_subsets),
                        jobs=jobs, all_regressors=all_regressors, bar=bar)
    results = everything[:len(table3_subsets)]
    holdout = holdout_tables(everything[len(table3_subsets):], owners) if oos_runs > 0 else None
    table3, parts = regression_table(results), regressor_table(results)
    for row in table3.itertuples():
        label = f"{ENCODING_LABELS[row.encoding]}, {row.scenario} {subset_label(row.subset)}"
        if row.n_dropped:
            report.notes.append(f"{label}: {row.n_dropped} network(s) with a NaN metric dropped.")
        if row.note:
            report.notes.append(f"{label}: {row.note}.")
        mine = parts[(parts["encoding"] == row.encoding) & (parts["scenario"] == row.scenario)
                     & (parts["subset"] == row.subset)]
        dominated = dominating_regressors(mine)
        if dominated:
            report.notes.append(f"{label}: adjusted R² {pm(row.adj_r2_mean, row.adj_r2_std)}: "
                                + dominated.format(n=row.n_networks) + ".")
    report.tables["table3_regressors"] = parts
    report.files.append(write_csv(parts.assign(subset=parts["subset"].map(subset_label)),
                                  out / "table3_regressors.csv"))
    report.tables["table3"] = table3
    report.files.append(write_csv(table3.assign(subset=table3["subset"].map(subset_label))[TABLE3_COLUMNS],
                                  out / "table3.csv"))

    importance = importance_table(results, "mge")
    report.tables["importance"] = importance
    report.files.append(write_csv(importance.assign(subset=importance["subset"].map(subset_label)),
                                  out / "importance.csv"))

    bar.set_postfix_str(AFTER_CV_STEPS[0])
    recommender = _recommender_scores(report, both_stages, features, layers, all_regressors)
    _ranking_outputs(report, ranking_tables(features, layers, importance, holdout, extra=recommender))
    if pool["dataset"].nunique() < 2:
        report.notes.append("Only one dataset: the RBO std over datasets is undefined (shown as no ± value).")
    bar.update(1)
    bar.set_postfix_str(AFTER_CV_STEPS[1])
    report.files += _figures(report, importance, layers, figure_dataset, figure_sparsity)
    bar.update(1)
    bar.set_postfix_str(AFTER_CV_STEPS[2])
    _write_markdown(report, pool)
    bar.update(1)
    bar.close()
    return report


def _recommender_scores(report: Report, pool: pd.DataFrame, features: pd.DataFrame, layers: pd.DataFrame | None,
                        all_regressors: bool) -> pd.DataFrame | None:
    """``sparsetopo rank``'s recommender as a ranking strategy: its held-out predicted drop per
    (model, dataset, sparsity, pruner), learned from init-stage rows of the networks the rankings
    use (the truth's seed set), exactly as ``rank``'s track record computes it. None (with a
    note) when no (model, sparsity) leaves enough networks to fit on."""
    rows, _ = learning_rows(pool, "init")
    used = rows.attrs["stage"]
    rows = rows.merge(ranked_networks(features, layers)[KEY], on=KEY)
    scores = held_out_predictions(rows, regressor_names(all_regressors))
    label = STRATEGY_LABELS[RECOMMENDER]
    if scores[RECOMMENDER].isna().all():
        report.notes.append(f"Strategy \"{label}\" not shown: no (model, sparsity) leaves {min_networks()} "
                            "networks to fit its drop model on.")
        return None
    report.notes.append(f"Strategy \"{label}\": `sparsetopo rank`'s drop model, refitted without the ranked "
                        f"(model, sparsity), learned from {used}-stage metrics"
                        + (" (the pool has no init-stage rows)" if used != "init" else "") + ".")
    return scores[list(CELL) + [RECOMMENDER]]


def _protocol_notes(report: Report, pool: pd.DataFrame, layers: pd.DataFrame | None, runs: int, oos_runs: int,
                    all_regressors: bool, infinite: dict[str, dict[str, int]]) -> None:
    """Notes on what the report ran, what it changed (infinite values) and what the pool lacks."""
    names = regressor_names(all_regressors)
    report.notes.append(f"Regression averages {len(names)} regressors ({', '.join(names)})"
                        + ("." if all_regressors else "; Lasso and ElasticNet at default alpha = 1 predict a "
                           "constant on this data and are left out of the average (spec analysis.md)."))
    report.notes.append(f"{runs} run(s) of 5-fold CV per subset; out-of-sample mixture weights use {oos_runs} run(s).")
    for table, counts in infinite.items():
        for column, count in counts.items():
            report.notes.append(f"{count} infinite value(s) of {column} in the {table} are treated as undefined "
                                "(NaN) everywhere: in the means over layers, Figures 2 and 5 and the baselines.")
    if layers is None:
        report.notes.append("No layer pool given: rolled encodings, the Ramanujan / density baselines and "
                            "Figures 2 and 5 are skipped.")
    else:
        for encoding in LAYER_ENCODINGS:
            if not (layers["encoding"] == encoding).any():
                report.notes.append(f"Layer pool has no {encoding} rows: that encoding is left out of Table 3.")
    gaps = coverage(pool, layers)
    report.tables["coverage"] = gaps
    if len(gaps):
        report.files.append(write_csv(gaps, report.out_dir / "coverage.csv"))
        shown = "; ".join(_network_text(row) + " (only in: " + ", ".join(
            e for e in gaps.columns[len(KEY):] if row[e]) + ")" for _, row in gaps.head(10).iterrows())
        report.notes.append(f"{len(gaps)} network(s) are missing from some table (all listed in coverage.csv); "
                            f"the rankings use only networks present in the MGE pool and the rolled layers: {shown}"
                            + (" ..." if len(gaps) > 10 else "") + ".")
    seeds = pool.groupby(["model", "dataset", "pruner", "sparsity"])["seed"].nunique()
    if (seeds == 1).any():
        report.notes.append(f"{int((seeds == 1).sum())} of {len(seeds)} (model, dataset, pruner, sparsity) "
                            "group(s) have a single seed: their accuracy shows no ± (a std over one seed is "
                            "undefined, not 0).")


def _network_text(row: pd.Series) -> str:
    return f"{row['model']}/{row['dataset']}/{row['pruner']}/{row['sparsity']:g}/seed {row['seed']}"


def _ranking_outputs(report: Report, ranking: dict[str, pd.DataFrame]) -> None:
    """Tables 4/11/12 (in-sample: every strategy; ``_oos``: every strategy not fitted on the ranked
    cell), the per-dataset scores and the per-strategy summaries, as CSV; notes on empty cells."""
    out = report.out_dir
    for name in TABLES:
        summary, strategies = ranking[name], ranking[name + "_strategies"]
        report.tables[name], report.tables[name + "_strategies"] = summary, strategies
        report.files.append(write_csv(summary[summary["strategy"] != MIXTURE_OOS][RANK_COLUMNS], out / f"{name}.csv"))
        report.files.append(write_csv(summary[~summary["strategy"].isin(IN_SAMPLE)][RANK_COLUMNS],
                                      out / f"{name}_oos.csv"))
        report.files.append(write_csv(ranking[name + "_long"], out / f"{name}_per_dataset.csv"))
        report.files.append(write_csv(strategies, out / f"{name}_strategies.csv"))
    report.notes.append(f"Rankings use {len(ranking['networks'])} network(s): the truth and every strategy average "
                        "the same seeds in each (model, dataset, sparsity) cell.")
    missing = ranking["table4_long"]
    missing = missing[missing["rbo"].isna()]
    for strategy, count in missing.groupby("strategy").size().items():
        report.notes.append(f"Ranking: {STRATEGY_LABELS.get(strategy, strategy)} has no score in {count} "
                            "(model, dataset, sparsity) cell(s) of Table 4; left out of its means.")


def strategies_markdown(summary: pd.DataFrame) -> str:
    """Per-strategy summary: RBO, top-1 hit rate, regret and cells won / lost vs the fixed ranking."""
    if summary.empty:
        return "_No ranked cell._"
    rows = [[STRATEGY_LABELS.get(r.strategy, r.strategy), "in-sample" if r.in_sample else "out-of-sample",
             str(int(r.cells)), paper_number(r.rbo_mean), paper_number(r.top1_rate), f"{r.regret_mean:.2f}",
             "" if not math.isfinite(r.cells_won) else f"{int(r.cells_won)} / {int(r.cells_lost)}"]
            for r in summary.itertuples()]
    return markdown_table(pd.DataFrame(rows, columns=[
        "Strategy", "Fitted", "Cells", "RBO (↑)", "Top-1 hit rate (↑)", "Regret, accuracy points (↓)",
        "Cells won / lost vs fixed ranking (RBO)"]))


def _figures(report: Report, importance: pd.DataFrame, layers: pd.DataFrame | None,
             dataset: str | None, sparsity: float | None) -> list[Path]:
    out, files = report.out_dir, []
    for scenario, stem, title in (("sparsity", "figure3_importance_sparsity", "Feature importance, Sparsity-Fixed ($w^s$)"),
                                  ("architecture", "figure4_importance_architecture",
                                   "Feature importance, Architecture-Fixed ($w^M$)")):
        if (importance["scenario"] == scenario).any():
            t3 = report.tables["table3"]
            t3 = t3[(t3["encoding"] == "mge") & (t3["scenario"] == scenario)]
            # each column's n and how well its regression predicts: importance of a poor fit means little
            captions = {r.subset: f"n={r.n_networks}\nadj. R² {paper_number(r.adj_r2_mean)}"
                        for r in t3.itertuples()}
            files += figures.save_figure(figures.importance_heatmap(importance, scenario, title, captions),
                                         out / stem)
        else:
            report.notes.append(f"Figure {'3' if scenario == 'sparsity' else '4'}: no computable {scenario} subset.")
    if layers is None or "layer_density" not in layers.columns:
        if layers is not None:
            report.notes.append("Layer pool has no layer_density column: Figures 2 and 5 skipped.")
        return files
    rolled = layers[layers["encoding"] == "rolled"]
    if rolled.empty:
        report.notes.append("Layer pool has no rolled rows: Figures 2 and 5 skipped.")
        return files
    datasets = sorted(rolled["dataset"].unique())
    dataset = dataset if dataset in datasets else ("cifar10" if "cifar10" in datasets else datasets[0])
    sparsities = sorted(rolled.loc[rolled["dataset"] == dataset, "sparsity"].unique())
    sparsity = sparsity if sparsity in sparsities else (0.9 if 0.9 in sparsities else sparsities[len(sparsities) // 2])
    report.notes.append(f"Figures 2 and 5 use dataset {dataset}; Figure 2 uses sparsity {sparsity:g}.")
    files += figures.save_figure(figures.ramanujan_profiles(layers, dataset, sparsity), out / "figure2_ramanujan_profiles")
    correlation = figures.ramanujan_density_correlation(layers, dataset)
    write_csv(correlation, out / "figure5_correlation.csv")
    files.append(out / "figure5_correlation.csv")
    if correlation.empty:
        report.notes.append("Layer pool has no Ramanujan columns (delta_r, delta_r_imdb, lambda_imsg): "
                            "Figure 5 skipped.")
        return files
    files += figures.save_figure(figures.ramanujan_density_heatmap(correlation, dataset),
                                 out / "figure5_ramanujan_density")
    return files


def _write_markdown(report: Report, pool: pd.DataFrame) -> None:
    out = report.out_dir
    t3 = "# Table 3: regression of the accuracy drop\n\n" + table3_markdown(report.tables["table3"]) + "\n"
    atomic_write_text(out / "table3.md", t3)
    report.files.append(out / "table3.md")
    accuracy = accuracy_table(pool)
    report.files.append(write_csv(accuracy, out / "accuracy.csv"))
    sections = ["# sparsetopo analysis report", "", f"Pool: {_pool_summary(pool)}.", "",
                f"Metrics stage analysed: {STAGE_TEXT[report.stage]} (`--stage`).", "",
                "## Test accuracy of the pool (%, mean ± std over seeds; as Tables 8-10)", "",
                accuracy_markdown(accuracy), "",
                "## Table 3: regression of the accuracy drop (adjusted R² of pooled out-of-fold predictions, MAE)",
                "", table3_markdown(report.tables["table3"]), "",
                "Each cell averages the regressors; their separate values are in `table3_regressors.csv`. Cells "
                "that need a word (not computed, unstable, pulled down by one regressor) are explained under "
                "Notes.", "", "## Feature importance (Figures 3 and 4)", "",
                "Pearson r between each topometric and the regressors' predicted accuracy drop: r > 0 means more "
                "of the metric goes with a larger drop. Data: `importance.csv`.", ""]
    for stem in ("figure3_importance_sparsity", "figure4_importance_architecture"):
        if (out / f"{stem}.png").exists():
            sections += [f"![{stem}]({stem}.png)", ""]
    for name, title in TABLE_TITLES.items():
        text = rank_markdown(report.tables[name])
        atomic_write_text(out / f"{name}.md", f"# {title}\n\n{text}\n")
        report.files.append(out / f"{name}.md")
        sections += [f"## {title}", "", text, "", "How often each strategy's first pick is the best pruner of a "
                     "(model, dataset, sparsity) cell (top-1 hit rate), the accuracy lost by following it (regret, "
                     "best mean accuracy − that of the first pick, in points), and RBO over all cells:", "",
                     strategies_markdown(report.tables[name + "_strategies"]), ""]
        if name == "table4":
            sections += ["\"Ours (in-sample)\" uses importance weights fitted on the whole pool, as the paper "
                         "does; \"Ours (out-of-sample)\" refits them without the ranked (model, sparsity) cell, "
                         "an honest estimate of ranking quality on a new cell (`table*_oos.csv`). \"rank's recommender\" is "
                         "`sparsetopo rank`'s drop model (init-stage metrics), also refitted without the ranked cell: "
                         "the numbers `rank` prints as its track record. Cells: mean "
                         "± std (ddof 1) of the RBO over datasets; per-dataset values in `table*_per_dataset.csv`.", ""]
    for stem, title in (("figure2_ramanujan_profiles", "Figure 2: Ramanujan metrics vs layer density"),
                        ("figure5_ramanujan_density", "Figure 5: correlation of Ramanujan metrics with layer density")):
        if (out / f"{stem}.png").exists():
            sections += [f"## {title}", "", f"![{stem}]({stem}.png)", ""]
    sections += ["## Notes", ""] + [f"- {note}" for note in report.notes] + [""]
    atomic_write_text(out / "index.md", "\n".join(sections))
    report.files.append(out / "index.md")
