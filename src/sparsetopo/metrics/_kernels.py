"""Compiled (numba) kernels over the undirected CSR of a prepared graph.

Why hand-written: no library counts the 2-hop out-neighbourhood union or the exact 4-node motif
identities of ``metrics.md`` §5 on 1e8-edge graphs without materialising A² or enumerating motifs.
Each kernel is a single pass with a marker array (O(|V|) extra memory per thread). Counts are int64:
4-cycle and wedge sums reach ~1e13.

CSR layout (built by :func:`fill_csr`): row ``v`` spans ``indptr[v]:indptr[v+1]``; its first
``out_deg[v]`` entries are the out-neighbours of ``v`` (the "out part"), the rest are its
in-neighbours (the "in part"), each part sorted by id. Node ids are layer-ordered and every edge
goes to a later node layer (checked by ``prepare``), so out-neighbours have larger ids than ``v``
and in-neighbours smaller ones. Slot ``s`` of an in part has in-position
``s - indptr[v] - out_deg[v] + in_indptr[v]``, an index into per-edge arrays of length |E|.
"""
from __future__ import annotations

import os
from pathlib import Path

# numba's OpenMP threads (its default "omp" layer) otherwise spin after every parallel kernel and
# starve the thread that runs the next step: on the loaded 2-core machine a 2-thread matvec took
# 2.5x as long as a 1-thread one; passive waiting removes that. Set before numba loads its
# OpenMP runtime (an explicit setting wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402


