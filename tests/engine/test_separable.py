"""Tests for core.engine.separable: high-dimensional landscapes with an exact Kunneth barcode."""

import numpy as np
import pytest
import torch

from core.engine.separable import (
    SEPARABLES,
    get_separable,
    make_separable,
    sum_bars,
    well_bars,
)
from core.engine.toy import cubical_h0

EXPECTED = {"sep10": (10, 4), "sep40": (40, 8), "sep100": (100, 12)}  # name -> (dim, minima)


def grad_and_hessians(fn, points):
    """Gradients (K, n) of fn at points (K, n) and Hessians (K, n, n), float64."""
    p = points.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(p).sum(), p)
    hess = [torch.autograd.functional.hessian(lambda x: fn(x[None])[0], q) for q in points]
    return grad, torch.stack(hess)


def segment_max(fn, a, b, n=801):
    """Highest value of fn on the straight segment from a to b."""
    s = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
    with torch.no_grad():
        return fn((1 - s) * a + s * b).max().item()


# ------------------------------------------------------------------ 1-D bars and Kunneth


def test_well_bars_of_a_tilted_double_well():
    # (t^2 - 1)^2 + 0.2 t: minima near -1 and +1, maximum near t = 0.05 at about 1 + 0.2^2 / 8
    bars = well_bars([1.0, 0.2, -2.0, 0.0, 1.0])
    assert len(bars.births) == 2 and bars.deaths[0] == np.inf
    g = np.polynomial.Polynomial([1.0, 0.2, -2.0, 0.0, 1.0])
    assert bars.minima[0] < 0 < bars.minima[1]
    assert abs(g.deriv()(bars.minima).max()) < 1e-12 and abs(g.deriv()(bars.saddles[1])) < 1e-12
    np.testing.assert_allclose(bars.births, g(bars.minima), rtol=1e-14)
    assert bars.deaths[1] == pytest.approx(g(bars.saddles[1]), rel=1e-14)
    assert bars.deaths[1] == pytest.approx(1 + 0.2**2 / 8, abs=1e-4)
    np.testing.assert_array_equal(bars.across, [-1, 0])


def test_well_bars_of_a_quadratic_and_bad_polynomials():
    bars = well_bars([0.0, 0.0, 3.0, 0.0, 0.0])  # zero padding is trimmed
    np.testing.assert_array_equal(bars.births, [0.0])
    np.testing.assert_array_equal(bars.deaths, [np.inf])
    with pytest.raises(ValueError, match="coef"):
        well_bars([0.0, 1.0, 0.0, -1.0])  # odd degree
    with pytest.raises(ValueError, match="coef"):
        well_bars([0.0, 0.0, -1.0])  # negative top term
    with pytest.raises(ValueError, match="degenerate"):
        well_bars([0.0, 0.0, 0.0, 0.0, 1.0])  # t^4: a degenerate minimum


def test_kunneth_bars_match_cubical_persistence_of_a_grid():
    # g1 a tilted double well, g2 a tilted triple well: 2 x 3 = 6 bars
    c1 = np.array([1.0, 0.3, -2.0, 0.0, 1.0])
    c2 = 0.7 * np.array([0.0, -0.25, 4.0, 0.0, -4.0, 0.0, 1.0])
    births, deaths, index, killer = sum_bars([well_bars(c1), well_bars(c2)])
    xs, ys = np.linspace(-1.8, 1.8, 721), np.linspace(-1.9, 1.9, 761)
    Z = npoly_val(ys, c2)[:, None] + npoly_val(xs, c1)[None, :]  # Z[i, j] = g1(x_j) + g2(y_i)
    grid_births, grid_deaths, _, _ = cubical_h0(Z)
    assert len(births) == len(grid_births) == 6
    assert np.isinf(deaths[0]) and np.isinf(grid_deaths[0]) and np.all(np.isfinite(deaths[1:]))
    np.testing.assert_allclose(grid_births, births, atol=1e-4)
    np.testing.assert_allclose(grid_deaths[1:], deaths[1:], atol=1e-4)
    assert sorted(map(tuple, index.tolist())) == [(a, b) for a in range(2) for b in range(3)]
    assert killer[0] == -1 and set(killer[1:]) <= {0, 1}


def npoly_val(t, coef):
    return np.polynomial.polynomial.polyval(t, coef)


def test_warped_two_dimensional_landscape_matches_cubical_persistence():
    # The barcode of F = f o phi equals that of f: a rotated, strongly sheared triple well
    sep = make_separable(2, 1, n_triple=1, seed=3, warp=1.0, condition=1.0)
    points = torch.cat([sep.minima, sep.saddles[1:]])  # (5, 2)
    lo, hi = points.min(0).values - 1.0, points.max(0).values + 1.0
    xs = torch.linspace(lo[0], hi[0], 501, dtype=torch.float64)
    ys = torch.linspace(lo[1], hi[1], 501, dtype=torch.float64)
    Y, X = torch.meshgrid(ys, xs, indexing="ij")  # (R, R) each: row = y, column = x
    with torch.no_grad():
        Z = sep.fn(torch.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape).numpy()
    births, deaths, _, _ = cubical_h0(Z)
    assert len(births) == len(sep.exact_births) == 3
    np.testing.assert_allclose(births, sep.exact_births, atol=1e-3)
    np.testing.assert_allclose(deaths[1:], sep.exact_deaths[1:], atol=1e-3)


