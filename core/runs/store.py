"""The run store: ``runs/<id>/`` holds one run's config, results and tensors.

Layout of a run folder (every file written atomically: temp file, fsync, rename, so a
file that exists is complete; a run killed mid-write leaves at most a ``.tmp-*`` file that
is never read):

    config.json          the RunConfig
    minima.json          per-minimum numbers (stage 1 finished)
    minima.safetensors   (K, P) the minima's parameters
    paths.json           per-pair numbers and saddle histories (stage 2 finished)
    paths.safetensors    every stored path's points, concatenated, with offsets
    results.json         the barcode and the summary (stage 3: the run is complete)

Tensors are safetensors, numbers JSON: nothing is ever unpickled.

Also in the folder: ``.lock``, which a process computing the run holds (``fcntl.flock``) for
as long as it works on the run. A second process that wants to compute the same run waits
for the first and then finds the finished stages; readers never lock (complete files only).
Leftover ``.tmp-*`` files of a killed process are removed by the next process that takes
the lock.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

from core.engine.barcode import Barcode
from core.engine.minima import Minima
from core.engine.paths import Paths
from core.runs.config import RunConfig
from core.runs.files import (
    TMP_PREFIX,
    check_file,
    read_json,
    read_tensors,
    write_json,
    write_tensors,
)
from core.runs.record import Aligned, Metrics, Run, Summary

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"[0-9a-f]{12}")  # used with fullmatch: no "../", no trailing newline
STAGES = ("minima", "paths", "results")
STAGE_FILES = {
    "minima": ("minima.safetensors", "minima.json"),
    "paths": ("paths.safetensors", "paths.json"),
    "results": ("aligned.safetensors", "results.json"),
}  # written in this order; a stage is finished once its .json exists
OPTIONAL = {"aligned.safetensors"}  # only runs with paths.align have it


class RunBusyError(ValueError):
    """Another process is computing this run (raised only when not waiting for it)."""


@dataclass
class RunInfo:
    """One line of the run list."""

    run_id: str
    config: RunConfig
    stage: str  # the last finished stage: "none", "minima", "paths" or "results"
    summary: Summary | None  # from results.json when complete
    modified: float  # seconds since the epoch


class RunStore:
    """Runs under one folder. ``RunStore("runs").dir("abc123def456")``."""

    def __init__(self, root: str | os.PathLike = "runs") -> None:
        self.root = Path(root)

    def dir(self, run_id: str) -> Path:
        """The folder of a run; ValueError for anything that is not a run id (so no path
        such as ``../x``, ``/etc`` or ``..%2f`` ever leaves the store)."""
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id {run_id!r:.60} is not 12 lowercase hex digits")
        return self.root / run_id

    def config(self, run_id: str) -> RunConfig:
        """The run's config; ValueError if it is missing, corrupt or not this run's."""
        d = self.dir(run_id)
        if not (d / "config.json").exists():
            raise ValueError(f"no run {run_id!r} in {self.root}")
        try:
            cfg = RunConfig.from_record(read_json(d / "config.json"))
        except ValueError as exc:
            raise ValueError(f"{d / 'config.json'} is not a valid config: {exc}") from None
        if cfg.run_id != run_id:
            raise ValueError(f"{d / 'config.json'} hashes to {cfg.run_id}, not to its folder name")
        return cfg

    def stage(self, run_id: str) -> str:
        """The last finished stage: "none", "minima", "paths" or "results"."""
        d, done = self.dir(run_id), "none"
        for s in STAGES:  # stages finish in order: the finished ones are a prefix
            if not (d / STAGE_FILES[s][-1]).exists():
                break
            done = s
        return done

    def check(self, run_id: str) -> str:
        """The last finished stage, after checking that every file of the finished stages is
        complete (JSON parses; safetensors header and size agree); ValueError naming the
        first bad file."""
        stage, bad = self._verify(run_id)
        if bad:
            raise ValueError(bad[1])
        return stage

    def _verify(self, run_id: str) -> tuple[str, tuple[str, str] | None]:
        """(last finished stage, None or (first stage with a bad file, why)). Files that
        passed are remembered by inode, size and mtime, so each is read once per process."""
        stage, d = self.stage(run_id), self.dir(run_id)
        for s in STAGES[: STAGES.index(stage) + 1] if stage != "none" else ():
            for path in (d / name for name in STAGE_FILES[s]):
                if path.name in OPTIONAL and not path.exists():
                    continue
                try:
                    st = path.stat()
                    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
                    if key not in _CHECKED:
                        check_file(path)
                        _CHECKED.add(key)
                except OSError as exc:
                    return stage, (s, f"{path} cannot be read ({exc.strerror})")
                except ValueError as exc:
                    return stage, (s, str(exc))
        return stage, None

    def list(self) -> tuple[list[RunInfo], list[tuple[str, str]]]:
        """All runs, newest first, and (folder, reason) for every folder that is unreadable."""
        runs, bad = [], []
        if not self.root.is_dir():
            return runs, bad
        for d in sorted(self.root.iterdir()):
            if not d.is_dir() or not RUN_ID.fullmatch(d.name):
                continue
            try:
                cfg = self.config(d.name)
                stage = self.check(d.name)
                summary = read_summary(d / "results.json") if stage == "results" else None
                runs.append(RunInfo(d.name, cfg, stage, summary, _modified(d)))
            except (ValueError, KeyError, TypeError, OSError) as exc:
                log.info("skipping run folder %s: %s", d, exc)  # the caller reports ``bad``
                bad.append((d.name, str(exc)))
        runs.sort(key=lambda r: r.modified, reverse=True)
        return runs, bad

    @contextmanager
    def lock(self, run_id: str, *, wait: bool = True) -> Iterator[Path]:
        """Hold ``runs/<id>/.lock`` (created with the folder) while computing the run.

        With ``wait`` a second process blocks until the first lets go, else it gets
        RunBusyError ("run <id> is being computed by another process"). The lock belongs to
        the open file, so it also separates threads, and the OS drops it when a process dies.
        """
        d = self.dir(run_id)
        d.mkdir(parents=True, exist_ok=True)
        fd = os.open(d / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    busy = f"run {run_id} is being computed by another process"
                    if not wait:
                        raise RunBusyError(busy) from None
                    log.warning("%s; waiting for it to finish", busy)
                    fcntl.flock(fd, fcntl.LOCK_EX)
            yield d
        finally:
            os.close(fd)  # releases the lock

    def busy(self, run_id: str) -> bool:
        """True while a process (or a thread of this one) holds the run's lock, i.e. is
        computing it. Probes with a shared lock, let go at once; takes nothing when free."""
        path = self.dir(run_id) / ".lock"
        if fcntl is None or not path.exists():
            return False
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # releases the probe's shared lock
        return False

    def clean_temp(self, run_id: str) -> int:
        """Remove ``.tmp-*`` files left by a killed writer; call only while holding the lock."""
        n = 0
        for p in self.dir(run_id).glob(f"{TMP_PREFIX}*"):
            p.unlink(missing_ok=True)
            n += 1
        if n:
            log.info("run %s: removed %d unfinished temporary file(s)", run_id, n)
        return n

    def repair(self, config: RunConfig) -> str:
        """Before computing (holding the lock): rewrite a missing or bad config.json, and drop
        the first finished stage with a bad file and every later one, so they are computed
        again. Returns the last stage that is kept."""
        run_id, d = config.run_id, self.dir(config.run_id)
        try:
            self.config(run_id)
        except ValueError as exc:
            if (d / "config.json").exists():
                log.warning("run %s: rewriting config.json (%s)", run_id, exc)
            write_json(d / "config.json", config.to_dict())
        stage, bad = self._verify(run_id)
        if bad is None:
            return stage
        log.warning("run %s: %s; computing stage %r and later ones again", run_id, bad[1], bad[0])
        for s in reversed(STAGES[STAGES.index(bad[0]) :]):
            for name in reversed(STAGE_FILES[s]):  # the .json first: the stage is undone
                (d / name).unlink(missing_ok=True)
        return self.stage(run_id)


_CHECKED: set[tuple[str, int, int, int]] = set()  # files that check() found complete


def _modified(d: Path) -> float:
    """Latest modification time of a run's files (not the lock or temp files)."""
    times = []
    for p in d.iterdir():
        if not p.name.startswith("."):
            try:
                times.append(p.stat().st_mtime)
            except FileNotFoundError:  # replaced while we looked
                pass
    return max(times, default=d.stat().st_mtime)