def _configure_cache() -> None:
    """Point numba's on-disk cache at ``~/.cache/sparsetopo/numba`` unless ``NUMBA_CACHE_DIR`` is set.

    Why: ``cache=True`` alone writes next to the source, which fails in a read-only
    site-packages; then every fresh process (each study worker, each CLI call) recompiles every
    kernel (3-4 s quiet, minutes on a loaded machine). The variable is exported, so worker
    processes share the same cache; numba re-reads ``NUMBA_*`` variables before compiling.
    An unwritable home leaves numba's own choice (next to the source, else its user cache).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    cache_dir = base / "sparsetopo" / "numba"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if not os.access(cache_dir, os.W_OK):
        return
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir)
    numba.core.config.reload_config()


_configure_cache()


@njit(cache=True)
def fill_csr(src, dst, weight, out_deg, in_deg, indptr, indices, adj_weight):
    """Fill ``indices`` / ``adj_weight`` = |``weight``| (length 2|E|) for the layout above, every
    part sorted. The absolute value is taken here, so no |w| copy of the edge list is made.

    Three O(|E|) scatter passes: edges into the out parts; out parts (rows ascending) into sorted
    in parts; in parts (rows ascending) back into sorted out parts.
    """
    n = out_deg.size
    cursor = indptr[:-1].copy()
    for e in range(src.size):
        s = src[e]
        indices[cursor[s]] = dst[e]
        adj_weight[cursor[s]] = abs(weight[e])
        cursor[s] += 1
    for v in range(n):
        cursor[v] = indptr[v] + out_deg[v]
    for x in range(n):
        for s in range(indptr[x], indptr[x] + out_deg[x]):
            z = indices[s]
            indices[cursor[z]] = x
            adj_weight[cursor[z]] = adj_weight[s]
            cursor[z] += 1
    for v in range(n):
        cursor[v] = indptr[v]
    for z in range(n):
        for q in range(indptr[z] + out_deg[z], indptr[z + 1]):
            x = indices[q]
            indices[cursor[x]] = z
            adj_weight[cursor[x]] = adj_weight[q]
            cursor[x] += 1


@njit(cache=True)
def count_duplicate_edges(indptr, indices, out_deg):
    """Number of repeated (src, dst) pairs (parallel edges), from the sorted out parts. O(|E|)."""
    dup = 0
    for a in range(out_deg.size):
        for s in range(indptr[a] + 1, indptr[a] + out_deg[a]):
            if indices[s] == indices[s - 1]:
                dup += 1
    return dup


@njit(cache=True)
def first_unlayered_edge(src, dst, node_layer):
    """Index of the first edge not going to a strictly later node layer, or -1. O(|E|)."""
    for e in range(src.size):
        if node_layer[src[e]] >= node_layer[dst[e]]:
            return e
    return -1


@njit(cache=True)
def _n2_of(a, indptr, indices, out_deg, seen):
    seen[a] = a
    size = 1
    for s in range(indptr[a], indptr[a] + out_deg[a]):
        b = indices[s]
        if seen[b] != a:
            seen[b] = a
            size += 1
        for s2 in range(indptr[b], indptr[b] + out_deg[b]):
            c = indices[s2]
            if seen[c] != a:
                seen[c] = a
                size += 1
    return size


@njit(cache=True, parallel=True)
def sum_two_hop_sizes(indptr, indices, out_deg, n_workers):
    """Σ_a |{a} ∪ N⁺(a) ∪ N⁺(N⁺(a))|. Work Σ_b in(b)·out(b); worker t takes seeds t, t+T, ..."""
    n = out_deg.size
    totals = np.zeros(n_workers, np.int64)
    for t in prange(n_workers):
        seen = np.full(n, -1, np.int32)
        total = 0
        for a in range(t, n, n_workers):
            total += _n2_of(a, indptr, indices, out_deg, seen)
        totals[t] = total
    return totals.sum()


@njit(cache=True)
def _in_position(v, u, indptr, indices, out_deg, in_indptr):
    """In-position of the edge u -> v (binary search of u in v's sorted in part)."""
    lo = indptr[v] + out_deg[v]
    hi = indptr[v + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < u:
            lo = mid + 1
        else:
            hi = mid
    return lo - indptr[v] - out_deg[v] + in_indptr[v]


@njit(cache=True)
def triangle_statistics(indptr, indices, out_deg, in_indptr, node_layer):
    """Triangles of U(G) for a layered DAG, found from their spanning (skip) edge.

    In a DAG every triangle is x -> y -> z plus x -> z, with layer(z) >= layer(x) + 2, so it is
    found exactly once from the edge x -> z as a y in out(x) ∩ in(z). Returns
    (T, per-node t_v, per-edge t_e by in-position, K4 count). 4-cliques a -> b -> c -> d are found
    from their spanning edge (a, d) as an edge inside M = out(a) ∩ in(d). Work Σ_skip in(z).
    """
    n = out_deg.size
    tri_node = np.zeros(n, np.int64)
    tri_edge = np.zeros(in_indptr[n], np.int32)
    mark = np.full(n, -1, np.int64)
    mark_mid = np.full(n, -1, np.int64)
    middles = np.empty(n, np.int64)
    total = 0
    k4 = 0
    for x in range(n):
        for s in range(indptr[x], indptr[x] + out_deg[x]):
            mark[indices[s]] = x
        for s in range(indptr[x], indptr[x] + out_deg[x]):
            z = indices[s]
            if node_layer[z] - node_layer[x] < 2:
                continue
            n_mid = 0
            pos_xz = -1
            base = indptr[z] + out_deg[z]
            for q in range(base, indptr[z + 1]):
                y = indices[q]
                if y == x:
                    pos_xz = q - base + in_indptr[z]
                elif mark[y] == x:
                    middles[n_mid] = y
                    n_mid += 1
                    tri_node[y] += 1
                    tri_edge[q - base + in_indptr[z]] += 1
                    tri_edge[_in_position(y, x, indptr, indices, out_deg, in_indptr)] += 1
            if n_mid == 0:
                continue
            total += n_mid
            tri_node[x] += n_mid
            tri_node[z] += n_mid
            tri_edge[pos_xz] += n_mid
            k4 += _edges_among(middles, n_mid, s, indptr, indices, out_deg, node_layer, mark_mid)
    return total, tri_node, tri_edge, k4


@njit(cache=True)
def _edges_among(middles, n_mid, stamp, indptr, indices, out_deg, node_layer, mark_mid):
    """Number of edges of G inside middles[:n_mid] (0 at once if they share one node layer)."""
    lo = node_layer[middles[0]]
    hi = lo
    for i in range(n_mid):
        lo = min(lo, node_layer[middles[i]])
        hi = max(hi, node_layer[middles[i]])
    if lo == hi:
        return 0
    for i in range(n_mid):
        mark_mid[middles[i]] = stamp
    count = 0
    for i in range(n_mid):
        b = middles[i]
        for s in range(indptr[b], indptr[b] + out_deg[b]):
            if mark_mid[indices[s]] == stamp:
                count += 1
    return count


@njit(cache=True, inline="always")
def _add_path(w, paths, touched, n_touched):
    if paths[w] == 0:
        touched[n_touched] = w
        n_touched += 1
    paths[w] += 1
    return n_touched


@njit(cache=True, parallel=True)
def count_four_cycles(indptr, indices, out_deg, n_workers):
    """Number of (not necessarily induced) 4-cycles of U(G).

    Each 4-cycle is counted once, from its largest-id node u: for every w < u, the paths u - v - w
    with v < u (v an in-neighbour of u) are counted, and a pair of them closes one cycle. Sorted
    parts let the scan of N(v) stop at the first out-neighbour ≥ u.
    Work Σ_v out(v)·(in(v) + #{out-neighbours below u}) ≤ Σ_v out(v)·deg(v).
    """
    n = indptr.size - 1
    totals = np.zeros(n_workers, np.int64)
    for t in prange(n_workers):
        paths = np.zeros(n, np.int32)
        touched = np.empty(n, np.int32)
        total = 0
        for u in range(t, n, n_workers):
            n_touched = 0
            for s in range(indptr[u] + out_deg[u], indptr[u + 1]):
                v = indices[s]
                for s2 in range(indptr[v] + out_deg[v], indptr[v + 1]):  # in part: all < v < u
                    n_touched = _add_path(indices[s2], paths, touched, n_touched)
                for s2 in range(indptr[v], indptr[v] + out_deg[v]):  # out part, ascending
                    if indices[s2] >= u:
                        break
                    n_touched = _add_path(indices[s2], paths, touched, n_touched)
            for i in range(n_touched):
                w = touched[i]
                total += np.int64(paths[w]) * (paths[w] - 1) // 2
                paths[w] = 0
        totals[t] = total
    return totals.sum()


@njit(cache=True)
def sum_pairs(counts):
    """Σ C(c, 2) over an integer array, in int64 without temporaries. O(len)."""
    total = 0
    for c in counts:
        total += np.int64(c) * (c - 1) // 2
    return total


@njit(cache=True)
def sum_edge_degree_products(indptr, indices, out_deg):
    """Σ over edges uv of (deg(u) − 1)·(deg(v) − 1) in U(G). O(|E|)."""
    total = 0
    for u in range(out_deg.size):
        du = indptr[u + 1] - indptr[u] - 1
        for s in range(indptr[u], indptr[u] + out_deg[u]):
            v = indices[s]
            total += du * (indptr[v + 1] - indptr[v] - 1)
    return total


@njit(cache=True, parallel=True)
def adjacency_matvec(indptr, indices, adj_weight, x):
    """y = A x for the symmetric |w| adjacency (float32 weights, float64 accumulation)."""
    n = indptr.size - 1
    y = np.empty(n, np.float64)
    for v in prange(n):
        acc = 0.0
        for s in range(indptr[v], indptr[v + 1]):
            acc += np.float64(adj_weight[s]) * x[indices[s]]
        y[v] = acc
    return y


def adjacency_matmat(indptr, indices, adj_weight, x, strength, laplacian):
    """Y = M X for an (n, r) block X, column j with M = A, or with M = L = D − A where
    ``laplacian[j]`` (D = diag(``strength``)). float32 weights, float64 accumulation; O(r·|E|).

    Why this shape: a pass is bound by reading the CSR and gathering x[u], not by flops, so four
    columns are summed in registers in one pass (a Lanczos block of the gap plus the radius's
    vector: 1.45× the time of one column, measured); a single column runs four independent partial
    sums over the row (one chained sum was bound by its latency: 1.6× slower). More columns take
    one pass per four.
    """
    n, r = x.shape
    if r == 1:
        y = _csr_matvec(indptr, indices, adj_weight, np.ascontiguousarray(x[:, 0]))
        return (strength * x[:, 0] - y if laplacian[0] else y).reshape(n, 1)
    if r <= 4:
        return _csr_matmat4(indptr, indices, adj_weight, np.ascontiguousarray(x), strength, laplacian)
    return np.hstack([adjacency_matmat(indptr, indices, adj_weight, x[:, first:first + 4], strength,
                                       laplacian[first:first + 4]) for first in range(0, r, 4)])


@njit(cache=True, parallel=True)
def _csr_matvec(indptr, indices, adj_weight, x):
    """A x for one column, with four partial sums per row (see :func:`adjacency_matmat`)."""
    n = indptr.size - 1
    y = np.empty(n, np.float64)
    for v in prange(n):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        s = indptr[v]
        end = indptr[v + 1]
        while s + 4 <= end:
            a0 += np.float64(adj_weight[s]) * x[indices[s]]
            a1 += np.float64(adj_weight[s + 1]) * x[indices[s + 1]]
            a2 += np.float64(adj_weight[s + 2]) * x[indices[s + 2]]
            a3 += np.float64(adj_weight[s + 3]) * x[indices[s + 3]]
            s += 4
        while s < end:
            a0 += np.float64(adj_weight[s]) * x[indices[s]]
            s += 1
        y[v] = (a0 + a1) + (a2 + a3)
    return y


@njit(cache=True, parallel=True)
def _csr_matmat4(indptr, indices, adj_weight, x, strength, laplacian):
    """M X for an (n, r) C-ordered X with r ≤ 4 (M = A, or L where ``laplacian[j]``), a row's sums
    in registers (the width tests are the same for every slot, so the branch predictor hides them)."""
    n, r = x.shape
    y = np.empty((n, r), np.float64)
    for v in prange(n):
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for s in range(indptr[v], indptr[v + 1]):
            w = np.float64(adj_weight[s])
            u = indices[s]
            a0 += w * x[u, 0]
            if r > 1:
                a1 += w * x[u, 1]
            if r > 2:
                a2 += w * x[u, 2]
            if r > 3:
                a3 += w * x[u, 3]
        sums = (a0, a1, a2, a3)
        for j in range(r):
            y[v, j] = strength[v] * x[v, j] - sums[j] if laplacian[j] else sums[j]
    return y


# -- structure of U(G): cores, bridges, articulation points ---------------------------------------
# Hand-written rather than NetworKit / igraph: building either library's graph from 1e8 edges
# takes minutes (NetworKit GraphFromCoo measured at ~1.5 µs/edge on the shared 2-core machine,
# igraph slower) and doubles the memory, while these textbook O(|V| + |E|) passes run on the CSR
# that every metric already shares. Tests check them against networkx and NetworKit.


@njit(cache=True)
def component_labels(indptr, indices):
    """Connected-component id of every node of the undirected CSR, numbered in order of each
    component's smallest node id (as scipy's ``connected_components``); isolated nodes are
    singletons. Breadth-first search on the shared int32 CSR: O(|V| + |E|) time, one int32 label
    array and one queue of |V| ids (scipy would first copy the CSR as float64 data and int64
    indices, 16 bytes per slot).
    """
    n = indptr.size - 1
    labels = np.full(n, -1, np.int32)
    queue = np.empty(max(n, 1), indices.dtype)
    count = 0
    for root in range(n):
        if labels[root] >= 0:
            continue
        labels[root] = count
        queue[0] = root
        head = 0
        tail = 1
        while head < tail:
            v = queue[head]
            head += 1
            for s in range(indptr[v], indptr[v + 1]):
                w = indices[s]
                if labels[w] < 0:
                    labels[w] = count
                    queue[tail] = w
                    tail += 1
        count += 1
    return labels


@njit(cache=True)
def core_numbers(indptr, indices):
    """Coreness of every node (Batagelj-Zaversnik bucket algorithm). O(|V| + |E|)."""
    n = indptr.size - 1
    deg = np.empty(n, np.int64)
    for v in range(n):
        deg[v] = indptr[v + 1] - indptr[v]
    max_deg = deg.max() if n else 0
    bin_start = np.zeros(max_deg + 2, np.int64)
    for v in range(n):
        bin_start[deg[v] + 1] += 1
    for d in range(1, max_deg + 2):
        bin_start[d] += bin_start[d - 1]
    pos = np.empty(n, np.int64)
    order = np.empty(n, np.int64)
    fill = bin_start.copy()
    for v in range(n):
        pos[v] = fill[deg[v]]
        order[pos[v]] = v
        fill[deg[v]] += 1
    for i in range(n):
        v = order[i]
        for s in range(indptr[v], indptr[v + 1]):
            u = indices[s]
            if deg[u] > deg[v]:
                du = deg[u]
                first = bin_start[du]
                w = order[first]
                if w != u:  # swap u with the first node of its bin
                    order[pos[u]] = w
                    pos[w] = pos[u]
                    order[first] = u
                    pos[u] = first
                bin_start[du] += 1
                deg[u] -= 1
    return deg


@njit(cache=True)
def bridges_and_articulation_points(indptr, indices):
    """(number of bridges, boolean articulation-point mask) of a simple undirected graph.

    Iterative depth-first search with discovery times and low points (Tarjan / Hopcroft):
    tree edge (p, v) is a bridge iff low[v] > disc[p]; a non-root p is an articulation point iff
    some child has low[v] >= disc[p], the root iff it has two or more children. O(|V| + |E|).
    """
    n = indptr.size - 1
    disc = np.full(n, -1, np.int64)
    low = np.zeros(n, np.int64)
    parent = np.full(n, -1, np.int64)
    cursor = indptr[:-1].copy()
    stack = np.empty(n, np.int64)
    is_cut = np.zeros(n, np.bool_)
    bridges = 0
    clock = 0
    for root in range(n):
        if disc[root] >= 0 or indptr[root + 1] == indptr[root]:
            continue
        disc[root] = low[root] = clock
        clock += 1
        top = 0
        stack[0] = root
        root_children = 0
        while top >= 0:
            v = stack[top]
            if cursor[v] < indptr[v + 1]:
                w = indices[cursor[v]]
                cursor[v] += 1
                if disc[w] < 0:
                    parent[w] = v
                    disc[w] = low[w] = clock
                    clock += 1
                    top += 1
                    stack[top] = w
                    if v == root:
                        root_children += 1
                elif w != parent[v]:
                    low[v] = min(low[v], disc[w])
            else:
                top -= 1
                p = parent[v]
                if p >= 0:
                    low[p] = min(low[p], low[v])
                    if low[v] > disc[p]:
                        bridges += 1
                    if p != root and low[v] >= disc[p]:
                        is_cut[p] = True
        if root_children >= 2:
            is_cut[root] = True
    return bridges, is_cut


@njit(cache=True)
def out_edge_list(indptr, indices, out_deg):
    """(src, dst) of every edge, read back from the out parts: sorted by (src, dst). O(|E|)."""
    n = out_deg.size
    total = 0
    for v in range(n):
        total += out_deg[v]
    src = np.empty(total, indices.dtype)
    dst = np.empty(total, indices.dtype)
    e = 0
    for v in range(n):
        for s in range(indptr[v], indptr[v] + out_deg[v]):
            src[e] = v
            dst[e] = indices[s]
            e += 1
    return src, dst


# -- input -> output structure (effective metrics): one sweep in id order ------------------------
# Node ids are layer-ordered and in-neighbours have smaller ids, so a sweep in ascending id order
# sees every in-neighbour's value final (descending order: every out-neighbour's). Nodes of one
# node layer are independent, so each layer's nodes run in parallel. No per-edge array is built.


@njit(cache=True, parallel=True)
def reachable(indptr, indices, out_deg, layer_offsets, forward):
    """bool (V,): ``forward``: reachable along directed edges from node layer 0; else: reaches the
    last node layer along directed edges (the seed layer included either way). A node is marked
    when any in-neighbour (forward) or out-neighbour (backward) is. O(|V| + |E|)."""
    layers = layer_offsets.size - 1
    seed = 0 if forward else layers - 1
    marked = np.zeros(out_deg.size, np.bool_)
    marked[layer_offsets[seed]:layer_offsets[seed + 1]] = True
    for step in range(1, layers):
        layer = step if forward else layers - 1 - step
        for v in prange(layer_offsets[layer], layer_offsets[layer + 1]):
            split = indptr[v] + out_deg[v]  # row v: out part, then in part
            lo, hi = (split, indptr[v + 1]) if forward else (indptr[v], split)
            for s in range(lo, hi):
                if marked[indices[s]]:
                    marked[v] = True
                    break
    return marked


@njit(cache=True, parallel=True)
def log_path_counts(indptr, indices, out_deg, layer_offsets):
    """float64 (V,): ln of the number of directed paths from node layer 0 to each node (-inf:
    none; 0 on layer 0). ln P(v) = logsumexp of ln P(u) over in-neighbours u, shifted by their
    largest term so that no exp overflows. Two passes over each in part: O(|V| + |E|)."""
    n = out_deg.size
    log_paths = np.full(n, -np.inf)
    log_paths[layer_offsets[0]:layer_offsets[1]] = 0.0
    for layer in range(1, layer_offsets.size - 1):
        for v in prange(layer_offsets[layer], layer_offsets[layer + 1]):
            peak = -np.inf
            for s in range(indptr[v] + out_deg[v], indptr[v + 1]):
                peak = max(peak, log_paths[indices[s]])
            if peak == -np.inf:
                continue
            total = 0.0
            for s in range(indptr[v] + out_deg[v], indptr[v + 1]):
                total += np.exp(log_paths[indices[s]] - peak)
            log_paths[v] = peak + np.log(total)
    return log_paths


@njit(cache=True, parallel=True)
def count_edges_within(indptr, indices, out_deg, selected):
    """Number of edges u -> v with ``selected[u]`` and ``selected[v]``. O(|V| + |E|)."""
    n = out_deg.size
    count = 0
    for u in prange(n):
        inside = 0  # per-row count, then one reduction per row (numba's prange reduction form)
        if selected[u]:
            for s in range(indptr[u], indptr[u] + out_deg[u]):
                if selected[indices[s]]:
                    inside += 1
        count += inside
    return count


def default_workers() -> int:
    """Number of numba threads the parallel kernels split their seeds over."""
    return max(1, numba.get_num_threads())
