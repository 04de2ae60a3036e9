"""Paths that stopped at the step cap across basins of minima that no start reached: split
there and joined from their legs.

On networks, a chain between two trained minima often crosses the basins of minima that no
start reached (on a tanh MLP: copies of the known minima under the sign and permutation
symmetries of its hidden units, at the same loss). Its loss profile then has two or more
peaks with a dip between them, and it does not converge: its climbing point switches
between peaks, and the nodes in the dips slide into those basins. ``split_at_dips`` descends
from every dip of such a path to the minimum below it, relaxes the legs between consecutive
minima along the path (``core.engine.paths.connect``; a leg between neighbouring basins
usually crosses one saddle, which a chain can converge on) and, where the joined legs'
maximum is no higher than the path's, the joined path replaces it
(``core.engine.joins.joined``): its saddle is the highest leg's, and it is converged when that
leg is. Legs that stop at the step cap are split again, up to
``PathOptions.splits`` rounds (AutoNEB's band splitting, Kolsbjerg et al. 2016). The minima
below the dips are points of the path, not minima of the run: they get no bars. A split
path's ``steps`` count its legs' steps too (a leg shared by several paths counts once), so
that they are the path steps spent on the pair.

        i ---- s_1 ---- m_1 ---- s_2 ---- m_2 ---- s_3 ---- j      saddle = max(s_1, s_2, s_3)

The minima met this way and the legs between them form a database (``Database``, after the
minima/transition-state databases of Wales's energy-landscape codes). With
``PathOptions.neighbours`` = n, ``neighbour_routes`` also joins every minimum of it to its n
nearest others by a leg, and a pair whose lowest route through the database (the minimum
spanning tree of the legs' saddles gives it) is lower than its own path takes that route,
joined from its legs. Each chain settles on one route; the database combines the routes that
all chains found and their neighbours', so the barcode depends less on where each chain
happened to settle.

Chains that start from the same straight segments with other step sizes settle in other valleys.
With ``PathOptions.restarts`` = R, every pair is searched R more times, each with another trust
radius (``RESTART_TRUST``), split at its own dips; ``Database.absorb`` pools those searches' minima
(one where two lie within the merge distance), legs and paths, the neighbour legs join the pooled
minima, and a pair takes the lowest route through all of them (possibly another search's own path
between its two minima). Every route is a relaxed path, so the pooled saddles are upper bounds no
higher than any one search's. With ``PathOptions.probe``, the pairs across the passes that then end
bars (``Barcode.passes``) are searched again at the ``PROBE_TRUST`` radii, pooled the same way, and
the routes are taken again. ``Paths.narrow`` holds the saddles that the search one step narrower
gives (without the probe, without the last restart, or without the farther half of the neighbour
legs: its routes and its own saddles), and the run says whether that step still moved the barcode.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from torch import Tensor

from core.engine.evaluate import Objective
from core.engine.joins import joined
from core.engine.minima import MinimaOptions, find_minima
from core.engine.options import PathOptions
from core.engine.paths import SPLIT, Paths, connect, leg
from core.engine.saddles import values_over

log = logging.getLogger(__name__)


@dataclass
class Database:
    """Minima and the legs relaxed between them. ``pool`` (n, P): the run's minima first, then
    those found below dips; ``values`` (n,); ``edges``: (a, b), a < b, -> (the ``Paths``
    holding a final path between pool minima a and b, its row)."""

    pool: Tensor
    values: np.ndarray
    edges: dict[tuple[int, int], tuple[Paths, int]] = field(default_factory=dict)
    # the edges before the last search was absorbed; None: one search
    before: dict[tuple[int, int], tuple[Paths, int]] | None = None
    # the pool's size after each search (empty: one search, the whole pool)
    searches: list[int] = field(default_factory=list)
    runs: int = -1  # the run's minima: the pool's first ``runs`` (-1: the whole first pool)

    def __post_init__(self) -> None:
        if self.runs < 0:
            self.runs = self.pool.shape[0]

    def grow(self, pool: Tensor, values: np.ndarray, legs: Paths) -> None:
        """Take a longer ``pool`` (this one extended) and the legs between its minima, keeping
        the lower of two legs between the same minima."""
        if pool.shape[0] > self.pool.shape[0]:
            self.pool, self.values = pool, values
        _add_edges(self.edges, legs)

    def absorb(self, other: Database, paths: Paths, merge_distance: float) -> None:
        """Pool another search between the same run minima: ``other``'s minima, where none of
        this pool lies within ``merge_distance``, its legs, and ``paths``, its final paths
        between the run's minima; of two edges between the same minima the lower is kept."""
        self.before = dict(self.edges)
        self.searches = self.searches or [self.pool.shape[0]]
        index = list(range(self.runs))  # other's pool -> this pool
        pool, values = self.pool, list(self.values)
        for a in range(self.runs, other.pool.shape[0]):
            near = (pool - other.pool[a]).norm(dim=1)
            if near.min() <= merge_distance:
                index.append(int(near.argmin()))
            else:
                index.append(pool.shape[0])
                pool = torch.cat([pool, other.pool[a : a + 1]])
                values.append(other.values[a])
        self.pool, self.values = pool, np.asarray(values, dtype=np.float64)
        self.searches.append(pool.shape[0])
        to = np.asarray(index, dtype=np.int64)
        moved: dict[int, Paths] = {}  # other's legs, their ends renumbered (once per batch)
        for legs, r in other.edges.values():
            if id(legs) not in moved:
                moved[id(legs)] = dataclasses.replace(legs, pairs=to[legs.pairs])
            a, b = moved[id(legs)].pairs[r]
            if a != b:
                _put(self.edges, (int(a), int(b)), (moved[id(legs)], r))
        _add_edges(self.edges, paths)


