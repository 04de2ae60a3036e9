"""Background jobs: runs and sweeps computed in threads of this process, not of a caller.

A dashboard page (or a notebook) starts a job and returns at once; the job lives until it
finishes, fails or is cancelled, whatever the caller does meanwhile. Anyone in the process
can look at its progress::

    job = registry().start_run(config, store)
    job.state().stage, job.state().done      # "paths", 300
    job.cancel()                             # stops at the run's next progress report
    job.wait()                               # the finished stages stay saved

Cancelling raises ``Cancelled`` from the progress callback, so the run stops inside its
optimisation at the next report; every stage that finished before is already in the store
(the pipeline saves each stage as it finishes) and starting the same config again resumes
from it. A run id (or sweep id) has at most one running job per store: starting it again
returns that job. Two jobs that need the same run (a run inside a running sweep, say) do
not compute it twice: the store's per-run lock makes the second wait, cancellably, and then
find the finished stages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.runs.config import RunConfig
from core.runs.pipeline import run
from core.runs.store import RunBusyError, RunStore
from core.runs.sweep import SweepProgress, SweepSpec, run_sweep, sweep_configs, sweep_id

log = logging.getLogger(__name__)

__all__ = ["Cancelled", "Job", "JobRegistry", "JobState", "registry"]

STATUSES = ("running", "finished", "failed", "cancelled")
BUSY_POLL = 1.0  # seconds between tries for a run that another job or process is computing
KEEP_ENDED = 50  # ended jobs remembered per registry (the newest)


class Cancelled(Exception):
    """Raised from a job's progress callback once the job is cancelled (not a ValueError or
    RuntimeError, so a sweep does not record it as a failed run and go on)."""


@dataclass(frozen=True)
class JobState:
    """A snapshot of one job. Times are seconds since the epoch."""

    key: str  # "run:<root>:<run id>" or "sweep:<root>:<sweep id>"
    kind: str  # "run" or "sweep"
    target: str  # the run id or the sweep id
    label: str  # what the job computes, in words
    status: str = "running"  # one of STATUSES
    message: str = ""  # why it failed
    stage: str = "starting"  # "starting", "waiting" (for the run's lock), "minima", "paths",
    # or "computing as Ray tasks" (a Ray sweep, which reports only the runs that ended)
    done: int = 0  # steps of the current stage
    total: int = 0
    started: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    ended: float | None = None
    stage_started: dict[str, float] = field(default_factory=dict)  # of the current run
    run_id: str = ""  # the run being computed (a sweep's current run)
    runs_done: int = 0  # sweeps: runs finished so far (computed, cached or failed)
    n_runs: int = 1


class Job:
    """One run or sweep computing in a daemon thread; read it through ``state()``."""

    def __init__(self, state: JobState, work: Callable[[Job], None]) -> None:
        self._state = state
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._main, args=(work,), name=f"job {state.kind} {state.target}", daemon=True
        )

    @property
    def key(self) -> str:
        return self._state.key

    def state(self) -> JobState:
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        return self.state().status == "running"

    def cancel(self) -> None:
        """Ask the job to stop at its next progress report."""
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set() and self.running

    def wait(self, timeout: float | None = None) -> JobState:
        """Block until the job ends (or ``timeout`` seconds pass); its state."""
        self._thread.join(timeout)
        return self.state()

    # -- used by the work functions ----------------------------------------------------------

    def update(self, *, check: bool = True, **changes) -> None:
        """Record progress; raises Cancelled once the job is cancelled (with ``check``)."""
        if check and self._cancel.is_set():
            raise Cancelled
        now = time.time()
        with self._lock:
            s = self._state
            if changes.get("run_id", s.run_id) != s.run_id:  # a sweep's next run
                changes.setdefault("stage_started", {})
            stage = changes.get("stage", s.stage)
            started = changes.get("stage_started", s.stage_started)
            if stage not in started:
                changes["stage_started"] = started | {stage: now}
            self._state = replace(s, updated=now, **changes)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or raise Cancelled as soon as the job is cancelled."""
        if self._cancel.wait(seconds):
            raise Cancelled

    def _start(self) -> Job:
        self._thread.start()
        return self

    def _main(self, work: Callable[[Job], None]) -> None:
        try:
            work(self)
        except Cancelled:
            self._end("cancelled", "")
        except (ValueError, RuntimeError) as exc:
            self._end("failed", str(exc))
        except Exception as exc:  # a bug: keep the server alive and say what happened
            log.exception("job %s failed", self.key)
            self._end("failed", f"{type(exc).__name__}: {exc}")
        else:
            self._end("finished", "")

    def _end(self, status: str, message: str) -> None:
        with self._lock:
            self._state = replace(self._state, status=status, message=message, ended=time.time())
        log.info("job %s %s %s", self.key, status, message)


