"""Rank recommender: library function on synthetic pools, and the `sparsetopo rank` CLI plumbing."""
import numpy as np
import pandas as pd
import pytest

from sparsetopo.analysis.pool import TOPOMETRICS
from sparsetopo.analysis.recommend import rank_pruners
from sparsetopo.analysis.synthetic import synthetic_pools
from sparsetopo.cli import main
from sparsetopo.errors import PoolError, ValidationError


@pytest.fixture(scope="module")
def pool():
    pool, _ = synthetic_pools(models=("conv6", "resnet20"), datasets=("cifar10",), sparsities=(0.6, 0.9),
                              seeds=range(4), random_state=2)
    # per-cell pruner effects (random order between cells), so a fixed ranking cannot know them
    rng = np.random.default_rng(7)
    effect = pool.groupby(["model", "sparsity", "pruner"])["nodes"].transform(lambda v: rng.random())
    pool["sink_nodes"] = (0.6 * effect + 0.1 * rng.random(len(pool))) * pool["nodes"]
    drop = 0.5 * pool["sink_nodes"] / pool["nodes"] + 0.3 * pool["k_core"] / pool["edges"]
    pool["accuracy"] = pool["dense_accuracy"] * (1 - drop)
    return pool


def candidates(pool, sink_fraction):
    """Candidates equal to the pool's mean normalised metrics except for the sink fraction."""
    nodes, edges = 2000.0, 50_000.0
    mean = {m: (pool[m] / pool["nodes"] if m in ("sink_nodes", "source_nodes", "disconnected_nodes",
                                                 "mean_component_size")
                else pool[m] / pool["edges"] if m in ("neighbors_1hop", "neighbors_2hop", "motifs_4", "k_core",
                                                      "node_strength", "cut_edges", "cut_nodes")
                else pool[m]).mean() for m in TOPOMETRICS}
    rows = []
    for pruner, sink in sink_fraction.items():
        raw = {m: v * (nodes if m in ("source_nodes", "disconnected_nodes", "mean_component_size") else
                       edges if m in ("neighbors_1hop", "neighbors_2hop", "motifs_4", "k_core", "node_strength",
                                      "cut_edges", "cut_nodes") else 1.0) for m, v in mean.items()}
        raw["sink_nodes"] = sink * nodes
        rows.append({"pruner": pruner, **raw, "nodes": nodes, "edges": edges})
    return pd.DataFrame(rows), mean


def test_rank_follows_the_known_law_and_predicts_the_drop(pool):
    sinks = {"snip": 0.6, "grasp": 0.2, "synflow": 0.4, "er": 0.05}
    cand, mean = candidates(pool, sinks)
    result = rank_pruners(cand, pool, "conv6", 0.9, dataset="cifar10")
    assert list(result.columns) == ["rank", "pruner", "predicted_drop", "raw_prediction", "drop_clipped",
                                    "metrics_out_of_range", "out_of_range"]
    assert not result["drop_clipped"].any() and (result["predicted_drop"] == result["raw_prediction"]).all()
    assert (result["metrics_out_of_range"] == 0).all()
    assert result["pruner"].tolist() == ["er", "grasp", "synflow", "snip"]
    assert result["rank"].tolist() == [1, 2, 3, 4]
    assert result["predicted_drop"].is_monotonic_increasing  # one model: the order is the printed drop's
    truth = result["pruner"].map(lambda p: 0.5 * sinks[p] + 0.3 * mean["k_core"])
    np.testing.assert_allclose(result["predicted_drop"], truth, atol=0.03)
    notes = " ".join(result.attrs["notes"])
    assert "networks of conv6" in notes and "no init-stage metrics" in notes  # this pool predates them


def test_track_record_is_out_of_sample_and_beats_a_fixed_ranking_when_the_law_holds(pool):
    """The drop follows the metrics exactly and the pruner order differs between cells: held-out
    cells are ranked right by the recommender, not by the fixed ranking of the other cells."""
    cand, _ = candidates(pool, {"snip": 0.6, "er": 0.1})
    result = rank_pruners(cand, pool, "conv6", 0.9)
    record = result.attrs["track_record"]
    assert set(record["strategy"]) == {"recommender", "fixed_global_ranking"}
    assert set(zip(record["model"], record["sparsity"])) == {("conv6", 0.6), ("conv6", 0.9)}
    mine = record[record["strategy"] == "recommender"]
    fixed = record[record["strategy"] == "fixed_global_ranking"]
    assert mine["top1"].mean() == 1.0 and mine["regret"].max() < 0.5 and mine["rbo"].min() > 0.9
    assert fixed["rbo"].mean() < mine["rbo"].mean()
    assert result.attrs["notes"][0].startswith("out-of-sample track record on this pool (2 cell(s)")


