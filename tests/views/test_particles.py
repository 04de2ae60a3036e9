"""The Learn page's noisy particles: minima matched by place, counts equal to toy_escape's, and
the drawn end points judged as the counts are."""

from __future__ import annotations

import numpy as np
import pytest

from core.engine.escape import toy_escape
from core.views.learn import toy_flood
from core.views.particles import match_minima, throw_particles


def test_match_minima_pairs_nearest_first_and_each_engine_minimum_once():
    #   grid:   a(0,0)        b(1,0)        c(5,5)
    #   engine: 0 (1.05, 0)   1 (0.02, 0)   (nothing near c)
    grid = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    engine = np.array([[1.05, 0.0], [0.02, 0.0]])
    assert match_minima(grid, engine, near=0.1).tolist() == [1, 0, -1]
    assert match_minima(grid, engine[:1], near=0.1).tolist() == [-1, 0, -1]
    assert match_minima(grid, engine, near=0.01).tolist() == [-1, -1, -1]


@pytest.mark.parametrize("noise", [0.5, 1.5])
def test_counts_are_toy_escapes_and_the_end_points_say_the_same(noise):
    flood = toy_flood("wells", resolution=201, every=1)
    ps = throw_particles("wells", flood, noise, repeats=20)
    _, res = toy_escape("wells", noise=noise, repeats=20)
    escaped, settled, prob = ps.counts()
    assert (ps.vertex >= 0).all() and sorted(ps.vertex.tolist()) == [0, 1, 2, 3]
    assert escaped.tolist() == res.escaped[ps.vertex].tolist()
    assert settled.tolist() == res.settled[ps.vertex].tolist()
    np.testing.assert_allclose(prob, res.probability[ps.vertex])
    per_start = [int(ps.escaped[ps.start == k].sum()) for k in range(len(flood))]
    assert per_start == escaped.tolist()
