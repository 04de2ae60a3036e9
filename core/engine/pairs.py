"""Which pairs of minima get an optimised path.

``"all"``: every pair, K(K-1)/2 paths, all in one batch.

``"mst"``: the barcode depends only on the minimum spanning tree of saddle heights (the
minimax route between every two minima), so most pairs never matter. In the spirit of
AutoNEB (Draxler et al. 2018), with estimates good enough to choose the tree:

1. Screen: every pair gets a short optimisation (a tenth of the steps, half the starting
   points, no growth, one evaluation, no straight segment). Its saddle is an upper bound,
   far closer to the optimised saddle than the straight segment's (which is dominated by
   the distance between the minima). Half the points cost less than half the gradient
   work, and chose the tree as well as all of them (bench/mst_rules.py).
2. Optimise fully the edges of the minimum spanning tree of the best-known saddles
   (optimised where known, screened elsewhere) that are not optimised yet.
3. Every unoptimised pair whose screened saddle, lowered by the largest drop that full
   optimisation has produced so far (screened - optimised over the optimised pairs), is below
   the current minimax route between its minima could still change the barcode: optimise
   those too, at most K - 1 per round and the lowest margin first (routes fall as optimised
   edges arrive, so later candidates often drop out); but never a pair that the optimised
   paths already join within ``saddle_tol`` of its higher minimum, since no saddle of its
   own can lie below that minimum (in a landscape of one basin this leaves the first tree).
   Repeat 2-3 until no pair qualifies.

Final saddles (dense until stable, ``core.engine.paths.finish``) cost as much as the rounds' own
evaluations; each round's paths come with their coarse maxima (lower bounds) instead, and a
pair gets its final saddle only when the rule reads it (``_settle``): an edge of the spanning
tree of the best-known saddles, or the pair of the largest drop. Rounds and barcode are those
of final saddles everywhere, to the bit (the tree does not change when a non-tree edge rises,
and a coarse drop only overstates).

The final graph holds the fully optimised paths only. The stopping rule is empirical (a pair
might drop further than any seen), not a proof; ``uncertified_pairs`` counts the pairs that a
true lower bound (no saddle is below the higher of its two minima) cannot rule out, runs
report it, and the tests check on toy landscapes and small networks that the barcode equals
the all-pairs one. With paths far from converged it need not: ``bench/mst_rules.py`` replays
the rule on stored all-pairs saddles and measures how far off it is (BENCHMARKS.md). Why not
straight-segment bounds alone: optimising tree edges only lowers the tree, so no bound above
it ever enters, and the first tree would never change.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import torch
from scipy.sparse.csgraph import minimum_spanning_tree
from torch import Tensor

from core.engine.barcode import barcode_from_graph, graph_matrix, rounding_tol
from core.engine.certify import certify
from core.engine.chain import straight_chains
from core.engine.evaluate import Objective
from core.engine.minima import MinimaOptions
from core.engine.options import PROBE_TRUST, RESTART_TRUST, PathOptions
from core.engine.paths import Paths, connect, finish, join_through
from core.engine.saddles import dense_max, final_saddles
from core.engine.splits import Database, neighbour_routes, split_at_dips

log = logging.getLogger(__name__)

# a screened pair is a candidate while its screen, lowered by this many times the largest drop
# that full optimisation has shown so far, is below the route between its minima: the
# screens of a tenth of the steps sit further above converged saddles than their drops
# suggest (on a 6-minimum network, 1x missed two bars by 0.035)
MST_DROP = 2.0


def all_pairs(k: int) -> np.ndarray:
    """(K(K-1)/2, 2) every pair i < j."""
    i, j = np.triu_indices(k, 1)
    return np.stack([i, j], 1).astype(np.int64)


def bottleneck(weights: np.ndarray) -> np.ndarray:
    """(K, K) minimax route heights over a graph; ``inf`` weights are absent edges.

    ``B[i, j]`` = min over routes from i to j of the largest edge weight on the route
    (Floyd-Warshall in the (min, max) semiring). The diagonal is kept as given.
    """
    b = weights.copy()
    for k in range(b.shape[0]):
        b = np.minimum(b, np.maximum(b[:, k, None], b[None, k, :]))
    return b


def spanning_tree_edges(weights: np.ndarray) -> np.ndarray:
    """(E, 2) edges i < j of a minimum spanning tree (forest) of a dense weight matrix."""
    k = weights.shape[0]
    w = np.where(np.isfinite(weights), weights, 0.0)
    # csgraph treats 0 as "no edge": shift so every real edge is strictly positive.
    shift = w[np.isfinite(weights)].min() if np.isfinite(weights).any() else 0.0
    dense = np.where(np.isfinite(weights), weights - shift + 1.0, 0.0)
    dense[np.arange(k), np.arange(k)] = 0.0
    tree = minimum_spanning_tree(np.triu(dense)).tocoo()
    e = np.stack([np.minimum(tree.row, tree.col), np.maximum(tree.row, tree.col)], 1)
    return e.astype(np.int64).reshape(-1, 2)


def uncertified_pairs(values: np.ndarray, saddles: np.ndarray, tol: float) -> int:
    """Pairs without a path whose saddle could, by the lower bound max(v_i, v_j), still be
    below the optimised route between them (and so could change the barcode)."""
    lower = np.maximum(values[:, None], values[None, :])
    open_ = np.isinf(saddles) & (lower < bottleneck(saddles) - tol)
    return int(np.triu(open_, 1).sum())


def merge_paths(parts: list[Paths]) -> Paths:
    """Concatenate the results of several rounds (histories padded with NaN)."""
    parts = [p for p in parts if len(p)]
    longest = max(parts, key=lambda p: p.history_steps.size)
    t = longest.history_steps.size

    def pad(h):
        return np.pad(h, ((0, 0), (0, t - h.shape[1])), constant_values=np.nan)

    cat = {
        f.name: np.concatenate([getattr(p, f.name) for p in parts])
        for f in dataclasses.fields(Paths)
        if f.name not in ("points", "history_steps", "history")
        and all(getattr(p, f.name) is not None for p in parts)
    }
    return Paths(
        **cat,
        points=[x for p in parts for x in p.points],
        history_steps=longest.history_steps,
        history=np.concatenate([pad(p.history) for p in parts]),
    )


GroupMap = Callable[[Tensor, list[np.ndarray], PathOptions, dict], list[Paths]]


def connect_groups(
    objective: Objective,
    minima: Tensor,
    pairs: np.ndarray,
    opts: PathOptions,
    *,
    group_map: GroupMap | None = None,
    step_objective: Callable[[int], Objective] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    **kw,
) -> Paths:
    """``connect`` with the pairs split into ``opts.groups`` contiguous batches of near-equal
    size, each relaxed on its own, rows in the order given.

    ``group_map(minima, groups, opts, kw) -> [Paths per group]`` runs the batches somewhere
    else (``core.runs.ray_executor.PairWorkers``: a Ray actor each, holding its own copy of
    the objective); ``kw`` holds ``connect``'s ``straight`` and ``final``. Without it they
    run here, one after the other. Where a batch runs does not change its result."""
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    n = min(opts.groups, len(pairs))
    local = dict(step_objective=step_objective, on_progress=on_progress)
    if n == 0 or (n == 1 and group_map is None):
        return connect(objective, minima, pairs, opts, **local, **kw)
    groups = np.array_split(pairs, n)
    if group_map is None:
        return merge_paths([connect(objective, minima, g, opts, **local, **kw) for g in groups])
    return merge_paths(group_map(minima, groups, opts, kw))


def screened_saddles(
    objective, minima, pairs, opts: PathOptions, step_objective=None, group_map=None
):
    """(E,) saddles of a short optimisation of every pair: a tenth of the steps, half the
    starting points (at least 3, no growth), one evaluation at the end, no straight segments
    (the optimised paths evaluate their own). Upper bounds: maxima along paths."""
    steps, n = max(1, opts.steps // 10), max(3, opts.n_points // 2)
    short = dataclasses.replace(
        opts,
        steps=steps,
        check_every=steps,
        n_points=n,
        max_points=n,
        final_density=opts.check_density,
        max_density=opts.check_density,
    )
    run = connect_groups(
        objective,
        minima,
        pairs,
        short,
        step_objective=step_objective,
        group_map=group_map,
        straight=False,
    )
    return run.saddles


def _open_edges(
    guess: np.ndarray,
    known: np.ndarray,
    drop_factor: float = 1.0,
    tol: float = 0.0,
    final: np.ndarray | None = None,
) -> np.ndarray:
    """Unoptimised pairs i < j that could still change the barcode: the tree edges of the
    best-known saddles, and the pairs whose screened saddle minus the largest drop seen
    (times ``drop_factor``) is below the minimax route between their minima; neither where
    the optimised paths already join the two within ``tol`` of their higher minimum (no saddle
    of theirs can be lower than that minimum, so none could lower any route by more than
    ``tol``). ``final``: the optimised saddles that are final (``known`` where None)."""
    done = np.isfinite(known)
    np.fill_diagonal(done, False)
    drop = drop_factor * float(np.max(guess[done] - known[done], initial=0.0))
    best = np.where(np.isfinite(known), known, guess)
    tree = spanning_tree_edges(best)
    margin = guess - drop - bottleneck(best)  # < 0: could still go below its route
    margin[tree[:, 0], tree[:, 1]] = -np.inf  # tree edges first
    v = np.diag(known)
    joined = bottleneck(known if final is None else final)
    # tree edges too: in one basin, screens tied with no-barrier saddles would put
    # unoptimised edges in the tree round after round
    margin[joined <= np.maximum(v[:, None], v[None, :]) + tol] = np.inf  # cannot, beyond tol
    margin[np.isfinite(known)] = np.inf
    i, j = np.nonzero(np.triu(margin < 0, 1))
    # at most K - 1 per round, the most likely first: routes fall as optimised edges arrive,
    # so later candidates may drop out
    order = np.argsort(margin[i, j], kind="stable")[: known.shape[0] - 1]
    return np.stack([i[order], j[order]], 1).astype(np.int64)


def connect_all(objective, minima: Tensor, values: np.ndarray, opts: PathOptions, **run) -> Paths:
    """A path for every pair, in two rounds.

    1. Every minimum to the lowest one (the hub h): K - 1 paths.
    2. A pair (i, j) whose route i -> h -> j already rises no more than ``saddle_tol`` above
       max(L(i), L(j)) has no barrier at the stated resolution: its path is that route (the
       two stored legs joined at h, re-evaluated densely), with no optimisation. Every other
       pair is optimised from its straight segment.

    In a landscape of one basin this optimises K - 1 paths instead of K(K-1)/2; where there
    are barriers it optimises every pair, as one batch would, except that a chain which runs
    through a third minimum stops there and is joined from its two legs (``join_through``).
    Rows come in ``all_pairs`` order."""
    k = minima.shape[0]
    pairs = all_pairs(k)
    if k < 3:
        return connect_groups(objective, minima, pairs, opts, **run)
    every = {(int(i), int(j)) for i, j in pairs}
    hub = int(np.argmin(values))
    star = np.array([sorted((hub, j)) for j in range(k) if j != hub], dtype=np.int64).reshape(-1, 2)
    first = connect_groups(objective, minima, star, opts, joinable=every, **run)
    leg = {int(i if j == hub else j): e for e, (i, j) in enumerate(first.pairs)}  # minimum -> row
    rest = np.array([q for q in pairs if hub not in q], dtype=np.int64).reshape(-1, 2)
    known = np.where(first.status == "via", np.inf, first.saddles)  # joined later: not final
    route = np.array([max(known[leg[i]], known[leg[j]]) for i, j in rest])
    high = np.maximum(values[rest[:, 0]], values[rest[:, 1]]) if rest.size else np.zeros(0)
    joined = route <= high + opts.saddle_tol
    routes = [_route(first, leg, int(i), int(j)) for i, j in rest]
    parts = [first, _joined_routes(objective, minima, rest[joined], routes, joined, opts)]
    if (~joined).any():  # (starting these from their routes instead: no fewer evaluations)
        parts.append(connect_groups(objective, minima, rest[~joined], opts, joinable=every, **run))
    done = merge_paths(parts)
    join_through(objective, minima, values, done, opts)
    order = np.lexsort((done.pairs[:, 1], done.pairs[:, 0]))
    return take_paths(done, order)


def _route(first: Paths, leg: dict, i: int, j: int) -> Tensor:
    """(N, P) the path i -> hub -> j from the two stored legs."""
    a, b = first.points[leg[i]], first.points[leg[j]]
    a = a if first.pairs[leg[i]][0] == i else a.flip(0)  # i ... hub
    b = b if first.pairs[leg[j]][1] == j else b.flip(0)  # hub ... j
    return torch.cat([a, b[1:]])


def _joined_routes(objective, minima, pairs, routes, joined, opts) -> Paths:
    """Paths i -> hub -> j from the stored legs, status "no barrier", dense maxima evaluated."""
    pts = [r for r, ok in zip(routes, joined, strict=True) if ok]
    e = len(pts)
    nan = np.full(e, np.nan)
    line = list(straight_chains(minima, pairs, opts.n_points))
    paths = Paths(
        pairs=pairs,
        points=pts,
        saddles=np.full(e, np.inf),
        straight=dense_max(objective, line, opts.check_density) if e else nan,
        densities=np.full(e, opts.check_density, dtype=np.int64),
        status=np.full(e, "no barrier", dtype=object),
        force=nan,
        climb_grad=nan,
        scale=nan,
        steps=np.zeros(e, dtype=np.int64),
        history_steps=np.zeros(1, dtype=np.int64),
        history=np.full((e, 1), np.nan),
        climb=np.full(e, -1, dtype=np.int64),
        via=np.full(e, -1, dtype=np.int64),
    )
    if e:
        paths.saddles, paths.densities = final_saddles(objective, pts, opts)
        paths.history[:, 0] = paths.saddles
    return paths


def take_paths(paths: Paths, rows: np.ndarray) -> Paths:
    """The rows ``rows`` of ``paths`` (every per-pair field), in that order."""
    kw = {}
    for f in dataclasses.fields(Paths):
        v = getattr(paths, f.name)
        if f.name == "points":
            v = [v[r] for r in rows]
        elif f.name != "history_steps" and v is not None:
            v = v[rows]
        kw[f.name] = v
    return Paths(**kw)


def select_and_connect(
    objective: Objective,
    minima: Tensor,
    values: np.ndarray,
    opts: PathOptions,
    *,
    step_objective: Callable[[int], Objective] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    group_map: GroupMap | None = None,
    minima_options: MinimaOptions | None = None,
) -> Paths:
    """Optimise paths for the pairs that ``opts.pairs`` needs; see the module docstring.
    Every batch of pairs is relaxed by ``connect_groups`` (``group_map``: where). With
    ``minima_options``, paths stopped at the step cap that dip between peaks are split at
    the minima below their dips (``core.engine.splits``, ``opts.splits`` rounds; the
    descents and the merging of pooled minima use these options); with ``opts.restarts``
    the same pairs are searched again with other trust radii and every search's minima, legs
    and paths are pooled; with ``opts.neighbours`` the minima so met are joined to their
    nearest neighbours; and pairs take the lowest routes through all of them. With
    ``opts.probe`` the pairs across the passes that then end bars are searched again at the
    ``PROBE_TRUST`` radii, pooled the same way, and the routes taken again, before the saddles are
    certified."""
    k = minima.shape[0]
    run = dict(step_objective=step_objective, on_progress=on_progress, group_map=group_map)

    def relax(o: PathOptions) -> Callable[[Tensor, np.ndarray], Paths]:
        def legs(pool: Tensor, pairs: np.ndarray) -> Paths:
            return connect_groups(
                objective, pool, pairs, o, step_objective=step_objective, group_map=group_map
            )

        return legs

    def split(done: Paths, o: PathOptions) -> Database:
        """``done`` split at its dips (options ``o``); the minima and legs this met."""
        met = Database(minima, np.asarray(values))
        if minima_options is not None:
            split_at_dips(
                objective, minima, values, done, o, minima_options, relax=relax(o), database=met
            )
        return met

    def searched(o: PathOptions, pairs: np.ndarray, search: int = 0) -> tuple[Paths, Database]:
        """Paths for ``pairs`` (every pair: ``connect_all``) with options ``o``, split; the
        progress of search ``search`` (0: the first) reads on from the searches before it."""
        kw = dict(run)
        if on_progress is not None:
            searches = opts.restarts + 1 + (len(PROBE_TRUST) if opts.probe else 0)

            def report(step: int, steps: int, done: int) -> None:
                on_progress(search * steps + step, searches * steps, done)

            kw["on_progress"] = report
        if len(pairs) == k * (k - 1) // 2:
            done = connect_all(objective, minima, values, o, **kw)
        else:
            done = connect_groups(objective, minima, pairs, o, **kw)
        return done, split(done, o)

    merge = minima_options.merge_distance if minima_options else MinimaOptions().merge_distance

    def again(done: Paths, met: Database, pairs: np.ndarray, trust: float, search: int) -> None:
        """Search ``pairs`` of ``done`` again with the trust radius times ``trust``; pool it."""
        o = dataclasses.replace(opts, max_move=opts.max_move * trust)
        paths, found = searched(o, pairs, search)
        row = {(int(i), int(j)): e for e, (i, j) in enumerate(done.pairs)}
        done.steps[[row[int(i), int(j)] for i, j in paths.pairs]] += paths.steps
        met.absorb(found, paths, merge)

    def probe(done: Paths, met: Database) -> None:
        """The pairs across the passes that end bars longer than ``saddle_tol``
        (``Barcode.passes``: the edge that ends the bar and every edge as high from the bar's
        basin to the rest, each a pair that may find a lower way out) searched again at the
        ``PROBE_TRUST`` radii, pooled as one more search, and the routes taken again."""
        v = np.asarray(values, dtype=np.float64)
        bars = barcode_from_graph(v, graph_matrix(v, done.pairs, done.saddles), tol=rounding_tol(v))
        ends, before = bars.passes(opts.saddle_tol), dict(met.edges)
        if not len(ends):
            return
        for n, trust in enumerate(PROBE_TRUST):
            again(done, met, ends, trust, opts.restarts + 1 + n)
        met.before = before  # one step narrower: without the probe
        neighbour_routes(objective, v, done, met, opts, relax=relax(opts))

    def certified(done: Paths, met: Database) -> Paths:
        for r in range(opts.restarts):  # the same pairs, chains settling elsewhere
            again(done, met, done.pairs, RESTART_TRUST[r], r + 1)
        neighbour_routes(objective, np.asarray(values), done, met, opts, relax=relax(opts))
        if opts.probe:
            probe(done, met)
        certify(objective, done, opts)
        return done

    if opts.pairs == "all" or k <= 2:
        return certified(*searched(opts, all_pairs(k)))

    candidates = all_pairs(k)
    screen = screened_saddles(objective, minima, candidates, opts, step_objective, group_map)
    parts: list[Paths] = []
    where: dict[tuple[int, int], tuple[int, int]] = {}  # pair -> (part, row)

    def optimise(batch: np.ndarray) -> np.ndarray:
        parts.append(connect_groups(objective, minima, batch, opts, final=False, **run))
        where.update({(int(i), int(j)): (len(parts) - 1, r) for r, (i, j) in enumerate(batch)})
        return parts[-1].saddles.copy()

    def refine(batch: np.ndarray) -> np.ndarray:
        rows = [where[int(i), int(j)] for i, j in batch]
        for part in {p for p, _ in rows}:
            finish(objective, minima, parts[part], [r for p, r in rows if p == part], opts)
        return np.array([parts[p].saddles[r] for p, r in rows])

    guess = graph_matrix(values, candidates, screen)
    mst_rounds(guess, values, optimise, MST_DROP, refine=refine, tol=opts.saddle_tol)
    done = merge_paths(parts)
    done = certified(done, split(done, opts))
    final = int((done.densities >= opts.final_density).sum())
    log.info(
        "mst strategy optimised %d of %d pairs, %d with final saddles (the barcode's tree)",
        len(done),
        len(candidates),
        final,
    )
    return done


def mst_rounds(
    guess: np.ndarray,
    values: np.ndarray,
    optimise: Callable[[np.ndarray], np.ndarray],
    drop_factor: float = 1.0,
    refine: Callable[[np.ndarray], np.ndarray] | None = None,
    tol: float = 0.0,
) -> np.ndarray:
    """Steps 2-3 of ``"mst"`` on screened saddles ``guess`` (K, K) and minima ``values``
    (K,): ``optimise(batch (E, 2)) -> (E,)`` saddles, called once per round. Returns the
    (K, K) optimised saddles (``inf`` where a pair was not optimised; the diagonal holds
    ``values``). ``bench/mst_rules.py`` replays it on stored saddles.

    With ``refine``, ``optimise`` may return lower bounds (the paths' maxima at a coarse
    density) and ``refine(pairs (n, 2)) -> (n,)`` their final saddles, asked for only where
    the rule reads them (``_settle``): the rounds and the returned tree are those that final
    saddles everywhere would give."""
    k = len(values)
    known = np.full((k, k), np.inf)  # fully optimised saddles
    np.fill_diagonal(known, values)
    coarse = np.zeros((k, k), dtype=bool)  # known holds a lower bound there, not final
    batch = spanning_tree_edges(guess)
    while batch.size:
        saddles = optimise(batch)
        known[batch[:, 0], batch[:, 1]] = known[batch[:, 1], batch[:, 0]] = saddles
        coarse[batch[:, 0], batch[:, 1]] = coarse[batch[:, 1], batch[:, 0]] = refine is not None
        _settle(guess, known, coarse, refine)
        batch = _open_edges(guess, known, drop_factor, tol, np.where(coarse, np.inf, known))
        log.info("mst refinement: %d more paths", len(batch))
    _settle(None, known, coarse, refine)  # the tree of the optimised paths alone
    return known


def _settle(guess, known, coarse, refine) -> None:
    """Final saddles (``refine``) for the coarse pairs that the rule reads, until none is
    left: the spanning-tree edges of the best-known saddles (``guess`` where not optimised;
    the optimised paths alone when ``guess`` is None) and the pair of the largest drop.

    Exact because final saddles are never below the coarse ones: a non-tree edge's weight is
    at least the heaviest edge on its tree cycle already as a lower bound, so the tree, and the
    minimax routes (``bottleneck``) read off it, do not change when it is refined; and a coarse
    drop is at least the pair's final drop, so once the largest drop is final, it is the
    largest. The same argument makes the barcode of the returned saddles equal to that of
    final saddles everywhere."""
    if refine is None:
        return
    while coarse.any():
        best = known if guess is None else np.where(np.isfinite(known), known, guess)
        need = [e for e in spanning_tree_edges(best) if coarse[e[0], e[1]]]
        if guess is not None:
            done = np.isfinite(known)
            np.fill_diagonal(done, False)
            if done.any():
                drops = np.where(done, guess - known, -np.inf)
                e = np.unravel_index(np.argmax(drops), drops.shape)
                need += [np.array(sorted(e))] if coarse[e] and drops[e] > 0 else []
        if not need:
            return
        batch = np.unique(np.array(need, dtype=np.int64).reshape(-1, 2), axis=0)
        saddles = refine(batch)
        known[batch[:, 0], batch[:, 1]] = known[batch[:, 1], batch[:, 0]] = saddles
        coarse[batch[:, 0], batch[:, 1]] = coarse[batch[:, 1], batch[:, 0]] = False