def _put(edges, key: tuple[int, int], edge: tuple[Paths, int]) -> None:
    """``edge`` between minima ``key`` into ``edges`` where it is the first or lower there."""
    key = (min(key), max(key))
    if key not in edges or _saddle(edge) < _saddle(edges[key]):
        edges[key] = edge


def _add_edges(edges: dict[tuple[int, int], tuple[Paths, int]], legs: Paths) -> None:
    """Every path of ``legs`` into ``edges``, where it is the first or lower between its ends."""
    for r, (a, b) in enumerate(legs.pairs):
        _put(edges, (int(a), int(b)), (legs, r))


def _saddle(edge: tuple[Paths, int]) -> float:
    paths, r = edge
    return float(paths.saddles[r])


def _take(paths: Paths, e: int, path: dict, values: np.ndarray, tol: float) -> None:
    """Path ``e`` of ``paths`` replaced by the joined ``path`` (a dict of ``joins.joined``)."""
    i, j = (int(t) for t in paths.pairs[e])
    if path["status"] == "no barrier" and path["saddle"] > max(values[i], values[j]) + tol:
        path["status"] = "step cap"  # its top is a waypoint above both ends: no saddle
    paths.points[e], paths.saddles[e] = path["points"], path["saddle"]
    paths.densities[e], paths.status[e] = path["density"], path["status"]
    paths.climb[e], paths.force[e] = path["climb"], path["force"]
    paths.climb_grad[e], paths.scale[e] = path["climb_grad"], path["scale"]


def _join(objective, hops: list[tuple[int, Paths, int]]) -> dict:
    """The path along ``hops`` (start minimum, Paths, row), legs joined in order."""
    parts = [leg(p, r, a) for a, p, r in hops]
    path = parts[0]
    for part in parts[1:]:
        path = joined(objective, path, part)
    return path


