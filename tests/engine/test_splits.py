"""Paths stopped at the step cap across basins of minima no start reached: split there."""

import dataclasses

import numpy as np
import pytest
import torch
from test_joins import ANGLES, _angles, ridge, wells_on_an_arc
from test_paths import minima_of

from core.engine.certify import certify
from core.engine.minima import MinimaOptions
from core.engine.options import ANALYTIC
from core.engine.paths import PathOptions, connect, leg
from core.engine.saddles import path_profile
from core.engine.splits import SPLIT, Database, dips, neighbour_routes, split_at_dips


def test_dips_are_the_valleys_between_two_higher_peaks():
    profile = np.array([0.0, 2.0, 1.0, 3.0, 0.5, 0.6, 4.0, 1.0])
    assert dips(profile, 0.1).tolist() == [2, 4]
    assert dips(profile, 1.5).tolist() == [4]  # node 2 lies only 1 below the peak on its left
    assert dips(np.array([0.0, 1.0, 2.0, 1.0, 0.0]), 0.0).size == 0  # one peak: no dip
    assert dips(np.array([0.0, 1.0]), 0.0).size == 0


@pytest.fixture(scope="module")
def ends():
    """Wells 0 and 3 of the arc; wells 1 and 2, in between, are minima no start reached."""
    four = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    exact = max(ridge(*_angles(four, i)) for i in range(3))  # the highest ridge on the way
    m = four[[0, 3]]
    return m, wells_on_an_arc(m).numpy(), exact


def _capped(m, steps):
    opts = PathOptions(saddle_tol=1e-7, grad_tol=1e-6, check_density=4, n_points=7, steps=steps)
    return connect(wells_on_an_arc, m, np.array([[0, 1]]), opts), opts


def test_a_capped_path_through_unknown_wells_is_split_onto_the_exact_saddle(ends):
    m, values, exact = ends
    p, opts = _capped(m, 50)
    assert p.status[0] == "step cap" and p.saddles[0] > exact + 1e-3  # unconverged, too high
    replaced = split_at_dips(
        wells_on_an_arc, m, values, p, opts, MinimaOptions(**ANALYTIC["minima"])
    )
    certify(wells_on_an_arc, p, opts)
    assert replaced == 1 and p.via[0] == SPLIT
    assert p.status[0] == "converged" and p.certified[0]
    assert p.saddles[0] == pytest.approx(exact, abs=1e-9)
    _, vals = path_profile(wells_on_an_arc, p.points[0], int(p.densities[0]))
    assert vals.max() == pytest.approx(p.saddles[0], abs=1e-12)  # the stored path's own maximum
    assert torch.equal(p.points[0][0], m[0]) and torch.equal(p.points[0][-1], m[1])


def test_no_rounds_or_no_dip_leave_the_paths_alone(ends):
    m, values, _ = ends
    p, opts = _capped(m, 50)
    saddle = p.saddles[0]
    assert split_at_dips(wells_on_an_arc, m, values, p, opts, MinimaOptions(), rounds=0) == 0
    assert p.saddles[0] == saddle and p.status[0] == "step cap"
    q, opts = _capped(m, 20)  # still near the straight segment: one peak across the ring
    saddle = q.saddles[0]
    assert split_at_dips(wells_on_an_arc, m, values, q, opts, MinimaOptions()) == 0
    assert q.saddles[0] == saddle and (q.via == -1).all()


def test_every_dip_is_split_at_once_and_the_legs_are_relaxed_where_the_caller_says(ends):
    """``relax`` (the run's workers, via ``connect_groups``) computes every round's legs."""
    m, values, exact = ends
    p, opts = _capped(m, 50)
    calls, relaxed = [], []

    def relax(pool, pairs):
        calls.append((pool.shape[0], pairs.tolist()))
        relaxed.append(connect(wells_on_an_arc, pool, pairs, opts))
        return relaxed[-1]

    minima_opts = MinimaOptions(**ANALYTIC["minima"])
    assert p.steps[0] == 50
    assert split_at_dips(wells_on_an_arc, m, values, p, opts, minima_opts, relax=relax) == 1
    assert p.saddles[0] == pytest.approx(exact, abs=1e-9)
    assert p.steps[0] == 50 + relaxed[0].steps.sum() > 50  # the path's steps and its legs'
    # one round: both wells in between, found below the two dips, and the three legs between
    # consecutive minima along the path (0 -> well 1 -> well 2 -> 1; well 2 is the deeper, 2)
    assert len(calls) == 1
    pool, legs = calls[0]
    assert pool == 4 and legs == [[0, 3], [1, 2], [2, 3]]


