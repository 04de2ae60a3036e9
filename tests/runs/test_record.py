"""The typed run record: every part round-trips through its dict (and the store) to the bit."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from core.engine.barcode import Barcode
from core.engine.minima import Minima
from core.engine.paths import Paths
from core.runs.record import Metrics, Summary
from core.runs.store import read_run


def _same(a, b) -> None:
    """Equal dataclasses, arrays and tensors compared exactly (NaN equal to NaN)."""
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, torch.Tensor):
            assert torch.equal(x, y), f.name
        elif isinstance(x, list) and x and isinstance(x[0], torch.Tensor):
            assert all(torch.equal(p, q) for p, q in zip(x, y, strict=True)), f.name
        elif isinstance(x, np.ndarray):
            assert x.shape == np.shape(y) and x.dtype == np.asarray(y).dtype, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def test_each_part_round_trips_through_json(tiny_runs):
    run = tiny_runs.run
    again = json.loads(json.dumps(run.minima.to_dict()))
    _same(run.minima, Minima.from_dict(again, run.minima.thetas))
    _same(run.metrics, Metrics.from_dict(json.loads(json.dumps(run.metrics.to_dict()))))
    _same(run.paths, Paths.from_dict(json.loads(json.dumps(run.paths.to_dict())), run.paths.points))
    assert Barcode.from_dict(json.loads(json.dumps(run.barcode.to_dict()))) == run.barcode
    assert Summary.from_dict(run.summary.to_dict()) == run.summary


def test_the_stored_run_reads_back_as_computed(tiny_runs):
    """``run`` returns the record it stored: reading the folder again gives the same one."""
    run = tiny_runs.run
    back = read_run(tiny_runs.store, run.run_id)
    for part in ("minima", "metrics", "paths"):
        _same(getattr(run, part), getattr(back, part))
    assert back.barcode == run.barcode and back.summary == run.summary
    assert back.config == run.config and back.stage == "results"


def test_summary_counts_the_run(tiny_runs):
    run = tiny_runs.run
    s, p = run.summary, run.paths
    assert s.n_minima == len(run.minima) and s.n_paths == len(p)
    assert s.n_paths_converged + s.n_paths_no_barrier + s.n_paths_step_cap == len(p)
    assert s.to_score_sum == run.barcode.to_score("sum")
    np.testing.assert_array_equal(run.metrics.gap("loss"), run.metrics.gap_loss)


@pytest.mark.parametrize(
    ("d", "match"),
    [({"to_score_sum": 1.0}, "missing key 'to_score_max'"), (None, "must be a JSON object")],
)
def test_a_bad_summary_names_what_is_wrong(tiny_runs, d, match):
    with pytest.raises(ValueError, match=match):
        Summary.from_dict(d)
    with pytest.raises(ValueError, match="unknown key 'extra'"):
        Summary.from_dict(tiny_runs.run.summary.to_dict() | {"extra": 1})