def test_init_stage_is_learned_from_when_present(pool):
    """With both stages in the pool, rank learns from init rows (here: the only ones with signal)."""
    init = pool.assign(stage="init")
    trained = pool.assign(stage="trained", accuracy=pool["dense_accuracy"] * 0.5)  # no signal at all
    both = pd.concat([trained, init], ignore_index=True)
    cand, _ = candidates(pool, {"snip": 0.6, "er": 0.05, "grasp": 0.3})
    result = rank_pruners(cand, both, "conv6", 0.9)
    assert result["pruner"].tolist() == ["er", "grasp", "snip"]
    assert "learned from init-stage metrics" in result.attrs["notes"]
    flat = rank_pruners(cand, both, "conv6", 0.9, stage="trained")
    assert np.ptp(flat["predicted_drop"]) < 1e-6  # trained rows: a constant drop, nothing to rank by


def test_unknown_model_and_sparsity_fall_back_and_say_so(pool):
    cand, _ = candidates(pool, {"snip": 0.6, "er": 0.1})
    result = rank_pruners(cand, pool, "wrn28_2", 0.95)
    assert result["pruner"].tolist() == ["er", "snip"]
    notes = " ".join(result.attrs["notes"])
    assert "wrn28_2 is not in the pool" in notes and "interpolates" in notes
    far, _ = candidates(pool, {"snip": 5.0, "er": 0.1})  # sink fraction far beyond the pool's range
    result = rank_pruners(far, pool, "conv6", 0.9)
    assert result.set_index("pruner")["metrics_out_of_range"].to_dict() == {"snip": 1, "er": 0}
    # snip's drop is extrapolated past every drop in the pool: shown at the pool's largest, flagged
    snip = result.set_index("pruner").loc["snip"]
    drops = 1 - pool.loc[pool["model"] == "conv6", "accuracy"] / pool.loc[pool["model"] == "conv6", "dense_accuracy"]
    assert snip["drop_clipped"] and snip["raw_prediction"] > 1 and snip["predicted_drop"] == pytest.approx(drops.max())
    assert result["predicted_drop"].is_monotonic_increasing and result["pruner"].tolist() == ["er", "snip"]
    assert "shown at that bound" in " ".join(result.attrs["notes"])
    assert result.set_index("pruner").loc["snip", "out_of_range"] == "sink_nodes"
    assert "extrapolated: snip (sink_nodes)" in " ".join(result.attrs["notes"])


def test_bad_candidates_are_named(pool):
    cand, _ = candidates(pool, {"snip": 0.6, "er": 0.1})
    with pytest.raises(PoolError, match="k_core"):
        rank_pruners(cand.drop(columns="k_core"), pool, "conv6", 0.9)
    with pytest.raises(PoolError, match="'snip' twice"):
        rank_pruners(pd.concat([cand, cand.iloc[:1]]), pool, "conv6", 0.9)
    with pytest.raises(ValidationError, match="sparsity"):
        rank_pruners(cand, pool, "conv6", 1.0)
    with pytest.raises(PoolError, match="too few networks"):
        rank_pruners(cand, pool.iloc[:3], "conv6", 0.9)


def test_rank_cli_prints_the_table(pool, tmp_path, monkeypatch, capsys):
    """CLI plumbing with the prune/encode/measure stage replaced by known candidate metrics."""
    import sparsetopo.cli.rank as rank_cli
    cand, _ = candidates(pool, {"snip": 0.6, "er": 0.1, "grasp": 0.4})
    calls = {}

    def fake_candidates(model, sparsity, dataset, seed, pruners):
        calls.update(model=model, sparsity=sparsity, dataset=dataset, seed=seed, pruners=pruners)
        return cand[cand["pruner"].isin(pruners)]

    monkeypatch.setattr(rank_cli, "candidate_metrics", fake_candidates)
    pool.to_parquet(tmp_path / "pool.parquet")
    code = main(["rank", "--model", "conv6", "--sparsity", "0.9", "--pool", str(tmp_path / "pool.parquet"),
                 "--pruners", "snip", "er", "grasp", "--out", str(tmp_path / "rank.csv")])
    assert code == 0
    out = capsys.readouterr().out
    assert out.index("er ") < out.index("grasp") < out.index("snip")
    printed = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    drops = [float(parts[2]) for parts in printed]
    assert [p[1] for p in printed] == ["er", "grasp", "snip"] and drops == sorted(drops)  # order = printed drop
    assert "trust: out-of-sample track record on this pool" in out and "top-1 hit rate" in out
    assert calls == dict(model="conv6", sparsity=0.9, dataset="digits", seed=0, pruners=["snip", "er", "grasp"])
    assert pd.read_csv(tmp_path / "rank.csv")["pruner"].tolist() == ["er", "grasp", "snip"]
    assert main(["rank", "--model", "vgg", "--sparsity", "0.9", "--pool", str(tmp_path / "pool.parquet")]) == 2
    assert "unknown model 'vgg'" in capsys.readouterr().err


