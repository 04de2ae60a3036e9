"""Chains through a third minimum: joined from their legs, with the legs' exact saddles."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from test_paths import minima_of

from core.engine.certify import certify
from core.engine.joins import through
from core.engine.pairs import connect_all
from core.engine.paths import STATUSES, PathOptions, Paths, connect
from core.engine.saddles import path_profile

ANGLES = np.radians([0.0, 60.0, 120.0, 180.0])
DEPTHS = (1.0, 0.8, 1.2, 0.9)


def wells_on_an_arc(x):
    """Four wells on the upper half of a ring valley of radius 2 (2-D): the straight segment
    between two wells that are not neighbours cuts across the ring's high middle, while the
    min-max path follows the ring through the wells in between."""
    r = x.norm(dim=1)
    w = sum(
        d * torch.exp(-((x[:, 0] - 2 * np.cos(a)) ** 2 + (x[:, 1] - 2 * np.sin(a)) ** 2) / 0.5)
        for a, d in zip(ANGLES, DEPTHS, strict=True)
    )
    return (r - 2) ** 2 - w


def _polar(r: float, t: float) -> float:
    return float(
        wells_on_an_arc(torch.tensor([[r * np.cos(t), r * np.sin(t)]], dtype=torch.float64))[0]
    )


def ridge(a: float, b: float) -> float:
    """The exact saddle between the wells at angles a < b (neighbours): the maximum over the
    angle of the minimum over the radius (at an index-1 saddle both derivatives vanish)."""

    def valley(t):
        return minimize_scalar(
            lambda r: _polar(r, t), bounds=(1.0, 3.0), method="bounded", options={"xatol": 1e-12}
        ).fun

    return -minimize_scalar(
        lambda t: -valley(t), bounds=(a, b), method="bounded", options={"xatol": 1e-10}
    ).fun


@pytest.fixture(scope="module")
def row():
    m = minima_of(wells_on_an_arc, [[2 * np.cos(a), 2 * np.sin(a)] for a in ANGLES])
    opts = PathOptions(saddle_tol=1e-7, grad_tol=1e-6, check_density=4, n_points=7)
    values = wells_on_an_arc(m).numpy()
    return m, values, opts


def _angles(m, i):
    """The angles of minima i and i + 1."""
    return tuple(float(torch.atan2(m[k, 1], m[k, 0])) for k in (i, i + 1))


def test_through_finds_the_minimum_a_chain_runs_through(row):
    m, values, _ = row
    x = torch.stack([m[0] + t * (m[3] - m[0]) for t in torch.linspace(0, 1, 7)])[None]
    x[0, 2] = m[1] + 0.01  # a node next to minimum 1, another next to 2
    x[0, 4] = m[2] - 0.01
    nodes = wells_on_an_arc(x[0]).numpy()[None]
    every = {(i, j) for i in range(4) for j in range(i + 1, 4)}
    pair = np.array([[0, 3]])
    assert through(x, nodes, m, values, pair, every)[0] in (1, 2)
    # no leg to join from: not through anything
    assert through(x, nodes, m, values, pair, every - {(0, 1), (0, 2)})[0] == -1
    # a minimum above the pair's higher end is never one to join through
    high = values.copy()
    high[[1, 2]] = values.max() + 1
    assert through(x, nodes, m, high, pair, every)[0] == -1


def test_chains_through_a_minimum_are_joined_with_the_exact_saddles(row):
    m, values, opts = row
    pairs = np.array([[i, j] for i in range(4) for j in range(i + 1, 4)])
    p = connect(wells_on_an_arc, m, pairs, opts)
    certify(wells_on_an_arc, p, opts)
    exact = {(i, i + 1): ridge(*_angles(m, i)) for i in range(3)}
    for e, (i, j) in enumerate(p.pairs):
        assert p.status[e] in STATUSES
        want = max(exact[k, k + 1] for k in range(i, j))  # over every ridge in between
        assert p.saddles[e] == pytest.approx(want, abs=1e-9)
        _, vals = path_profile(wells_on_an_arc, p.points[e], int(p.densities[e]))
        assert vals.max() == pytest.approx(p.saddles[e], abs=1e-12)  # honest: the stored path's
        assert p.certified[e]  # a joined path's top is its higher leg's certified saddle
        if p.via[e] >= 0:
            assert p.via[e] in range(i + 1, j)  # joined at a minimum in between
        else:
            assert p.steps[e] > 0
    assert (p.via[p.pairs[:, 1] - p.pairs[:, 0] == 1] == -1).all()  # neighbours: their own
    assert (p.via >= 0).sum() >= 2


def test_joins_cost_fewer_evaluations_and_leave_the_barcode(row):
    """The same pairs one at a time (no legs to join from) against one batch with joins."""
    m, values, opts = row
    pairs = np.array([[i, j] for i in range(4) for j in range(i + 1, 4)])
    count = {"batch": 0, "alone": 0}

    def counted(key):
        def f(x):
            count[key] += x.shape[0]
            return wells_on_an_arc(x)

        return f

    batch = connect(counted("batch"), m, pairs, opts)
    alone = [connect(counted("alone"), m, q[None], opts) for q in pairs]
    np.testing.assert_allclose(batch.saddles, [a.saddles[0] for a in alone], atol=1e-7)
    assert (batch.via >= 0).any()
    assert count["batch"] < 0.9 * count["alone"]  # 2,421 against 2,907 when written


def test_connect_all_joins_across_its_rounds(row):
    """``connect_all`` relaxes the pairs of the lowest minimum first; a later chain may be
    joined from those legs, and nothing is left unjoined."""
    m, values, opts = row
    p = connect_all(wells_on_an_arc, m, values, opts)
    assert set(p.status) <= set(STATUSES)
    assert (p.via >= 0).any()
    exact = [ridge(*_angles(m, i)) for i in range(3)]
    for e, (i, j) in enumerate(p.pairs):
        assert p.saddles[e] == pytest.approx(max(exact[i:j]), abs=1e-9)


def test_the_joins_are_stored_and_older_records_read_as_none(row):
    m, values, opts = row
    pairs = np.array([[i, j] for i in range(4) for j in range(i + 1, 4)])
    p = connect(wells_on_an_arc, m, pairs, opts)
    certify(wells_on_an_arc, p, opts)  # as a run stores them
    d = p.to_dict()
    np.testing.assert_array_equal(Paths.from_dict(d, p.points).via, p.via)
    del d["via"]  # a record written before paths were joined
    np.testing.assert_array_equal(Paths.from_dict(d, p.points).via, -1)
