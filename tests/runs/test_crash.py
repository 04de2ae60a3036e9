"""Crash safety and concurrent writers, with real ``python -m core run`` processes.

A process is killed with SIGKILL at each stage: while training minima, while writing the
minima, while optimising paths, while writing the paths, while writing the results (the
pause points of ``core.runs.files.pause_point``: the process sleeps there until it is killed, so
the kill always lands at the same place). Then the killed folder is checked (its finished
stages are complete, nothing unfinished is listed or loaded as finished), and the same
command is run again: the final barcode and minima equal those of an uninterrupted run, and
the leftover temp file is gone.

Two processes writing the same run at once both finish and leave the clean run's result;
a process that finds the run locked waits, writing nothing, until the lock is released.
"""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import TINY_CLI_ARGS

from core.__main__ import main
from core.runs.config import RunConfig
from core.runs.files import read_json, read_tensors
from core.runs.store import RunStore, read_run

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TINY = TINY_CLI_ARGS
RUN_ID = RunConfig.from_dict(
    {
        "data": {"name": "digits", "n_train": 200, "n_test": 100},
        "model": {"arch": "mlp", "width": 4, "depth": 1},
        "train": {"minima": 3, "steps": 100},
        "paths": {"steps": 60},
        "device": "cpu",
    }
).run_id
TIMEOUT = 120  # seconds for one process to reach its pause point or finish


# the CLI with the pause point injected: argv[1] is the point ("" for none)
HARNESS = (
    "import sys, core.runs.files; core.runs.files.PAUSE_AT = sys.argv[1] or None; "
    "from core.__main__ import main; sys.exit(main(sys.argv[2:]))"
)


def start(runs: Path, log: Path, pause: str | None = None) -> subprocess.Popen:
    with open(log, "w") as err:
        return subprocess.Popen(
            [sys.executable, "-c", HARNESS, pause or "", "--runs-dir", str(runs), "run", *TINY],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait_for(log: Path, words: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while words not in log.read_text():
        if proc.poll() is not None:
            pytest.fail(f"process ended ({proc.returncode}) before {words!r}: {log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {words!r} after {TIMEOUT} s: {log.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: (results.json's barcode, the minima)."""
    root = tmp_path_factory.mktemp("reference")
    assert main(["--runs-dir", str(root), "run", *TINY]) == 0
    d = RunStore(root).dir(RUN_ID)
    return read_json(d / "results.json")["barcode"], read_tensors(d / "minima.safetensors")


def assert_same_as_reference(store: RunStore, reference) -> None:
    d = store.dir(RUN_ID)
    barcode, minima = reference
    assert read_json(d / "results.json")["barcode"] == barcode
    assert torch.equal(read_tensors(d / "minima.safetensors")["thetas"], minima["thetas"])
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == [".lock"]
    runs, bad = store.list()
    assert [(r.run_id, r.stage) for r in runs] == [(RUN_ID, "results")] and bad == []


# pause point -> the last stage that is finished on disk when the process dies there
KILL_POINTS = [
    ("minima", "none"),  # training minima
    ("write:minima.json", "none"),  # minima.safetensors written, minima.json only a temp file
    ("paths", "minima"),  # optimising paths
    ("write:paths.json", "minima"),
    ("write:results.json", "paths"),  # writing the results
]


@pytest.mark.parametrize(("point", "finished"), KILL_POINTS, ids=[p for p, _ in KILL_POINTS])
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path, reference, point, finished):
    runs, log = tmp_path / "runs", tmp_path / "stderr.txt"
    proc = start(runs, log, pause=point)
    wait_for(log, f"paused at {point}", proc)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(TIMEOUT) == -signal.SIGKILL

    # 1. the killed folder: finished stages complete, the unfinished one not visible
    store = RunStore(runs)
    d = store.dir(RUN_ID)
    temps = list(d.glob(".tmp-*"))
    assert len(temps) == (1 if point.startswith("write:") else 0)
    assert store.stage(RUN_ID) == finished and store.check(RUN_ID) == finished
    runs_now, bad = store.list()
    assert [(r.run_id, r.stage, r.summary) for r in runs_now] == [(RUN_ID, finished, None)]
    assert bad == []
    if finished == "none":
        with pytest.raises(ValueError, match=r"has no finished stage yet"):
            read_run(store, RUN_ID)
    else:
        assert read_run(store, RUN_ID).barcode is None

    # 2. the same command again: resumes and ends where an uninterrupted run ends
    assert main(["--runs-dir", str(runs), "run", *TINY]) == 0
    assert not any(t.exists() for t in temps)
    assert_same_as_reference(store, reference)


def test_two_processes_computing_the_same_run(tmp_path, reference):
    runs = tmp_path / "runs"
    procs = [start(runs, tmp_path / f"stderr{i}.txt") for i in range(2)]
    codes = [p.wait(2 * TIMEOUT) for p in procs]
    logs = [(tmp_path / f"stderr{i}.txt").read_text() for i in range(2)]
    assert codes == [0, 0], logs
    assert_same_as_reference(RunStore(runs), reference)


def test_a_locked_run_makes_the_second_process_wait(tmp_path, reference):
    runs, log = tmp_path / "runs", tmp_path / "stderr.txt"
    store = RunStore(runs)
    with store.lock(RUN_ID):
        proc = start(runs, log)
        wait_for(log, f"run {RUN_ID} is being computed by another process; waiting", proc)
        time.sleep(0.5)
        assert proc.poll() is None and store.stage(RUN_ID) == "none"
        assert sorted(p.name for p in store.dir(RUN_ID).iterdir()) == [".lock"]
    assert proc.wait(TIMEOUT) == 0, log.read_text()
    assert_same_as_reference(store, reference)