# ----------------------------------------------------------- minima, saddles and the warp


@pytest.fixture(scope="module")
def sep10():
    return get_separable("sep10")


def test_minima_are_nondegenerate_minima_at_their_birth_values(sep10):
    grad, hess = grad_and_hessians(sep10.fn, sep10.minima)
    assert grad.abs().max() < 1e-8
    assert torch.linalg.eigvalsh(hess).min() > 1e-2
    with torch.no_grad():
        np.testing.assert_allclose(sep10.fn(sep10.minima).numpy(), sep10.exact_births, atol=1e-12)
    np.testing.assert_array_equal(sep10.values.numpy(), sep10.exact_births)


def test_death_saddles_have_index_one_at_their_death_values(sep10):
    assert torch.isnan(sep10.saddles[0]).all() and sep10.partners[0] == -1
    saddles = sep10.saddles[1:]
    grad, hess = grad_and_hessians(sep10.fn, saddles)
    assert grad.abs().max() < 1e-8
    eig = torch.linalg.eigvalsh(hess)  # (K - 1, n) ascending
    assert (eig[:, 0] < -1e-2).all() and (eig[:, 1] > 1e-2).all()
    with torch.no_grad():
        np.testing.assert_allclose(sep10.fn(saddles).numpy(), sep10.exact_deaths[1:], atol=1e-12)


def test_phi_inverse_undoes_phi_and_rotation_is_orthogonal():
    sep = get_separable("sep40")
    z = torch.randn(50, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert (sep.phi_inverse(sep.phi(z)) - z).abs().max() < 1e-12
    eye = torch.eye(40, dtype=torch.float64)
    assert (sep.rotation.T @ sep.rotation - eye).abs().max() < 1e-12


def test_straight_segments_climb_over_the_saddle_only_when_warped():
    flat = make_separable(10, 2, warp=0.0)
    bent = make_separable(10, 2, warp=0.5)
    np.testing.assert_array_equal(flat.exact_deaths, bent.exact_deaths)
    excess = []
    for sep in (flat, bent):
        rows = []
        for k in range(1, len(sep.minima)):
            top = segment_max(sep.fn, sep.minima[k], sep.minima[sep.partners[k]])
            rows.append(top - sep.exact_deaths[k])
        excess.append(np.array(rows))
    # unwarped, the segment runs along one well axis through the saddle: its top is the saddle
    assert np.abs(excess[0]).max() < 1e-4
    # warped, every segment leaves the curved valley and climbs well above the saddle
    assert excess[1].min() > 0.25 * bent.value_range


# ---------------------------------------------------------------- instances and the API


@pytest.mark.parametrize("name", sorted(SEPARABLES))
def test_named_instances(name):
    sep = get_separable(name)
    dim, k = EXPECTED[name]
    assert sep.dim == dim and sep.minima.shape == sep.saddles.shape == (k, dim)
    assert np.all(np.diff(sep.exact_births) > 0) and np.isinf(sep.exact_deaths).sum() == 1
    assert np.all(sep.exact_deaths[1:] > sep.exact_births[1:]) and sep.value_range > 0
    assert np.all(sep.exact_births[sep.partners[1:]] < sep.exact_deaths[1:])
    starts = sep.starts(2 * k, seed=0)
    f64, f32 = sep.fn(starts), sep.fn(starts.float())
    assert f64.shape == (2 * k,) and f64.dtype == torch.float64 and f32.dtype == torch.float32
    torch.testing.assert_close(f32.double(), f64, rtol=1e-4, atol=1e-4)
    # row m depends on row m only
    torch.testing.assert_close(sep.fn(starts[3:4]), f64[3:4], rtol=1e-13, atol=1e-13)


def test_starts_are_seeded_and_visit_every_minimum(sep10):
    a, b = sep10.starts(9, seed=4), sep10.starts(9, seed=4)
    assert a.shape == (9, 10) and a.dtype == torch.float64 and torch.equal(a, b)
    assert not torch.equal(a, sep10.starts(9, seed=5))
    torch.testing.assert_close(sep10.starts(6, noise=0.0), sep10.minima[[0, 1, 2, 3, 0, 1]])


def test_bad_arguments_raise_value_errors(sep10):
    with pytest.raises(ValueError, match="dim"):
        make_separable(1)
    with pytest.raises(ValueError, match="dim"):
        make_separable(10.0)
    with pytest.raises(ValueError, match="n_multi"):
        make_separable(10, 0)
    with pytest.raises(ValueError, match="n_multi"):
        make_separable(5, 3)  # needs 3 quadratic coordinates to shear into
    with pytest.raises(ValueError, match="n_triple"):
        make_separable(10, 2, n_triple=3)
    with pytest.raises(ValueError, match="warp"):
        make_separable(10, warp=-0.1)
    with pytest.raises(ValueError, match="warp"):
        make_separable(10, warp=float("nan"))
    with pytest.raises(ValueError, match="condition"):
        make_separable(10, condition=0.5)
    with pytest.raises(ValueError, match="seed"):
        make_separable(10, seed=True)
    with pytest.raises(ValueError, match="nope"):
        get_separable("nope")
    with pytest.raises(ValueError, match="n_starts"):
        sep10.starts(0)
    with pytest.raises(ValueError, match="noise"):
        sep10.starts(4, noise=-1.0)
