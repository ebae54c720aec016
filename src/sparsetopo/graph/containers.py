"""Graph containers shared by the encoders and the metrics (the graph stage: numpy only, no torch).

A graph is a pair of integer id arrays (``src``, ``dst``), a float32 ``weight`` array (the signed
masked weights, paper Eq. 4) and the node-layer offsets. Edges point from input to output, so every
graph here is a DAG whose node layers are in topological order. Arrays, not Python lists of edges,
cross module boundaries; exports to scipy / igraph / NetworKit / networkx are built from them.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._io import atomic_path
from ..errors import CheckpointError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import igraph
    import networkit
    import networkx
    import scipy.sparse

#: networkx holds a Python object per edge (~1 KB); refuse above this many edges.
NETWORKX_MAX_EDGES = 2_000_000


def id_dtype(num_nodes: int) -> np.dtype:
    """int32 node ids while they fit, int64 beyond."""
    return np.dtype(np.int32) if num_nodes < 2**31 - 1 else np.dtype(np.int64)


@dataclass(frozen=True, eq=False)
class MultipartiteGraph:
    """A directed multipartite graph: the unrolled MGE of a network (or one rolled layer).

    Attributes
    ----------
    src, dst : int32 (int64 past 2**31 nodes) arrays of shape (E,)
        Edge endpoints, ``src -> dst`` (input towards output).
    weight : float32 array of shape (E,)
        Signed edge weights (the masked parameter values). Metrics use ``abs(weight)``.
    num_nodes : int
        |V|, isolated nodes included.
    layer_offsets : int64 array of shape (L + 1,)
        Start of each node layer; ``layer_offsets[-1] == num_nodes``. Node layer 0 is the input
        ``V_0``, the last node layer is the output ``V_N``.
    layer_names : tuple of L str
        Name of each node layer (``"input"``, then the weighted layer whose output it is).
    meta : dict
        What the encoder knew (``kind``, ``fx_nodes``, ``merged``, ...), kept as JSON-native values
        (tuples become lists) so that it survives :func:`save_graph` / :func:`load_graph` unchanged.
    """

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray
    num_nodes: int
    layer_offsets: np.ndarray
    layer_names: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = int(self.num_nodes)
        dt = id_dtype(n)
        object.__setattr__(self, "num_nodes", n)
        object.__setattr__(self, "src", np.ascontiguousarray(self.src, dtype=dt))
        object.__setattr__(self, "dst", np.ascontiguousarray(self.dst, dtype=dt))
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.float32))
        object.__setattr__(self, "layer_offsets", np.ascontiguousarray(self.layer_offsets, dtype=np.int64))
        object.__setattr__(self, "layer_names", tuple(self.layer_names))
        object.__setattr__(self, "meta", json_meta(self.meta))
        if not (self.src.shape == self.dst.shape == self.weight.shape) or self.src.ndim != 1:
            raise ValidationError(
                f"src, dst and weight must be 1-D arrays of one length, got shapes "
                f"{self.src.shape}, {self.dst.shape}, {self.weight.shape}")
        offs = self.layer_offsets
        if offs.ndim != 1 or len(offs) < 2 or offs[0] != 0 or offs[-1] != n or np.any(np.diff(offs) < 0):
            raise ValidationError(
                f"layer_offsets must start at 0, be non-decreasing and end at num_nodes={n}, got {offs.tolist()}")
        if len(self.layer_names) != len(offs) - 1:
            raise ValidationError(
                f"{len(self.layer_names)} layer_names for {len(offs) - 1} node layers")
        if self.src.size and (min(self.src.min(), self.dst.min()) < 0 or max(self.src.max(), self.dst.max()) >= n):
            raise ValidationError(f"edge endpoints must lie in [0, {n})")

    # -- sizes -------------------------------------------------------------------------------
    @property
    def num_edges(self) -> int:
        """|E|, the number of directed edges."""
        return int(self.src.size)

    @property
    def num_layers(self) -> int:
        """Number of node layers (weighted layers + 1 for the input)."""
        return len(self.layer_offsets) - 1

    def layer_of(self, nodes: np.ndarray) -> np.ndarray:
        """Node-layer index of each node id in ``nodes``."""
        return np.searchsorted(self.layer_offsets, nodes, side="right") - 1

    def layer_range(self, i: int) -> range:
        """Node ids of node layer ``i`` (negative ``i`` counts from the end)."""
        i = range(self.num_layers)[i]
        return range(int(self.layer_offsets[i]), int(self.layer_offsets[i + 1]))

    def __repr__(self) -> str:
        return (f"MultipartiteGraph(num_nodes={self.num_nodes}, num_edges={self.num_edges}, "
                f"num_layers={self.num_layers})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MultipartiteGraph):
            return NotImplemented
        return (self.num_nodes == other.num_nodes and self.layer_names == other.layer_names
                and np.array_equal(self.layer_offsets, other.layer_offsets)
                and np.array_equal(self.src, other.src) and np.array_equal(self.dst, other.dst)
                and np.array_equal(self.weight, other.weight))

    # -- exports -----------------------------------------------------------------------------
    def to_scipy(self, weighted: bool = True, absolute: bool = False) -> "scipy.sparse.csr_array":
        """Directed |V|×|V| CSR adjacency, entry (src, dst) = weight (or 1 if not ``weighted``)."""
        import scipy.sparse as sp

        data = self.weight if weighted else np.ones(self.num_edges, dtype=np.float32)
        if absolute:
            data = np.abs(data)
        return sp.csr_array((data, (self.src, self.dst)), shape=(self.num_nodes, self.num_nodes))

    def to_igraph(self, weighted: bool = True) -> "igraph.Graph":
        """A directed ``igraph.Graph`` with edge attribute ``weight`` (signed) if ``weighted``."""
        import igraph as ig

        g = ig.Graph(n=self.num_nodes, edges=np.column_stack([self.src, self.dst]), directed=True)
        if weighted:
            g.es["weight"] = self.weight.astype(np.float64)
        return g

    def to_networkit(self, weighted: bool = True, directed: bool = True) -> "networkit.Graph":
        """A ``networkit.Graph`` built from the arrays (weights signed if ``weighted``)."""
        import networkit as nk

        n = self.num_nodes
        if weighted:
            return nk.GraphFromCoo((self.weight.astype(np.float64), (self.src.astype(np.uint64), self.dst.astype(np.uint64))),
                                   n=n, weighted=True, directed=directed)
        return nk.GraphFromCoo((self.src.astype(np.uint64), self.dst.astype(np.uint64)), n=n, weighted=False,
                               directed=directed)

    def to_networkx(self, max_edges: int = NETWORKX_MAX_EDGES) -> "networkx.DiGraph":
        """A ``networkx.DiGraph`` with node attribute ``layer`` and edge attribute ``weight``.

        Refused above ``max_edges`` edges: networkx keeps a Python dict per edge (about 1 KB), so a
        ResNet-20 MGE (~2.7e7 edges) would need tens of GB. Use :meth:`to_igraph` or
        :meth:`to_networkit` for large graphs.
        """
        import networkx as nx

        if self.num_edges > max_edges:
            raise ValidationError(
                f"refusing to build a networkx graph with {self.num_edges} edges (limit {max_edges}): "
                "networkx stores ~1 KB per edge; use to_igraph() or to_networkit(), or pass max_edges")
        g = nx.DiGraph()
        layers = self.layer_of(np.arange(self.num_nodes))
        g.add_nodes_from((int(v), {"layer": int(l)}) for v, l in zip(range(self.num_nodes), layers))
        g.add_weighted_edges_from(zip(self.src.tolist(), self.dst.tolist(), self.weight.tolist()))
        return g

    # -- files -------------------------------------------------------------------------------
    def save_npz(self, path: str | Path) -> None:
        """Write the graph as an uncompressed ``.npz`` edge list, atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, kind=np.array("mge"), src=self.src, dst=self.dst, weight=self.weight,
                         num_nodes=np.int64(self.num_nodes), layer_offsets=self.layer_offsets,
                         layer_names=np.array(self.layer_names, dtype=str), meta=_meta_array(self.meta))

    @classmethod
    def load_npz(cls, path: str | Path) -> "MultipartiteGraph":
        """Read a graph written by :meth:`save_npz` (no pickles are loaded).

        The file is validated before and after reading (see :func:`read_graph_arrays`): a truncated,
        crafted or foreign file is a :class:`~sparsetopo.errors.CheckpointError` naming the file and
        the field, never a huge allocation or a silently wrong graph.
        """
        z = read_graph_arrays(path, MGE_FIELDS, optional=("kind", "meta"))
        with _file_errors(path):
            num_nodes = _node_count(z["num_nodes"], "num_nodes")
            _check_finite(z["weight"])
            return cls(src=z["src"], dst=z["dst"], weight=z["weight"], num_nodes=num_nodes,
                       layer_offsets=z["layer_offsets"], layer_names=tuple(str(s) for s in z["layer_names"]),
                       meta=_meta_of(z))


