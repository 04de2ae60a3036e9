"""Which pairs get optimised: the star round and routes joined at the hub."""

import numpy as np
import torch

from core.engine.pairs import connect_all, connect_groups
from core.engine.paths import PathOptions, connect
from core.engine.saddles import path_profile


def bowl(x):
    """One basin: (|x|^2 - 0)^2-ish bowl with a shallow ripple, every start in it."""
    return (x**2).sum(1) + 0.05 * torch.sin(3 * x[:, 0])


def three_wells(x):
    """Three wells on a line at x = -2, 0, 2 (depths 1.0, 0.8, 0.6), barriers between."""
    c = torch.tensor([-2.0, 0.0, 2.0], dtype=x.dtype)
    d = torch.tensor([1.0, 0.8, 0.6], dtype=x.dtype)
    r2 = (x[:, :1] - c) ** 2 + x[:, 1:2] ** 2
    return 0.05 * (x**2).sum(1) - (d * torch.exp(-r2)).sum(1)


def test_one_basin_optimises_only_the_star_and_joins_the_rest():
    """Minima on the slopes of a bowl (not true minima; every pair has no barrier): K - 1
    paths are optimised, the others are the routes through the lowest point, evaluated."""
    pts = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.2], [-1.1, -0.3]], dtype=torch.float64)
    values = bowl(pts).numpy()
    calls = []

    def counted(x):
        calls.append(x.shape[0] if x.requires_grad else 0)
        return bowl(x)

    p = connect_all(counted, pts, values, PathOptions())
    assert p.pairs.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert (p.status == "no barrier").all()
    joined = (p.pairs != 0).all(1)
    assert (p.steps[joined] == 0).all() and (p.steps[~joined] > 0).all()
    for e in np.flatnonzero(joined):  # the stored route through 0 holds its reported saddle
        i, j = p.pairs[e]
        _, vals = path_profile(bowl, p.points[e], int(p.densities[e]))
        assert vals.max() == p.saddles[e] <= max(values[i], values[j]) + PathOptions().saddle_tol
        assert torch.equal(p.points[e][0], pts[i]) and torch.equal(p.points[e][-1], pts[j])
        assert any(torch.equal(q, pts[0]) for q in p.points[e])  # it passes through the hub


def test_pairs_with_barriers_are_optimised_as_one_batch_would():
    g = torch.Generator().manual_seed(0)
    guess = torch.tensor([[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    mins = guess + 0.0 * torch.randn(3, 2, generator=g, dtype=torch.float64)
    for _ in range(200):  # settle the guesses into the wells
        x = mins.clone().requires_grad_(True)
        (gr,) = torch.autograd.grad(three_wells(x).sum(), x)
        mins = mins - 0.5 * gr
    values = three_wells(mins).numpy()
    opts = PathOptions(grad_tol=1e-6)
    both = connect_all(three_wells, mins, values, opts)
    one = connect(three_wells, mins, np.array([[0, 1], [0, 2], [1, 2]]), opts)
    assert (both.status == "converged").all()
    np.testing.assert_allclose(both.saddles, one.saddles, atol=1e-9)


def test_a_minimum_no_start_reached_is_found_from_a_saddle():
    """Starts only in the outer wells: the path between them runs through the middle well,
    the climbing point stops at a saddle beside it, and the descent from that saddle finds the
    middle minimum; the barcode then has all three bars."""
    from core import landscape_of
    from core.engine.validate import TOY_MINIMA, TOY_PATHS

    starts = torch.tensor([[-2.1, 0.1], [-1.9, -0.1], [2.1, 0.1], [1.9, 0.0]], dtype=torch.float64)
    without = landscape_of(three_wells, starts, minima=TOY_MINIMA, paths=TOY_PATHS, explore=0)
    land = landscape_of(three_wells, starts, minima=TOY_MINIMA, paths=TOY_PATHS)
    assert len(without.minima) == 2 and len(land.minima) == 3 and land.from_saddles == 1
    middle = land.minima.thetas[np.argsort(land.minima.thetas[:, 0].numpy())[1]]
    assert abs(float(middle[0])) < 0.1  # the middle well, near x = 0
    assert len(land.barcode) == 3 and land.barcode.n_essential == 1
    assert (land.paths.status == "converged").all() and land.paths.certified.all()


def test_batches_of_pairs_give_each_batchs_own_paths_in_the_order_given():
    """``connect_groups``: rows are the batches' rows in order; a batch's paths are those of
    ``connect`` on that batch alone, wherever it runs (here, or through ``group_map``)."""
    pts = torch.tensor([[-2.0, 0.1], [0.0, -0.1], [2.0, 0.0], [0.1, 1.0]], dtype=torch.float64)
    pairs = np.array([[0, 1], [0, 2], [0, 3], [1, 2], [1, 3]])
    opts = PathOptions(groups=2, steps=80)
    here = connect_groups(three_wells, pts, pairs, opts)
    sent = []

    def elsewhere(minima, groups, o, kw):
        sent.append([g.tolist() for g in groups])
        return [connect(three_wells, minima, g, o, **kw) for g in reversed(groups)][::-1]

    there = connect_groups(three_wells, pts, pairs, opts, group_map=elsewhere)
    assert sent == [[[[0, 1], [0, 2], [0, 3]], [[1, 2], [1, 3]]]]
    alone = [connect(three_wells, pts, g, opts) for g in (pairs[:3], pairs[3:])]
    for got in (here, there):
        assert got.pairs.tolist() == pairs.tolist()
        np.testing.assert_array_equal(got.saddles, np.concatenate([a.saddles for a in alone]))
        for x, y in zip(got.points, [q for a in alone for q in a.points], strict=True):
            assert torch.equal(x, y)


def ring(x):
    """A ring valley of radius 2 (2-D): every point on it is a minimum, no barrier between."""
    return (x.norm(dim=1) - 2) ** 2


def test_mst_opens_no_pair_that_cannot_lower_a_route_beyond_the_tolerance():
    """Ten minima on a ring valley, screened by short chains that still cut across it: once
    the first spanning tree is optimised the optimised paths join every pair within
    saddle_tol of its higher minimum, which no saddle can undercut, so ``mst`` optimises that
    tree alone (K - 1 paths; 12 without the rule, from the screens' large drops)."""
    from core.engine.pairs import select_and_connect

    ang = torch.linspace(0, 6.0, 10, dtype=torch.float64)
    pts = torch.stack([2 * ang.cos(), 2 * ang.sin()], 1)
    values = ring(pts).numpy()
    p = select_and_connect(ring, pts, values, PathOptions(pairs="mst", steps=100))
    assert len(p) == len(pts) - 1
    assert (p.status == "no barrier").all()


def test_restarts_report_progress_on_from_the_searches_before():
    """Three wells, one restart: the progress of the restart's search reads on from the first
    (steps beyond the first search's cap, out of twice the cap), never back to the start."""
    from core.engine.pairs import select_and_connect

    pts = torch.tensor([[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]], dtype=torch.float64)
    values = three_wells(pts).numpy()
    calls = []
    opts = PathOptions(steps=60, restarts=1)
    p = select_and_connect(three_wells, pts, values, opts, on_progress=lambda *a: calls.append(a))
    steps = [s for s, *_ in calls]
    assert {total for _, total, _ in calls} == {2 * opts.steps}
    assert steps == sorted(steps) and steps[-1] > opts.steps  # the restart's own steps
    assert len(p) == 3
