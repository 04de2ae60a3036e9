"""Tests for core.engine.toy: the analytic landscapes and their exact cubical barcodes."""

from functools import cache

import numpy as np
import pytest
import torch

from core.engine.toy import (
    TOYS,
    ExactBars,
    cubical_h0,
    exact_barcode,
    get_toy,
    grid_values,
    starts_grid,
    sublevel_components,
)

# Local minima of each landscape: critical points with a positive definite Hessian, found by
# Newton's method from a 70 x 70 lattice of starts in the box (minima - saddles + maxima = 1 for
# every toy, as Morse theory demands on a disk where f rises across the edge, so none was
# missed), and the same count of bars on the grid.
N_MINIMA = {"wells": 4, "himmelblau": 4, "camel": 6, "rastrigin": 9, "ring": 3, "muller_brown": 3}
NAMES = sorted(TOYS)
RES = 301  # grid resolution for most tests: about 0.1 s per barcode


@cache
def bars_at(name: str, resolution: int = RES) -> ExactBars:
    return exact_barcode(get_toy(name), resolution)


def newton(fn, points, steps: int = 30):
    """Critical points of fn near points (K, 2), all at once: points, gradients, Hessians."""
    p = torch.as_tensor(points, dtype=torch.float64)
    for step in range(steps + 1):
        q = p.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(fn(q).sum(), q, create_graph=True)  # (K, 2)
        rows = [torch.autograd.grad(grad[:, k].sum(), q, retain_graph=True)[0] for k in (0, 1)]
        hess = torch.stack(rows, dim=1).detach()  # (K, 2, 2)
        if step < steps:
            p = p - torch.linalg.solve(hess, grad.detach())
    return p.detach(), grad.detach(), hess


def union_find_h0(Z, neighbours=8):
    """Test oracle: H0 sublevel persistence over pixels by union-find and the elder rule.

    Pixels enter in order of value (ties by flat index); a pixel joins every already-present
    neighbour's component, and of two merging components the younger (higher birth) dies at
    the entering pixel. Returns sorted (birth, death, birth_idx, death_idx) tuples, zero-length
    bars dropped, the essential bar with death inf and death index -1.
    """
    H, W = Z.shape
    flat = Z.ravel()
    steps = [(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1) if (a, b) != (0, 0)]
    if neighbours == 4:
        steps = [(a, b) for a, b in steps if a == 0 or b == 0]
    parent = {}

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bars = []
    for i in np.lexsort((np.arange(flat.size), flat)):
        parent[i] = i
        r, c = divmod(int(i), W)
        for dr, dc in steps:
            if 0 <= r + dr < H and 0 <= c + dc < W and (j := (r + dr) * W + c + dc) in parent:
                a, b = root(i), root(j)
                if a == b:
                    continue
                old, young = sorted((a, b), key=lambda k: (flat[k], k))
                if flat[i] - flat[young] > 1e-12:
                    bars.append((flat[young], flat[i], young, int(i)))
                parent[young] = old
    (last,) = {root(i) for i in parent}
    bars.append((flat[last], np.inf, last, -1))
    return sorted(bars)


# --------------------------------------------------------------------------- the functions


