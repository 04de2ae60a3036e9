"""Splitting at dips, and routes through neighbour legs, on a real network run: honest
saddles, never higher than without."""

import numpy as np
import pytest

from core.engine.options import PROBE_TRUST, RESTART_TRUST
from core.engine.paths import SPLIT, STATUSES
from core.engine.saddles import path_profile
from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.pipeline import objectives, run
from core.runs.store import RunStore
from core.views.dashboard import route_search, route_search_words


def _config(splits: int, neighbours: int = 0, **paths) -> RunConfig:
    """Narrow tanh networks with short path budgets: paths stop at the step cap in the
    basins of minima that no start reached."""
    return RunConfig(
        data=DataConfig(name="digits", n_train=200, n_test=100),
        model=ModelConfig(arch="mlp", width=4, depth=1, activation="tanh"),
        train=TrainConfig(minima=4, optimizer="lbfgs", lr=0.1, steps=5000, l2=1e-2, grad_tol=1e-5),
        paths=PathConfig(steps=150, splits=splits, neighbours=neighbours, **paths),
        device="cpu",
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory, one_thread):
    store = RunStore(tmp_path_factory.mktemp("splits"))
    return run(_config(0), store=store), run(_config(2), store=store), store


def _assert_honest(r, e: int) -> None:
    """Path e of run r runs between its pair's minima and its stored saddle is its maximum."""
    q = r.paths
    assert q.status[e] in STATUSES
    i, j = q.pairs[e]
    assert np.array_equal(q.points[e][0].numpy(), r.minima.thetas[i].numpy())
    assert np.array_equal(q.points[e][-1].numpy(), r.minima.thetas[j].numpy())
    obj, _ = objectives(r.config)
    _, vals = path_profile(obj, q.points[e], int(q.densities[e]))
    assert vals.max() == pytest.approx(q.saddles[e], rel=1e-6)  # the stored path's maximum


def test_split_paths_are_honest_and_never_higher(both):
    plain, split, _ = both
    assert np.allclose(plain.minima.values, split.minima.values)  # the same minima
    p, q = plain.paths, split.paths
    assert (q.via == SPLIT).sum() >= 1  # the setting does something here
    assert (p.via != SPLIT).all()
    assert (q.saddles <= p.saddles + 1e-12).all()  # a replaced path is lower, others equal
    for e in np.flatnonzero(q.via == SPLIT):
        assert q.saddles[e] < p.saddles[e]
        _assert_honest(split, e)
    # deaths are min-max routes over the saddles: none rises, so no bar grows
    assert (split.barcode.deaths <= plain.barcode.deaths + 1e-12).all()
    assert split.summary.to_score_sum <= plain.summary.to_score_sum + 1e-12


def test_neighbour_routes_are_honest_and_never_higher(both):
    _, split, store = both
    nb = run(_config(2, neighbours=4), store=store)
    assert np.allclose(nb.minima.values, split.minima.values)
    p, q = split.paths, nb.paths
    lower = np.flatnonzero(q.saddles < p.saddles - 1e-12)
    assert lower.size >= 1  # the setting does something here
    assert (q.saddles <= p.saddles + 1e-12).all()
    for e in lower:
        assert q.via[e] != -1
        _assert_honest(nb, e)
    assert (nb.barcode.deaths <= split.barcode.deaths + 1e-12).all()
    # the narrower search (the nearer 2 of the 4 legs) lies between none and all of them
    assert (q.saddles <= q.narrow + 1e-12).all() and (q.narrow <= p.saddles + 1e-12).all()
    half, full, agree = route_search(nb)
    assert full == nb.summary.to_score_sum
    assert full - 1e-12 <= half <= split.summary.to_score_sum + 1e-12
    assert agree == (half - full <= max(0.03 * half, nb.config.paths.saddle_tol * 3))
    assert f"{half:.4g}" in route_search_words(nb) and route_search(split) is None


