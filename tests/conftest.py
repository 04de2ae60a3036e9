"""Fixtures shared by the test files: tiny real runs in a temporary run store.

``tiny_runs`` (session scope) trains two small runs once per test session, through the same
``core.runs.pipeline.run`` that the CLI and the dashboard use: MNIST-1D, an MLP of depth 1 and width
4 or 8, 3 starts, 150 training steps and 100 path steps, on the CPU. Any test file can use it::

    def test_something(tiny_runs):
        run = tiny_runs.run            # the width-8 run (a core.runs.record.Run)
        store = tiny_runs.store        # RunStore over tiny_runs.root

``runs_env`` also points ``BARCODES_RUNS_DIR`` at that store for the dashboard; ``fake_run``
writes a consistent run of 3 minima in 2 dimensions without computing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from core.engine.barcode import barcode_from_graph
from core.engine.minima import Minima
from core.engine.paths import Paths
from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig
from core.runs.record import Metrics, Run, Summary
from core.runs.store import STAGES, RunStore, write_stage

# a digits run of seconds through the CLI (the CLI and crash tests)
TINY_CLI_ARGS = (
    "--dataset digits --n-train 200 --n-test 100 --arch mlp --width 4 --depth 1 --minima 3 "
    "--steps 100 --path-steps 60 --device cpu"
).split()


def tiny_config(width: int = 8, *, minima: int = 3, seed: int = 0) -> RunConfig:
    """A run that finishes in seconds on a CPU and still has finite bars."""
    return RunConfig(
        data=DataConfig(name="mnist1d", n_train=300, n_test=150),
        model=ModelConfig(arch="mlp", width=width, depth=1),
        train=TrainConfig(minima=minima, steps=150, lr=0.05, lr_final=1e-3),
        paths=PathConfig(steps=100, n_points=6, max_points=8),
        seed=seed,
        device="cpu",
    )


@dataclass(frozen=True)
class TinyRuns:
    root: Path  # the run store folder
    store: RunStore
    run: object  # core.runs.record.Run, width 8
    other: object  # core.runs.record.Run, width 4

    @property
    def ids(self) -> list[str]:
        return [self.run.run_id, self.other.run_id]


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> TinyRuns:
    from core.runs.pipeline import run

    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    other = run(tiny_config(4), store=store)
    main = run(tiny_config(8), store=store)  # finished last: the newest, picked by default
    return TinyRuns(root, store, main, other)


@dataclass(frozen=True)
class AlignedRuns:
    root: Path  # a run store holding tiny_runs' two runs and these
    store: RunStore
    runs: list  # core.runs.record.Run with paths.align = "weight-matching", widths 4 and 8
    raw: TinyRuns

    @property
    def run(self):
        """The width-8 aligned run, the newest: picked by default."""
        return self.runs[-1]


def aligned_config(width: int = 8) -> RunConfig:
    """``tiny_config(width)`` that also computes the landscape of the aligned minima."""
    return tiny_config(width).replace(paths={"align": "weight-matching"})


@pytest.fixture(scope="session")
def aligned_runs(tiny_runs, tmp_path_factory) -> AlignedRuns:
    """Tiny runs with an aligned landscape (``Run.aligned``) at widths 4 and 8, in a copy of
    ``tiny_runs``' store (a few seconds)."""
    import shutil

    from core.runs.pipeline import run

    root = tmp_path_factory.mktemp("aligned") / "runs"
    shutil.copytree(tiny_runs.root, root)
    store = RunStore(root)
    runs = [run(aligned_config(w), store=store) for w in (4, 8)]
    return AlignedRuns(root, store, runs, tiny_runs)


@pytest.fixture
def runs_env(tiny_runs, monkeypatch) -> TinyRuns:
    """``tiny_runs`` with ``BARCODES_RUNS_DIR`` pointing at its store."""
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tiny_runs.root))
    return tiny_runs


def run_dir(store: RunStore, config: RunConfig) -> Path:
    """A run folder holding only ``config``'s config.json (for tests that write stages)."""
    from core.runs.files import write_json

    d = store.dir(config.run_id)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "config.json", config.to_dict())
    return d