def write_stage(store: RunStore, run: Run, stage: str) -> None:
    """Write ``stage`` of ``run`` ("minima", "paths" or "results") into its folder, tensors
    first: a stage is finished once its .json exists."""
    d = store.dir(run.run_id)
    if stage == "minima":
        write_tensors(d / "minima.safetensors", {"thetas": run.minima.thetas})
        rec = run.minima.to_dict() | run.metrics.to_dict() | {"seconds": run.seconds["minima"]}
        write_json(d / "minima.json", rec)
    elif stage == "paths":
        write_tensors(d / "paths.safetensors", _joined(run.paths, run.minima.thetas))
        write_json(d / "paths.json", run.paths.to_dict() | {"seconds": run.seconds["paths"]})
    elif stage == "results":
        rec = {"barcode": run.barcode.to_dict(), "summary": run.summary.to_dict()}
        if run.aligned is not None:
            a = run.aligned
            write_tensors(
                d / "aligned.safetensors", {"thetas": a.thetas} | _joined(a.paths, a.thetas)
            )
            rec["aligned"] = a.to_dict()
        write_json(d / "results.json", rec)
    else:
        raise ValueError(f"stage must be 'minima', 'paths' or 'results', got {stage!r}")


def read_summary(path: Path) -> Summary:
    """The summary in a results.json; ValueError naming the file if it is not one."""
    res = read_json(path)
    return _parsed(path, lambda: Summary.from_dict(res["summary"]))


