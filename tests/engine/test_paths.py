"""Paths: saddle honesty, batched == one pair at a time, exact saddles on a double well."""

import numpy as np
import pytest
import torch
from conftest import adam_minima

from core.engine.chain import dense_points
from core.engine.paths import PathOptions, connect, finish
from core.engine.saddles import final_saddles, path_profile


def double_well(x):
    """(x^2 - 1)^2 + 0.2 x + y^2: minima near x = -1 and x = +1, one saddle near x = 0.05.

    y
    |   (-1,0)      saddle      (1,0)
    |     o - - - - - x - - - - - o        the min-max path runs along y = 0
    """
    return (x[:, 0] ** 2 - 1) ** 2 + 0.2 * x[:, 0] + x[:, 1] ** 2


def critical_points_1d():
    """Roots of d/dx[(x^2-1)^2 + 0.2x] = 4x^3 - 4x + 0.2, sorted: min, saddle, min."""
    r = np.sort(np.roots([4, 0, -4, 0.2]).real)
    f = (r**2 - 1) ** 2 + 0.2 * r
    return r, f


def bent_well(x):
    """A ring-shaped valley with minima near (0, +-1): the straight segment between them
    climbs the central hill; the min-max path goes round the ring on the low side (x < 0)."""
    r = ((x**2).sum(1) + 1e-2).sqrt()
    ang = torch.atan2(x[:, 1], x[:, 0])
    return (r - 1) ** 2 * 4 + 0.3 * torch.cos(2 * ang) + 0.15 * x[:, 0]


def minima_of(f, guesses):
    x = torch.tensor(guesses, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], max_iter=200, tolerance_grad=1e-12, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        v = f(x).sum()
        v.backward()
        return v

    opt.step(closure)
    return x.detach()


def test_double_well_saddle_is_exact():
    r, fv = critical_points_1d()
    ends = torch.tensor([[r[0], 0.0], [r[2], 0.0]], dtype=torch.float64)
    # Start from a bent chain: the optimiser must find the straight valley and the saddle.
    p = connect(double_well, ends, np.array([[0, 1]]), PathOptions(steps=800))
    assert p.saddles[0] == pytest.approx(fv[1], abs=1e-4)
    # Dense sampling can miss the continuous maximum by at most the stated tolerance.
    assert p.saddles[0] >= fv[1] - PathOptions().saddle_tol


def test_curved_valley_beats_straight_segment_and_matches_ring_saddle():
    ends = minima_of(bent_well, [[0.0, 1.0], [0.0, -1.0]])
    p = connect(bent_well, ends, np.array([[0, 1]]), PathOptions(steps=1500))
    # The min-max path goes round the ring through angle pi (the lower side, x < 0):
    # the saddle is the max of the 1-D profile of the ring valley there.
    th = torch.linspace(np.pi / 2, 3 * np.pi / 2, 2001, dtype=torch.float64)
    ring = torch.stack([th.cos(), th.sin()], 1)
    ring = minima_of(lambda x: bent_well(x), ring.tolist())  # relax radially onto the valley
    exact = float(bent_well(ring).max())
    assert p.saddles[0] < p.straight[0] - 0.1
    assert p.saddles[0] == pytest.approx(exact, abs=2e-3)


@pytest.fixture(scope="module")
def three_pairs():
    ends = minima_of(bent_well, [[0.0, 1.0], [0.0, -1.0], [1.0, 0.0]])
    opts = PathOptions(steps=400, n_points=12, max_points=12)  # no growth
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    return ends, opts, pairs, connect(bent_well, ends, pairs, opts)


def test_stored_saddle_equals_reevaluated_path_max(three_pairs):
    _, opts, _, p = three_pairs
    for e, pts in enumerate(p.points):
        _, vals = path_profile(bent_well, pts, int(p.densities[e]))
        assert vals.max() == pytest.approx(p.saddles[e], rel=1e-12, abs=1e-12)
        # never above the straight segment, but for a converged path within saddle_tol
        tie = opts.saddle_tol if p.status[e] == "converged" else 1e-12
        assert p.saddles[e] <= p.straight[e] + tie


def test_doubling_density_moves_no_saddle_beyond_tolerance(three_pairs):
    _, opts, _, p = three_pairs
    for e, pts in enumerate(p.points):
        _, vals = path_profile(bent_well, pts, 2 * int(p.densities[e]))
        assert abs(vals.max() - p.saddles[e]) <= opts.saddle_tol


