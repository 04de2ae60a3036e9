"""Sweeps on a real local Ray instance (two CPUs): the same runs, to the bit, as the serial
executor, and nothing computed twice."""

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


def test_the_tiny_preset_on_ray_equals_the_serial_executor(tmp_path):
    specs = get_preset("tiny").specs
    serial = run_sweep(specs, RunStore(tmp_path / "serial"))
    store = RunStore(tmp_path / "ray")
    on_ray = run_sweep(specs, store, executor="ray")
    assert on_ray.sweep_id == serial.sweep_id and on_ray.run_ids == serial.run_ids
    assert sorted(on_ray.new) == sorted(serial.new) == sorted(serial.run_ids) and not on_ray.failed
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
