"""The cost model of a run (core/runs/cost.py): evaluations per pair worked by hand, the
estimate from measured step shares against the bound at the step caps."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.engine.options import PROBE_TRUST
from core.runs.config import PathConfig
from core.runs.cost import (
    AT_CAP,
    PATH_USAGE,
    PathUsage,
    measured_usage,
    pair_work,
    run_cost,
    usage_of,
)
from tests.conftest import tiny_config

# chains of 6 to 8 points (7 on average: 5 interior, 6 intervals), checks every 25 steps at 2
# points per interval: 6 * 2 + 1 = 13 points per dense evaluation
Q = PathConfig(n_points=6, max_points=8, steps=100, check_every=25, check_density=2)


def test_pair_work_counts_steps_checks_final_and_certificate():
    w = pair_work(Q, p=418, steps=40, certified=0.5)
    assert w.gradients == 5 * 40  # interior points x steps
    assert w.minibatch_gradients == 0  # no path batch size: every step on all examples
    assert w.checks == pytest.approx(40 / 25 * 13)
    # peak search: 13 dense + 50 golden-section points; final: 6 intervals at density 16
    assert w.final == 13 + 50 + 6 * 16 + 1
    assert w.hvps == 0.5 * 300  # LANCZOS_STEPS = 300 < 418 parameters
    assert w.evaluations == pytest.approx(200 + 20.8 + 160 + 150)
    assert pair_work(Q, p=100, steps=40, certified=1.0).hvps == 100  # P bounds Lanczos


def test_minibatch_steps_are_counted_apart():
    q = dataclasses.replace(Q, batch_size=32, noisy_steps=30)
    assert pair_work(q, 418, 40, 0.0).minibatch_gradients == 5 * 30
    assert pair_work(q, 418, 40, 0.0).gradients == 5 * 10
    assert pair_work(q, 418, 20, 0.0).minibatch_gradients == 5 * 20  # left before step 30


def test_expected_flops_are_the_measured_steps_times_their_cost():
    c = tiny_config(8)  # mnist1d, 300 examples, 3 minima (3 pairs), 418 parameters, cap 100
    usage = PathUsage(step_share=0.4, converged_share=0.5, runs=1, pairs=3)
    cost = run_cost(c, usage)
    f, n = cost["forward FLOPs per example"], 300
    assert cost["parameters"] == 418 and cost["expected path steps"] == 40
    # per pair: 200 gradients (3 forwards), 20.8 check and 160 final values, 150 HVPs (5)
    per_pair = f * n * (3 * 200 + 20.8 + 160 + 5 * 150)
    assert cost["expected FLOPs"] - cost["minima FLOPs"] == pytest.approx(3 * per_pair)
    assert cost["expected point evaluations per pair"] == pytest.approx(530.8)
    # the bound: 100 steps, every pair certified
    bound = f * n * (3 * 500 + 4 * 13 + 160 + 5 * 300)
    assert cost["FLOPs"] - cost["minima FLOPs"] == pytest.approx(3 * bound)
    assert cost["point evaluations per pair"] == pytest.approx(500 + 52 + 160 + 300)
    assert cost["expected FLOPs"] < cost["FLOPs"]
    assert run_cost(c, AT_CAP)["expected FLOPs"] == pytest.approx(cost["FLOPs"])
    # two restarts search every pair twice more: three caps, three times the measured steps
    again = run_cost(c.replace(paths={"restarts": 2}), usage)
    assert again["point evaluations per pair"] == pytest.approx(1500 + 156 + 160 + 300)
    assert again["expected path steps"] == 120
    # the probe searches the pairs across the bars' passes, at most all, once per radius
    probed = run_cost(c.replace(paths={"probe": True}), usage)
    assert probed["expected path steps"] == pytest.approx(40 * (1 + len(PROBE_TRUST)))
    # an aligned landscape joins every pair again, between the aligned minima
    aligned = run_cost(c.replace(paths={"align": "weight-matching"}), usage)
    assert aligned["minima FLOPs"] == cost["minima FLOPs"]
    for key in ("path step FLOPs", "path final FLOPs", "examples per path step"):
        assert aligned[key] == pytest.approx(2 * cost[key])
    assert aligned["point evaluations per pair"] == cost["point evaluations per pair"]


def test_usage_is_the_mean_share_over_pairs():
    mlp = tiny_config(8)  # cap 100
    long = mlp.replace(paths={"steps": 200})
    cnn = mlp.replace(model={"arch": "cnn"})
    usage = usage_of(
        [
            (mlp, np.array([10, 30, 100]), np.array(["converged", "no barrier", "step cap"])),
            (long, np.array([50]), np.array(["converged"])),
            # one restart: two searches of cap 200, 100 steps in all: a share of 0.25
            (long.replace(paths={"restarts": 1}), np.array([100]), np.array(["converged"])),
            (cnn, np.array([0, 0]), np.array(["no barrier", "no barrier"])),
        ]
    )
    assert usage["mnist1d", "mlp"] == PathUsage(
        (0.1 + 0.3 + 1.0 + 0.25 + 0.25) / 5, 3 / 5, runs=3, pairs=5
    )
    assert usage["mnist1d", "cnn"] == PathUsage(0.0, 0.0, runs=1, pairs=2)


def test_measured_usage_reads_the_stored_runs(tiny_runs):
    usage = measured_usage(tiny_runs.store)
    steps = np.concatenate([tiny_runs.run.paths.steps, tiny_runs.other.paths.steps])
    assert set(usage) == {("mnist1d", "mlp")} and usage["mnist1d", "mlp"].runs == 2
    assert usage["mnist1d", "mlp"].step_share == pytest.approx(steps.mean() / 100)


def test_measured_shares_are_shares():
    for arch, u in PATH_USAGE.items():
        assert 0 <= u.step_share and 0 <= u.converged_share <= 1, arch  # legs: share > 1
        assert u.runs >= 1 and u.pairs >= u.runs