def read_run(store: RunStore, run_id: str) -> Run:
    """Whatever stages of a run are finished; ValueError naming the first bad file if one is
    corrupt, or if no stage is finished yet."""
    config = store.config(run_id)
    stage = store.stage(run_id)
    if stage == "none":
        raise ValueError(f"run {run_id} has no finished stage yet")
    d = store.dir(run_id)
    rec = read_json(d / "minima.json")
    thetas = read_tensors(d / "minima.safetensors")["thetas"]
    if thetas.ndim != 2 or thetas.shape[0] != len(rec.get("values", ())):
        raise ValueError(f"run {run_id}: minima.safetensors does not match minima.json")
    run = _parsed(
        d / "minima.json",
        lambda: Run(
            run_id,
            config,
            Minima.from_dict(rec, thetas),
            Metrics.from_dict(rec),
            seconds={"minima": float(rec["seconds"])},
        ),
    )
    if stage in ("paths", "results"):
        rec = read_json(d / "paths.json")
        t = read_tensors(d / "paths.safetensors")
        points = _parsed(d / "paths.safetensors", lambda: _split(t))
        run.paths, run.seconds["paths"] = _parsed(
            d / "paths.json", lambda: (Paths.from_dict(rec, points), float(rec["seconds"]))
        )
    if stage == "results":
        res = read_json(d / "results.json")
        run.barcode = _parsed(d / "results.json", lambda: Barcode.from_dict(res["barcode"]))
        run.summary = read_summary(d / "results.json")
        if "aligned" in res:
            t = read_tensors(d / "aligned.safetensors")
            pts = _parsed(d / "aligned.safetensors", lambda: _split(t))
            run.aligned = _parsed(
                d / "results.json", lambda: Aligned.from_dict(res["aligned"], t["thetas"], pts)
            )
    return run


def _joined(paths: Paths, thetas: torch.Tensor) -> dict[str, torch.Tensor]:
    """Paths' points as stored: all of them one after another (sum N_e, P), and each
    path's N_e."""
    pts = paths.points
    sizes = torch.tensor([p.shape[0] for p in pts], dtype=torch.int64)
    flat = torch.cat(pts) if pts else thetas.new_zeros(0, thetas.shape[1])
    return {"points": flat, "sizes": sizes}


def _split(t: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    """The stored paths' points: E tensors (N_e, P) from their concatenation and sizes."""
    sizes = t["sizes"].tolist()
    return list(torch.split(t["points"], sizes)) if sizes else []


def _parsed(path: Path, parse):
    """``parse()``, with any error in the file's content reported as ``path`` is corrupt."""
    try:
        return parse()
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path} is corrupt ({type(exc).__name__}: {exc})") from None
