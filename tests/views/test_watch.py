"""Watch the engine: the final snapshot is connect's path, and its saddle is the exact one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.options import ANALYTIC, PathOptions
from core.engine.paths import connect
from core.engine.toy import get_toy
from core.views.learn import toy_flood
from core.views.watch import CAPS, exact_saddle, snapshots


def test_final_snapshot_is_connects_saddle_and_the_exact_one():
    flood = toy_flood("wells")
    fn = get_toy("wells").fn
    a, b = flood.minima[0], flood.minima[1]  # grid minima A and B; the engine relaxes them too
    snaps = snapshots(fn, a, b)
    assert [s.cap for s in snaps] == [*CAPS, None]
    assert [s.steps for s in snaps] == sorted(s.steps for s in snaps)
    minima = torch.as_tensor(np.stack([a, b]), dtype=torch.float64)
    ref = connect(fn, minima, np.array([[0, 1]]), PathOptions(**ANALYTIC["paths"]))
    assert snaps[-1].saddle == ref.saddles[0]
    assert snaps[-1].status == "converged"
    # B merges into A at the level of their saddle (the flood's death of B)
    exact = exact_saddle(flood, 0, 1)
    assert exact == flood.deaths[1]
    assert snaps[-1].saddle == pytest.approx(exact, abs=ANALYTIC["paths"]["saddle_tol"])
    assert snaps[-1].profile.max() <= snaps[-1].saddle + 1e-12
    assert snaps[0].saddle >= snaps[-1].saddle - 1e-9  # the first chain is higher


def test_exact_saddle_needs_two_minima():
    with pytest.raises(ValueError, match="two minima"):
        exact_saddle(toy_flood("wells", resolution=201, every=1), 1, 1)