def test_final_saddles_evaluate_only_the_points_each_doubling_adds(three_pairs):
    """The final evaluation at density d, then 2d, ...: each doubling evaluates the midpoints
    of the previous points only, and gives what a fresh evaluation at its density gives."""
    _, opts, _, p = three_pairs
    rows = []

    def counted(x):
        rows.append(x.shape[0])
        return bent_well(x)

    saddles, dens = final_saddles(counted, p.points, opts)
    intervals = [x.shape[0] - 1 for x in p.points]
    assert rows[0] == sum(opts.final_density * i + 1 for i in intervals)
    added = [sum(d * i for i, d in zip(intervals, [opts.final_density] * 3, strict=True))]
    assert rows[1] == added[0]  # the first doubling: one midpoint per previous interval
    for e, x in enumerate(p.points):
        _, vals = path_profile(bent_well, x, int(dens[e]))
        assert vals.max() == pytest.approx(saddles[e], abs=1e-14)


def test_batched_equals_one_pair_at_a_time(three_pairs):
    ends, opts, pairs, p = three_pairs
    for e, pair in enumerate(pairs):
        one = connect(bent_well, ends, pair[None], opts)
        assert one.saddles[0] == pytest.approx(p.saddles[e], abs=1e-10)
        assert torch.allclose(one.points[0], p.points[e], atol=1e-10)
        assert one.steps[0] == p.steps[e]


def test_batched_equals_one_pair_at_a_time_when_chains_grow_apart():
    """A chain grows on its own peaks, with its own L-BFGS memory: pairs whose chains end
    with different numbers of points relax in one batch exactly as each does alone."""
    ends = minima_of(bent_well, [[0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 0.0]])
    pairs = np.array([[0, 1], [0, 2], [1, 2], [0, 3], [2, 3]])
    opts = PathOptions(steps=600, n_points=5, max_points=24, check_every=10)
    p = connect(bent_well, ends, pairs, opts)
    assert len({q.shape[0] for q in p.points}) == 3  # grown apart
    for e, pair in enumerate(pairs):
        one = connect(bent_well, ends, pair[None], opts)
        assert (one.steps[0], one.status[0]) == (p.steps[e], p.status[e])
        assert torch.equal(one.points[0], p.points[e])
        assert one.saddles[0] == p.saddles[e]


def test_history_is_monotone_and_records_convergence(three_pairs):
    _, _, _, p = three_pairs
    for e in range(len(p)):
        h = p.history[e][np.isfinite(p.history[e])]
        assert (np.diff(h) <= 1e-15).all()  # best-so-far never rises
        assert h[0] >= p.saddles[e] - 1e-3
    assert p.history.shape == (3, p.history_steps.size)
    assert p.converged.dtype == bool


