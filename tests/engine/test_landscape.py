"""The engine end to end on analytic landscapes, against exact barcodes."""

import numpy as np
import pytest
import torch

from core import ANALYTIC, barcode_of, landscape_of
from core.engine.barcode import barcode_from_graph, graph_matrix
from core.engine.pairs import (
    all_pairs,
    bottleneck,
    mst_rounds,
    spanning_tree_edges,
    uncertified_pairs,
)
from core.engine.paths import PathOptions
from core.engine.toy import TOYS
from core.engine.validate import SIGNIFICANT, TOLERANCE, compare_engine_to_exact


@pytest.mark.parametrize("name", sorted(TOYS))
def test_engine_matches_exact_cubical_barcode(name):
    c = compare_engine_to_exact(name, n_starts=32, resolution=401)
    assert len(c.engine_bars) == len(c.exact_bars), c.report()  # none missing, none spurious
    assert c.bottleneck <= TOLERANCE * c.value_range, c.report()
    assert c.landscape.barcode.n_essential == 1
    np.testing.assert_array_equal(c.landscape.barcode.births, np.sort(c.landscape.minima.values))
    p = c.landscape.paths
    counts = (
        f"{int((p.status == 'converged').sum())} converged by force "
        f"({int(p.certified.sum())} certified), {int((p.status == 'no barrier').sum())} no "
        f"barrier, {int((p.status == 'step cap').sum())} at the step cap; "
        f"{int((p.via >= 0).sum())} joined through a third minimum"
    )
    assert f"{len(p)} paths: {counts}" in c.report()


@pytest.mark.parametrize("name", ["camel", "rastrigin", "wells"])
def test_mst_pairs_give_the_all_pairs_barcode_with_fewer_paths(name):
    full = compare_engine_to_exact(name, resolution=201)
    mst = compare_engine_to_exact(name, resolution=201, pairs="mst")
    k = len(full.landscape.minima)
    assert len(mst.landscape.paths) < k * (k - 1) // 2
    a, b = full.landscape.barcode, mst.landscape.barcode
    np.testing.assert_allclose(a.births, b.births, atol=1e-9)
    vr = full.value_range
    np.testing.assert_allclose(a.deaths, b.deaths, atol=SIGNIFICANT * vr)
    # final saddles where the barcode reads them (the tree of the optimised paths)
    p, values = mst.landscape.paths, mst.landscape.minima.values
    tree = spanning_tree_edges(graph_matrix(values, p.pairs, p.saddles))
    rows = [int(np.flatnonzero((p.pairs == e).all(1))[0]) for e in tree]
    assert (p.densities[rows] >= PathOptions().final_density).all()


def test_barcode_of_plain_function_of_2d_points():
    """The example from the README: a tilted ring with a ripple, three minima."""

    def f(x):
        return (
            ((x**2).sum(1) - 1) ** 2
            + 0.3 * x[:, 0]
            + 0.1 * torch.sin(3 * torch.atan2(x[:, 1], x[:, 0]))
        )

    g = torch.Generator().manual_seed(0)
    starts = (torch.rand(16, 2, generator=g, dtype=torch.float64) - 0.5) * 3
    bars = barcode_of(f, starts, **ANALYTIC)
    assert len(bars) == 3 and bars.n_essential == 1
    # Every finite bar dies at a saddle on the ring: above its birth, below the hilltop f(0)=1.
    fin = np.isfinite(bars.deaths)
    assert (bars.deaths[fin] > bars.births[fin]).all() and (bars.deaths[fin] < 1).all()
    assert bars.to_score("sum") == pytest.approx((bars.deaths[fin] - bars.births[fin]).sum())


def test_landscape_options_are_validated():
    f = TOYS["ring"].fn
    starts = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="unknown minima option"):
        landscape_of(f, starts, minima={"learning_rate": 1})
    with pytest.raises(ValueError, match="pairs"):
        landscape_of(f, starts, paths={"pairs": "some"})


