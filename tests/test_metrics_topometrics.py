"""Topometrics cross-checked against brute force / networkx / igraph on small random graphs."""
from __future__ import annotations

import itertools
import math
import warnings

import igraph as ig
import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparsetopo.metrics as M
from sparsetopo.graph import BipartiteGraph, MultipartiteGraph
from sparsetopo.errors import ValidationError
from sparsetopo.metrics import _lanczos, expansion, strength


# -- random layered DAGs -------------------------------------------------------------------------
def layered_dag(layer_sizes, p_edge, p_skip, seed, max_gap=3):
    """Random DAG over node layers: consecutive layers with prob p_edge, skips (gap 2..max_gap) p_skip."""
    rng = np.random.default_rng(seed)
    offsets = np.concatenate([[0], np.cumsum(layer_sizes)])
    src, dst = [], []
    for i in range(len(layer_sizes)):
        for j in range(i + 1, min(len(layer_sizes), i + 1 + max_gap)):
            p = p_edge if j == i + 1 else p_skip
            for a in range(offsets[i], offsets[i + 1]):
                for b in range(offsets[j], offsets[j + 1]):
                    if rng.random() < p:
                        src.append(a)
                        dst.append(b)
    weight = rng.normal(size=len(src)).astype(np.float32)
    return MultipartiteGraph(src=np.array(src, dtype=np.int64), dst=np.array(dst, dtype=np.int64), weight=weight,
                             num_nodes=int(offsets[-1]), layer_offsets=offsets,
                             layer_names=tuple(f"l{i}" for i in range(len(layer_sizes))))