def adam_minima(objective, m: int = 3, steps: int = 300, lr: float = 0.05) -> torch.Tensor:
    """(m, P) ends for path tests: ``objective.init(m, seed=0)`` after ``steps`` Adam steps on
    the whole objective."""
    thetas = objective.init(m, seed=0).requires_grad_(True)
    opt = torch.optim.Adam([thetas], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        objective(thetas).sum().backward()
        opt.step()
    return thetas.detach()


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: these tensors are tiny, and on a busy machine the OpenMP barriers
    of two threads made the tests several times slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hold(monkeypatch):
    """``hold(stage)``: the next background job (``core.runs.jobs``) to report ``stage``
    stops right after recording that report until ``hold.release()``, then reports it
    again (so a cancel meanwhile always finds a next report, even in a run that would
    converge before its next one); ``hold.wait()`` returns once it is there."""
    import threading

    from core.runs.jobs import Job

    reached, go, where = threading.Event(), threading.Event(), {}
    update = Job.update

    def held(self, *, check=True, **changes):
        update(self, check=check, **changes)
        if changes.get("stage") == where.get("stage") and not reached.is_set():
            reached.set()
            go.wait(120)
            update(self, check=check, **changes)  # the same report again: the next one

    monkeypatch.setattr(Job, "update", held)

    class Hold:
        def __call__(self, stage):
            where["stage"] = stage
            return self

        def wait(self):
            assert reached.wait(120), "the job never reached the held report"

        def release(self):
            go.set()

    return Hold()


def fake_run(store: RunStore, seed: int = 0, stage: str = "results") -> str:
    """Write a consistent run of 3 minima (P = 2) up to ``stage``; returns its id."""
    config = RunConfig(seed=seed)
    values = np.array([0.1, 0.2, 0.3]) + seed
    zeros = np.zeros(3)
    minima = Minima(
        torch.arange(6.0).view(3, 2), values, zeros, ["minimum"] * 3, np.zeros(3, int), np.arange(3)
    )
    rec = Run(config.run_id, config, minima, Metrics(zeros, zeros, zeros, zeros))
    rec.seconds = {"minima": 0.0, "paths": 0.0}
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    saddles = np.array([0.5, 0.9, 0.7]) + seed
    rec.paths = Paths(
        pairs=pairs,
        points=[torch.zeros(3, 2)] * 3,
        saddles=saddles,
        straight=saddles + 1,
        densities=np.full(3, 8),
        status=np.array(["converged"] * 3, dtype=object),
        force=zeros,
        climb_grad=zeros,
        scale=np.ones(3),
        steps=np.full(3, 10),
        history_steps=np.array([0]),
        history=saddles[:, None],
        climb=np.ones(3, int),
        certified=np.ones(3, bool),
        peak_value=saddles,
        eigs=np.tile([-1.0, 1.0], (3, 1)),
        peak_grad=zeros,
    )
    s = np.diag(values)
    s[pairs[:, 0], pairs[:, 1]] = s[pairs[:, 1], pairs[:, 0]] = saddles
    rec.barcode = barcode_from_graph(values, s)
    rec.summary = Summary.of(minima, rec.paths, rec.barcode, 8, rec.seconds)
    run_dir(store, config)
    for st in STAGES[: STAGES.index(stage) + 1]:
        write_stage(store, rec, st)
    return config.run_id


# strings that must never name a run folder
BAD_IDS = [
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "..%2f..%2fetc",
    "ABCDEF012345",
    "abcdef01234",
    "abcdef0123456",
    "abcdef012345\n",
    "abcdef012345/..",
    "",
    None,
    123456789012,
]


def write_cifar10(root: Path, monkeypatch, n_train: int = 20, n_test: int = 6, seed: int = 0):
    """Tiny CIFAR-10 files in torchvision's on-disk format (pickled batches) under ``root``,
    with torchvision's checksums patched to match; ``n_train`` is split over its 5 batches."""
    import hashlib
    import pickle

    import torchvision.datasets as tvd

    cls = tvd.CIFAR10
    folder = root / cls.base_folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def write(name: str, obj) -> list[str]:
        (folder / name).write_bytes(pickle.dumps(obj))
        return [name, hashlib.md5((folder / name).read_bytes()).hexdigest()]

    def batch(n: int) -> dict:
        x = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        return {"data": x, "labels": [int(v) for v in rng.integers(0, 10, n)]}

    per = np.array_split(np.arange(n_train), len(cls.train_list))
    train = [write(name, batch(len(p))) for (name, _), p in zip(cls.train_list, per, strict=True)]
    test = [write(cls.test_list[0][0], batch(n_test))]
    meta = write(cls.meta["filename"], {cls.meta["key"]: [f"class{i}" for i in range(10)]})
    monkeypatch.setattr(cls, "train_list", train)
    monkeypatch.setattr(cls, "test_list", test)
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": meta[1]})