def dips(profile: np.ndarray, tol: float) -> np.ndarray:
    """Interior nodes of a loss profile (N,) that are no higher than either neighbour and lie
    more than ``tol`` below the highest node on each side: (D,) node indices."""
    v = np.asarray(profile, dtype=float)
    if v.size < 3:
        return np.zeros(0, dtype=np.int64)
    left = np.maximum.accumulate(v)[:-2]  # highest node at or before k - 1
    right = np.maximum.accumulate(v[::-1])[::-1][2:]  # highest node at or after k + 1
    mid = v[1:-1]
    low = (mid <= v[:-2]) & (mid <= v[2:]) & (left - mid > tol) & (right - mid > tol)
    return np.flatnonzero(low) + 1


def split_at_dips(
    objective: Objective,
    minima: Tensor,
    values: np.ndarray,
    paths: Paths,
    opts: PathOptions,
    minima_options: MinimaOptions,
    *,
    step_objective=None,
    rounds: int | None = None,
    relax: Callable[[Tensor, np.ndarray], Paths] | None = None,
    database: Database | None = None,
) -> int:
    """Replace, in place, every final path stopped at the step cap whose profile dips between
    two peaks by the path through the minima below its dips, where that is no higher (module
    docstring). ``values``: (K,) the objective at ``minima``. ``relax(points, pairs)``
    computes the legs' final paths (``core.engine.pairs.connect_groups`` on the run's workers);
    by default ``connect`` here. ``database``: where the minima met and the legs relaxed are
    kept (every round's). Returns how many paths were replaced."""
    rounds = opts.splits if rounds is None else rounds
    if relax is None:

        def relax(pool: Tensor, pairs: np.ndarray) -> Paths:
            return connect(objective, pool, pairs, opts, step_objective=step_objective)

    if rounds <= 0 or len(paths) == 0:
        return 0
    via = paths.via if paths.via is not None else np.full(len(paths), -1)
    rows = np.flatnonzero(
        (paths.status == "step cap") & (via == -1) & (paths.densities >= opts.final_density)
    )
    if rows.size == 0:
        return 0
    profiles = values_over(objective, [paths.points[e] for e in rows])
    picked, starts, owner = [], [], []  # paths with dips; every dip node, and its path
    for e, v in zip(rows, profiles, strict=True):
        d = dips(v, opts.saddle_tol)
        if d.size:
            picked.append(int(e))
            starts += [paths.points[e][int(n)] for n in d]
            owner += [len(picked) - 1] * d.size
    if not picked:
        return 0
    found = find_minima(objective, torch.stack(starts), minima_options)
    k = minima.shape[0]
    owner = np.asarray(owner)
    legs, through = set(), {}  # legs (a < b); path -> its waypoints i, m1, ..., j
    for r, e in enumerate(picked):
        i, j = (int(t) for t in paths.pairs[e])
        way = [i]
        for s_ in np.flatnonzero(owner == r):  # the dips in order along the path
            u = int(found.start_of[s_])
            if u < 0 or found.status[u] != "minimum" or found.values[u] >= paths.saddles[e]:
                continue  # diverged, a stopping point, or no lower than the path's top
            near = (minima - found.thetas[u]).norm(dim=1)  # (K,) a known minimum?
            m = int(near.argmin()) if near.min() <= minima_options.merge_distance else k + u
            if m in (i, j):
                continue  # the dip drains into one of the pair's own minima
            if m in way:  # back in a basin passed before: cut the loop
                way = way[: way.index(m)]
            way.append(m)
        way.append(j)
        if len(way) > 2:
            through[e] = way
            legs |= {(min(a, b), max(a, b)) for a, b in zip(way[:-1], way[1:], strict=True)}
    if not through:
        return 0
    pool = torch.cat([minima, found.thetas.to(minima.dtype)])
    pool_values = np.concatenate([values, found.values])
    legs = np.array(sorted(legs), dtype=np.int64)
    sub = relax(pool, legs)
    deeper = {"step_objective": step_objective, "rounds": rounds - 1, "relax": relax}
    split_at_dips(
        objective, pool, pool_values, sub, opts, minima_options, **deeper, database=database
    )
    if database is not None:
        database.grow(pool, pool_values, sub)
    where = {(int(a), int(b)): r for r, (a, b) in enumerate(sub.pairs)}
    tol = opts.saddle_tol
    replaced, spent = 0, set()
    for e, way in through.items():
        hops = [(a, b, where[min(a, b), max(a, b)]) for a, b in zip(way[:-1], way[1:], strict=True)]
        fresh = {r for *_, r in hops} - spent  # a leg shared by two paths costs once
        paths.steps[e] += int(sub.steps[sorted(fresh)].sum())
        spent |= fresh
        path = _join(objective, [(a, sub, r) for a, _, r in hops])
        if path["saddle"] > paths.saddles[e]:
            continue  # its own path is lower: kept, unconverged
        _take(paths, e, path, values, tol)
        via[e] = way[1] if len(way) == 3 and way[1] < k else SPLIT
        replaced += 1
    paths.via = via
    log.info("%d of %d paths at the step cap split at their dips", replaced, rows.size)
    return replaced


