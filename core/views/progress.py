"""How long a run takes and how far a job is: the cost model, calibrated by measured speed.

The cost of a run's stages comes from ``core.runs.presets.run_cost`` (FLOPs of training the
minima, of the path steps, and of the paths' final evaluation and certificates). Seconds are
FLOPs over a rate in FLOP/s per stage:

- before a run starts, the median rate of the finished runs stored on this machine for the
  same kind of device (``measured_rates``), or an assumed rate when there are none;
- while it runs, the rate of the stage that is running, measured from its steps so far; the
  stages still to come are scaled by the same speed-up over the stored rates.

Every estimate counts all stages that are left, not only the current one. The cost model
counts every step up to the step caps: converged minima and paths stop early, so the
estimates are upper bounds, and the words say so. The barcode itself (union-find on the
saddles) costs nothing next to the paths. Nothing here imports streamlit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.runs.config import RunConfig
from core.runs.jobs import JobState
from core.runs.presets import GPU_FLOPS, run_cost
from core.runs.store import RunInfo
from core.views.dashboard import STAGE_WORDS, STAGES, format_seconds

CPU_FLOPS = 2e10  # assumed FLOP/s on a CPU when no stored run says better (a guess)
UPPER = "step caps; converged minima and paths stop early"


@dataclass(frozen=True)
class StageCosts:
    """FLOPs of one run, by stage (``core.runs.presets.run_cost``)."""

    minima: float  # training the minima
    path_steps: float  # the path optimisation steps and their dense checks
    path_final: float  # the paths' final evaluation and certificates, after the last step
    aligned: float = 0.0  # the aligned landscape's paths (paths.align), after the raw ones

    @property
    def paths(self) -> float:
        return self.path_steps + self.path_final + self.aligned


@dataclass(frozen=True)
class Rates:
    """FLOP/s per stage; ``n_runs`` finished runs they were measured on (0: assumed)."""

    minima: float
    paths: float
    n_runs: int = 0


def stage_costs(config: RunConfig) -> StageCosts | None:
    """The cost model's FLOPs of ``config``'s stages; None where it cannot count the network
    (a dataset it has no shape for)."""
    try:
        c = run_cost(config)
        raw = (
            c if config.paths.align == "none" else run_cost(config.replace(paths={"align": "none"}))
        )
    except (KeyError, ValueError, RuntimeError, TypeError):
        return None
    steps, final = raw["path step FLOPs"], raw["path final FLOPs"]
    aligned = c["path step FLOPs"] + c["path final FLOPs"] - steps - final
    return StageCosts(c["minima FLOPs"], steps, final, aligned)


def device_kind(device: str) -> str:
    """Where a config's ``device`` runs on this machine: "gpu" or "cpu"."""
    if device == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return "gpu" if str(device).startswith("cuda") else "cpu"


def assumed_rates(kind: str) -> Rates:
    rate = GPU_FLOPS if kind == "gpu" else CPU_FLOPS
    return Rates(rate, rate, 0)


def measured_rates(infos: Sequence[RunInfo], kind: str) -> Rates:
    """Median FLOP/s per stage over the finished runs in ``infos`` on a ``kind`` device
    ("cpu" or "gpu"); the assumed rates when there is none."""
    minima, paths = [], []
    for r in infos:
        s = r.summary
        if s is None or device_kind(r.config.device) != kind:
            continue
        costs = stage_costs(r.config)
        if costs is None or s.seconds_minima <= 0 or s.seconds_paths <= 0:
            continue
        minima.append(costs.minima / s.seconds_minima)
        # seconds_paths times the raw paths alone, not an aligned landscape's second set
        paths.append((costs.path_steps + costs.path_final) / s.seconds_paths)
    if not minima:
        return assumed_rates(kind)
    return Rates(float(np.median(minima)), float(np.median(paths)), len(minima))


def run_seconds(costs: StageCosts, rates: Rates) -> float:
    """Seconds of a whole run at ``rates``."""
    return costs.minima / rates.minima + costs.paths / rates.paths