@dataclass(frozen=True, eq=False)
class BipartiteGraph:
    """One layer as a bipartite graph (rolled or rolled-channel BGE).

    ``src`` indexes the left nodes (0 .. num_left-1) and ``dst`` the right nodes (0 .. num_right-1);
    ``weight`` is float32 (rolled: the masked weight; rolled-channel: the L2 norm of the masked
    kernel slice).
    """

    name: str
    num_left: int
    num_right: int
    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "src", np.ascontiguousarray(self.src, dtype=np.int32))
        object.__setattr__(self, "dst", np.ascontiguousarray(self.dst, dtype=np.int32))
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.float32))
        if not (self.src.shape == self.dst.shape == self.weight.shape) or self.src.ndim != 1:
            raise ValidationError(f"layer {self.name!r}: src, dst and weight must be 1-D arrays of one length, "
                                  f"got shapes {self.src.shape}, {self.dst.shape}, {self.weight.shape}")
        for side, ids, size in (("src", self.src, self.num_left), ("dst", self.dst, self.num_right)):
            if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= size):
                raise ValidationError(f"layer {self.name!r}: {side} ids must lie in [0, {size})")

    @property
    def num_nodes(self) -> int:
        return int(self.num_left + self.num_right)

    @property
    def num_edges(self) -> int:
        return int(self.src.size)

    def biadjacency(self, weighted: bool = True, absolute: bool = True) -> "scipy.sparse.csr_array":
        """num_left × num_right CSR biadjacency (|w| by default, 1 if not ``weighted``)."""
        import scipy.sparse as sp

        data = self.weight if weighted else np.ones(self.num_edges, dtype=np.float32)
        if weighted and absolute:
            data = np.abs(data)
        return sp.csr_array((data, (self.src, self.dst)), shape=(self.num_left, self.num_right))

    def as_multipartite(self) -> MultipartiteGraph:
        """The same graph as a 2-layer :class:`MultipartiteGraph` (right ids shifted by num_left)."""
        return MultipartiteGraph(src=self.src.astype(np.int64), dst=self.dst.astype(np.int64) + self.num_left,
                                 weight=self.weight, num_nodes=self.num_nodes,
                                 layer_offsets=np.array([0, self.num_left, self.num_nodes]),
                                 layer_names=(f"{self.name}:in", f"{self.name}:out"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BipartiteGraph):
            return NotImplemented
        return (self.name == other.name and self.num_left == other.num_left and self.num_right == other.num_right
                and np.array_equal(self.src, other.src) and np.array_equal(self.dst, other.dst)
                and np.array_equal(self.weight, other.weight))

    def __repr__(self) -> str:
        return (f"BipartiteGraph({self.name!r}, num_left={self.num_left}, num_right={self.num_right}, "
                f"num_edges={self.num_edges})")


class LayerGraphs(list):
    """The per-layer graphs of a rolled encoding: a ``list[BipartiteGraph]`` that knows its ``kind``
    (``"rolled"`` or ``"rolled_channel"``, the encoding that made it) and carries ``meta`` (JSON-native).

    A plain list in every other respect (indexing, iteration, ``len``), so callers that loop over the
    layers need not know the kind; those that must (density, file format) read :attr:`kind`.
    Equal when the kind and every layer are equal.
    """

    def __init__(self, layers=(), kind: str = "rolled", meta: dict | None = None) -> None:
        super().__init__(layers)
        self.kind = str(kind)
        self.meta = json_meta(meta or {})

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LayerGraphs) and other.kind != self.kind:
            return False
        return list.__eq__(self, other)

    __hash__ = None  # mutable, like list

    def __repr__(self) -> str:
        return f"LayerGraphs(kind={self.kind!r}, layers={len(self)})"