@pytest.mark.parametrize("name", NAMES)
def test_fn_maps_points_to_values_in_both_dtypes(name):
    toy = get_toy(name)
    thetas = starts_grid(toy, 7)  # (7, 2) float64
    f64 = toy.fn(thetas)
    f32 = toy.fn(thetas.float())
    assert f64.shape == (7,) and f64.dtype == torch.float64
    assert f32.shape == (7,) and f32.dtype == torch.float32
    torch.testing.assert_close(f32.double(), f64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_autograd_gradient_matches_central_differences(name):
    toy = get_toy(name)
    thetas = starts_grid(toy, 5, seed=1).requires_grad_(True)  # (5, 2)
    (grad,) = torch.autograd.grad(toy.fn(thetas).sum(), thetas)
    h = 1e-6
    for k in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[k] = h
        with torch.no_grad():
            central = (toy.fn(thetas + step) - toy.fn(thetas - step)) / (2 * h)
        torch.testing.assert_close(grad[:, k], central, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_function_rises_across_every_edge_of_the_box(name):
    # Outward derivative > 0 on the whole boundary: no minimum can sit on the box's edge.
    toy = get_toy(name)
    xmin, xmax, ymin, ymax = toy.box
    s = torch.linspace(0, 1, 2001, dtype=torch.float64)
    xs, ys = xmin + (xmax - xmin) * s, ymin + (ymax - ymin) * s
    edges = [
        (torch.stack([torch.full_like(s, xmin), ys], 1), (-1.0, 0.0)),
        (torch.stack([torch.full_like(s, xmax), ys], 1), (1.0, 0.0)),
        (torch.stack([xs, torch.full_like(s, ymin)], 1), (0.0, -1.0)),
        (torch.stack([xs, torch.full_like(s, ymax)], 1), (0.0, 1.0)),
    ]
    for points, outward in edges:
        points.requires_grad_(True)
        (grad,) = torch.autograd.grad(toy.fn(points).sum(), points)
        assert (grad @ torch.tensor(outward, dtype=torch.float64)).min() > 0


def test_get_toy_names_the_unknown_and_lists_the_valid():
    assert get_toy("camel") is TOYS["camel"]
    with pytest.raises(ValueError, match="nope"):
        get_toy("nope")
    with pytest.raises(ValueError, match="himmelblau"):
        get_toy("nope")


def test_toys_are_described():
    assert len(TOYS) >= 6
    for name, toy in TOYS.items():
        assert toy.name == name and toy.title and toy.formula and toy.description
        xmin, xmax, ymin, ymax = toy.box
        assert xmin < xmax and ymin < ymax


def test_grid_values_rows_are_y_and_columns_are_x():
    toy = get_toy("muller_brown")  # a box that is not square, so a transpose would show
    xs, ys, Z = grid_values(toy, resolution=21)
    assert xs.shape == ys.shape == (21,) and Z.shape == (21, 21) and Z.dtype == np.float64
    assert (xs[0], xs[-1], ys[0], ys[-1]) == pytest.approx(toy.box)
    for i, j in [(0, 20), (3, 17), (20, 1)]:
        value = toy.fn(torch.tensor([[xs[j], ys[i]]], dtype=torch.float64)).item()
        assert Z[i, j] == pytest.approx(value, rel=1e-12)
    with pytest.raises(ValueError, match="resolution"):
        grid_values(toy, resolution=2)


# ------------------------------------------------------------------- the cubical machinery


def test_cubical_h0_small_picture():
    # Pixels connect through shared corners (8-connectivity):
    #   0 9 3      0 is the global minimum (essential bar); 1 and 2 merge through the 5
    #   9 9 9      (2 dies at 5); 1 and 3 reach 0 only when the 9s enter.
    #   1 5 2
    Z = np.array([[0.0, 9, 3], [9, 9, 9], [1, 5, 2]])
    births, deaths, birth_idx, death_idx = cubical_h0(Z)
    np.testing.assert_array_equal(births, [0, 1, 2, 3])
    np.testing.assert_array_equal(deaths, [np.inf, 9, 5, 9])
    np.testing.assert_array_equal(birth_idx, [0, 6, 8, 2])
    assert death_idx[0] == -1 and death_idx[2] == 7 and Z.ravel()[death_idx[3]] == 9
    #   0 9        diagonal pixels touch at a corner: the 1 joins the 0 as it enters,
    #   9 1        so it makes no bar
    births, deaths, _, _ = cubical_h0(np.array([[0.0, 9], [9, 1]]))
    np.testing.assert_array_equal(births, [0])
    np.testing.assert_array_equal(deaths, [np.inf])


@pytest.mark.parametrize("seed", range(5))
def test_cubical_h0_matches_union_find_on_random_arrays(seed):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(12, 12 + seed))  # distinct values: the pairing is unique
    got = cubical_h0(Z)
    expected = union_find_h0(Z)
    assert sorted(zip(*got, strict=True)) == expected
    # with ties the diagram (the multiset of bars) is still unique; indices may differ
    Zt = rng.integers(0, 6, size=(12, 12)).astype(float)
    got = sorted(zip(*cubical_h0(Zt)[:2], strict=True))
    assert got == [(b, d) for b, d, _, _ in union_find_h0(Zt)]


def test_cubical_h0_rejects_bad_input():
    with pytest.raises(ValueError, match="Z"):
        cubical_h0(np.zeros(5))
    with pytest.raises(ValueError, match="Z"):
        cubical_h0(np.array([[0.0, np.nan]]))


# ----------------------------------------------------------------------- the exact barcodes


@pytest.mark.parametrize("name", NAMES)
def test_exact_barcode_has_one_bar_per_minimum(name):
    bars = bars_at(name)
    K = len(bars.births)
    assert bars.deaths.shape == (K,) and bars.minima.shape == bars.saddles.shape == (K, 2)
    assert np.isinf(bars.deaths).sum() == 1 and np.isinf(bars.deaths[0])
    assert np.all(np.diff(bars.births) >= 0)
    assert np.all(bars.deaths >= bars.births)
    assert np.isnan(bars.saddles[0]).all() and not np.isnan(bars.saddles[1:]).any()
    long = bars.deaths - bars.births > 0.005 * bars.value_range
    assert long.sum() == N_MINIMA[name]
    assert K == N_MINIMA[name]  # and no spurious short bars on the grid either


@pytest.mark.parametrize("name", NAMES)
def test_bars_are_born_at_interior_minima_and_die_at_saddles(name):
    toy, bars = get_toy(name), bars_at(name)
    xmin, xmax, ymin, ymax = toy.box
    step = max(xmax - xmin, ymax - ymin) / (bars.resolution - 1)
    # every bar's birth cell sits next to a true local minimum well inside the box
    p, grad, hess = newton(toy.fn, bars.minima)  # (K, 2), (K, 2), (K, 2, 2)
    assert (grad.norm(dim=1) < 1e-8).all()
    assert (torch.linalg.eigvalsh(hess) > 0).all()
    assert (np.linalg.norm(p.numpy() - bars.minima, axis=1) < 2 * step).all()
    assert ((p[:, 0] > xmin + 5 * step) & (p[:, 0] < xmax - 5 * step)).all()
    assert ((p[:, 1] > ymin + 5 * step) & (p[:, 1] < ymax - 5 * step)).all()
    values = toy.fn(p).detach().numpy()
    assert np.all(values <= bars.births)
    assert np.all(bars.births < values + 0.002 * bars.value_range)
    # every finite bar's death cell sits next to an index-1 saddle at the death value
    s, grad, hess = newton(toy.fn, bars.saddles[1:])
    assert (grad.norm(dim=1) < 1e-8).all()
    eig = torch.linalg.eigvalsh(hess)  # (K - 1, 2) ascending
    assert ((eig[:, 0] < 0) & (eig[:, 1] > 0)).all()
    values = toy.fn(s).detach().numpy()
    np.testing.assert_allclose(values, bars.deaths[1:], atol=0.002 * bars.value_range)


def test_exact_barcodes_match_known_values():
    # Six-hump camel: two global minima at -1.0316285 joined by the saddle f(0, 0) = 0.
    camel = bars_at("camel")
    np.testing.assert_allclose(camel.births[:2], -1.0316285, atol=1e-3)
    assert camel.deaths[1] == pytest.approx(0.0, abs=1e-3)
    # Müller-Brown (values / 100): minima -146.700, -108.167, -80.768, saddles -72.249, -40.665.
    mb = bars_at("muller_brown")
    np.testing.assert_allclose(mb.births, [-1.46700, -1.08167, -0.80768], atol=2e-3)
    np.testing.assert_allclose(mb.deaths, [np.inf, -0.40665, -0.72249], atol=2e-3)
    # Rastrigin-like: global minimum 0 at the origin, a grid point.
    rastrigin = bars_at("rastrigin")
    assert rastrigin.births[0] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(rastrigin.minima[0], [0.0, 0.0], atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_finite_bars_converge_with_resolution(name):
    coarse, fine = bars_at(name, 201), bars_at(name, RES)
    assert len(coarse.births) == len(fine.births)
    tol = 0.01 * fine.value_range
    np.testing.assert_allclose(coarse.births, fine.births, atol=tol)
    np.testing.assert_allclose(coarse.deaths[1:], fine.deaths[1:], atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_finite_bars_agree_at_401_and_801(name):
    coarse, fine = bars_at(name, 401), exact_barcode(get_toy(name), 801)
    assert len(coarse.births) == len(fine.births)
    tol = 0.01 * fine.value_range
    np.testing.assert_allclose(coarse.births, fine.births, atol=tol)
    np.testing.assert_allclose(coarse.deaths[1:], fine.deaths[1:], atol=tol)


# ------------------------------------------------------- components: the teaching identity


@pytest.mark.parametrize("name", NAMES)
def test_components_at_each_level_equal_bars_alive_there(name):
    toy, bars = get_toy(name), bars_at(name, 201)
    _, _, Z = grid_values(toy, 201)
    finite = bars.deaths[1:]
    eps = 1e-9 * bars.value_range
    levels = np.concatenate(
        [bars.births, bars.births + eps, finite, finite - eps, np.quantile(Z, [0.1, 0.5, 0.9])]
    )
    for level in levels:
        labels = sublevel_components(Z, level)
        alive = np.sum((bars.births <= level) & (level < bars.deaths))
        assert labels.max() + 1 == alive, level
        assert set(np.unique(labels)) == set(range(-1, alive)) - (
            {-1} if Z.max() <= level else set()
        )
    # just above the global minimum: one component (two for the camel's twin global minima)
    just_above = sublevel_components(Z, bars.births[0] + eps).max() + 1
    assert just_above == (2 if name == "camel" else 1)
    # between the second birth and the next event (a birth or the first death): two components
    next_event = min(np.append(bars.births[2:], finite.min()))
    if bars.births[1] < next_event:
        assert sublevel_components(Z, (bars.births[1] + next_event) / 2).max() + 1 == 2


def test_components_identity_on_a_random_array():
    Z = np.random.default_rng(7).normal(size=(15, 13))
    births, deaths, _, _ = cubical_h0(Z)
    for level in np.linspace(Z.min(), Z.max(), 41):
        alive = np.sum((births <= level) & (level < deaths))
        assert sublevel_components(Z, level).max() + 1 == alive


# ------------------------------------------------------------------------------ the starts


def test_starts_grid_is_deterministic_spread_and_inside():
    toy = get_toy("muller_brown")
    xmin, xmax, ymin, ymax = toy.box
    state = torch.random.get_rng_state()
    starts = starts_grid(toy, 16)
    assert torch.equal(torch.random.get_rng_state(), state)  # no global seeding
    assert starts.shape == (16, 2) and starts.dtype == torch.float64
    assert torch.equal(starts, starts_grid(toy, 16))
    assert not torch.equal(starts, starts_grid(toy, 16, seed=1))
    assert ((starts[:, 0] > xmin) & (starts[:, 0] < xmax)).all()
    assert ((starts[:, 1] > ymin) & (starts[:, 1] < ymax)).all()
    # a full 4 x 4 lattice: exactly one start in each cell
    col = ((starts[:, 0] - xmin) / (xmax - xmin) * 4).floor()
    row = ((starts[:, 1] - ymin) / (ymax - ymin) * 4).floor()
    assert len(set((row * 4 + col).tolist())) == 16
    assert starts_grid(toy, 10).shape == (10, 2)
    with pytest.raises(ValueError, match="n"):
        starts_grid(toy, 0)
