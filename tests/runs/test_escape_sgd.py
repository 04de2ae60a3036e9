"""SGD escapes from a stored run: per-row minibatch gradients equal a loop, the experiment
is reproducible, saved next to the run and read back, and bad settings are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.escape import RULE
from core.nets.objective import OnExamples
from core.runs.escape import (
    escape,
    escape_saved,
    lr_sweep,
    minibatch_grads,
    result_path,
    saved_results,
)
from core.runs.files import write_json
from core.runs.pipeline import objectives

FAST = dict(batch_size=16, steps=15, repeats=3, descent_steps=5)  # too short to settle
SETTLED = dict(batch_size=16, steps=15, repeats=3, descent_steps=100)  # every one settles


def test_minibatch_grads_equal_a_loop_over_rows(tiny_runs):
    obj, _ = objectives(tiny_runs.run.config)
    thetas = tiny_runs.run.minima.thetas
    idx = torch.randint(
        0, obj.n_train, (len(thetas), 16), generator=torch.Generator().manual_seed(0)
    )
    batched = minibatch_grads(obj, thetas, idx)  # (K, P), each row its own examples
    for m in range(len(thetas)):
        on = OnExamples(obj, obj.x_train[idx[m]], obj.y_train[idx[m]])
        _, g = on.values_and_grads(thetas[m : m + 1])
        torch.testing.assert_close(batched[m], g[0], rtol=1e-5, atol=1e-6)


def test_escape_counts_are_consistent_and_reproducible(tiny_runs):
    run = tiny_runs.run
    a = escape(run, lr=0.5, seed=3, **SETTLED)
    b = escape(run, lr=0.5, seed=3, **SETTLED)
    assert a.to_dict() | {"seconds": 0} == b.to_dict() | {"seconds": 0}
    k = len(run.minima)
    assert a.escaped.shape == (k,) and a.repeats == 3 and a.extra == {"run_id": run.run_id}
    # 100 full-batch steps settle every trajectory of the tiny run, and none escapes
    assert a.unsettled.tolist() == a.diverged.tolist() == [0] * k
    assert a.settled.tolist() == [3] * k and a.escaped.tolist() == [0] * k
    assert a.probability.tolist() == [0.0] * k and not a.inconclusive
    assert a.lengths.tolist() == run.barcode.segment_of().tolist()
    lo, hi = a.interval.T
    assert np.all((lo <= a.probability) & (a.probability <= hi))


def test_unsettled_trajectories_are_left_out_of_the_probability(tiny_runs):
    # 5 descent steps after 15 SGD steps at lr 0.5: nothing has come back below its
    # threshold yet; under the old rule all 9 counted as escapes
    a = escape(tiny_runs.run, lr=0.5, seed=3, **FAST)
    assert a.unsettled.tolist() == [3, 3, 3] and a.escaped.tolist() == [0, 0, 0]
    assert a.settled.tolist() == [0, 0, 0] and np.isnan(a.probability).all()
    assert a.inconclusive and a.correlation.n == 0
    # a high lr on the width-4 run: some settle outside their basin, some do not settle
    b = escape(tiny_runs.other, lr=1.0, seed=3, batch_size=16, steps=50, repeats=4,
               descent_steps=200)  # fmt: skip
    assert b.escaped.sum() > 0 and b.unsettled.sum() > 0
    assert np.all(b.escaped + b.unsettled + b.diverged <= 4)
    assert np.all(b.stored_arrivals <= b.escaped)
    keep = b.settled > 0
    assert b.probability[keep].tolist() == (b.escaped[keep] / b.settled[keep]).tolist()


def test_results_of_an_older_rule_are_not_read(tiny_runs, tmp_path):
    store, run_id = tiny_runs.store, tiny_runs.run.run_id
    new, _ = escape_saved(store, run_id, lr=0.25, seed=7, **FAST)
    old = new.to_dict()
    old["settings"] = {k: v for k, v in old["settings"].items() if k != "rule"}
    path = result_path(store, run_id, old["settings"])  # where rule 1 saved it
    assert path != result_path(store, run_id, new.settings)
    write_json(path, old | {"escaped": [3, 3, 3]})  # rule 1 counted the unsettled
    try:
        assert all(r.settings["rule"] == RULE for r in saved_results(store, run_id))
        assert any(r.to_dict() == new.to_dict() for r in saved_results(store, run_id))
    finally:
        path.unlink()


def test_results_are_saved_next_to_the_run_and_reused(tiny_runs, monkeypatch):
    store, run_id = tiny_runs.store, tiny_runs.run.run_id
    first, saved = escape_saved(store, run_id, lr=0.2, seed=5, **FAST)
    assert not saved
    path = result_path(store, run_id, first.settings | {"format": 1, "rule": RULE})
    assert path.parent == store.dir(run_id) and path.name.startswith("escape-") and path.exists()

    def fail(*a, **k):
        raise AssertionError("computed again")

    monkeypatch.setattr("core.runs.escape.escape", fail)
    again, saved = escape_saved(store, run_id, lr=0.2, seed=5, **FAST)
    assert saved and again.to_dict() == first.to_dict()
    assert [r.to_dict() for _, r in lr_sweep(store, run_id, [0.2], seed=5, **FAST)] == [
        first.to_dict()
    ]
    assert any(r.to_dict() == first.to_dict() for r in saved_results(store, run_id))


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
        ({"lr": -1.0}, "lr must be a finite number > 0, got -1.0"),
        ({"repeats": 0}, "repeats must be an int > 0, got 0"),
        ({"batch_size": 10_000}, "batch_size must be at most 300"),
    ],
)
def test_bad_settings_are_refused(tiny_runs, kw, words):
    with pytest.raises(ValueError, match=words):
        escape(tiny_runs.run, **(FAST | kw))
