"""Saddle certificates: gradient and Lanczos eigenvalues at the peak of each path."""

import numpy as np
import pytest
import torch
from test_paths import bent_well, critical_points_1d, double_well, minima_of

from core.engine.certify import certificate_reason, certify, hvp, lowest_eigenvalues
from core.engine.paths import PathOptions, connect
from core.engine.toy import get_toy

TIGHT = PathOptions(grad_tol=1e-7, saddle_tol=1e-8)


def test_climbing_point_lands_on_the_analytic_saddle_and_is_certified():
    """(x^2 - 1)^2 + 0.2 x + y^2: the saddle is (r, 0) with r the middle root of
    4x^3 - 4x + 0.2; its Hessian is diag(12 r^2 - 4, 2): one negative eigenvalue."""
    r, fv = critical_points_1d()
    ends = torch.tensor([[r[0], 0.0], [r[2], 0.0]], dtype=torch.float64)
    p = connect(double_well, ends, np.array([[0, 1]]), TIGHT)
    certify(double_well, p, TIGHT)
    assert p.status[0] == "converged"
    assert p.saddles[0] == pytest.approx(fv[1], abs=1e-12)
    peak = p.points[0][int(torch.argmax(double_well(p.points[0])))]
    np.testing.assert_allclose(peak.numpy(), [r[1], 0.0], atol=1e-7)
    assert p.peak_grad[0] <= TIGHT.grad_tol
    np.testing.assert_allclose(p.eigs[0], [12 * r[1] ** 2 - 4, 2.0], rtol=1e-6)
    assert p.certified[0]
    assert certificate_reason(p, 0, TIGHT).startswith("certified index-1 saddle")


def test_a_peak_on_a_slope_is_not_certified():
    """Stop the chain after two steps on the ring: its highest point is the top of the
    straight segment over the central hill, a maximum along the segment on the hillside."""
    ends = minima_of(bent_well, [[0.0, 1.0], [0.0, -1.0]])
    opts = PathOptions(steps=2, grad_tol=1e-7)
    p = connect(bent_well, ends, np.array([[0, 1]]), opts)
    certify(bent_well, p, opts)
    assert p.status[0] == "step cap" and not p.certified[0]
    assert np.isnan(p.eigs[0]).all()  # nothing converged to certify
    assert "did not converge" in certificate_reason(p, 0, opts)
    # the same chain judged as if it had converged: its peak is on a slope
    p.status[0], p.climb[0] = "converged", int(torch.argmax(bent_well(p.points[0])))
    certify(bent_well, p, opts)
    assert p.peak_grad[0] > opts.grad_tol and not p.certified[0]
    assert "on a slope" in certificate_reason(p, 0, opts)


def test_minimum_is_not_an_index_one_saddle():
    """At a minimum no eigenvalue is negative; at a maximum two are."""
    x = torch.tensor([[-1.0241203, 0.0]], dtype=torch.float64)
    low, _, _ = lowest_eigenvalues(double_well, x)
    assert (low > 0).all()
    bump = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    low, _, _ = lowest_eigenvalues(lambda t: -(t**2).sum(1), bump)
    np.testing.assert_allclose(low[0], [-2.0, -2.0], atol=1e-12)


def test_batched_hessian_vector_products_equal_the_hessian_row_by_row():
    toy = get_toy("muller_brown")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 2, generator=g, dtype=torch.float64) - 0.5
    v = torch.randn(5, 2, generator=g, dtype=torch.float64)
    got = hvp(toy.fn, x, v)
    for i in range(5):
        h = torch.autograd.functional.hessian(lambda t: toy.fn(t[None])[0], x[i])
        torch.testing.assert_close(got[i], h @ v[i], rtol=1e-10, atol=1e-12)


def test_network_hessian_vector_products_equal_autograd_in_float64():
    """The MLP's fused hand-written gradient has no second derivative: the certificate
    evaluates through the objective's twice-differentiable twin."""
    from core.nets.data import load_dataset
    from core.nets.models import build_model
    from core.nets.objective import NetworkObjective

    data = load_dataset("digits", n_train=64, n_test=16)
    model = build_model("mlp", 4, 1, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-3, seed=0)
    g = torch.Generator().manual_seed(1)
    p = sum(t.numel() for t in model.parameters())
    x = 0.3 * torch.randn(3, p, generator=g, dtype=torch.float64)
    v = torch.randn(3, p, generator=g, dtype=torch.float64)
    got = hvp(obj.twice_differentiable(), x, v)
    for i in range(3):
        xi = x[i].clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(
            obj.twice_differentiable()(xi[None]).sum(), xi, create_graph=True
        )
        (want,) = torch.autograd.grad((gi * v[i]).sum(), xi)
        torch.testing.assert_close(got[i], want, rtol=1e-8, atol=1e-10)


def test_a_positive_ritz_value_does_not_stop_lanczos_before_the_negative_eigenvalue_shows():
    """A saddle in 40 dimensions whose one negative direction is orthogonal to the first Lanczos
    vector: the first Ritz values are all positive, with small residuals. Lanczos must go on
    until the negative eigenvalue appears, not read 'no negative eigenvalue' from them."""
    p = 40
    diag = torch.linspace(1.0, 2.0, p, dtype=torch.float64)
    diag[0] = -0.5

    def saddle(x):
        return 0.5 * (x**2 * diag).sum(1)

    x = torch.zeros(1, p, dtype=torch.float64)
    start = torch.ones(1, p, dtype=torch.float64)
    start[0, 0] = 0.0  # no component along the negative direction
    low, res, _ = lowest_eigenvalues(saddle, x, start=start)
    assert low[0, 0] == pytest.approx(-0.5, abs=1e-8)
    assert 1.0 - 1e-9 <= low[0, 1] <= 2.0  # the second: an upper bound of 1.0, positive