def test_restarts_pool_searches_never_above_either(both):
    """A restart relaxes every pair again with the trust radius x 1/4; the pooled routes lie
    at or below both the first search's and the restart's own, and the narrower reading
    (without the restart) is the first search's routes."""
    _, split, store = both
    pooled = run(_config(2, restarts=1), store=store)
    alone = run(_config(2, max_move=0.2 * RESTART_TRUST[0]), store=store)
    assert np.allclose(pooled.minima.values, alone.minima.values)
    p, q, a = split.paths, pooled.paths, alone.paths
    assert np.array_equal(p.pairs, a.pairs) and np.array_equal(p.pairs, q.pairs)
    assert (q.saddles <= np.minimum(p.saddles, a.saddles) + 1e-12).all()
    lower = np.flatnonzero(q.saddles < p.saddles - 1e-12)
    assert lower.size >= 1  # the restart found lower routes here
    for e in lower:
        _assert_honest(pooled, e)
    assert (q.steps >= p.steps + a.steps).all()  # both searches' steps are the pair's
    assert (q.saddles <= q.narrow + 1e-12).all() and (q.narrow <= p.saddles + 1e-12).all()
    # the narrower reading is the first search's barcode, saddles included: where the restart
    # relaxed a lower path between the same two minima, not that one
    half, full, _ = route_search(pooled)
    assert half == pytest.approx(split.summary.to_score_sum, abs=1e-9)
    assert full == pooled.summary.to_score_sum <= split.summary.to_score_sum + 1e-12
    assert "without its restart (trust radius x0.25)" in route_search_words(pooled)


def test_a_restart_never_raises_a_run_with_neighbour_legs(both):
    """Neighbour legs over the pooled minima include every leg of the search without the
    restart, so no saddle rises, and the narrower reading is that search's saddles."""
    *_, store = both
    nb = run(_config(2, neighbours=4), store=store)
    pooled = run(_config(2, neighbours=4, restarts=1), store=store)
    p, q = nb.paths, pooled.paths
    assert (q.saddles <= p.saddles + 1e-12).all()
    assert (q.saddles < p.saddles - 1e-6).any()  # the restart found lower routes here
    assert q.narrow == pytest.approx(p.saddles, abs=1e-9)
    assert pooled.summary.to_score_sum <= nb.summary.to_score_sum + 1e-12


def test_the_probe_searches_the_bars_ends_again_and_never_raises(both):
    """The probe relaxes the pairs across the passes that end bars again at the
    ``PROBE_TRUST`` radii: no saddle rises, the pairs it lowers run along honest paths, only
    the probed pairs spend more steps, and the narrower reading is the run without the probe."""
    *_, store = both
    pooled = run(_config(2), store=store)
    probed = run(_config(2, probe=True), store=store)
    p, q = pooled.paths, probed.paths
    assert np.array_equal(p.pairs, q.pairs)
    assert (q.saddles <= p.saddles + 1e-12).all()
    lower = np.flatnonzero(q.saddles < p.saddles - 1e-6)
    assert lower.size >= 1  # the probe found lower passes here
    for e in lower:
        _assert_honest(probed, e)
    ends = {tuple(x) for x in pooled.barcode.passes(1e-4).tolist()}
    probed_rows = np.array([tuple(x) in ends for x in p.pairs.tolist()])
    assert probed_rows.any() and not probed_rows.all()
    assert (q.steps[probed_rows] > p.steps[probed_rows]).all()
    assert np.array_equal(q.steps[~probed_rows], p.steps[~probed_rows])
    assert (q.saddles <= q.narrow + 1e-12).all() and (q.narrow <= p.saddles + 1e-12).all()
    half, full, agree = route_search(probed)
    assert half == pytest.approx(pooled.summary.to_score_sum, abs=1e-9)
    assert full == probed.summary.to_score_sum < half
    words = route_search_words(probed)
    assert "without its probe of the passes that end bars" in words
    assert all(f"x{t:g}" in words for t in PROBE_TRUST)
