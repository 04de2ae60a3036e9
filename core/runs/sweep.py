"""Sweeps: a grid of run configurations, run in order, cached by run id.

A ``SweepSpec`` is one grid: every combination of the listed datasets, architectures,
regimes, depths, widths and seeds, everything else taken from ``base``. A sweep is one or
more specs (the paper's width series and depth series are two grids); its id is the hash of
their JSON, as a run's id is the hash of its config::

    spec = SweepSpec(base=RunConfig(), widths=(4, 8, 16), depths=(1, 2), seeds=(0, 1, 2))
    result = run_sweep(spec, store, on_progress=print)   # 18 runs
    result = run_sweep(spec, store)                       # again: 0 new runs

Runs are stored as usual under ``runs/<run id>/``; the sweep itself is one file,
``runs/sweeps/<sweep id>.json`` (written atomically), with the specs, the run ids in order,
and a line per invocation (when, how long, how many runs were new). A run already finished
costs nothing; one interrupted resumes from its last stage (``core.runs.pipeline.run``).

Regimes are written ``"anneal"``, ``"constant"`` or ``"REGIME:LR"`` (``"constant:0.001"``):
the paper's two kinds of minima differ in the schedule *and* the step size (a small constant
rate vs a high rate that anneals), so a regime may carry its own ``train.lr``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.engine.options import REGIMES
from core.runs.config import ARCHITECTURES, DATASETS, LATER_IN_SWEEPS, RunConfig
from core.runs.files import read_json, write_json
from core.runs.pipeline import run
from core.runs.ray_executor import check_address, run_on_ray
from core.runs.store import RunStore

log = logging.getLogger(__name__)

__all__ = [
    "SweepProgress",
    "SweepRecord",
    "SweepResult",
    "SweepSpec",
    "common_fields",
    "describe",
    "differing_fields",
    "expand",
    "flat_fields",
    "list_sweeps",
    "load_sweep",
    "parse_list",
    "plan_sweep",
    "run_sweep",
    "sweep_configs",
    "sweep_id",
]

MAX_RUNS = 2000  # refuse sweeps larger than this before running anything
SWEEP_ID = re.compile(r"^[0-9a-f]{12}$")
AXES = ("datasets", "archs", "regimes", "depths", "widths", "seeds")


def _regime(text: Any) -> tuple[str, float | None]:
    """``"constant:0.001"`` -> ("constant", 0.001); ``"anneal"`` -> ("anneal", None)."""
    if not isinstance(text, str):
        raise ValueError(f"regimes entry {text!r}: must be a string like 'constant:1e-3'")
    name, _, lr = text.partition(":")
    if name not in REGIMES:
        raise ValueError(f"regimes entry {text!r}: regime must be one of {REGIMES}")
    if not lr:
        return name, None
    try:
        value = float(lr)
    except ValueError:
        raise ValueError(f"regimes entry {text!r}: learning rate {lr!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise ValueError(f"regimes entry {text!r}: the learning rate must be > 0")
    return name, value


@dataclass(frozen=True)
class SweepSpec:
    """One grid of runs. Empty axes keep the value of ``base``.

    Order of the runs: seeds outermost (a sweep stopped half-way has whole grids for the
    first seeds), then datasets, architectures, regimes, depths, widths.
    """

    base: RunConfig = field(default_factory=RunConfig)  # every field not swept
    datasets: tuple[str, ...] = ()  # data.name values
    archs: tuple[str, ...] = ()  # model.arch values
    regimes: tuple[str, ...] = ()  # "anneal", "constant" or "REGIME:LR"
    depths: tuple[int, ...] = ()  # model.depth values
    widths: tuple[int, ...] = ()  # model.width values
    seeds: tuple[int, ...] = ()  # seed values

    def __post_init__(self) -> None:
        if not isinstance(self.base, RunConfig):
            raise ValueError(f"base={self.base!r}: must be a RunConfig")
        for name in AXES:
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ValueError(f"{name}={value!r}: must be a list")
            value = tuple(value)
            object.__setattr__(self, name, value)
            if len(set(map(repr, value))) != len(value):
                raise ValueError(f"{name}={list(value)!r}: values must not repeat")
        _check_members("datasets", self.datasets, DATASETS)
        _check_members("archs", self.archs, ARCHITECTURES)
        for r in self.regimes:
            _regime(r)
        for name in ("depths", "widths", "seeds"):
            low = 0 if name == "seeds" else 1
            for v in getattr(self, name):
                if isinstance(v, bool) or not isinstance(v, int) or v < low:
                    raise ValueError(f"{name} entry {v!r}: must be an integer >= {low}")
        n = self.size
        if n > MAX_RUNS:
            raise ValueError(f"sweep of {n} runs exceeds the limit of {MAX_RUNS}")
        expand(self)  # every point must be a valid RunConfig: fail before running anything

    @property
    def size(self) -> int:
        n = 1
        for name in AXES:
            n *= max(len(getattr(self, name)), 1)
        return n

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict()} | {a: list(getattr(self, a)) for a in AXES}

    @classmethod
    def from_dict(cls, d: Any) -> SweepSpec:
        if not isinstance(d, dict):
            raise ValueError(f"sweep spec must be a JSON object, got {type(d).__name__}")
        known = {"base", *AXES}
        unknown = sorted(set(d) - known, key=str)
        if unknown:
            raise ValueError(f"unknown key sweep.{unknown[0]}; known: {sorted(known)}")
        base = RunConfig.from_record(d["base"]) if "base" in d else RunConfig()
        return cls(base=base, **{a: d[a] for a in AXES if a in d})


def _check_members(name: str, values: tuple, allowed: tuple) -> None:
    for v in values:
        if v not in allowed:
            raise ValueError(f"{name} entry {v!r}: must be one of {allowed}")


def expand(spec: SweepSpec) -> list[RunConfig]:
    """Every run of one grid, in sweep order; ValueError naming the first invalid point."""
    b = spec.base
    axes = [
        spec.seeds or (b.seed,),
        spec.datasets or (b.data.name,),
        spec.archs or (b.model.arch,),
        spec.regimes or (b.train.regime,),
        spec.depths or (b.model.depth,),
        spec.widths or (b.model.width,),
    ]
    out = []
    for seed, data, arch, regime, depth, width in itertools.product(*axes):
        name, lr = _regime(regime)
        train = {"regime": name} | ({"lr": lr} if lr is not None else {})
        try:
            out.append(
                b.replace(
                    data={"name": data},
                    model={"arch": arch, "width": width, "depth": depth},
                    train=train,
                    seed=seed,
                )
            )
        except ValueError as exc:
            raise ValueError(
                f"sweep point (dataset={data}, arch={arch}, regime={regime}, depth={depth}, "
                f"width={width}, seed={seed}): {exc}"
            ) from None
    return out


def _as_specs(specs: SweepSpec | Sequence[SweepSpec]) -> tuple[SweepSpec, ...]:
    specs = (specs,) if isinstance(specs, SweepSpec) else tuple(specs)
    if not specs or not all(isinstance(s, SweepSpec) for s in specs):
        raise ValueError("a sweep needs one or more SweepSpec")
    if sum(s.size for s in specs) > MAX_RUNS:
        raise ValueError(f"sweep of {sum(s.size for s in specs)} runs exceeds {MAX_RUNS}")
    return specs


def sweep_configs(specs: SweepSpec | Sequence[SweepSpec]) -> list[RunConfig]:
    """The runs of all specs in order, each distinct run once (grids may share points)."""
    seen: dict[str, RunConfig] = {}
    for s in _as_specs(specs):
        for c in expand(s):
            seen.setdefault(c.run_id, c)
    return list(seen.values())


def sweep_id(specs: SweepSpec | Sequence[SweepSpec]) -> str:
    """12 hex digits of the SHA-256 of the specs' canonical JSON."""
    specs = [s.to_dict() | {"base": s.base.canonical(LATER_IN_SWEEPS)} for s in _as_specs(specs)]
    canon = json.dumps(specs, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:12]