def json_meta(meta: dict) -> dict:
    """``meta`` as JSON-native values (tuples -> lists); ValidationError if it is not JSON-serialisable."""
    try:
        return json.loads(json.dumps(dict(meta)))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"graph meta must be JSON-serialisable: {exc}") from None


def _meta_array(meta: dict) -> np.ndarray:
    return np.array(json.dumps(meta))


def _meta_of(z) -> dict:
    """The ``meta`` entry of a graph file's arrays (absent in files from before it was stored: empty)."""
    meta = json.loads(str(z["meta"])) if "meta" in z else {}
    if not isinstance(meta, dict):
        raise ValidationError(f"meta must be a JSON object, got {type(meta).__name__}")
    return meta


# -- rolled encodings on disk: all layers of one network in one .npz ---------------------------
def save_bipartite_npz(graphs: "list[BipartiteGraph]", path: str | Path, kind: str | None = None) -> None:
    """Write the per-layer graphs of a rolled encoding to one uncompressed ``.npz``, atomically.

    ``kind``: the encoding; None takes ``graphs.kind`` of a :class:`LayerGraphs` (``"rolled"`` for
    a plain list). Format: ``kind`` (``"rolled"`` / ``"rolled_channel"``), ``meta`` (JSON), ``names`` (L str), ``num_left``,
    ``num_right`` (L int64), ``edge_offsets`` (L + 1 int64: layer l owns edges
    ``edge_offsets[l]:edge_offsets[l+1]``) and the concatenated ``src``, ``dst`` (int32, local to
    the layer) and ``weight`` (float32).
    """
    if kind is None:
        kind = getattr(graphs, "kind", "rolled")
    meta = getattr(graphs, "meta", {})
    offsets = np.concatenate([[0], np.cumsum([g.num_edges for g in graphs], dtype=np.int64)]).astype(np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, kind=np.array(kind), meta=_meta_array(meta), names=np.array([g.name for g in graphs], dtype=str),
                     num_left=np.array([g.num_left for g in graphs], dtype=np.int64),
                     num_right=np.array([g.num_right for g in graphs], dtype=np.int64),
                     edge_offsets=offsets, src=_concat([g.src for g in graphs], np.int32),
                     dst=_concat([g.dst for g in graphs], np.int32),
                     weight=_concat([g.weight for g in graphs], np.float32))