def test_rank_cli_defaults_to_the_pools_pruners(pool, tmp_path, monkeypatch, capsys):
    """Without --pruners the candidates are the pool's pruners, in registry order: the pool holds a
    track record for those only (and a newer pruner may refuse the model, as uniform_plus can)."""
    import sparsetopo.cli.rank as rank_cli
    from sparsetopo.pruning import PRUNER_NAMES
    cand, _ = candidates(pool, {p: 0.1 + 0.1 * i for i, p in enumerate(sorted(set(pool["pruner"])))})
    seen = {}

    def fake_candidates(model, sparsity, dataset, seed, pruners):
        seen["pruners"] = pruners
        return cand[cand["pruner"].isin(pruners)]

    monkeypatch.setattr(rank_cli, "candidate_metrics", fake_candidates)
    pool.to_parquet(tmp_path / "pool.parquet")
    assert main(["rank", "--model", "conv6", "--sparsity", "0.9", "--pool", str(tmp_path / "pool.parquet")]) == 0
    assert seen["pruners"] == [p for p in PRUNER_NAMES if p in set(pool["pruner"])]
    assert set(seen["pruners"]) != set(PRUNER_NAMES)  # the registry has more (the modern pruners)
    capsys.readouterr()


def test_rank_cli_end_to_end_prunes_encodes_and_measures(pool, tmp_path, capsys):
    """Real stages (build → prune → encode → topometrics) on digits; two data-free pruners keep it fast."""
    pool = pool.assign(model=pool["model"].replace({"conv6": "resnet20", "resnet20": "resnet32"}))
    pool.to_csv(tmp_path / "pool.csv", index=False)
    code = main(["rank", "--model", "resnet20", "--sparsity", "0.98", "--pool", str(tmp_path / "pool.csv"),
                 "--pruners", "uniform", "er", "--out", str(tmp_path / "rank.csv")])
    assert code == 0, capsys.readouterr().err
    ranking = pd.read_csv(tmp_path / "rank.csv")
    assert sorted(ranking["pruner"]) == ["er", "uniform"] and ranking["rank"].tolist() == [1, 2]
    assert np.isfinite(ranking["predicted_drop"]).all() and ranking["predicted_drop"].is_monotonic_increasing
    assert "predicted ranking for resnet20 at sparsity 0.98" in capsys.readouterr().out


def test_rank_cli_rejects_a_bad_pool_before_pruning(pool, tmp_path, monkeypatch, capsys):
    import sparsetopo.cli.rank as rank_cli

    def never(*args, **kwargs):
        raise AssertionError("candidates measured before the pool was validated")

    monkeypatch.setattr(rank_cli, "candidate_metrics", never)
    pool.drop(columns="k_core").to_csv(tmp_path / "bad.csv", index=False)
    assert main(["rank", "--model", "conv6", "--sparsity", "0.9", "--pool", str(tmp_path / "bad.csv")]) == 2
    assert "missing required column(s): k_core" in capsys.readouterr().err


def test_displayed_drops_clip_monotonically_and_keep_the_order():
    from sparsetopo.analysis.recommend import displayed_drops
    raw = np.array([-0.3, -0.1, 0.05, 0.4, 1.7, np.nan])
    shown, clipped, note = displayed_drops(raw, np.array([-0.05, 0.2, 0.6]), list("abcdef"))
    np.testing.assert_array_equal(shown, [-0.05, -0.05, 0.05, 0.4, 0.6, np.nan])
    assert clipped.tolist() == [True, True, False, False, True, False]
    assert np.all(np.diff(shown[:-1]) >= 0)  # raw order -> shown order never reversed
    assert "a -0.300" in note and "e 1.700" in note and "[-0.050, 0.600]" in note
    assert displayed_drops(np.array([0.1, 0.2]), np.array([0.0, 0.5]), ["a", "b"])[2] is None