# ------------------------------------------------------------------------------------------
# The sweep file


@dataclass
class SweepRecord:
    """What ``runs/sweeps/<id>.json`` holds."""

    sweep_id: str
    specs: tuple[SweepSpec, ...]
    run_ids: list[str]  # every run of the sweep, in order
    invocations: list[dict[str, Any]]  # started, seconds, cpu_seconds, new, reused, failed
    errors: dict[str, str]  # run id -> why it failed (last invocation that tried it)
    name: str = ""  # a preset's name, when it came from one

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "name": self.name,
            "specs": [s.to_dict() for s in self.specs],
            "run_ids": self.run_ids,
            "invocations": self.invocations,
            "errors": self.errors,
        }

    @property
    def compute_seconds(self) -> float:
        """Wall time of every invocation added up (the cost of computing the sweep)."""
        return float(sum(i["seconds"] for i in self.invocations))


def _path(store: RunStore, sid: str) -> Path:
    if not isinstance(sid, str) or not SWEEP_ID.match(sid):
        raise ValueError(f"sweep id {sid!r} is not 12 lowercase hex digits")
    return store.root / "sweeps" / f"{sid}.json"


def load_sweep(store: RunStore, sid: str) -> SweepRecord:
    """The sweep file; ValueError when it is missing or corrupt."""
    p = _path(store, sid)
    if not p.exists():
        raise ValueError(f"no sweep {sid!r} in {store.root / 'sweeps'}")
    d = read_json(p)
    try:
        specs = tuple(SweepSpec.from_dict(s) for s in d["specs"])
        rec = SweepRecord(
            sid,
            specs,
            list(d["run_ids"]),
            list(d["invocations"]),
            dict(d["errors"]),
            str(d.get("name", "")),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{p} is corrupt ({type(exc).__name__}: {exc})") from None
    if sweep_id(specs) != sid:
        raise ValueError(f"{p}: its specs hash to {sweep_id(specs)}, not to its name")
    return rec


def list_sweeps(store: RunStore) -> list[SweepRecord]:
    """Every readable sweep, newest first (unreadable files are logged and skipped)."""
    folder = store.root / "sweeps"
    out = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out.append(load_sweep(store, p.stem))
        except ValueError as exc:
            log.warning("skipping sweep file %s: %s", p, exc)
    return sorted(
        out, key=lambda r: r.invocations[-1]["started"] if r.invocations else 0, reverse=True
    )


def _save(store: RunStore, rec: SweepRecord) -> None:
    p = _path(store, rec.sweep_id)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_json(p, rec.to_dict())


# ------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class SweepProgress:
    """One progress report: run ``index`` (0-based) of ``n_runs``, and where it stands.

    ``stage``: "cached" (finished before, costs nothing), "minima" or "paths" (with
    ``done`` of ``total`` steps), "done" (just finished) or "failed".
    """

    index: int
    n_runs: int
    run_id: str
    config: RunConfig
    stage: str
    done: int = 0
    total: int = 0

    @property
    def fraction(self) -> float:
        """Fraction of the sweep finished, counting runs and the stage within this run."""
        inner = {
            "minima": 0.3 * self.done / max(self.total, 1),
            "paths": 0.3 + 0.7 * self.done / max(self.total, 1),
        }.get(self.stage)
        return (self.index + (1.0 if inner is None else inner)) / max(self.n_runs, 1)


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    run_ids: list[str]
    new: list[str]  # computed (or resumed) by this call
    reused: list[str]  # finished before this call
    failed: dict[str, str]  # run id -> error message
    seconds: float


def plan_sweep(
    specs: SweepSpec | Sequence[SweepSpec], store: RunStore
) -> list[tuple[RunConfig, str]]:
    """(config, last finished stage) per run, without computing anything."""
    out = []
    for c in sweep_configs(specs):
        try:
            stage = store.stage(c.run_id)
        except (ValueError, OSError):
            stage = "none"
        out.append((c, stage))
    return out


EXECUTORS = ("serial", "ray")


def run_sweep(
    specs: SweepSpec | Sequence[SweepSpec],
    store: RunStore | None = None,
    on_progress: Callable[[SweepProgress], None] | None = None,
    *,
    name: str = "",
    executor: str = "serial",
    address: str | None = None,
) -> SweepResult:
    """Run every configuration of the sweep; finished runs are re-used.

    A run that raises ValueError or RuntimeError is recorded in the sweep file and the
    sweep goes on. The sweep file is rewritten after every run, so an interrupted sweep
    leaves a record of what was done; running it again picks up where it stopped.

    Parameters
    ----------
    specs : SweepSpec or sequence of SweepSpec
    store : RunStore, optional
        ``runs/`` by default.
    on_progress : callable, optional
        Called with a ``SweepProgress`` at every stage step of every run (serial), or as each
        run is cached, done or failed (ray).
    name : str
        A label kept in the sweep file (a preset's name).
    executor : str
        "serial": one run after another in this process; "ray": every run a Ray task
        (``core.runs.ray_executor``), on this machine or the cluster at ``address``.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r}: must be one of {EXECUTORS}")
    if address:
        check_address(address)  # before the sweep is recorded
    store = store or RunStore()
    specs = _as_specs(specs)
    sid = sweep_id(specs)
    configs = sweep_configs(specs)
    ids = [c.run_id for c in configs]
    try:
        rec = load_sweep(store, sid)
    except ValueError:
        rec = SweepRecord(sid, specs, ids, [], {}, name)
    rec.name = name or rec.name
    started, t0, c0 = time.time(), time.perf_counter(), time.process_time()
    inv = {
        "started": started,
        "seconds": 0.0,
        "cpu_seconds": 0.0,
        "new": 0,
        "reused": 0,
        "failed": 0,
    }
    rec.invocations.append(inv)
    _save(store, rec)  # the sweep is on record (and listed) from its first moment
    new, reused, failed = [], [], {}
    n = len(configs)

    def reporter(i: int, c: RunConfig):
        def report(stage: str, done: int = 0, total: int = 0) -> None:
            if on_progress:
                on_progress(SweepProgress(i, n, c.run_id, c, stage, done, total))

        return report

    def finished(i: int, c: RunConfig, error: str | None) -> None:
        if error is None:
            new.append(c.run_id)
            rec.errors.pop(c.run_id, None)
            reporter(i, c)("done")
        else:
            failed[c.run_id] = rec.errors[c.run_id] = error
            log.warning("sweep %s: run %s failed: %s", sid, c.run_id, error)
            reporter(i, c)("failed")
        _record(inv, t0, c0, new, reused, failed)
        _save(store, rec)

    todo = []
    for i, c in enumerate(configs):
        if store.stage(c.run_id) == "results":
            reused.append(c.run_id)
            rec.errors.pop(c.run_id, None)
            reporter(i, c)("cached")
        else:
            todo.append((i, c))
    if executor == "ray":
        where = {c.run_id: i for i, c in todo}
        for c, error in run_on_ray([c for _, c in todo], store, address=address):
            finished(where[c.run_id], c, error)
    for i, c in todo if executor == "serial" else ():
        try:
            run(c, store=store, on_progress=reporter(i, c))
        except (ValueError, RuntimeError) as exc:
            finished(i, c, f"{type(exc).__name__}: {exc}")
        else:
            finished(i, c, None)
    _record(inv, t0, c0, new, reused, failed)
    _save(store, rec)
    return SweepResult(sid, ids, new, reused, failed, time.perf_counter() - t0)


def _record(inv: dict, t0: float, c0: float, new: list, reused: list, failed: dict) -> None:
    inv.update(
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        new=len(new),
        reused=len(reused),
        failed=len(failed),
    )


def parse_list(text: str, kind: type, name: str) -> tuple:
    """``"4,8,16"`` -> (4, 8, 16); ValueError naming the flag for a bad entry."""
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            raise ValueError(f"{name}={text!r}: empty entry")
        try:
            out.append(kind(part))
        except ValueError:
            raise ValueError(f"{name}={text!r}: {part!r} is not a valid {kind.__name__}") from None
    return tuple(out)


def describe(c: RunConfig) -> str:
    """``digits mlp w8 d1 anneal lr0.02 seed 0``: the swept fields of one run."""
    return (
        f"{c.data.name} {c.model.arch} w{c.model.width} d{c.model.depth} "
        f"{c.train.regime} lr{c.train.lr:g} seed {c.seed}"
    )


def differing_fields(configs: Sequence[RunConfig]) -> dict[str, list[Any]]:
    """Dotted field name -> the distinct values, for the fields that vary across configs."""
    flat = [flat_fields(c) for c in configs]
    keys = dict.fromkeys(k for f in flat for k in f)
    out = {}
    for k in keys:
        vals = list(dict.fromkeys(json.dumps(f.get(k)) for f in flat))
        if len(vals) > 1:
            out[k] = [json.loads(v) for v in vals]
    return out


def common_fields(configs: Sequence[RunConfig]) -> dict[str, Any]:
    """Dotted field name -> value for the fields that every config shares."""
    flat = [flat_fields(c) for c in configs]
    varying = differing_fields(configs)
    return {k: v for k, v in flat[0].items() if k not in varying} if flat else {}


def flat_fields(config: RunConfig) -> dict[str, Any]:
    """A config as {dotted field name: value}: ``{"model.width": 8, ...}``."""

    def walk(d: dict, prefix: str) -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            out |= walk(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
        return out

    return walk(config.to_dict(), "")