def test_dense_points_interpolates_linearly():
    path = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    d = dense_points(path, 4)
    assert d.shape == (9, 2)
    assert torch.allclose(d[2], torch.tensor([0.5, 0.0], dtype=torch.float64))
    assert torch.allclose(d[6], torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert torch.equal(d[-1], path[-1])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_points": 2}, "n_points"),
        ({"steps": 0}, "steps"),
        ({"force_tol": float("nan")}, "force_tol"),
        ({"noisy_steps": -1}, "noisy_steps"),
        ({"max_points": 4}, "max_points"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        PathOptions(**kw)


def test_bad_pairs():
    ends = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="pairs"):
        connect(double_well, ends, np.array([[0, 2]]))


@pytest.fixture(scope="module")
def network_minima():
    """Three trained MLPs on 96 digits, and their objective (full batch, float32)."""
    from core.nets.data import load_dataset
    from core.nets.models import build_model
    from core.nets.objective import NetworkObjective

    data = load_dataset("digits", n_train=96, n_test=32)
    model = build_model("mlp", 8, 1, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-3, batch_size=32, seed=0)
    return obj, adam_minima(obj)


@pytest.mark.usefixtures("one_thread")
def test_connect_then_finish_equals_connect(network_minima):
    """Final saddles later, pair by pair and in any grouping (``finish``), are those that
    ``connect`` computes, to the bit; before them a path reports its maximum at the coarse
    density, which is never above the final saddle."""
    obj, ends = network_minima
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    opts = PathOptions(steps=60, check_density=2, n_points=6)
    full = connect(obj, ends, pairs, opts, step_objective=obj.minibatch)
    lazy = connect(obj, ends, pairs, opts, step_objective=obj.minibatch, final=False)
    assert (lazy.densities == opts.check_density).all() and (lazy.saddles <= full.saddles).all()
    for e in range(3):  # the coarse saddle is the path's maximum at the coarse density
        _, vals = path_profile(obj, lazy.points[e], opts.check_density)
        assert vals.max() == pytest.approx(lazy.saddles[e], rel=1e-6)
    np.testing.assert_allclose(
        finish(obj, ends, lazy, [2, 0], opts), full.saddles[[2, 0]], rtol=1e-6
    )
    assert lazy.densities[1] == opts.check_density  # not asked for: still coarse
    finish(obj, ends, lazy, [0, 1, 2], opts)  # 0 and 2 are final already: left alone
    # the peak search evaluates its points in blocks of other sizes: float32 rounding
    np.testing.assert_array_equal(lazy.densities, full.densities)
    for name in ("saddles", "straight"):
        np.testing.assert_allclose(getattr(lazy, name), getattr(full, name), rtol=1e-6)


@pytest.mark.usefixtures("one_thread")
def test_bfloat16_steps_keep_float32_saddles(network_minima):
    obj, ends = network_minima
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    runs = {}
    for precision in ("float32", "bfloat16"):
        opts = PathOptions(steps=300, check_density=2, precision=precision)
        runs[precision] = connect(obj, ends, pairs, opts, step_objective=obj.minibatch)
    fp, bf = runs["float32"], runs["bfloat16"]
    # the steps did run in bfloat16: the paths differ from the float32 ones
    assert not all(torch.equal(a, b) for a, b in zip(fp.points, bf.points, strict=True))
    low = obj(ends).detach().double().numpy()
    for e, (i, j) in enumerate(pairs):
        # reported saddles are float32 evaluations of the stored path
        _, vals = path_profile(obj, bf.points[e], int(bf.densities[e]))
        assert vals.max() == pytest.approx(bf.saddles[e], rel=1e-6)
        # where both converged by force they agree to 5% of the barrier, where both found no
        # barrier both lie within the tolerance above the higher minimum; bfloat16 gradients
        # may never get below the force tolerance, and then the pair says so
        high = max(low[i], low[j])
        barrier = fp.saddles[e] - high
        if fp.status[e] == bf.status[e] == "converged":
            assert abs(bf.saddles[e] - fp.saddles[e]) <= 0.05 * barrier, (bf.saddles, fp.saddles)
        elif fp.status[e] == bf.status[e] == "no barrier":
            assert max(fp.saddles[e], bf.saddles[e]) <= high + 2 * opts.saddle_tol
        else:
            assert "step cap" in (fp.status[e], bf.status[e])
        assert fp.saddles[e] < fp.straight[e]  # the optimisation did something to compare


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision='float16': must be one of"):
        PathOptions(precision="float16")


def test_screen_is_a_short_half_point_run_and_an_upper_bound(three_pairs, monkeypatch):
    """``core.engine.pairs.screened_saddles``: a tenth of the steps on chains of half the points,
    no growth, one dense evaluation of the chains and none of the straight segments (besides
    the final check of a chain that looks flat); its saddles lie between the optimised ones
    and the straight segments'."""
    import core.engine.paths
    from core.engine.pairs import screened_saddles

    ends, opts, pairs, p = three_pairs
    grad_rows, value_rows, flat_check = [], [], [False]

    def counted(x):  # path steps ask for gradients, evaluations do not
        if not flat_check[0]:
            (grad_rows if x.requires_grad else value_rows).append(x.shape[0])
        return bent_well(x)

    # the no-barrier check's refine-and-final evaluation is not the screen's own
    for name in ("refine_peaks", "final_saddles"):
        real = getattr(core.engine.paths, name)
        wrapped = (lambda f: lambda *a, **k: _flagged(flat_check, f, *a, **k))(real)
        monkeypatch.setattr(core.engine.paths, name, wrapped)

    screen = screened_saddles(counted, ends, pairs, opts)
    n = opts.n_points // 2
    # the gradient scale on the straight chains, then at most a tenth of the steps, each on
    # the chains still active (a converged chain leaves the batch)
    scale, steps = grad_rows[0], grad_rows[1:]
    assert scale == steps[0] == len(pairs) * (n - 2) and len(steps) <= opts.steps // 10
    assert all(b <= a for a, b in zip(steps, steps[1:], strict=False))
    # the endpoints, then the dense points of every chain still running at the end, once (a
    # chain that converged by force has its saddle from the final evaluation instead)
    assert value_rows[0] == len(ends)
    per = (n - 1) * opts.check_density + 1
    assert sum(value_rows[1:]) % per == 0 and 0 < sum(value_rows[1:]) <= len(pairs) * per
    assert (screen >= p.saddles - opts.saddle_tol).all()
    assert (screen <= p.straight + opts.saddle_tol).all()
    assert (screen < p.straight - 0.05).any()  # it already bends round the central hill


def _flagged(flag, f, *a, **k):
    flag[0] = True
    try:
        return f(*a, **k)
    finally:
        flag[0] = False


def test_a_finished_pair_leaves_the_batch(three_pairs):
    """Every step evaluates the chains still running and no others: the gradient rows are
    the scale evaluation plus, per pair, its steps times its interior points."""
    ends, opts, pairs, _ = three_pairs
    rows = []

    def counted(x):
        if x.requires_grad:
            rows.append(x.shape[0])
        return bent_well(x)

    p = connect(counted, ends, pairs, opts)
    inner = opts.n_points - 2  # max_points = n_points here: no growth
    assert rows[0] == len(pairs) * inner  # the gradient scale on the straight segments
    assert sum(rows[1:]) == int(p.steps.sum()) * inner
    assert len(set(p.steps.tolist())) > 1  # the pairs did finish at different steps
    assert rows[-1] < rows[1]


def test_a_peak_between_the_coarse_points_is_no_no_barrier():
    """A ridge narrower than the coarse dense spacing: the checks' points all miss it, but a
    pair is 'no barrier' only when its final saddle agrees, so this pair is not, and its
    saddle shows the ridge (at most its height: a ridge narrower than the finest density
    still reads low, and the pair says it stopped at the step cap)."""
    height, w = 0.5, 0.01

    def ridge(x):  # a shallow bowl with a ridge at x = 0 across every y
        return x[:, 1] ** 2 + 0.01 * x[:, 0] ** 2 + height * torch.exp(-((x[:, 0] / w) ** 2))

    # nodes at x = -1, -0.54, -0.08, ...: no check point comes within 0.07 of the ridge
    ends = torch.tensor([[-1.0, 0.0], [1.3, 0.0]], dtype=torch.float64)
    opts = PathOptions(n_points=6, max_points=6, steps=60, check_density=2, check_every=10)
    p = connect(ridge, ends, np.array([[0, 1]]), opts)
    assert p.status[0] == "step cap"
    assert height / 2 < p.saddles[0] <= height


def slope_with_a_ridge(x):
    """A slope up the x axis with a narrow ridge at x = 0.3 (2-D): from (-1, 0) to (1, 0) the
    ridge is higher than the upper end, but a 5-point chain has no node on it."""
    return x[:, 0] + 1.5 * torch.exp(-((x[:, 0] - 0.3) ** 2) / 0.005) + x[:, 1] ** 2


def test_a_node_moves_onto_a_peak_hidden_between_nodes_and_the_chain_converges():
    from scipy.optimize import minimize_scalar

    ends = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    opts = PathOptions(
        n_points=5, max_points=5, check_every=5, check_density=4, steps=500,
        saddle_tol=1e-7, grad_tol=1e-6,
    )  # fmt: skip
    # every node of the straight chain is below the upper end: nothing could climb
    chain = ends[0] + torch.linspace(0, 1, 5, dtype=torch.float64)[:, None] * (ends[1] - ends[0])
    assert slope_with_a_ridge(chain[1:-1]).max() < slope_with_a_ridge(ends[1:])[0]
    p = connect(slope_with_a_ridge, ends, np.array([[0, 1]]), opts)
    ridge = -minimize_scalar(
        lambda t: -float(slope_with_a_ridge(torch.tensor([[t, 0.0]], dtype=torch.float64))[0]),
        bounds=(0.2, 0.5),
        method="bounded",
        options={"xatol": 1e-12},
    ).fun
    assert p.status[0] == "converged"
    assert p.saddles[0] == pytest.approx(ridge, abs=1e-9)
    assert p.points[0][p.climb[0], 0] == pytest.approx(0.3, abs=0.05)  # climbed onto the ridge
