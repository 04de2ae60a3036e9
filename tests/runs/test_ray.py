"""Sweeps on a real local Ray instance (two CPUs): the same runs, to the bit, as the serial
executor, and nothing computed twice."""

from pathlib import Path

import numpy as np
import pytest
import torch

from core.runs.presets import get_preset
from core.runs.store import RunStore, read_run
from core.runs.sweep import run_sweep

pytest.importorskip("ray")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module", autouse=True)
def ray_instance():
    from core.runs import ray_executor

    yield
    ray_executor.shutdown()


@pytest.mark.parametrize("share", [True, False], ids=["store-shared", "files-returned"])
def test_the_tiny_preset_on_ray_equals_the_serial_executor(tmp_path, share):
    from core.runs.ray_executor import run_on_ray
    from core.runs.sweep import sweep_configs

    specs = get_preset("tiny").specs
    serial = run_sweep(specs, RunStore(tmp_path / "serial"))
    store = RunStore(tmp_path / "ray")
    if share:
        on_ray = run_sweep(specs, store, executor="ray")
    else:  # workers that cannot see the store: the driver writes what they return
        assert all(e is None for _, e in run_on_ray(sweep_configs(specs), store, share=False))
        on_ray = run_sweep(specs, store, executor="ray")
        assert on_ray.new == []
    assert on_ray.sweep_id == serial.sweep_id and on_ray.run_ids == serial.run_ids
    assert sorted(on_ray.new + on_ray.reused) == sorted(serial.run_ids) and not on_ray.failed
    for rid in serial.run_ids:
        a, b = read_run(RunStore(tmp_path / "serial"), rid), read_run(store, rid)
        assert a.barcode == b.barcode and a.summary.to_score_sum == b.summary.to_score_sum
        assert torch.equal(a.minima.thetas, b.minima.thetas)
        np.testing.assert_array_equal(a.paths.saddles, b.paths.saddles)
    again = run_sweep(specs, store, executor="ray")  # every run is in the store: none is sent
    assert again.new == [] and sorted(again.reused) == sorted(serial.run_ids)


def test_a_failing_run_on_ray_is_recorded_and_the_sweep_goes_on(tmp_path):
    specs = get_preset("tiny").specs[0]
    bad = specs.base.replace(data={"n_train": 5000})  # more examples than digits has
    res = run_sweep(type(specs)(base=bad, widths=(4,)), RunStore(tmp_path), executor="ray")
    (why,) = res.failed.values()
    assert why.startswith("ValueError: n_train=5000 must be between 1 and")


def _task_pids() -> list[int]:
    """Processes that are running a run's Ray task now (Ray names them by the task)."""
    import os

    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if fh.read().startswith(b"ray::_compute"):
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def test_a_worker_killed_mid_run_is_retried_and_the_sweep_completes(tmp_path):
    import os
    import signal
    import threading
    import time

    specs = get_preset("tiny").specs
    store = RunStore(tmp_path)
    result = {}
    sweep = threading.Thread(
        target=lambda: result.update(r=run_sweep(specs, store, executor="ray"))
    )
    sweep.start()
    killed, deadline = None, time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and sweep.is_alive():
        pids = _task_pids()
        if pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    sweep.join(timeout=300)
    assert killed is not None, "no task process was seen running"
    res = result["r"]
    assert not res.failed and sorted(res.new) == sorted(res.run_ids)
    assert all(store.stage(rid) == "results" for rid in res.run_ids)
    assert len(store.list()[0]) == len(res.run_ids)  # every run present once


def test_one_runs_pairs_on_two_ray_workers_equal_its_batches_run_here_and_one_batch(tmp_path):
    from conftest import tiny_config

    from core.runs.pipeline import run
    from core.runs.ray_executor import PairWorkers

    config = tiny_config(8, minima=5).replace(paths={"groups": 2})
    here = run(config, store=RunStore(tmp_path / "here"))
    with PairWorkers(config, 2) as workers:
        there = run(config, store=RunStore(tmp_path / "ray"), group_map=workers)
    one = run(config.replace(paths={"groups": 1}), store=RunStore(tmp_path / "one"))
    for got in (there, one):  # a pair's path is the same in any batch
        assert len(got.paths) == 10 and got.barcode == here.barcode
        np.testing.assert_array_equal(got.paths.saddles, here.paths.saddles)
        np.testing.assert_array_equal(got.paths.pairs, here.paths.pairs)
        np.testing.assert_array_equal(got.paths.status, here.paths.status)
        np.testing.assert_array_equal(got.paths.steps, here.paths.steps)
        for a, b in zip(got.paths.points, here.paths.points, strict=True):
            assert torch.equal(a, b)


def test_a_run_that_needs_more_memory_than_any_worker_is_refused_before_it_starts(tmp_path):
    spec = get_preset("tiny").specs[0]
    big = type(spec)(base=spec.base.replace(memory_mb=10**8), widths=(4,))  # about 95 TiB
    store = RunStore(tmp_path)
    with pytest.raises(ValueError, match=r"memory_mb=100000000 needs 97657\.2 GiB per worker"):
        run_sweep(big, store, executor="ray")
    assert store.list()[0] == []  # nothing computed, nothing half-written


def test_an_interrupted_driver_restarted_computes_only_what_is_missing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from core.runs.sweep import sweep_configs

    root = Path(__file__).resolve().parents[2]
    store = RunStore(tmp_path)
    ids = [c.run_id for c in sweep_configs(get_preset("tiny").specs)]
    argv = [sys.executable, "-m", "core", "--runs-dir", str(tmp_path), "sweep", "--preset", "tiny"]
    driver = subprocess.Popen(
        [*argv, "--executor", "ray"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        if any(store.stage(r) == "results" for r in ids):
            break
        time.sleep(0.1)
    driver.send_signal(signal.SIGINT)
    driver.wait(timeout=60)
    before = {r for r in ids if store.stage(r) == "results"}
    assert before, driver.stderr.read().decode()[-2000:]
    again = run_sweep(get_preset("tiny").specs, store, executor="ray")
    assert not again.failed and set(again.reused) == before  # none of them sent again
    assert set(again.new) == set(ids) - before
    assert all(store.stage(r) == "results" for r in ids)