graphs = st.builds(
    layered_dag,
    layer_sizes=st.lists(st.integers(0, 5), min_size=2, max_size=5),
    p_edge=st.sampled_from([0.2, 0.5, 0.9]),
    p_skip=st.sampled_from([0.0, 0.3, 0.7]),
    seed=st.integers(0, 10_000),
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- brute-force oracles ---------------------------------------------------------------------------
def nx_graph(g: MultipartiteGraph) -> nx.DiGraph:
    d = nx.DiGraph()
    d.add_nodes_from(range(g.num_nodes))
    d.add_weighted_edges_from(zip(g.src.tolist(), g.dst.tolist(), np.abs(g.weight).astype(float).tolist()))
    return d


def brute_local(g: MultipartiteGraph) -> dict:
    d = nx_graph(g)
    first, last = set(g.layer_range(0)), set(g.layer_range(-1))
    sinks = [v for v in d if v not in last and d.out_degree(v) == 0 and d.in_degree(v) > 0]
    sources = [v for v in d if v not in first and d.in_degree(v) == 0 and d.out_degree(v) > 0]
    e = d.number_of_edges()
    return {
        "sink_nodes": len(sinks), "source_nodes": len(sources),
        "disconnected_nodes": sum(1 for v in d if d.degree(v) == 0),
        "removable_out": sum(d.out_degree(v) for v in sources) / e if e else math.nan,
        "removable_in": sum(d.in_degree(v) for v in sinks) / e if e else math.nan,
    }


def brute_neighbourhood(g: MultipartiteGraph) -> tuple[float, float]:
    d = nx_graph(g)
    one = [len({a} | set(d.successors(a))) for a in d]
    two = [len({a} | set(d.successors(a)) | {c for b in d.successors(a) for c in d.successors(b)}) for a in d]
    return float(np.mean(one)), float(np.mean(two))


def induced_shape(h: nx.Graph) -> str | None:
    """Name of a 4-node graph if connected."""
    if not nx.is_connected(h):
        return None
    degs = sorted(d for _, d in h.degree())
    return {3: {(1, 1, 1, 3): "star", (1, 1, 2, 2): "path"}, 4: {(2, 2, 2, 2): "cycle", (1, 2, 2, 3): "paw"},
            5: {(2, 2, 3, 3): "diamond"}, 6: {(3, 3, 3, 3): "clique"}}[h.number_of_edges()][tuple(degs)]


def brute_motifs(g: MultipartiteGraph) -> dict:
    u = nx_graph(g).to_undirected()
    counts = dict.fromkeys(("star", "path", "cycle", "paw", "diamond", "clique"), 0)
    for quad in itertools.combinations(range(g.num_nodes), 4):
        shape = induced_shape(u.subgraph(quad))
        if shape:
            counts[shape] += 1
    return counts


def dense_adjacency(g: MultipartiteGraph, compat: str = "default") -> np.ndarray:
    """|w| adjacency of U(G); compat "official" rounds the weights to float16 first (metrics.md §0)."""
    a = np.zeros((g.num_nodes, g.num_nodes))
    weight = g.weight.astype(np.float16) if compat == "official" else g.weight
    a[g.src, g.dst] = np.abs(weight)
    return a + a.T


# -- properties ----------------------------------------------------------------------------------
@SETTINGS
@given(graphs)
def test_local_metrics_match_brute_force(g):
    expected = brute_local(g)
    for name, value in expected.items():
        got = getattr(M, name)(g)
        assert got == pytest.approx(value, nan_ok=True), name


@SETTINGS
@given(graphs)
def test_neighbourhoods_match_brute_force(g):
    n1, n2 = brute_neighbourhood(g) if g.num_nodes else (math.nan, math.nan)
    assert M.neighbors_1hop(g) == pytest.approx(n1, nan_ok=True)
    assert M.neighbors_2hop(g) == pytest.approx(n2, nan_ok=True)
    if g.num_nodes:
        assert M.neighbors_1hop(g) == pytest.approx(1 + g.num_edges / g.num_nodes)


@settings(max_examples=40, deadline=None)
@given(graphs)
def test_motif_counts_match_enumeration_and_igraph(g):
    expected = brute_motifs(g)
    assert M.induced_four_node_counts(g) == expected
    assert M.motifs_4(g) == sum(expected.values())
    if g.num_nodes >= 4:
        u = ig.Graph(n=g.num_nodes, edges=list(zip(g.src.tolist(), g.dst.tolist())), directed=False)
        igraph_total = sum(c for c in u.motifs_randesu(size=4) if not math.isnan(c))
        assert M.motifs_4(g) == igraph_total == u.motifs_randesu_no(size=4)


def test_motifs_with_many_skip_triangles_and_cliques():
    # dense 5-layer DAG with every skip: many triangles, diamonds and 4-cliques
    g = layered_dag([3, 3, 2, 3, 2], p_edge=1.0, p_skip=1.0, seed=0, max_gap=4)
    expected = brute_motifs(g)
    assert expected["clique"] > 0 and expected["diamond"] > 0
    assert M.induced_four_node_counts(g) == expected


def test_motifs_bipartite_identity():
    # no triangles: S3 + P − 3·C4
    g = layered_dag([4, 5, 4, 3], p_edge=0.6, p_skip=0.0, seed=3)
    deg = np.bincount(np.concatenate([g.src, g.dst]), minlength=g.num_nodes)
    s3 = sum(math.comb(int(d), 3) for d in deg)
    p = sum((deg[a] - 1) * (deg[b] - 1) for a, b in zip(g.src, g.dst))
    c4 = sum(1 for c in nx.simple_cycles(nx_graph(g).to_undirected(), length_bound=4) if len(c) == 4)
    assert M.motifs_4(g) == s3 + p - 3 * c4


@SETTINGS
@given(graphs)
def test_structural_metrics_match_networkx(g):
    u = nx_graph(g).to_undirected()
    n = g.num_nodes
    if n == 0:
        return
    core = nx.core_number(u)
    assert M.k_core(g) == pytest.approx(np.mean([core[v] for v in range(n)]))
    comps = nx.number_connected_components(u)
    assert M.n_components(g) == comps
    from scipy.sparse.csgraph import connected_components

    from sparsetopo.metrics import components
    p = M.prepare(g)
    reference = connected_components(expansion._dense_adjacency(p, np.ones_like(p.adj_weight)), directed=False)[1]
    np.testing.assert_array_equal(components.component_labels(g), reference)  # same numbering as scipy
    assert M.mean_component_size(g) == pytest.approx(n / comps)
    assert M.cut_edges(g) == sum(1 for _ in nx.bridges(u))
    assert M.cut_nodes(g) == sum(1 for _ in nx.articulation_points(u))
    strength = np.mean([u.degree(v, weight="weight") for v in range(n)])
    assert M.node_strength(g) == pytest.approx(strength, rel=1e-6)
    assert M.node_strength(g, strength="in") == pytest.approx(strength / 2, rel=1e-6)


@SETTINGS
@given(graphs)
def test_spectral_metrics_match_dense_eigenvalues(g):
    if g.num_nodes < 2:
        return
    a = dense_adjacency(g)
    eig = np.linalg.eigvalsh(a)
    lap = np.linalg.eigvalsh(np.diag(a.sum(1)) - a)
    assert M.spectral_gap(g) == pytest.approx(eig[-1] - eig[-2], abs=1e-6)
    assert M.spectral_radius(g) == pytest.approx(lap[-1], abs=1e-6)
    a16 = dense_adjacency(g, "official")
    assert M.spectral_radius(g, compat="official") == pytest.approx(
        np.linalg.eigvalsh(np.diag(a16.sum(1)) - a16)[-1], abs=1e-6)
    if g.num_nodes >= 4:
        mags = np.sort(np.abs(np.linalg.eigvalsh(a16)))[::-1]
        assert M.spectral_gap(g, compat="official") == pytest.approx(mags[0] - mags[2], abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_spectral_path_matches_dense(monkeypatch, seed):
    g = layered_dag([30, 40, 40, 30, 10], p_edge=0.15, p_skip=0.05, seed=seed)
    a = dense_adjacency(g)
    eig = np.linalg.eigvalsh(a)
    lap = np.linalg.eigvalsh(np.diag(a.sum(1)) - a)
    monkeypatch.setattr(expansion, "DENSE_MAX_NODES", 0)
    fresh = layered_dag([30, 40, 40, 30, 10], p_edge=0.15, p_skip=0.05, seed=seed)
    assert M.spectral_gap(fresh) == pytest.approx(eig[-1] - eig[-2], rel=1e-6, abs=1e-8)
    assert M.spectral_radius(fresh) == pytest.approx(lap[-1], rel=1e-8)
    mags = np.sort(np.abs(np.linalg.eigvalsh(dense_adjacency(g, "official"))))[::-1]
    assert M.spectral_gap(fresh, compat="official") == pytest.approx(mags[0] - mags[2], rel=1e-6)


@pytest.mark.parametrize("svd_max_flops", [expansion.SVD_MAX_FLOPS, 0])
def test_sparse_spectral_gap_sees_tied_components(monkeypatch, svd_max_flops):
    monkeypatch.setattr(expansion, "SVD_MAX_FLOPS", svd_max_flops)  # 0: Lanczos instead of the SVD
    # two identical dense bipartite blocks + noise nodes: λ1 has multiplicity 2, so γ = 0
    block = [(a, 4 + b) for a in range(4) for b in range(3)]
    edges = block + [(a + 7, b + 7) for a, b in block]
    src = np.array([e[0] for e in edges])
    dst = np.array([e[1] for e in edges])
    # relabel into 2 node layers: left = {0..3, 7..10}, right = {4..6, 11..13}
    left = [0, 1, 2, 3, 7, 8, 9, 10]
    right = [4, 5, 6, 11, 12, 13]
    relabel = {v: i for i, v in enumerate(left + right)}
    g = MultipartiteGraph(src=[relabel[v] for v in src], dst=[relabel[v] for v in dst], weight=np.ones(len(edges)),
                          num_nodes=14, layer_offsets=[0, 8, 14], layer_names=("in", "out"))
    monkeypatch.setattr(expansion, "DENSE_MAX_NODES", 0)
    assert M.spectral_gap(g) == pytest.approx(0.0, abs=1e-8)
    assert M.spectral_radius(g) == pytest.approx(7.0, rel=1e-8)  # K_{4,3}: λ_max(L) = 4 + 3


# -- topometrics rows ------------------------------------------------------------------------------
def test_topometrics_row_has_every_column_and_matches_functions():
    g = layered_dag([4, 5, 5, 3], p_edge=0.5, p_skip=0.3, seed=11)
    row = M.topometrics(g)
    assert list(row) == ["nodes", "edges", *M.TOPOMETRIC_COLUMNS]
    assert len(M.TOPOMETRIC_COLUMNS) == 16
    assert row["nodes"] == g.num_nodes and row["edges"] == g.num_edges
    for name in M.TOPOMETRIC_COLUMNS:
        assert row[name] == pytest.approx(getattr(M, name)(g), nan_ok=True)


def test_rolled_layer_row_uses_size3_motifs():
    dense = BipartiteGraph("conv", 27, 16, np.repeat(np.arange(27), 16), np.tile(np.arange(16), 27), np.ones(432))
    row = M.topometrics(dense)
    assert set(row) == {"nodes", "edges", *M.ROLLED_COLUMNS} and len(M.ROLLED_COLUMNS) == 10
    assert row["motifs_4"] == 8856  # 27·C(16,2) + 16·C(27,2), metrics.md footnote 6
    assert row["spectral_gap"] == pytest.approx(math.sqrt(432))
    assert row["spectral_radius"] == pytest.approx(43)
    assert row["neighbors_1hop"] == pytest.approx(1 + 432 / 43)
    k64 = BipartiteGraph("fc", 64, 10, np.repeat(np.arange(64), 10), np.tile(np.arange(10), 64), np.ones(640))
    assert M.topometrics(k64)["motifs_4"] == 23040


def test_motif_size3_matches_enumeration():
    g = layered_dag([3, 4, 3, 2], p_edge=0.6, p_skip=0.5, seed=5)
    u = nx_graph(g).to_undirected()
    expected = sum(1 for t in itertools.combinations(range(g.num_nodes), 3) if nx.is_connected(u.subgraph(t)))
    assert M.motifs_3(g) == expected


def test_sampled_motif_estimate_reports_sample_and_is_exact_with_all_roots():
    g = layered_dag([4, 5, 5, 3], p_edge=0.5, p_skip=0.3, seed=2)
    row = M.topometrics(g, motif_sample=g.num_nodes)
    assert row["motifs_4_sample"] == g.num_nodes
    assert row["motifs_4"] == M.motifs_4(g)
    est = M.topometrics(g, motif_sample=5)
    assert est["motifs_4_sample"] == 5 and est["motifs_4"] >= 0
    assert M.topometrics(g, motif_sample=5)["motifs_4"] == est["motifs_4"]  # seeded
    with pytest.raises(ValidationError, match="motif sample"):
        M.motifs_4_estimate(g, 0)


# -- edge cases ----------------------------------------------------------------------------------
def test_empty_graphs():
    no_edges = MultipartiteGraph(src=[], dst=[], weight=[], num_nodes=5, layer_offsets=[0, 2, 5],
                                 layer_names=("a", "b"))
    row = M.topometrics(no_edges)
    assert row["disconnected_nodes"] == 5 and row["n_components"] == 5 and row["motifs_4"] == 0
    assert math.isnan(row["removable_out"]) and math.isnan(row["removable_in"])
    assert row["spectral_gap"] == 0 and row["spectral_radius"] == 0 and row["k_core"] == 0
    nothing = MultipartiteGraph(src=[], dst=[], weight=[], num_nodes=0, layer_offsets=[0, 0], layer_names=("a",))
    with pytest.warns(M.MetricWarning, match="spectral_gap"):
        row = M.topometrics(nothing)
    assert math.isnan(row["neighbors_1hop"]) and math.isnan(row["spectral_gap"]) and row["n_components"] == 0


def test_fully_pruned_layer_in_the_middle():
    g = layered_dag([3, 4, 0, 4, 2], p_edge=0.8, p_skip=0.5, seed=1)
    assert g.layer_range(2) == range(7, 7)
    for name, value in brute_local(g).items():
        assert getattr(M, name)(g) == pytest.approx(value, nan_ok=True), name
    assert M.neighbors_2hop(g) == pytest.approx(brute_neighbourhood(g)[1])
    assert M.induced_four_node_counts(g) == brute_motifs(g)


def test_nan_weights_give_nan_weighted_metrics_only():
    g = layered_dag([3, 4, 3], p_edge=0.8, p_skip=0.0, seed=4)
    bad = MultipartiteGraph(src=g.src, dst=g.dst, weight=np.where(np.arange(g.num_edges) == 0, np.nan, g.weight),
                            num_nodes=g.num_nodes, layer_offsets=g.layer_offsets, layer_names=g.layer_names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        row = M.topometrics(bad)
    names = " ".join(str(w.message) for w in caught)
    assert "node_strength" in names and "spectral_gap" in names and "spectral_radius" in names
    assert math.isnan(row["node_strength"]) and math.isnan(row["spectral_gap"])
    assert row["motifs_4"] == M.motifs_4(g) and row["k_core"] == M.k_core(g)


def test_parallel_edges_are_merged_with_weights_summed():
    g = MultipartiteGraph(src=[0, 0, 1], dst=[2, 2, 2], weight=[1.0, -2.0, 0.5], num_nodes=3,
                          layer_offsets=[0, 2, 3], layer_names=("a", "b"))
    with pytest.warns(UserWarning, match="merged 1 parallel"):
        assert M.neighbors_1hop(g) == pytest.approx(1 + 2 / 3)
    assert M.prepare(g).num_edges == 2
    assert M.node_strength(g) == pytest.approx(2 * 3.5 / 3)


def test_bad_inputs_raise_named_errors():
    backwards = MultipartiteGraph(src=[2], dst=[0], weight=[1.0], num_nodes=3, layer_offsets=[0, 2, 3],
                                  layer_names=("a", "b"))
    with pytest.raises(ValidationError, match="node layer 1 to node layer 0"):
        M.motifs_4(backwards)
    with pytest.raises(ValidationError, match="MultipartiteGraph or BipartiteGraph"):
        M.k_core(np.zeros((3, 3)))
    with pytest.raises(ValidationError, match="compat"):
        M.spectral_gap(backwards, compat="paper")
    with pytest.raises(ValidationError, match="strength"):
        M.node_strength(backwards, strength="out")
    with pytest.raises(ValidationError, match=r"layer 'x': src ids must lie in \[0, 2\)"):
        BipartiteGraph("x", 2, 2, [0, 5], [0, 1], [1.0, 1.0])  # refused when built (issue 15)


def test_prepared_graph_is_built_once_and_shared():
    g = layered_dag([3, 4, 3], p_edge=0.8, p_skip=0.3, seed=7)
    assert M.prepare(g) is M.prepare(g)
    assert M.prepare(M.prepare(g)) is M.prepare(g)
    M.topometrics(g)
    assert "triangles" in M.prepare(g).cache and "coreness" in M.prepare(g).cache


def test_metrics_run_on_the_prepared_graph_alone_after_the_edge_list_is_freed():
    import gc
    import weakref

    g = layered_dag([5, 8, 8, 6, 3], p_edge=0.5, p_skip=0.2, seed=11)
    expected = M.graph_row(g, ("topometrics", "effective"))
    reference = MultipartiteGraph(g.src.copy(), g.dst.copy(), g.weight.copy(), g.num_nodes, g.layer_offsets,
                                  g.layer_names)
    prepared = M.prepare(g)
    alive = weakref.ref(g)
    del g
    gc.collect()
    assert alive() is None  # nothing in the prepared graph holds the graph or its edge arrays
    assert M.graph_row(prepared, ("topometrics", "effective")) == expected
    src, dst = prepared.edge_list()  # the edge list read back from the CSR, sorted by (src, dst)
    order = np.lexsort((reference.dst, reference.src))
    np.testing.assert_array_equal(src, reference.src[order])
    np.testing.assert_array_equal(dst, reference.dst[order])
    import random

    random.seed(0)  # motifs_4_estimate's default seed, through igraph's RNG
    on_edges = ig.Graph(n=reference.num_nodes, edges=np.column_stack([reference.src, reference.dst]))
    assert M.motifs_4_estimate(prepared, 7) == on_edges.as_undirected().motifs_randesu_estimate(size=4, sample=7)


def test_abs_sum_repeats_numpys_float64_sum_bit_for_bit(monkeypatch):
    from sparsetopo.metrics import _prepared

    rng = np.random.default_rng(3)
    weight = (rng.standard_normal(1_000_003) * rng.exponential(size=1_000_003)).astype(np.float32)
    expected = np.sum(np.abs(weight), dtype=np.float64)
    assert _prepared.abs_sum(weight) == expected
    monkeypatch.setattr(_prepared, "ABS_SUM_CHUNK", 8192 * 5)  # many chunks, each on a buffer boundary
    assert _prepared.abs_sum(weight) == expected
    assert _prepared.abs_sum(weight[:0]) == 0.0


def test_structural_kernels_on_a_larger_sparse_graph_match_networkx_and_networkit():
    import networkit as nk

    g = layered_dag([60, 80, 80, 60, 40, 20], p_edge=0.012, p_skip=0.004, seed=9)
    u = nx_graph(g).to_undirected()
    assert 0 < M.cut_edges(g) == sum(1 for _ in nx.bridges(u))
    assert 0 < M.cut_nodes(g) == sum(1 for _ in nx.articulation_points(u))
    assert M.n_components(g) == nx.number_connected_components(u)
    core = nx.core_number(u)
    assert np.array_equal(strength.coreness(g), [core[v] for v in range(g.num_nodes)])
    nkg = nk.GraphFromCoo((g.src.astype(np.uint64), g.dst.astype(np.uint64)), n=g.num_nodes, directed=False)
    nk_core = nk.centrality.CoreDecomposition(nkg).run().scores()
    assert np.array_equal(strength.coreness(g), np.asarray(nk_core, dtype=np.int64))


def test_long_path_has_no_recursion_limit():
    n = 50_000  # a path through 50k node layers: DFS depth 50k
    g = MultipartiteGraph(src=np.arange(n - 1), dst=np.arange(1, n), weight=np.ones(n - 1), num_nodes=n,
                          layer_offsets=np.arange(n + 1), layer_names=tuple(map(str, range(n))))
    assert M.cut_edges(g) == n - 1 and M.cut_nodes(g) == n - 2 and M.k_core(g) == 1.0
    assert M.neighbors_2hop(g) == pytest.approx((3 * (n - 2) + 2 + 1) / n)
    assert M.motifs_4(g) == n - 3


@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 8), k=st.integers(1, 8), density=st.floats(0.1, 1.0), seed=st.integers(0, 9999))
def test_rolled_layer_row_matches_its_two_layer_mge(m, k, density, seed):
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(rng.random((m, k)) < density)
    layer = BipartiteGraph("l", m, k, rows, cols, rng.normal(size=rows.size))
    row, mge = M.topometrics(layer), layer.as_multipartite()
    for name in M.ROLLED_COLUMNS:
        if name != "motifs_4":
            assert row[name] == pytest.approx(getattr(M, name)(mge), nan_ok=True), name
    deg = np.concatenate([np.bincount(rows, minlength=m), np.bincount(cols, minlength=k)])
    assert row["motifs_4"] == sum(math.comb(int(d), 2) for d in deg)  # size-3 count, no triangles


@SETTINGS
@given(graphs)
def test_spectral_radius_within_strength_bound(g):
    if g.num_edges == 0:
        return
    strength_of = np.bincount(np.concatenate([g.src, g.dst]), weights=np.abs(np.concatenate([g.weight, g.weight])),
                              minlength=g.num_nodes)
    bound = np.max(strength_of[g.src] + strength_of[g.dst])
    assert 0 <= M.spectral_radius(g) <= bound * (1 + 1e-9)


def test_official_compat_of_local_metrics():
    # layers: input {0,1,2}, hidden {3,4,5}, hidden {6}, output {7,8}; 8 is isolated
    # 3: hidden source (out 1); 4, 5, 6: hidden sinks (in 2, 1, 2)
    g = MultipartiteGraph(src=[3, 0, 1, 1, 2, 2], dst=[6, 4, 4, 5, 6, 7], weight=np.ones(6), num_nodes=9,
                          layer_offsets=[0, 3, 6, 7, 9], layer_names=("in", "h1", "h2", "out"))
    assert M.sink_nodes(g) == 3 and M.source_nodes(g) == 1
    assert M.removable_out(g) == pytest.approx(1 / 6) and M.removable_in(g) == pytest.approx(5 / 6)
    # official: counts over all layers minus the layer size; r-out / r-in swapped; ids 3 and 6 skipped
    assert M.sink_nodes(g, compat="official") == 4 - 2
    assert M.source_nodes(g, compat="official") == 4 - 3
    assert M.removable_in(g, compat="official") == 0.0  # the only hidden source is id n_in = 3
    assert M.removable_out(g, compat="official") == pytest.approx(3 / 6)  # id |V|-1-n_out = 6 skipped


def test_topometrics_official_compat_row():
    g = layered_dag([6, 8, 8, 4], p_edge=0.3, p_skip=0.2, seed=4)
    row = M.topometrics(g, compat="official")
    assert row["motifs_4_sample"] == 1
    for name in ("sink_nodes", "source_nodes", "removable_out", "removable_in", "spectral_gap"):
        assert row[name] == pytest.approx(getattr(M, name)(g, compat="official"), nan_ok=True)
    assert row["k_core"] == M.k_core(g)


def test_sparse_spectral_path_with_zero_weights_and_solver_failure(monkeypatch):
    g = layered_dag([30, 40, 30], p_edge=0.1, p_skip=0.0, seed=3)
    zero = MultipartiteGraph(src=g.src, dst=g.dst, weight=np.zeros(g.num_edges), num_nodes=g.num_nodes,
                             layer_offsets=g.layer_offsets, layer_names=g.layer_names)
    monkeypatch.setattr(expansion, "DENSE_MAX_NODES", 0)
    # A = L = 0: was an ArpackError traceback ("starting vector is zero")
    assert M.spectral_gap(zero) == 0.0 and M.spectral_radius(zero) == 0.0

    monkeypatch.setattr(_lanczos, "MAX_MATVECS", 2)
    with pytest.warns(M.MetricWarning, match="spectral_gap is NaN: Lanczos did not converge"):
        assert math.isnan(M.spectral_gap(g))
    with pytest.warns(M.MetricWarning, match="spectral_radius is NaN"):
        assert math.isnan(M.spectral_radius(g))


def test_official_compat_rounds_weights_to_float16():
    # metrics.md §0: the official encoder casts W to float16 (|W| < 6e-8 -> 0, the edge stays)
    g = layered_dag([40, 50, 50, 30], p_edge=0.2, p_skip=0.05, seed=4)
    weight = g.weight.copy()
    weight[:5] = 1e-9  # rounds to 0 in float16, but stays an edge
    g = MultipartiteGraph(src=g.src, dst=g.dst, weight=weight, num_nodes=g.num_nodes,
                          layer_offsets=g.layer_offsets, layer_names=g.layer_names)
    rounded = np.abs(weight.astype(np.float16).astype(np.float64))
    assert M.node_strength(g, compat="official") == pytest.approx(2 * rounded.sum() / g.num_nodes, rel=1e-12)
    assert M.node_strength(g) == pytest.approx(2 * np.abs(weight.astype(np.float64)).sum() / g.num_nodes, rel=1e-6)
    assert M.node_strength(g, compat="official") != M.node_strength(g)
    a16 = dense_adjacency(g, "official")
    assert M.spectral_radius(g, compat="official") == pytest.approx(
        np.linalg.eigvalsh(np.diag(a16.sum(1)) - a16)[-1], rel=1e-8)
    row = M.topometrics(g, compat="official", motif_sample=1)
    for name in ("node_strength", "spectral_radius", "spectral_gap"):
        assert row[name] == getattr(M, name)(g, compat="official")
    assert M.n_components(g) == M.topometrics(g)["n_components"]  # structure unchanged
