r"""The H0 barcode of a graph of minima: births, deaths and who merges into whom.

Vertices are minima with their loss values; an edge between two minima carries a saddle value,
the highest loss along the best path found between them (``inf``: no path computed). Fill the
landscape from below. Each minimum is born at its value; when a rising level first joins its
component to a component holding a lower minimum, the younger one dies (elder rule)::

    a (0.0) ------ 2.0 ------ b (1.0) ------ 1.5 ------ c (0.5)
        \_____________________ 3.0 ______________________/

    level 1.5: b joins c's component and c is lower:  bar of b = [1.0, 1.5), merges into c
    level 2.0: {b, c} joins a through edge a-b:       bar of c = [0.5, 2.0), merges into a
    a is the global minimum and never dies:           bar of a = [0.0, inf), essential

A route through other minima counts: c dies at 2.0 via b, not at its direct edge (3.0). This
graph-wide bottleneck is exactly H0 persistence of the graph filtration, computed here with
gudhi; a small union-find only replays gudhi's merges to name the minimum each bar merges into.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields

import gudhi
import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

logger = logging.getLogger(__name__)

__all__ = ["Barcode", "barcode_from_graph", "graph_matrix", "rounding_tol"]

_INT_FIELDS = ("minimum", "merges_into", "saddle_edge")


@dataclass(frozen=True, eq=False)
class Barcode:
    """H0 bars of a graph of K minima, one bar per minimum.

    Bars are sorted by birth ascending, ties by vertex index, so bar 0 is the essential bar of
    the global minimum. Per-vertex arrays (``values``, ``saddles``, ``segment_of()``) are
    indexed by vertex, not by bar. Arrays are read-only; ``==`` compares all arrays exactly.

    Ties: the multiset of (birth, death) is unique. Which of two minima with exactly equal
    values keeps the longer bar is gudhi's choice (with gudhi 3.x: at an edge joining two
    components whose elders tie, the component of the edge's larger-index endpoint dies), and
    ``merges_into`` follows it, as it follows gudhi's order among edges with equal saddles.

    Attributes
    ----------
    births : (K,) float64
        Bar i is born at ``values[minimum[i]]``.
    deaths : (K,) float64
        Saddle value that killed bar i; ``inf`` for an essential bar (one per connected
        component of the graph).
    minimum : (K,) int64
        The vertex bar i belongs to.
    merges_into : (K,) int64
        Elder vertex of the component that bar i's component merges into; -1 if essential.
    saddle_edge : (K, 2) int64
        Edge (i, j), i < j, whose saddle killed bar i; (-1, -1) if essential.
    values : (K,) float64
        Value of every minimum (vertex filtration).
    saddles : (K, K) float64
        Symmetric saddle matrix used (after clamping); ``inf`` where no path was computed;
        diagonal = ``values``.
    """

    births: np.ndarray
    deaths: np.ndarray
    minimum: np.ndarray
    merges_into: np.ndarray
    saddle_edge: np.ndarray
    values: np.ndarray
    saddles: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.values)
        shapes = {"saddle_edge": (k, 2), "saddles": (k, k)}
        for f in fields(self):
            dtype = np.int64 if f.name in _INT_FIELDS else np.float64
            arr = np.array(getattr(self, f.name), dtype=dtype)  # a private copy
            if arr.shape != shapes.get(f.name, (k,)):
                raise ValueError(
                    f"{f.name} must have shape {shapes.get(f.name, (k,))}, got {arr.shape}"
                )
            arr.setflags(write=False)
            object.__setattr__(self, f.name, arr)
        if not np.array_equal(np.sort(self.minimum), np.arange(k)):
            raise ValueError(f"minimum must be a permutation of range({k}), got {self.minimum}")
        if not np.array_equal(self.births, self.values[self.minimum]):
            raise ValueError("births must equal values[minimum]")

    def __len__(self) -> int:
        return len(self.births)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Barcode):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # array fields: equal by value, not hashable

    @property
    def lengths(self) -> np.ndarray:
        """(K,) float64: death - birth per bar, ``inf`` for essential bars."""
        return self.deaths - self.births

    @property
    def n_essential(self) -> int:
        """Number of bars that never die (connected components of the graph)."""
        return int(np.isinf(self.deaths).sum())

    def to_score(self, kind: str = "sum") -> float:
        """Summarize the finite minima segments.

        Parameters
        ----------
        kind : {"sum", "max"}
            "sum": total length of the finite bars (sum of death - birth).
            "max": the longest finite bar (0.0 when there is none).
        """
        finite = self.lengths[np.isfinite(self.deaths)]
        if kind == "sum":
            return float(finite.sum())
        if kind == "max":
            return float(finite.max()) if finite.size else 0.0
        raise ValueError(f"kind must be 'sum' or 'max', got {kind!r}")

    def segment_of(self) -> np.ndarray:
        """(K,) float64 indexed by vertex: the length of that minimum's bar (``inf``: essential)."""
        out = np.empty(len(self), dtype=np.float64)
        out[self.minimum] = self.lengths
        return out

    def passes(self, tol: float) -> np.ndarray:
        """(E, 2) int64, i < j, sorted: the edges that cross a pass ending a bar longer than
        ``tol``. Per such bar, the component of its minimum through saddles more than ``tol``
        below its death, and every edge from that component to the rest whose saddle is
        within ``tol`` of the death: each a pair whose route crosses the pass (or one as
        high), of which the barcode names one (``saddle_edge``)."""
        s = self.saddles.copy()
        np.fill_diagonal(s, np.inf)
        out: set[tuple[int, int]] = set()
        for b in np.flatnonzero(np.isfinite(self.deaths) & (self.lengths > tol)):
            d = self.deaths[b]
            _, label = connected_components(csr_matrix(s < d - tol), directed=False)
            inside = label == label[self.minimum[b]]
            cross = inside[:, None] & ~inside[None, :] & (s <= d + tol)
            out.update((min(i, j), max(i, j)) for i, j in np.argwhere(cross).tolist())
        return np.array(sorted(out), dtype=np.int64).reshape(-1, 2)

    def to_dict(self) -> dict:
        """JSON-safe dict of plain lists; every ``inf`` is encoded as ``None`` (JSON null)."""
        return {f.name: _encode(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> Barcode:
        """Inverse of `to_dict`; missing or unknown keys raise ValueError naming the key."""
        names = [f.name for f in fields(cls)]
        for key in d:
            if key not in names:
                raise ValueError(f"unknown key {key!r} in Barcode dict; expected {names}")
        kwargs = {}
        for name in names:
            if name not in d:
                raise ValueError(f"missing key {name!r} in Barcode dict")
            kwargs[name] = _decode(name, d[name], integer=name in _INT_FIELDS)
        return cls(**kwargs)


def _encode(a: np.ndarray) -> list:
    """Array -> nested lists of Python ints / floats, ``inf`` -> ``None``."""
    if a.ndim > 1:
        return [_encode(row) for row in a]
    if a.dtype == np.int64:
        return a.tolist()
    return [None if np.isinf(x) else float(x) for x in a]


def _decode(name: str, data: list, integer: bool) -> np.ndarray:
    """Nested lists of ints, or of numbers and ``None`` for ``inf``, -> array; else ValueError."""
    obj = np.array(data, dtype=object)
    if integer:
        if not all(type(x) is int for x in obj.flat):
            raise ValueError(f"{name} must hold integers, got {data!r}")
        return obj.astype(np.int64)
    is_none = np.array([x is None for x in obj.flat], dtype=bool).reshape(obj.shape)
    if not all(x is None or (type(x) in (int, float) and x == x) for x in obj.flat):
        raise ValueError(f"{name} must hold numbers or None (for inf), got {data!r}")
    obj[is_none] = np.inf
    return obj.astype(np.float64)


def _check_graph(values, saddles, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Validate the boundary; return values (K,) and a clamped symmetric saddles (K, K)."""
    try:
        ok = bool(np.isfinite(float(tol)) and tol >= 0)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    try:
        v = np.asarray(values, dtype=np.float64)
        s = np.array(saddles, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"values and saddles must be numeric arrays: {err}") from err
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape {v.shape}")
    if not np.isfinite(v).all():
        i = int(np.flatnonzero(~np.isfinite(v))[0])
        raise ValueError(f"values must be finite, got values[{i}] = {v[i]}")
    k = v.size
    if s.shape != (k, k):
        raise ValueError(f"saddles must have shape (K, K) = {(k, k)}, got {s.shape}")
    np.fill_diagonal(s, v)  # the input diagonal is ignored
    bad = np.isnan(s) | (s == -np.inf)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"saddles must be finite or +inf, got saddles[{i}, {j}] = {s[i, j]}")
    finite = np.isfinite(s) & np.isfinite(s.T)
    gap = np.abs(np.subtract(s, s.T, out=np.zeros_like(s), where=finite))
    asym = (np.isinf(s) != np.isinf(s.T)) | (gap > tol)
    if asym.any():
        i, j = np.argwhere(asym)[0]
        raise ValueError(
            f"saddles must be symmetric within tol={tol}, got saddles[{i}, {j}] = {s[i, j]} "
            f"and saddles[{j}, {i}] = {s[j, i]}"
        )
    s = np.minimum(s, s.T)  # each entry is a path maximum: the lower one is the better bound
    floor = np.maximum(v[:, None], v[None, :])  # a path includes both endpoints
    below = s < floor - tol
    if below.any():
        i, j = np.argwhere(below)[0]
        raise ValueError(
            f"saddles[{i}, {j}] = {s[i, j]} is below its endpoints' values "
            f"max(values[{i}] = {v[i]}, values[{j}] = {v[j]}) by more than tol={tol}"
        )
    return v, np.maximum(s, floor)


def _gudhi_h0(v: np.ndarray, s: np.ndarray) -> tuple[list[tuple[int, tuple[int, int]]], dict]:
    """H0 pairs from gudhi, gudhi's conventions handled here and only here.

    Returns ``(pairs, rank)``: ``pairs`` lists (birth vertex, death edge (i, j) with i < j)
    for every bar, with death edge (-1, -1) for essential bars; ``rank`` maps every edge to
    its position in gudhi's filtration order (which breaks ties between equal values).
    """
    st = gudhi.SimplexTree()
    for i, value in enumerate(v):  # 1. vertex filtration = values of the minima
        st.insert([i], filtration=float(value))
    for i, j in zip(*np.nonzero(np.triu(np.isfinite(s), k=1)), strict=True):
        st.insert([int(i), int(j)], filtration=float(s[i, j]))  # 2. edges = finite saddles
    # 3. min_persistence=-1 keeps zero-length bars; persistence_dim_max=True is needed for
    #    gudhi to report H0 at all when the complex has no edges (it is then the top dimension).
    st.compute_persistence(min_persistence=-1, persistence_dim_max=True)
    rank = {tuple(sorted(sx)): r for r, (sx, _) in enumerate(st.get_filtration()) if len(sx) == 2}
    pairs = []
    for birth, death in st.persistence_pairs():
        if len(birth) != 1:  # H1 (cycles of the graph): not part of the barcode
            continue
        # gudhi: an essential bar has an empty death simplex; edges come as [larger, smaller]
        edge = tuple(sorted(death)) if death else (-1, -1)
        pairs.append((int(birth[0]), edge))
    if sorted(p[0] for p in pairs) != list(range(len(v))):
        raise RuntimeError(f"gudhi returned {len(pairs)} H0 bars for {len(v)} vertices")
    return pairs, rank


def _merge_targets(pairs: list, rank: dict, k: int) -> dict[int, int]:
    """Replay gudhi's merges in filtration order; map each dying vertex to its merge target.

    A union-find keeps each component's elder: the vertex gudhi keeps alive, which is the
    lowest-valued one (ties: gudhi decides). At each death edge the dying vertex's component
    joins the other endpoint's component, whose elder is the target. Checks that gudhi's dying
    vertex is the elder of its own component, i.e. that the pairing is an H0 merge tree.
    """
    parent = list(range(k))
    elder = list(range(k))  # valid at roots

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    targets = {}
    for vertex, (a, b) in sorted((p for p in pairs if p[1][0] >= 0), key=lambda p: rank[p[1]]):
        ra, rb, rv = find(a), find(b), find(vertex)
        if ra == rb or rv not in (ra, rb) or elder[rv] != vertex:
            raise RuntimeError(f"gudhi pairing of vertex {vertex} with edge {(a, b)} is not H0")
        other = rb if rv == ra else ra
        targets[vertex] = elder[other]
        parent[rv] = other  # the merged component keeps the other side's elder
    return targets


def graph_matrix(values, pairs, saddles) -> np.ndarray:
    """(K, K) symmetric saddle matrix from edge lists: ``values`` (K,) on the diagonal,
    ``saddles`` (E,) of ``pairs`` (E, 2) off it, ``inf`` for every pair not listed."""
    v = np.asarray(values, dtype=np.float64)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    s = np.full((v.size, v.size), np.inf)
    np.fill_diagonal(s, v)
    s[pairs[:, 0], pairs[:, 1]] = s[pairs[:, 1], pairs[:, 0]] = saddles
    return s


def rounding_tol(values: np.ndarray, dtype: torch.dtype = torch.float32) -> float:
    """How far rounding can move a value of the objective: 64 ulps of ``dtype`` at the scale
    of ``values``. Minima values and saddles are evaluations made in different batches, so a
    saddle at an endpoint can read a few ulps below that endpoint's value; within this it is
    rounding, not an error."""
    return 64 * torch.finfo(dtype).eps * max(1.0, float(np.abs(values).max()))


def barcode_from_graph(values, saddles, *, tol: float = 1e-9) -> Barcode:
    """H0 barcode of a graph of minima (sublevel filtration, elder rule), computed by gudhi.

    Parameters
    ----------
    values : array_like, shape (K,)
        Loss value of each minimum; finite.
    saddles : array_like, shape (K, K)
        Symmetric (within ``tol``) saddle value of each pair: the maximum loss along a path
        between them, or ``+inf`` where no path was computed. The diagonal is ignored. Entries
        below ``max(values[i], values[j]) - tol`` are impossible and rejected; entries within
        ``tol`` below that maximum are clamped up to it.
    tol : float
        Absolute tolerance for symmetry and for the endpoint bound.

    Returns
    -------
    Barcode
        K bars (one per minimum), sorted by birth then vertex index; one essential bar per
        connected component of the graph of finite saddles.

    Raises
    ------
    ValueError
        Naming the bad argument and entry.
    """
    v, s = _check_graph(values, saddles, tol)
    k = v.size
    pairs, rank = _gudhi_h0(v, s)
    targets = _merge_targets(pairs, rank, k)
    death_edge = dict(pairs)
    order = np.lexsort((np.arange(k), v))  # bars: birth ascending, ties by vertex index
    edges = np.array([death_edge[int(i)] for i in order], dtype=np.int64).reshape(k, 2)
    finite = edges[:, 0] >= 0
    deaths = np.full(k, np.inf)
    deaths[finite] = s[edges[finite, 0], edges[finite, 1]]
    barcode = Barcode(
        births=v[order],
        deaths=deaths,
        minimum=order,
        merges_into=np.array([targets.get(int(i), -1) for i in order], dtype=np.int64),
        saddle_edge=edges,
        values=v,
        saddles=s,
    )
    logger.debug(
        "barcode of %d minima: %d essential, total %.3g", k, barcode.n_essential, barcode.to_score()
    )
    return barcode