def test_neighbour_legs_give_a_capped_path_the_route_along_the_arc(ends):
    """Wells 1 and 2 in the database, no legs yet: with two neighbours each, the legs between
    adjacent wells carry the pair's path along the arc onto the exact highest ridge."""
    m, values, exact = ends
    four = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    pool = torch.cat([m, four[[1, 2]]])
    met = Database(pool, wells_on_an_arc(pool).numpy())
    p, opts = _capped(m, 20)  # near the straight segment across the ring: far too high
    before, steps = p.saddles[0], int(p.steps[0])
    relaxed = []

    def relax(points, pairs):
        relaxed.append((pairs.tolist(), connect(wells_on_an_arc, points, pairs, opts)))
        return relaxed[-1][1]

    assert neighbour_routes(wells_on_an_arc, values, p, met, opts, relax) == 0  # neighbours=0
    assert p.saddles[0] == before and not relaxed
    opts = dataclasses.replace(opts, neighbours=2, steps=400)
    assert neighbour_routes(wells_on_an_arc, values, p, met, opts, relax) == 1
    # each well's two nearest (pool order: well 0, well 3, well 1, well 2), less the pair's own
    assert relaxed[0][0] == [[0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert p.via[0] == SPLIT and p.saddles[0] < before
    assert p.saddles[0] == pytest.approx(exact, abs=1e-9)
    assert steps < p.steps[0] <= steps + relaxed[0][1].steps.sum()  # and its route's legs
    _, vals = path_profile(wells_on_an_arc, p.points[0], int(p.densities[0]))
    assert vals.max() == pytest.approx(p.saddles[0], abs=1e-12)  # the stored path's own maximum
    assert torch.equal(p.points[0][0], m[0]) and torch.equal(p.points[0][-1], m[1])


def test_more_neighbours_than_minima_join_every_pair_once(ends):
    """Four minima in the database and eight legs asked per minimum: each minimum is joined to
    the three others, never to itself, and the route is that of three legs per minimum."""
    m, values, exact = ends
    four = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    pool = torch.cat([m, four[[1, 2]]])
    saddles, asked = {}, {}
    for n in (3, 8):
        p, opts = _capped(m, 20)
        opts = dataclasses.replace(opts, neighbours=n, steps=400)

        def relax(points, pairs, opts=opts, n=n):
            asked[n] = pairs.tolist()
            return connect(wells_on_an_arc, points, pairs, opts)

        met = Database(pool, wells_on_an_arc(pool).numpy())
        neighbour_routes(wells_on_an_arc, values, p, met, opts, relax)
        saddles[n] = p.saddles[0]
    assert asked[8] == asked[3] == [[0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]  # (0, 1): the path
    assert saddles[8] == saddles[3] == pytest.approx(exact, abs=1e-9)


def test_the_narrower_search_is_the_run_with_half_the_neighbours(ends):
    """Paths.narrow of a search with n legs per minimum is the saddle that n // 2 gives."""
    m, values, _ = ends
    four = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    pool = torch.cat([m, four[[1, 2]]])
    got = {}
    for n in (1, 2, 3):
        p, opts = _capped(m, 20)
        opts = dataclasses.replace(opts, neighbours=n, steps=400)

        def relax(points, pairs, opts=opts):
            return connect(wells_on_an_arc, points, pairs, opts)

        met = Database(pool, wells_on_an_arc(pool).numpy())
        neighbour_routes(wells_on_an_arc, values, p, met, opts, relax)
        got[n] = (p.saddles[0], p.narrow[0])
    assert got[2][1] == pytest.approx(got[1][0], abs=1e-9)
    assert got[3][1] == pytest.approx(got[1][0], abs=1e-9)  # 3 // 2 = 1
    assert got[2][0] < got[2][1] - 1.0  # the second leg per minimum opened the arc's route
    assert got[1][1] == got[1][0]  # with no legs at all, the path's own saddle


def test_absorb_pools_two_searches_into_the_route_along_the_arc(ends):
    """One search met well 1 and relaxed 0 -> well 1; another met wells 2 and 1 (its well 1
    within the merge distance of the first's) and relaxed well 2 -> well 1 and well 3 ->
    well 2. Pooled, the two minima are one, the other search's legs keep their orientation,
    and the pair's capped path takes the route along the arc onto the exact highest ridge;
    its narrower reading (without the second search) is its own path."""
    m, values, exact = ends
    four = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    w1, w2 = four[1], four[2]
    p, opts = _capped(m, 20)
    before = p.saddles[0]
    legs = dataclasses.replace(opts, steps=400)
    met = torch.cat([m, w1[None]])
    first = Database(met, wells_on_an_arc(met).numpy(), runs=2)  # the pair's two minima first
    first.grow(
        first.pool, first.values, connect(wells_on_an_arc, first.pool, np.array([[0, 2]]), legs)
    )
    shifted = w1 + 1e-4
    pool = torch.cat([m, w2[None], shifted[None]])
    second = Database(pool, wells_on_an_arc(pool).numpy(), runs=2)
    second.grow(
        pool, second.values, connect(wells_on_an_arc, pool, np.array([[2, 3], [1, 2]]), legs)
    )
    again, _ = _capped(m, 20)  # the second search's own path between the pair: as high
    first.absorb(second, again, merge_distance=1e-3)
    assert first.pool.shape[0] == 4 and first.searches == [3, 4]  # its well 1 merged, well 2 added
    assert torch.equal(first.pool[3], w2) and sorted(first.edges) == [
        (0, 1),
        (0, 2),
        (1, 3),
        (2, 3),
    ]
    paths, r = first.edges[2, 3]  # well 2 -> well 1, renumbered (3, 2): run from 2 starts at w1
    assert tuple(paths.pairs[r]) == (3, 2)
    assert torch.allclose(leg(paths, r, 2)["points"][0], shifted)
    assert neighbour_routes(wells_on_an_arc, values, p, first, legs, relax=None) == 1
    assert p.saddles[0] == pytest.approx(exact, abs=1e-9) and p.saddles[0] < before - 1.0
    assert p.narrow[0] == before  # the first search alone: the pair's own capped path
    _, vals = path_profile(wells_on_an_arc, p.points[0], int(p.densities[0]))
    assert vals.max() == pytest.approx(p.saddles[0], abs=1e-12)
    assert torch.equal(p.points[0][0], m[0]) and torch.equal(p.points[0][-1], m[1])