def test_bottleneck_and_uncertified_pairs_by_hand():
    #   0 --1.0-- 1 --3.0-- 2        no edge 0-2: route 0-1-2 has height 3.0
    inf = np.inf
    s = np.array([[0.0, 1.0, inf], [1.0, 0.5, 3.0], [inf, 3.0, 0.2]])
    b = bottleneck(s)
    assert b[0, 2] == 3.0 and b[2, 0] == 3.0 and b[0, 1] == 1.0
    # Pair 0-2 could still have a saddle as low as max(0.0, 0.2) < 3.0: uncertified.
    assert uncertified_pairs(np.array([0.0, 0.5, 0.2]), s, 1e-9) == 1
    assert all_pairs(3).tolist() == [[0, 1], [0, 2], [1, 2]]


@pytest.mark.slow
@pytest.mark.usefixtures("one_thread")
def test_mst_pairs_give_the_all_pairs_barcode_on_a_small_network():
    from core.nets.data import load_dataset
    from core.nets.models import build_model
    from core.nets.objective import NetworkObjective

    data = load_dataset("digits", n_train=120, n_test=30)
    model = build_model("mlp", 4, 1, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-3, batch_size=None)
    options = dict(
        minima={
            "optimizer": "lbfgs",
            "lr": 0.1,
            "steps": 3000,
            "grad_tol": 1e-4,
            "merge_distance": 1e-2,
        },
        paths={"steps": 2000, "check_density": 2},
    )
    full = landscape_of(obj, obj.init(6, seed=0), **options)
    mst = landscape_of(
        obj, obj.init(6, seed=0), **options | {"paths": options["paths"] | {"pairs": "mst"}}
    )
    k = len(full.minima)
    # ReLU corners leave the minima stopping points and most paths at the step cap; the
    # screens sit far above the optimised saddles, so mst may need every pair here
    assert k >= 4 and len(mst.paths) <= k * (k - 1) // 2
    a, b = full.barcode, mst.barcode
    np.testing.assert_allclose(a.births, b.births, rtol=1e-6)
    scale = float(np.ptp(full.paths.straight))
    np.testing.assert_allclose(a.deaths, b.deaths, atol=SIGNIFICANT * scale)


# (K, screen excess, coarse deficit, seed): random cases, and cases (found by search) where
# rounds that do not refine the pair of the largest drop take other batches
ROUND_CASES = [(12, 0.3, 0.3, s) for s in range(8)] + [
    (16, 0.2, 0.5, 5),
    (16, 0.5, 0.5, 14),
    (16, 0.5, 1.0, 10),
    (24, 0.05, 0.1, 1),
    (24, 0.2, 0.5, 13),
    (24, 0.5, 0.5, 6),
]


@pytest.mark.parametrize("k, excess, deficit, seed", ROUND_CASES)
def test_mst_rounds_with_coarse_saddles_take_the_rounds_of_final_ones(k, excess, deficit, seed):
    """Rounds that get lower bounds and ask for final saddles only where the rule reads
    them (``refine``) optimise the same batches, in the same order, as rounds that get final
    saddles at once, and end with the same tree (so the same barcode); they refine fewer."""
    rng = np.random.default_rng(seed)
    values = np.sort(rng.uniform(0, 1, k))
    final = np.triu(rng.uniform(1, 3, (k, k)), 1)
    final = final + final.T + np.diag(values)
    lower = rng.exponential(deficit, (k, k)) * (rng.uniform(size=(k, k)) < 0.5)
    coarse = np.triu(final - lower, 1)
    coarse = coarse + coarse.T + np.diag(values)
    guess = final + np.triu(rng.exponential(excess, (k, k)), 1)
    guess = np.triu(guess, 1) + np.triu(guess, 1).T + np.diag(values)
    eager_batches, lazy_batches, refined = [], [], []

    def eager(batch):
        eager_batches.append(batch.tolist())
        return final[batch[:, 0], batch[:, 1]]

    def lazy(batch):
        lazy_batches.append(batch.tolist())
        return coarse[batch[:, 0], batch[:, 1]]

    def refine(batch):
        refined.extend(map(tuple, batch.tolist()))
        return final[batch[:, 0], batch[:, 1]]

    a = mst_rounds(guess, values, eager)
    b = mst_rounds(guess, values, lazy, refine=refine)
    assert lazy_batches == eager_batches
    assert np.isfinite(a).sum() == np.isfinite(b).sum() > 2 * (k - 1)  # rounds beyond the tree
    tree = spanning_tree_edges(a)
    np.testing.assert_array_equal(spanning_tree_edges(b), tree)
    np.testing.assert_array_equal(b[tree[:, 0], tree[:, 1]], a[tree[:, 0], tree[:, 1]])
    assert len(set(refined)) < np.isfinite(np.triu(a, 1)).sum()  # not every optimised pair
    np.testing.assert_array_equal(
        barcode_from_graph(values, b).deaths, barcode_from_graph(values, a).deaths
    )


