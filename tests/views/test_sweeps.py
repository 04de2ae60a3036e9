"""Sweep progress and curves as the Sweeps page shows them (core/views/sweeps.py)."""

from __future__ import annotations

import numpy as np
import pytest

from core.runs.config import RunConfig
from core.runs.files import write_json
from core.runs.store import RunStore
from core.runs.sweep import SweepRecord, SweepSpec, expand, list_sweeps, sweep_id
from core.views.progress import Rates, run_seconds, stage_costs
from core.views.sweeps import (
    run_states,
    store_stages,
    sweep_curves,
    sweep_seconds_left,
    sweep_status,
    sweep_table,
)
from tests.conftest import fake_run, tiny_config


def write_sweep(store: RunStore, specs, errors=None, name="") -> SweepRecord:
    """A sweep file as ``run_sweep`` writes it at its start (the CLI's or a page's)."""
    specs = tuple(specs)
    ids = list(dict.fromkeys(c.run_id for s in specs for c in expand(s)))
    rec = SweepRecord(sweep_id(specs), specs, ids, [], dict(errors or {}), name)
    (store.root / "sweeps").mkdir(parents=True, exist_ok=True)
    write_json(store.root / "sweeps" / f"{rec.sweep_id}.json", rec.to_dict())
    return rec


def test_progress_of_a_sweep_with_some_runs_finished(tmp_path):
    store = RunStore(tmp_path)
    spec = SweepSpec(base=RunConfig(), seeds=(0, 1, 2, 3, 4))
    ids = [c.run_id for c in expand(spec)]
    assert ids == [RunConfig(seed=k).run_id for k in range(5)]
    fake_run(store, seed=0)
    fake_run(store, seed=1)
    fake_run(store, seed=2, stage="minima")  # being computed
    fake_run(store, seed=4, stage="paths")  # stopped part-way: resumable, counted missing
    write_sweep(store, [spec], errors={ids[3]: "ValueError: diverged", ids[0]: "old"}, name="s")
    (rec,) = list_sweeps(store)
    stages = store_stages(store, rec.run_ids)
    assert list(stages.values()) == ["results", "results", "minima", "none", "paths"]
    states = run_states(rec, stages, running={ids[2]})
    assert list(states.values()) == ["finished", "finished", "running", "failed", "missing"]
    status = sweep_status(rec, stages, running={ids[2]})
    assert (status.total, status.finished, status.running, status.failed, status.missing) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert status.fraction == pytest.approx(0.4)
    (row,) = sweep_table([status], [rec])
    assert row["name"] == "s" and (row["runs"], row["finished"], row["failed"]) == (5, 2, 1)
    # nothing running any more: the partial run counts as missing
    assert sweep_status(rec, stages, running=()).missing == 2


def test_curves_fill_in_from_the_finished_runs(tiny_runs):
    base = tiny_config(8)
    widths = SweepSpec(base=base, widths=(4, 8))
    wider = SweepSpec(base=base, widths=(4, 8, 16))  # 16 not run yet
    seeds = SweepSpec(base=base, seeds=(0, 1))  # varies neither width nor depth
    rec = SweepRecord("0" * 12, (widths, wider, seeds), [], [], {})
    infos = {r.run_id: r for r in tiny_runs.store.list()[0]}
    assert {c.run_id for c in expand(widths)} == set(tiny_runs.ids)
    curves = sweep_curves(rec, infos, "width")
    assert curves.xs == [4, 8, 16] and curves.n_runs == 4
    expected = [tiny_runs.other.summary.to_score_sum, tiny_runs.run.summary.to_score_sum]
    np.testing.assert_allclose(curves.means[0], expected + [np.nan])
    np.testing.assert_allclose(curves.means[1], expected + [np.nan])
    np.testing.assert_allclose(curves.los, curves.his)  # one seed: no band
    assert curves.labels[0] == "mnist1d mlp, depth 1"
    assert sweep_curves(rec, infos, "depth") is None
    mx = sweep_curves(rec, infos, "width", "max")
    assert mx.means[0][1] == pytest.approx(tiny_runs.run.summary.to_score_max)
    with pytest.raises(ValueError, match="by must be"):
        sweep_curves(rec, infos, "seed")


def test_time_left_of_a_sweep_adds_the_runs_not_finished():
    configs = expand(SweepSpec(base=tiny_config(8), widths=(4, 8, 16)))
    rates = Rates(1e9, 2e9, 1)
    states = {configs[0].run_id: "finished", configs[1].run_id: "running"}
    last = run_seconds(stage_costs(configs[2]), rates)
    assert sweep_seconds_left(configs, states, rates, current_left=5.0) == pytest.approx(5 + last)
    both = last + run_seconds(stage_costs(configs[1]), rates)
    assert sweep_seconds_left(configs, states, rates) == pytest.approx(both)


def test_curves_have_an_aligned_series_where_runs_were_aligned(aligned_runs):
    from core.views.dashboard import sweep_rows, to_score_series
    from core.views.sweeps import ALIGNED_LABEL, rows_curves

    raw = SweepSpec(base=tiny_config(8), widths=(4, 8))
    al = SweepSpec(base=aligned_runs.run.config, widths=(4, 8))
    rec = SweepRecord("1" * 12, (raw, al), [], [], {})
    infos = {r.run_id: r for r in aligned_runs.store.list()[0]}
    aligned = [r.summary for r in aligned_runs.runs]  # widths 4, 8
    curves = sweep_curves(rec, infos, "width")
    assert curves.aligned == [False, False, True] and curves.colors == [0, 1, 1]
    assert curves.labels[2] == f"{curves.labels[1]}, {ALIGNED_LABEL}"
    np.testing.assert_allclose(curves.means[1], [s.to_score_sum for s in aligned])
    np.testing.assert_allclose(curves.means[2], [s.aligned_to_score_sum for s in aligned])
    mx = sweep_curves(rec, infos, "width", "max")
    np.testing.assert_allclose(mx.his[2], [s.aligned_to_score_max for s in aligned])
    # the Compare page's runs: two raw and two aligned runs, the aligned series from two
    rows = sweep_rows(list(infos.values()))
    assert sum("aligned TO-score sum" in r for r in rows) == 2
    xs, means, los, his = to_score_series(rows, "width", aligned=True)
    assert xs == [4, 8] and means == [s.aligned_to_score_sum for s in aligned]
    both = rows_curves(rows, "width")
    assert both.aligned == [False, True] and both.n_runs == 4
    np.testing.assert_allclose(both.means[1], means)
    plain = [r for r in rows if "aligned TO-score sum" not in r]
    assert rows_curves(plain, "width").aligned == [False]  # no aligned run: no second series