def neighbour_routes(
    objective: Objective,
    values: np.ndarray,
    paths: Paths,
    database: Database,
    opts: PathOptions,
    relax: Callable[[Tensor, np.ndarray], Paths],
) -> int:
    """Join every minimum of ``database`` to its ``opts.neighbours`` nearest others (Euclidean;
    where the database pools several searches, its nearest among the minima of the first
    search, of the first two, ..., of all, so that a search with more restarts has every leg
    of one with fewer) that no leg or path joins yet, by legs that ``relax(pool, pairs)``
    computes; then replace,
    in place, every path of ``paths`` (between the run's minima, ``values`` (K,)) whose lowest
    route through the paths and legs is lower by more than ``saddle_tol``, by that route joined
    from its legs (module docstring). Returns how many paths were replaced."""
    if (opts.neighbours <= 0 and database.before is None) or len(paths) == 0:
        return 0
    pool, n = database.pool, database.pool.shape[0]
    edges = dict(database.edges)
    _add_edges(edges, paths)
    dist = torch.cdist(pool.double(), pool.double())
    dist.fill_diagonal_(torch.inf)
    sizes = database.searches or [n]
    order = [dist[:m, :m].argsort(dim=1).cpu().numpy() for m in sizes]  # nearest first

    def nearest(m: int, searches: int) -> set[tuple[int, int]]:
        """Each minimum to its m nearest among the minima that the first searches met (all of
        them where they are fewer than m + 1)."""
        return {
            (min(a, int(b)), max(a, int(b)))
            for near in order[:searches]
            for a in range(near.shape[0])
            for b in near[a, : min(m, near.shape[0] - 1)]  # the last column is a itself
        }

    # The legs that the search without the last one relaxed, as it relaxed them (in a batch
    # of their own: a chain through a third minimum is joined from its batch's legs), even
    # where the last search holds a path between the same two minima; then the others.
    first: list[tuple[int, int]] = []
    if database.before is not None:
        known = set(database.before) | {(int(a), int(b)) for a, b in paths.pairs}
        first = sorted(nearest(opts.neighbours, len(sizes) - 1) - known)
    rest = sorted(nearest(opts.neighbours, len(sizes)) - set(edges) - set(first))
    added = [relax(pool, np.array(ks, dtype=np.int64)) for ks in (first, rest) if ks]
    new = first + rest
    for part in added:
        _add_edges(edges, part)
    if database.before is None:  # without the legs beyond the nearer half of each minimum's
        narrower = set(new) - nearest(opts.neighbours // 2, 1)
        narrow_edges = {k: v for k, v in edges.items() if k not in narrower}
    else:  # without the last search: its minima, paths and legs
        narrow_edges = dict(database.before)
        _add_edges(narrow_edges, paths)
        if first:
            _add_edges(narrow_edges, added[0])
    # the saddles too are the narrower search's: where the last search relaxed a lower path
    # between the same two minima, ``edges`` holds that one
    narrow_tree = _tree(narrow_edges, n)
    adjacent = _tree(edges, n)
    narrow = [
        _lower_route(narrow_tree, narrow_edges, int(i), int(j), paths.saddles[e], opts.saddle_tol)
        for e, (i, j) in enumerate(paths.pairs)
    ]
    paths.narrow = np.array(
        [paths.saddles[e] if r is None else r[1] for e, r in enumerate(narrow)], dtype=np.float64
    )
    via = paths.via if paths.via is not None else np.full(len(paths), -1)
    spent, replaced = set(), 0
    for e, (i, j) in enumerate(paths.pairs):
        lower = _lower_route(adjacent, edges, int(i), int(j), paths.saddles[e], opts.saddle_tol)
        if lower is None:
            continue
        route = lower[0]
        hops = [(u, (min(u, v), max(u, v))) for u, v in pairwise(route)]
        path = _join(objective, [(u, *edges[k]) for u, k in hops])
        if path["saddle"] >= paths.saddles[e]:
            continue
        fresh = {k for _, k in hops if any(edges[k][0] is a for a in added)} - spent
        paths.steps[e] += sum(int(edges[k][0].steps[edges[k][1]]) for k in fresh)  # once each
        spent |= fresh
        _take(paths, e, path, values, opts.saddle_tol)
        if len(route) == 2:  # another search's path between the same two minima
            other, r = edges[hops[0][1]]
            via[e] = other.via[r] if other.via is not None else -1
        else:
            via[e] = route[1] if len(route) == 3 and route[1] < len(values) else SPLIT
        replaced += 1
    paths.via = via
    for part in added:  # a later pass (the probe) routes through them without relaxing again
        _add_edges(database.edges, part)
    log.info(
        "%d of %d paths replaced by routes through %d minima (%d neighbour legs)",
        replaced,
        len(paths),
        n,
        len(new),
    )
    return replaced


def _tree(edges: dict[tuple[int, int], tuple[Paths, int]], n: int) -> dict[int, list[int]]:
    """The minimum spanning tree of ``edges``' saddles over minima 0..n-1, as adjacency lists:
    its route between two minima is their minimax route through the edges."""
    keys = list(edges)
    sad = np.array([_saddle(edges[key]) for key in keys])
    weight = np.zeros((n, n))  # scipy reads 0 as no edge: weights shifted above 0
    a, b = np.array(keys).T
    weight[a, b] = sad - sad.min() + 1.0
    tree = minimum_spanning_tree(weight).tocoo()
    adjacent: dict[int, list[int]] = {}
    for u, v in zip(tree.row.tolist(), tree.col.tolist(), strict=True):
        adjacent.setdefault(u, []).append(v)
        adjacent.setdefault(v, []).append(u)
    return adjacent


def _lower_route(adjacent, edges, i: int, j: int, own: float, tol: float):
    """(route, its highest edge's saddle) of pair (i, j) in the tree ``adjacent`` when it lies
    lower than the pair's own saddle ``own`` by more than ``tol`` (through other minima, or
    another search's path between the two); else None."""
    route = _tree_route(adjacent, i, j)
    if route is None:
        return None
    top = max(_saddle(edges[min(u, v), max(u, v)]) for u, v in pairwise(route))
    return (route, top) if top < own - tol else None


def _tree_route(adjacent: dict[int, list[int]], i: int, j: int) -> list[int] | None:
    """The vertices of the tree's route from i to j, or None when they are not joined."""
    back, queue = {i: i}, deque([i])
    while queue:
        u = queue.popleft()
        if u == j:
            route = [j]
            while route[-1] != i:
                route.append(back[route[-1]])
            return route[::-1]
        for v in adjacent.get(u, ()):
            if v not in back:
                back[v] = u
                queue.append(v)
    return None
