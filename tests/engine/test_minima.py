"""Minima: batched descent == one start at a time; merging; statuses; bad input."""

import numpy as np
import pytest
import torch

from core.engine.minima import MinimaOptions, descend, find_minima, merge


def three_wells(x):
    """Minima at (-1, 0), (1, 0) and (0, 1.5) of different depths."""
    centres = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.5]], dtype=x.dtype)
    depth = torch.tensor([1.0, 0.7, 0.5], dtype=x.dtype)
    d2 = ((x[:, None, :] - centres[None]) ** 2).sum(2)  # (M, 3)
    return 0.05 * (x**2).sum(1) - (depth * torch.exp(-d2 / 0.5)).sum(1)


STARTS = torch.tensor(
    [[-1.2, 0.3], [-0.8, -0.2], [1.3, 0.1], [0.9, -0.3], [0.1, 1.8], [-0.2, 1.4]],
    dtype=torch.float64,
)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "gd", "fire", "lbfgs"])
def test_batched_descent_equals_loop(optimizer):
    opts = MinimaOptions(
        optimizer=optimizer, lr=0.05, steps=400, grad_tol=1e-8, merge_distance=1e-2
    )
    xb, vb, gb, sb, stb = descend(three_wells, STARTS, opts)
    for i in range(len(STARTS)):
        x1, v1, g1, s1, st1 = descend(three_wells, STARTS[i : i + 1], opts)
        assert torch.allclose(xb[i], x1[0], atol=1e-12)
        assert vb[i] == pytest.approx(v1[0], abs=1e-12)
        assert sb[i] == s1[0] and stb[i] == st1[0]


def test_finds_the_three_minima_and_merges_duplicates():
    m = find_minima(
        three_wells, STARTS, MinimaOptions(lr=0.05, steps=2000, grad_tol=1e-6, merge_distance=1e-2)
    )
    assert len(m) == 3
    assert (np.diff(m.values) > 0).all()  # sorted by value
    assert m.status == ["minimum"] * 3
    assert (m.grad_norms <= 1e-6).all()
    np.testing.assert_array_equal(m.start_of, [0, 0, 1, 1, 2, 2])
    # Each minimum is a critical point: the gradient computed independently vanishes there.
    x = m.thetas.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(three_wells(x).sum(), x)
    assert g.norm(dim=1).max() <= 1e-6


def _counted_descent(optimizer):
    calls = []

    def counted(x):
        calls.append(x.shape[0])
        return three_wells(x)

    opts = MinimaOptions(
        optimizer=optimizer, lr=0.05, steps=2000, grad_tol=1e-8, merge_distance=1e-2
    )
    return calls, descend(counted, STARTS, opts)


@pytest.mark.parametrize("optimizer", ["fire", "lbfgs"])
def test_full_batch_descent_stops_each_start_at_the_gradient_tolerance_and_counts_its_steps(
    optimizer,
):
    """FIRE and L-BFGS check every start at every step on the full objective and drop it at
    once."""
    calls, (x, v, g, status, steps) = _counted_descent(optimizer)
    assert status == ["minimum"] * len(STARTS) and (g <= 1e-8).all()
    steps_calls = calls[:-1]  # the last call evaluates every start once more
    assert steps_calls[0] == len(STARTS)
    assert all(b <= a for a, b in zip(steps_calls, steps_calls[1:], strict=False))
    assert sum(calls[:-1]) == steps.sum() + len(STARTS)  # one row per step, plus the last check


def test_lbfgs_reaches_the_minima_of_fire_in_fewer_evaluations():
    fire_calls, fire = _counted_descent("fire")
    lbfgs_calls, lbfgs = _counted_descent("lbfgs")
    assert torch.allclose(fire[0], lbfgs[0], atol=1e-6)
    assert sum(lbfgs_calls) < 0.5 * sum(fire_calls)


def test_lbfgs_takes_back_a_step_uphill():
    """In Rosenbrock's curved valley L-BFGS overshoots; each step that went uphill is taken
    back (the next point is evaluated from the best one, a shorter step away), and the start
    still converges to (1, 1)."""
    seen = []

    def rosenbrock(x):
        v = (1 - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2
        seen.append((x.detach().clone()[0], float(v[0])))
        return v

    opts = MinimaOptions(optimizer="lbfgs", lr=0.1, steps=500, grad_tol=1e-8)
    x, v, g, status, _ = descend(rosenbrock, torch.tensor([[3.0, -2.0]], dtype=torch.float64), opts)
    assert status == ["minimum"]
    assert torch.allclose(x[0], torch.tensor([1.0, 1.0], dtype=torch.float64), atol=1e-6)
    pts, vals = [p for p, _ in seen[:-1]], [v for _, v in seen[:-1]]
    base, taken_back = 0, 0  # base: the point the next step starts from
    for i in range(1, len(pts) - 1):
        if vals[i] > vals[base]:  # uphill: the next step starts again from base, half as long
            taken_back += 1
            step = (pts[i] - pts[base]).norm()
            assert (pts[i + 1] - pts[base]).norm() <= 0.5 * step * (1 + 1e-9)
        else:
            base = i
    assert taken_back >= 3


def test_step_cap_flags_a_stopping_point_not_a_minimum():
    m = find_minima(three_wells, STARTS[:1], MinimaOptions(lr=1e-3, steps=20, merge_distance=1e-2))
    assert m.status == ["max_steps"]
    assert not m.converged[0]
    assert m.grad_norms[0] > 1e-4


def test_divergent_start_is_left_out_with_reason():
    def f(x):  # the second start sits where the loss is not finite
        return three_wells(x) + torch.where(x[:, 0] > 5, torch.nan, 0.0)

    starts = torch.tensor([[-1.2, 0.3], [6.0, 0.0]], dtype=torch.float64)
    m = find_minima(f, starts, MinimaOptions(lr=0.05, steps=300, merge_distance=1e-2))
    assert len(m) == 1
    assert list(m.failed) == [1] and "non-finite" in m.failed[1]
    np.testing.assert_array_equal(m.start_of, [0, -1])


def test_all_diverged_raises():
    with pytest.raises(ValueError, match="diverged"):
        find_minima(lambda x: x.sum(1) * torch.nan, STARTS, MinimaOptions(steps=5))


def test_merge_groups_by_distance():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.001], [1.0, 0.0]], dtype=torch.float64)
    keep, start_of = merge(x, np.array([0.1, 0.0, 0.5]), ["minimum"] * 3, 0.01)
    assert keep == [1, 2]
    np.testing.assert_array_equal(start_of, [0, 0, 1])


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"optimizer": "sgd"}, "optimizer"),
        ({"lr": -1.0}, "lr"),
        ({"steps": 0}, "steps"),
        ({"grad_tol": float("inf")}, "grad_tol"),
        ({"check_every": True}, "check_every"),
    ],
)
def test_bad_options(kw, match):
    with pytest.raises(ValueError, match=match):
        MinimaOptions(**kw)


def test_bad_starts():
    with pytest.raises(ValueError, match="starts"):
        find_minima(three_wells, torch.zeros(3))
    with pytest.raises(ValueError, match="starts"):
        find_minima(three_wells, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="shape"):
        find_minima(lambda x: x, STARTS)  # returns (M, P), not (M,)
