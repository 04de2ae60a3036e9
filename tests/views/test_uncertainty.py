"""Bar uncertainty: re-evaluation on data subsets and spread over seeds."""

import numpy as np
import pytest

from core.views.analysis import run_objective
from core.views.plots import barcode_figure, diagram_figure
from core.views.uncertainty import (
    reevaluate,
    seed_spread,
    subsample_indices,
    subsample_objective,
    subsample_spread,
)


def test_subsample_indices():
    subsets = subsample_indices(10, 3, 0.5, seed=1)
    assert [len(s) for s in subsets] == [5, 5, 5]
    assert all(np.all(np.diff(s) > 0) and s.max() < 10 for s in subsets)
    assert not np.array_equal(subsets[0], subsets[1])
    assert [s.tolist() for s in subsample_indices(4, 2, 1.0, seed=0)] == [[0, 1, 2, 3]] * 2
    assert [s.tolist() for s in subsets] == [s.tolist() for s in subsample_indices(10, 3, 0.5, 1)]
    with pytest.raises(ValueError, match="fraction=0"):
        subsample_indices(10, 3, 0, seed=0)
    with pytest.raises(ValueError, match="n_subsamples=0"):
        subsample_indices(10, 0, 0.5, seed=0)


def test_reevaluation_on_the_full_data_reproduces_the_stored_barcode(tiny_runs):
    r = tiny_runs.run
    obj = run_objective(r)
    values, saddles = reevaluate(r, obj)
    assert np.allclose(values, r.minima.values, atol=1e-6)
    pairs = np.asarray(r.paths.pairs)
    assert np.allclose(saddles[pairs[:, 0], pairs[:, 1]], r.paths.saddles, atol=1e-6)
    every = subsample_objective(obj, np.arange(obj.n_train))
    assert np.allclose(reevaluate(r, every)[1], saddles, atol=1e-6)


@pytest.mark.parametrize("n", [1, 3])
def test_subsets_equal_to_the_full_data_give_zero_spread(tiny_runs, n):
    r = tiny_runs.run
    sp = subsample_spread(r, n_subsamples=n, fraction=1.0, objective=run_objective(r))
    assert sp.n_subsamples == n
    for kind in ("std", "interval"):
        err = sp.errors(kind)
        assert sorted(err) == list(range(len(r.barcode)))
        assert np.allclose([e for pair in err.values() for e in pair], 0, atol=1e-6)
    assert np.allclose(sp.births, np.asarray(r.minima.values)[None], atol=1e-6)
    assert np.allclose(sp.to_scores, r.barcode.to_score(), atol=1e-5)
    assert sp.essential_changes == 0


def test_half_subsets_spread_and_feed_the_figures(tiny_runs):
    r = tiny_runs.run
    sp = subsample_spread(r, n_subsamples=4, fraction=0.5, seed=3, objective=run_objective(r))
    err = sp.errors()
    births = np.array([err[k][0] for k in range(len(r.barcode))])
    assert np.all(births > 0)
    assert births == pytest.approx(sp.births.std(0, ddof=1))
    ess = int(r.barcode.minimum[0])
    assert err[ess][1] == 0.0  # the essential bar has no death to spread
    rows = sp.table()
    assert [row["minimum"] for row in rows] == list(range(len(r.barcode)))
    for fig in (barcode_figure(r.barcode, errors=err), diagram_figure(r.barcode, errors=err)):
        assert any(t.error_x is not None and t.error_x.array is not None for t in fig.data)


def test_seed_spread(tiny_runs):
    runs = [tiny_runs.run, tiny_runs.other]
    ss = seed_spread(runs)
    assert ss.to_sum.tolist() == [r.barcode.to_score() for r in runs]
    assert ss.ranked.shape == (2, max(len(r.barcode) - 1 for r in runs))
    longest = [r.barcode.to_score("max") for r in runs]
    mean, std = ss.rank_spread()
    assert mean[0] == pytest.approx(np.mean(longest))
    assert std[0] == pytest.approx(np.std(longest, ddof=1))
    assert ss.summary()["TO sum max"] == max(ss.to_sum)
    with pytest.raises(ValueError, match="at least one finished run"):
        seed_spread([])