def remaining_run_seconds(
    costs: StageCosts,
    rates: Rates,
    stage: str,
    done: int,
    total: int,
    stage_elapsed: float,
) -> float:
    """Seconds left in a run at ``stage`` (``done`` of ``total`` steps after
    ``stage_elapsed`` seconds in it), for every stage that is left.

    The running stage's rate is measured from its steps so far; later stages run at their
    stored rate times the same speed-up. Before a stage reports a step ("starting", or no
    step yet) the whole run (or the stages from ``stage`` on) at ``rates``.
    """
    frac = min(1.0, done / total) if total > 0 else 0.0
    measured = frac > 0 and stage_elapsed > 0
    if stage == "minima":
        if not measured:
            return run_seconds(costs, rates)
        now = costs.minima * frac / stage_elapsed  # FLOP/s measured in this stage
        return costs.minima * (1 - frac) / now + costs.paths / (rates.paths * now / rates.minima)
    if stage == "paths":
        if not measured:
            return costs.paths / rates.paths
        now = costs.path_steps * frac / stage_elapsed
        return (costs.path_steps * (1 - frac) + costs.path_final + costs.aligned) / now
    if stage == "aligned":  # the aligned landscape's paths, the last stage
        if not measured:
            return costs.aligned / rates.paths
        return costs.aligned * (1 - frac) / (costs.aligned * frac / stage_elapsed)
    return run_seconds(costs, rates)  # "starting", "waiting": nothing measured yet


@dataclass(frozen=True)
class StageBar:
    stage: str
    fraction: float  # 0..1
    text: str


def stage_bars(state: JobState, now: float | None = None) -> list[StageBar]:
    """One bar per stage of the run a job is computing (a sweep's current run): done,
    running (step ``done`` of ``total``, time in the stage) or waiting."""
    now = time.time() if now is None else now
    running = STAGES.index(state.stage) if state.stage in STAGES else -1
    bars = []
    for i, s in enumerate(STAGES):
        words = STAGE_WORDS[s]
        if state.status == "finished" or i < running:
            bars.append(StageBar(s, 1.0, f"{words}: done"))
        elif i == running:
            frac = min(1.0, state.done / state.total) if state.total else 0.0
            spent = now - state.stage_started.get(s, now)
            text = f"{words}: step {state.done} of {state.total}, {format_seconds(spent)}"
            bars.append(StageBar(s, frac, text))
        else:
            bars.append(StageBar(s, 0.0, f"{words}: waiting"))
    return bars


def job_seconds_left(
    state: JobState, costs: StageCosts | None, rates: Rates, now: float | None = None
) -> float | None:
    """Seconds left in the run a job is computing, all stages; None without a cost model
    (then only the running stage is estimated, from its own steps) or once it ended."""
    if state.status != "running":
        return None
    now = time.time() if now is None else now
    spent = now - state.stage_started.get(state.stage, now)
    if costs is None:
        if state.stage not in ("minima", "paths") or state.done <= 0:
            return None
        return spent * (state.total - state.done) / state.done
    return remaining_run_seconds(costs, rates, state.stage, state.done, state.total, spent)


def estimate_words(seconds: float | None, rates: Rates, suffix: str = "") -> str:
    """E.g. "at most about 2 min 10 s left (from the speed of 4 finished runs stored here;
    step caps; ...)" with ``suffix`` " left"."""
    if seconds is None or not math.isfinite(seconds):
        return "time unknown"
    basis = (
        f"from the speed of {rates.n_runs} finished run{'s' * (rates.n_runs != 1)} stored here"
        if rates.n_runs
        else f"at an assumed {rates.minima / 1e9:.0f} GFLOP/s"
    )
    return f"at most about {format_seconds(seconds)}{suffix} ({basis}; {UPPER})"


def job_words(
    state: JobState, costs: StageCosts | None, rates: Rates, now: float | None = None
) -> str:
    """One line on a job: what it does, time elapsed and left (or how it ended)."""
    now = time.time() if now is None else now
    elapsed = format_seconds((state.ended or now) - state.started)
    runs = f" ({state.runs_done} of {state.n_runs} runs done)" if state.kind == "sweep" else ""
    what = state.label + runs
    if state.status == "finished":
        return f"{what}: finished in {elapsed}"
    if state.status == "cancelled":
        return f"{what}: cancelled after {elapsed}; the finished stages are saved"
    if state.status == "failed":
        return f"{what}: failed after {elapsed}: {state.message}"
    if state.stage == "waiting":
        return f"{what}: waiting for another computation of run {state.run_id} to finish"
    if state.stage == "starting":
        return f"{what}: loading the data, {elapsed} elapsed"
    if state.stage not in STAGES:  # e.g. a sweep's Ray tasks, which report only their ends
        return f"{what}: {state.stage}, {elapsed} elapsed"
    left = job_seconds_left(state, costs, rates, now)
    tail = (
        f"this stage {format_seconds(left)} left at its rate so far"
        if costs is None and left is not None
        else estimate_words(left, rates, " left")
        if left is not None
        else "estimating..."
    )
    return f"{what}: {STAGE_WORDS.get(state.stage, state.stage)}, {elapsed} elapsed, {tail}"
