"""Time estimates over all stages of a run (core/views/progress.py), on numbers worked by hand."""

from __future__ import annotations

import pytest

from core.runs.jobs import JobState
from core.runs.presets import run_cost
from core.views.progress import (
    CPU_FLOPS,
    Rates,
    StageCosts,
    job_seconds_left,
    job_words,
    measured_rates,
    remaining_run_seconds,
    run_seconds,
    stage_bars,
    stage_costs,
)
from tests.conftest import tiny_config

# FLOPs: training 100, path steps 300, final evaluation 100; stored speeds 10 and 20 FLOP/s
COSTS = StageCosts(minima=100.0, path_steps=300.0, path_final=100.0)
RATES = Rates(minima=10.0, paths=20.0, n_runs=2)


def test_stage_costs_split_the_cost_model():
    c = tiny_config(8)
    costs, whole = stage_costs(c), run_cost(c)
    assert costs.minima + costs.paths == pytest.approx(whole["FLOPs"])
    assert costs.minima == whole["minima FLOPs"] and costs.path_final == whole["path final FLOPs"]
    assert stage_costs(c.replace(data={"name": "pydoc"}, model={"arch": "charlm"})) is not None
    assert costs.aligned == 0
    al = c.replace(paths={"align": "weight-matching"})
    aligned, whole = stage_costs(al), run_cost(al)
    assert aligned.minima + aligned.paths == pytest.approx(whole["FLOPs"])
    assert (aligned.path_steps, aligned.path_final) == (costs.path_steps, costs.path_final)
    assert aligned.aligned == pytest.approx(costs.paths)  # the same pairs joined again


def test_remaining_time_counts_every_stage_left():
    assert run_seconds(COSTS, RATES) == 100 / 10 + 400 / 20 == 30.0
    assert remaining_run_seconds(COSTS, RATES, "starting", 0, 0, 0.0) == 30.0
    assert remaining_run_seconds(COSTS, RATES, "minima", 0, 100, 3.0) == 30.0  # no step yet
    # half the training in 10 s: 5 FLOP/s, half the stored speed, so the paths take twice
    # their stored 20 s: 10 s of training + 40 s of paths
    assert remaining_run_seconds(COSTS, RATES, "minima", 50, 100, 10.0) == pytest.approx(50.0)
    # a quarter of the path steps in 15 s: 5 FLOP/s for the other 225 and the final 100
    assert remaining_run_seconds(COSTS, RATES, "paths", 15, 60, 15.0) == pytest.approx(65.0)
    assert remaining_run_seconds(COSTS, RATES, "paths", 60, 60, 60.0) == pytest.approx(20.0)
    assert remaining_run_seconds(COSTS, RATES, "paths", 0, 60, 1.0) == 400 / 20
    # an aligned landscape's 200 FLOPs of paths come after the raw ones, at the paths' rate
    al = StageCosts(minima=100.0, path_steps=300.0, path_final=100.0, aligned=200.0)
    assert remaining_run_seconds(al, RATES, "starting", 0, 0, 0.0) == 10 + 600 / 20
    assert remaining_run_seconds(al, RATES, "paths", 15, 60, 15.0) == pytest.approx(105.0)
    assert remaining_run_seconds(al, RATES, "aligned", 0, 60, 1.0) == 200 / 20
    # a quarter of its steps in 10 s: 30 s left
    assert remaining_run_seconds(al, RATES, "aligned", 15, 60, 10.0) == pytest.approx(30.0)


def test_rates_are_measured_on_the_stored_runs(tiny_runs):
    infos, _ = tiny_runs.store.list()
    one = [r for r in infos if r.run_id == tiny_runs.run.run_id]
    rates, costs, s = measured_rates(one, "cpu"), stage_costs(one[0].config), one[0].summary
    assert rates.n_runs == 1
    assert rates.minima == pytest.approx(costs.minima / s.seconds_minima)
    assert rates.paths == pytest.approx(costs.paths / s.seconds_paths)
    assert measured_rates(infos, "cpu").n_runs == 2
    assert measured_rates(infos, "gpu") == Rates(10e12, 10e12, 0)  # none there: assumed
    assert measured_rates([], "cpu") == Rates(CPU_FLOPS, CPU_FLOPS, 0)


def test_an_aligned_runs_path_rate_counts_its_raw_paths_alone(aligned_runs):
    """seconds_paths times the raw paths; the aligned landscape's paths (counted in the cost
    of the run's config) are not in it."""
    info = [r for r in aligned_runs.store.list()[0] if r.run_id == aligned_runs.run.run_id]
    raw = stage_costs(info[0].config.replace(paths={"align": "none"}))
    assert stage_costs(info[0].config).paths == pytest.approx(2 * raw.paths)
    rates = measured_rates(info, "cpu")
    assert rates.paths == pytest.approx(raw.paths / info[0].summary.seconds_paths)


def state(**kw) -> JobState:
    base = dict(key="run:/r:abc", kind="run", target="abc", label="run abc", started=0.0)
    return JobState(**(base | kw))


def test_a_job_in_its_paths_stage():
    s = state(stage="paths", done=30, total=60, stage_started={"minima": 10.0, "paths": 20.0})
    bars = stage_bars(s, now=35.0)
    assert [(b.stage, b.fraction) for b in bars] == [
        ("minima", 1.0),
        ("paths", 0.5),
        ("barcode", 0.0),
    ]
    assert bars[1].text == "optimizing paths: step 30 of 60, 15 s"
    # half of the 300 path FLOPs in 15 s: 10 FLOP/s for 150 + 100 left
    assert job_seconds_left(s, COSTS, RATES, now=35.0) == pytest.approx(25.0)
    words = job_words(s, COSTS, RATES, now=35.0)
    assert words.startswith("run abc: optimizing paths, 35 s elapsed, at most about 25 s left")
    assert "2 finished runs stored here" in words
    # without a cost model only the running stage is estimated, from its own steps
    assert job_seconds_left(s, None, RATES, now=35.0) == pytest.approx(15.0)
    assert "this stage 15 s left" in job_words(s, None, RATES, now=35.0)


def test_ended_and_waiting_jobs_say_so():
    done = state(status="finished", ended=75.0, stage="paths", stage_started={"paths": 1.0})
    assert job_words(done, COSTS, RATES) == "run abc: finished in 1 min 15 s"
    assert [b.fraction for b in stage_bars(done)] == [1.0, 1.0, 1.0]
    assert job_seconds_left(done, COSTS, RATES) is None
    failed = state(status="failed", ended=2.0, message="train.lr=0: must be > 0")
    assert job_words(failed, COSTS, RATES).endswith("failed after 2 s: train.lr=0: must be > 0")
    waiting = state(stage="waiting", run_id="abc")
    assert "waiting for another computation of run abc" in job_words(waiting, COSTS, RATES)
    sweep = state(kind="sweep", label="sweep tiny", runs_done=1, n_runs=4, stage="starting")
    words = job_words(sweep, COSTS, RATES, now=3.0)
    assert words.startswith("sweep tiny (1 of 4 runs done): loading")
    on_ray = state(kind="sweep", label="sweep tiny on Ray", stage="computing as Ray tasks")
    assert job_words(on_ray, None, RATES, now=3.0).endswith(": computing as Ray tasks, 3 s elapsed")