def _concat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.empty(0, dtype)


def load_bipartite_npz(path: str | Path) -> LayerGraphs:
    """Read the graphs written by :func:`save_bipartite_npz`, with their kind and meta (no pickles are
    loaded), validated like :meth:`MultipartiteGraph.load_npz`: one length per layer field,
    ``edge_offsets`` starting at 0, non-decreasing and ending at the edge count, ids inside their layer."""
    z = read_graph_arrays(path, ROLLED_FIELDS, optional=("meta",))
    with _file_errors(path):
        layers = len(z["names"])
        for key in ("num_left", "num_right"):
            if len(z[key]) != layers:
                raise ValidationError(f"{key} has {len(z[key])} entries for {layers} layers")
            for value in z[key]:
                _node_count(value, key)
        off = z["edge_offsets"]
        if len(off) != layers + 1 or off[0] != 0 or off[-1] != len(z["src"]) or np.any(np.diff(off) < 0):
            raise ValidationError(f"edge_offsets must start at 0, never decrease and end at the {len(z['src'])} "
                                  f"edges, with one entry per layer + 1; got {off.tolist()[:8]}")
        _check_finite(z["weight"])
        graphs = [BipartiteGraph(name=str(name), num_left=int(nl), num_right=int(nr),
                                 src=z["src"][off[i]:off[i + 1]], dst=z["dst"][off[i]:off[i + 1]],
                                 weight=z["weight"][off[i]:off[i + 1]])
                  for i, (name, nl, nr) in enumerate(zip(z["names"], z["num_left"], z["num_right"]))]
        return LayerGraphs(graphs, kind=str(z["kind"]), meta=_meta_of(z))


def save_graph(graph: "MultipartiteGraph | list[BipartiteGraph]", path: str | Path) -> None:
    """Write any encoding result (an MGE, or the layers of a rolled encoding) so that
    :func:`load_graph` gives it back equal, kind and meta included."""
    if isinstance(graph, MultipartiteGraph):
        graph.save_npz(path)
    elif isinstance(graph, list):
        save_bipartite_npz(graph, path)
    else:
        raise ValidationError(f"save_graph needs a MultipartiteGraph or a list of BipartiteGraph, "
                              f"got {type(graph).__name__}")