def test_mst_rounds_in_one_basin_optimise_the_tree_alone():
    """In a landscape of one basin no path has a barrier: its saddle is its higher minimum
    (an optimised path's maximum a hair above it, within the tolerance), and so is every
    straight segment's screen. The first tree joins all minima within the tolerance, so no
    further round opens an edge, though the unoptimised screens sit a hair lower."""
    k, tol = 8, 1e-4
    values = np.sort(np.random.default_rng(0).uniform(0, 1, k))
    flat = np.maximum(values[:, None], values[None, :])  # no barrier anywhere
    batches = []

    def optimise(batch):
        batches.append(len(batch))
        return flat[batch[:, 0], batch[:, 1]] + tol / 100

    known = mst_rounds(flat.copy(), values, optimise, tol=tol)
    assert batches == [k - 1]
    np.testing.assert_allclose(barcode_from_graph(values, known).deaths[1:], values[1:], atol=tol)


@pytest.mark.slow
def test_doubling_points_and_steps_moves_no_converged_bar_on_a_small_network():
    """A bar whose death moves by more than saddle_tol when the path budget doubles must be
    ended, in one of the two runs, by a path that says it did not converge (step cap)."""
    from core.engine.minima import MinimaOptions, find_minima
    from core.engine.pairs import select_and_connect
    from core.nets.data import load_dataset
    from core.nets.models import build_model
    from core.nets.objective import NetworkObjective

    data = load_dataset("digits", n_train=120, n_test=30)
    model = build_model("mlp", 4, 1, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-3, batch_size=None)
    train = MinimaOptions(lr=0.05, lr_final=1e-3, steps=1200, grad_tol=1e-4, merge_distance=1e-2)
    m = find_minima(obj, obj.init(6, seed=0), train)
    base = PathOptions(check_density=2, steps=600)
    double = PathOptions(check_density=2, n_points=20, max_points=32, steps=1200)
    runs = []
    for opts in (base, double):
        p = select_and_connect(obj, m.thetas, m.values, opts)
        b = barcode_from_graph(m.values, graph_matrix(m.values, p.pairs, p.saddles))
        status = {tuple(q): s for q, s in zip(p.pairs.tolist(), p.status, strict=True)}
        runs.append((b, status))
    (a, sa), (b, sb) = runs
    np.testing.assert_array_equal(a.births, b.births)
    assert (np.abs(a.lengths[1:] - b.lengths[1:]) > base.saddle_tol).any()  # something to see
    for k in np.flatnonzero(np.isfinite(a.deaths)):
        if abs(a.deaths[k] - b.deaths[k]) > base.saddle_tol:
            ea, eb = tuple(sorted(a.saddle_edge[k])), tuple(sorted(b.saddle_edge[k]))
            assert "step cap" in (sa[ea], sb[eb]), (k, sa[ea], sb[eb])


def test_doubling_points_and_steps_moves_no_bar_in_10_dimensions():
    """On a warped 10-D landscape with an exact barcode, both budgets converge every path
    and give the exact bars to within saddle_tol."""
    from core.engine.minima import MinimaOptions, find_minima
    from core.engine.pairs import select_and_connect
    from core.engine.separable import get_separable

    land = get_separable("sep10")
    m = find_minima(
        land.fn,
        land.starts(8, seed=0),
        MinimaOptions(optimizer="fire", lr=0.1, grad_tol=1e-7, merge_distance=1e-2),
    )
    base = PathOptions(grad_tol=1e-6)
    double = PathOptions(grad_tol=1e-6, n_points=20, max_points=32, steps=2 * base.steps)
    for opts in (base, double):
        p = select_and_connect(land.fn, m.thetas, m.values, opts)
        assert (p.status != "step cap").all()
        b = barcode_from_graph(m.values, graph_matrix(m.values, p.pairs, p.saddles))
        np.testing.assert_allclose(b.births, land.exact_births, atol=1e-9)
        np.testing.assert_allclose(b.deaths, land.exact_deaths, atol=opts.saddle_tol)