def _run_work(config: RunConfig, store: RunStore, prepared) -> Callable[[Job], None]:
    """A run job's work: ``pipeline.run``, waiting (cancellably) while the run is busy."""

    def work(job: Job) -> None:
        def report(stage: str, done: int, total: int) -> None:
            job.update(stage=stage, done=done, total=total)

        while True:
            try:
                run(config, store=store, on_progress=report, wait=False, prepared=prepared)
                return
            except RunBusyError:
                job.update(stage="waiting", done=0, total=0)
                job.sleep(BUSY_POLL)

    return work


def _sweep_work(specs, store: RunStore, name: str, executor: str) -> Callable[[Job], None]:
    """A sweep job's work: ``run_sweep`` with its reports turned into the job's progress."""

    def work(job: Job) -> None:
        ended: set[str] = set()

        def report(p: SweepProgress) -> None:
            if p.stage in ("cached", "done", "failed"):
                ended.add(p.run_id)
                # serial: the next run's first report stops it, after the sweep file is saved;
                # Ray reports only runs that ended, so any report must be able to stop it
                job.update(check=executor == "ray", runs_done=len(ended), n_runs=p.n_runs)
            else:
                job.update(run_id=p.run_id, stage=p.stage, done=p.done, total=p.total)

        if executor == "ray":
            job.update(stage="computing as Ray tasks")
        run_sweep(specs, store, report, name=name, executor=executor)

    return work


class JobRegistry:
    """The jobs of one process, by key; at most one running job per key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}

    def start_run(self, config: RunConfig, store: RunStore, *, prepared=None) -> Job:
        """Run (or resume) ``config`` in the background; the running job if there is one.

        ``prepared``: ``core.runs.pipeline.objectives(config)`` when the caller has checked
        the settings with them already.
        """
        rid = config.run_id
        state = JobState(_key("run", store, rid), "run", rid, f"run {rid}", run_id=rid)
        return self._start(state, _run_work(config, store, prepared))

    def start_sweep(
        self,
        specs: SweepSpec | Sequence[SweepSpec],
        store: RunStore,
        *,
        name: str = "",
        executor: str = "serial",
    ) -> Job:
        """Run (or resume) a sweep in the background; the running job if there is one."""
        sid = sweep_id(specs)
        label = f"sweep {name or sid}" + (" on Ray" if executor == "ray" else "")
        n = len(sweep_configs(specs))
        state = JobState(_key("sweep", store, sid), "sweep", sid, label, n_runs=n)
        return self._start(state, _sweep_work(specs, store, name, executor))

    def _start(self, state: JobState, work: Callable[[Job], None]) -> Job:
        with self._lock:
            old = self._jobs.get(state.key)
            if old is not None and old.running:
                return old
            self._jobs.pop(state.key, None)  # the newest job of a key is the last one
            job = self._jobs[state.key] = Job(state, work)
            self._forget_old()
            return job._start()

    def _forget_old(self) -> None:
        ended = [k for k, j in self._jobs.items() if not j.running]
        for k in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._jobs[k]

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def find(self, kind: str, store: RunStore, target: str) -> Job | None:
        """The latest job of run (or sweep) ``target`` in ``store``, if any."""
        return self.get(_key(kind, store, target))

    def jobs(self, store: RunStore | None = None) -> list[Job]:
        """Every remembered job (of ``store`` only, if given), oldest first."""
        with self._lock:
            jobs = list(self._jobs.values())
        root = f":{_root(store)}:" if store is not None else ""
        return [j for j in jobs if root in j.key]

    def running(self, store: RunStore | None = None) -> list[Job]:
        return [j for j in self.jobs(store) if j.running]


def _root(store: RunStore) -> str:
    return str(Path(store.root).resolve())


def _key(kind: str, store: RunStore, target: str) -> str:
    return f"{kind}:{_root(store)}:{target}"


_REGISTRY = JobRegistry()


def registry() -> JobRegistry:
    """The process's job registry (a dashboard server's jobs outlive its script runs)."""
    return _REGISTRY