def load_graph(path: str | Path) -> "MultipartiteGraph | LayerGraphs":
    """Read any graph file sparsetopo writes: an MGE or the layers of a rolled encoding (with its kind)."""
    kind = read_graph_arrays(path, {"kind": ("U", 0)}, optional=("kind",)).get("kind")
    return MultipartiteGraph.load_npz(path) if kind is None or str(kind) == "mge" else load_bipartite_npz(path)


# -- validation of graph files on load ---------------------------------------------------------
#: field -> (allowed numpy dtype kinds, number of dimensions); ``meta`` is a JSON string
MGE_FIELDS = {"kind": ("U", 0), "meta": ("U", 0), "src": ("iu", 1), "dst": ("iu", 1), "weight": ("f", 1),
              "num_nodes": ("iu", 0), "layer_offsets": ("iu", 1), "layer_names": ("U", 1)}
ROLLED_FIELDS = {"kind": ("U", 0), "meta": ("U", 0), "names": ("U", 1), "num_left": ("iu", 1),
                 "num_right": ("iu", 1), "edge_offsets": ("iu", 1), "src": ("iu", 1), "dst": ("iu", 1),
                 "weight": ("f", 1)}
#: most nodes a loaded graph may declare: 2**32 neurons is far above the MGE of any network the
#: encoders handle (an ImageNet ResNet-50 has ~1.1e7); a crafted count fails here, not in the allocator
MAX_LOADED_NODES = 2 ** 32


def read_graph_arrays(path: str | Path, fields: dict[str, tuple[str, int]], optional: tuple[str, ...] = ()
                      ) -> dict[str, np.ndarray]:
    """The ``fields`` of the ``.npz`` at ``path``, each checked *before* it is read.

    Every member's ``.npy`` header is read first: its dtype kind and number of dimensions must be
    the expected ones, and the bytes its shape claims must be what the archive holds (a truncated
    or crafted file fails here, before any allocation). Then the arrays are read (CRC-checked by
    ``zipfile``; never pickles). Any failure is a :class:`~sparsetopo.errors.CheckpointError`
    naming the file and the field. Cost: O(size of the fields).
    """
    import zipfile

    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CheckpointError(f"graph file {str(path)!r} {what}")
    with _file_errors(path):
        with zipfile.ZipFile(path) as archive:
            members = {info.filename[:-4]: info for info in archive.infolist() if info.filename.endswith(".npy")}
            for name, (kinds, ndim) in fields.items():
                if name not in members:
                    if name in optional:
                        continue
                    raise ValidationError(f"field {name!r} is missing")
                with archive.open(members[name]) as member:
                    _check_header(member, members[name].file_size, name, kinds, ndim)
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in fields if name in members}


def _check_header(member, stored_bytes: int, name: str, kinds: str, ndim: int) -> None:
    import math

    fmt = np.lib.format
    version = fmt.read_magic(member)
    readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
    if version not in readers:
        raise ValidationError(f"field {name!r}: unsupported .npy version {version}")
    shape, _, dtype = readers[version](member)
    if dtype.hasobject or dtype.kind not in kinds or len(shape) != ndim:
        raise ValidationError(f"field {name!r} must be a {ndim}-D array of kind {kinds!r}, "
                              f"got {dtype} with shape {shape}")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > stored_bytes:
        raise ValidationError(f"field {name!r} claims {claimed} bytes of data but the file holds {stored_bytes} "
                              f"(truncated or crafted)")


def _node_count(value, what: str) -> int:
    count = int(value)
    if not 0 < count <= MAX_LOADED_NODES:
        raise ValidationError(f"{what} = {count} is outside [1, {MAX_LOADED_NODES}]")
    return count


def _check_finite(weight: np.ndarray) -> None:
    if not np.isfinite(weight).all():
        raise ValidationError(f"weight holds {int((~np.isfinite(weight)).sum())} NaN or infinite value(s)")


@contextmanager
def _file_errors(path):
    """Turn whatever a bad graph file makes numpy / zipfile / the containers raise into one
    :class:`CheckpointError` naming the file."""
    import zipfile
    import zlib

    try:
        yield
    except (ValidationError, zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError,
            OverflowError) as exc:
        raise CheckpointError(f"graph file {str(path)!r} is truncated, corrupted or not a sparsetopo graph "
                              f"file: {exc}") from None
