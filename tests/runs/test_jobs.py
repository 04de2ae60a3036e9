"""Background jobs (core/runs/jobs.py): real tiny runs in threads, stopped and resumed.

A job is held at a chosen progress report (conftest's ``hold``), so that a cancel or a
second start lands at a known point of the run.
"""

from __future__ import annotations

import numpy as np

from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.jobs import JobRegistry
from core.runs.pipeline import run
from core.runs.store import RunStore, read_run
from core.runs.sweep import SweepSpec, list_sweeps
from core.views.sweeps import run_states, store_stages, sweep_status

TIMEOUT = 120  # seconds for a tiny job to end

TINY = RunConfig(
    data=DataConfig(name="digits", n_train=200, n_test=100),
    model=ModelConfig(arch="mlp", width=4, depth=1),
    train=TrainConfig(minima=3, steps=100),
    paths=PathConfig(steps=60),
    device="cpu",
)


def test_a_run_job_finishes_and_reports_every_stage(tmp_path, one_thread):
    store = RunStore(tmp_path)
    job = JobRegistry().start_run(TINY, store)
    state = job.wait(TIMEOUT)
    assert state.status == "finished" and state.message == ""
    assert state.kind == "run" and state.target == state.run_id == TINY.run_id
    assert store.stage(TINY.run_id) == "results"
    assert state.stage == "paths" and 0 < state.done <= state.total == TINY.paths.steps
    assert set(state.stage_started) == {"minima", "paths"}
    assert state.started <= state.stage_started["minima"] <= state.stage_started["paths"]
    assert state.stage_started["paths"] <= state.updated <= state.ended


def test_cancel_stops_at_the_next_report_keeps_the_minima_and_resumes(tmp_path, hold, one_thread):
    store, jobs = RunStore(tmp_path), JobRegistry()
    job = jobs.start_run(TINY, store)
    hold("paths").wait()  # the minima are saved; the paths have begun
    assert job.running and jobs.running() == [job]
    job.cancel()
    hold.release()
    state = job.wait(TIMEOUT)
    assert state.status == "cancelled"
    assert store.stage(TINY.run_id) == "minima"  # the finished stage stays, nothing later
    minima_file = store.dir(TINY.run_id) / "minima.json"
    written = minima_file.stat().st_mtime_ns
    assert jobs.running() == []

    again = jobs.start_run(TINY, store)  # the same config resumes
    assert again is not job
    assert again.wait(TIMEOUT).status == "finished"
    assert minima_file.stat().st_mtime_ns == written  # resumed, not trained again
    assert "minima" not in again.state().stage_started
    resumed = read_run(store, TINY.run_id)
    clean = run(TINY, store=RunStore(tmp_path / "clean"))
    np.testing.assert_array_equal(resumed.barcode.births, clean.barcode.births)
    np.testing.assert_array_equal(resumed.barcode.deaths, clean.barcode.deaths)


def test_starting_a_running_run_again_returns_its_job(tmp_path, hold, one_thread):
    store, jobs = RunStore(tmp_path), JobRegistry()
    first = jobs.start_run(TINY, store)
    hold("minima").wait()
    second = jobs.start_run(TINY, store)
    other_store = jobs.start_run(TINY, RunStore(tmp_path / "elsewhere"))
    assert second is first and other_store is not first
    assert [j.key for j in jobs.jobs(store)] == [first.key]
    hold.release()
    assert first.wait(TIMEOUT).status == "finished"
    assert other_store.wait(TIMEOUT).status == "finished"
    assert jobs.find("run", store, TINY.run_id) is first


def test_a_run_busy_elsewhere_is_waited_for_not_computed_twice(tmp_path, one_thread):
    store = RunStore(tmp_path)
    with store.lock(TINY.run_id):  # another process computes it
        job = JobRegistry().start_run(TINY, store)
        assert job.wait(3).stage == "waiting" and job.running
    assert job.wait(TIMEOUT).status == "finished"


def test_bad_settings_end_the_job_with_the_message(tmp_path):
    config = TINY.replace(data={"name": "cifar10", "data_root": str(tmp_path / "none")})
    state = JobRegistry().start_run(config, RunStore(tmp_path)).wait(TIMEOUT)
    assert state.status == "failed" and "cifar10" in state.message.lower()


def test_a_sweep_job_counts_its_runs_and_is_read_back_from_the_store(tmp_path, one_thread):
    store = RunStore(tmp_path)
    spec = SweepSpec(base=TINY, widths=(4, 6))
    run(TINY, store=store)  # one run is finished before the sweep
    job = JobRegistry().start_sweep(spec, store, name="two")
    assert job.state().n_runs == 2
    state = job.wait(TIMEOUT)
    assert state.status == "finished" and state.runs_done == 2
    assert state.run_id == spec.base.replace(model={"width": 6}).run_id  # the one computed
    (rec,) = list_sweeps(store)
    assert rec.name == "two"
    status = sweep_status(rec, store_stages(store, rec.run_ids), running=())
    assert (status.total, status.finished, status.missing) == (2, 2, 0)


def test_cancel_stops_a_sweep_between_its_runs(tmp_path, hold, one_thread):
    store = RunStore(tmp_path)
    spec = SweepSpec(base=TINY, widths=(4, 6))
    job = JobRegistry().start_sweep(spec, store)
    hold("paths").wait()
    job.cancel()
    hold.release()
    assert job.wait(TIMEOUT).status == "cancelled"
    (rec,) = list_sweeps(store)  # on record with both runs from its start
    states = run_states(rec, store_stages(store, rec.run_ids), running=())
    assert list(states.values()) == ["missing", "missing"]
    assert store.stage(rec.run_ids[0]) == "minima"  # resumable


def test_two_runs_started_at_once_both_finish_with_the_clis_barcodes(tmp_path, one_thread):
    """Two dashboard sessions starting different runs: two jobs side by side, each ending
    with the barcode that ``pipeline.run`` (what the CLI calls) gives alone."""
    other = TINY.replace(model={"width": 6})
    jobs, store = JobRegistry(), RunStore(tmp_path / "dashboard")
    a, b = jobs.start_run(TINY, store), jobs.start_run(other, store)
    assert a is not b and {a.state().run_id, b.state().run_id} == {TINY.run_id, other.run_id}
    assert a.wait(TIMEOUT).status == b.wait(TIMEOUT).status == "finished"
    for config in (TINY, other):
        alone = run(config, store=RunStore(tmp_path / "cli"))
        together = read_run(store, config.run_id)
        assert together.barcode == alone.barcode
        np.testing.assert_array_equal(together.paths.saddles, alone.paths.saddles)
