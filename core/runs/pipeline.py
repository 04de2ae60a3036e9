"""A network run end to end: data -> minima -> paths -> barcode, saved stage by stage.

``run(config)`` trains ``config.train.minima`` networks from independent initialisations,
connects them with optimised paths, computes the barcode and stores everything under
``runs/<run id>/``. Each stage is saved before the next begins, so a run that is
interrupted resumes from its last finished stage and, because every random choice derives
from the config's seed, ends with the same result.

Reliability, in one place:

- One process at a time computes a run: ``run`` holds the run's lock (``RunStore.lock``);
  a second process waits for it, then finds the finished stages.
- Under the lock, leftovers of a killed process (``.tmp-*``) are removed and a stage with an
  incomplete or corrupt file is computed again (``RunStore.repair``).
- Sizes are checked before anything is allocated: the network's parameters are counted on
  PyTorch's ``meta`` device (``check_size``).
- Starts whose loss or gradient is not finite are left out with the reason (minima.json
  ``failed``, ``summary["n_failed"]``); the run goes on with the rest.
- Test hook: ``core.runs.store.PAUSE_AT`` makes the process sleep at a named point (see
  ``core.runs.store.pause_point``) so that the crash tests can kill it there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from core.engine.barcode import Barcode, barcode_from_graph
from core.runs.config import MAX_PARAMS, MAX_PATH_VALUES, RunConfig
from core.nets.data import load_dataset
from core.engine.landscape import rounding_tol, saddle_matrix
from core.engine.minima import MinimaOptions, find_minima
from core.nets.models import build_model, n_params
from core.nets.objective import NetworkObjective, resolve_device
from core.engine.pairs import select_and_connect
from core.engine.paths import PathOptions, Paths
from core.runs.store import (
    RunStore,
    pause_point,
    read_json,
    read_tensors,
    write_json,
    write_tensors,
)

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


@dataclass
class Run:
    """A finished (or partly finished) run, as loaded from the store."""

    run_id: str
    config: RunConfig
    minima: dict[str, Any]  # per-minimum arrays; see _minima_record
    thetas: torch.Tensor  # (K, P)
    paths: dict[str, Any] = field(default_factory=dict)  # per-pair arrays; see _paths_record
    path_points: list[torch.Tensor] = field(default_factory=list)  # E tensors (N_e, P)
    barcode: Barcode | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def objectives(config: RunConfig, device: torch.device | None = None):
    """The network objectives of a run: (for training minima, for paths)."""
    device = device or resolve_device(config.device)
    d, m, t, p = config.data, config.model, config.train, config.paths
    data = load_dataset(
        d.name,
        data_root=d.data_root,
        download=d.download,
        n_train=d.n_train,
        n_test=d.n_test,
        seed=config.seed,
        device=device,
    )
    check_size(config, data.input_shape, data.n_classes)
    model = build_model(m.arch, m.width, m.depth, data.input_shape, data.n_classes)

    budget = config.memory_mb << 20 if config.memory_mb else None

    def make(batch):
        return NetworkObjective(
            model,
            data,
            l2=t.l2,
            batch_size=batch,
            seed=config.seed,
            device=device,
            memory_budget=budget,
        )

    train_obj = make(t.batch_size)
    path_obj = train_obj if p.batch_size == t.batch_size else make(p.batch_size)
    return train_obj, path_obj


def check_size(config: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> int:
    """P, the parameters of the run's network, counted without allocating them (on the
    ``meta`` device); ValueError when the minima or the paths would exceed the size limits."""
    m, t, p = config.model, config.train, config.paths
    with torch.device("meta"):
        n = n_params(build_model(m.arch, m.width, m.depth, input_shape, n_classes))
    if n * t.minima > MAX_PARAMS:
        raise ValueError(
            f"model.width={m.width}, model.depth={m.depth}: {n:,} parameters x {t.minima} "
            f"minima exceeds the limit of {MAX_PARAMS:,}"
        )
    pairs = t.minima * (t.minima - 1) // 2  # all pairs, or all screened (n_points) for "mst"
    points = p.max_points if p.pairs == "all" else p.n_points
    if pairs * points * n > MAX_PATH_VALUES:
        raise ValueError(
            f"train.minima={t.minima}, paths.max_points={p.max_points}: {pairs:,} paths x "
            f"{points} points x {n:,} parameters exceeds the limit of {MAX_PATH_VALUES:,} "
            f"values; use fewer minima, fewer points, paths.pairs='mst' or a smaller network"
        )
    return n


def _minima_options(config: RunConfig) -> MinimaOptions:
    t = config.train
    return MinimaOptions(
        optimizer="adam",
        lr=t.lr,
        lr_final=t.lr if t.regime == "constant" else t.lr_final,
        max_steps=t.steps,
        grad_tol=t.grad_tol,
        check_every=50,
        merge_distance=1e-3,
    )


def _path_options(config: RunConfig) -> PathOptions:
    p = config.paths
    return PathOptions(
        n_points=p.n_points,
        max_points=p.max_points,
        steps=p.steps,
        force_tol=p.force_tol,
        grad_tol=p.grad_tol,
        noisy_steps=p.noisy_steps if p.batch_size else 0,
        saddle_tol=p.saddle_tol,
        eval_every=p.check_every,
        density=p.check_density,
        precision=p.precision,
    )


def _stepper(obj: NetworkObjective, batch: int | None, compiled: bool = False):
    """The per-step objective: minibatches, or the full objective (None) for full batch;
    through ``torch.compile`` when ``compiled`` (the saddles stay on the eager ``obj``)."""
    if compiled:
        twin = obj.compiled()
        return twin.minibatch if batch else (lambda step: twin)
    return obj.minibatch if batch else None


def stage_minima(config: RunConfig, train_obj, store: RunStore, progress: Progress | None):
    t0 = time.perf_counter()
    starts = train_obj.init(config.train.minima, config.seed)
    try:
        found = find_minima(
            train_obj,
            starts,
            _minima_options(config),
            step_objective=_stepper(train_obj, config.train.batch_size),
            on_progress=(lambda s, n: progress("minima", s, n)) if progress else None,
        )
    except ValueError as exc:
        if "diverged" not in str(exc):
            raise
        raise ValueError(f"{exc}; a smaller train.lr (now {config.train.lr:g}) may help") from None
    tr = train_obj.evaluate(found.thetas, "train")
    te = train_obj.evaluate(found.thetas, "test")
    rec = {
        "values": found.values,  # the landscape: train cross-entropy + l2 term
        "train_loss": tr["loss"],
        "test_loss": te["loss"],
        "train_error": tr["error"],
        "test_error": te["error"],
        "gap_loss": te["loss"] - tr["loss"],
        "gap_error": te["error"] - tr["error"],
        "grad_norm": found.grad_norms,
        "status": found.status,
        "steps": found.steps,
        "start_of": found.start_of,
        "failed": {str(k): v for k, v in found.failed.items()},
        "seconds": time.perf_counter() - t0,
    }
    d = store.dir(config.run_id)
    write_tensors(d / "minima.safetensors", {"thetas": found.thetas})
    write_json(d / "minima.json", rec)


def stage_paths(config: RunConfig, path_obj, store: RunStore, progress: Progress | None):
    t0 = time.perf_counter()
    d = store.dir(config.run_id)
    thetas = read_tensors(d / "minima.safetensors")["thetas"].to(path_obj.device)
    values = np.asarray(read_json(d / "minima.json")["values"], dtype=np.float64)
    conn = select_and_connect(
        path_obj,
        thetas,
        values,
        _path_options(config),
        strategy=config.paths.pairs,
        step_objective=_stepper(path_obj, config.paths.batch_size, config.paths.compile),
        on_progress=(lambda s, n, c: progress("paths", s, n)) if progress else None,
    )
    sizes = [p.shape[0] for p in conn.points]
    points = torch.cat(conn.points) if conn.points else thetas.new_zeros(0, thetas.shape[1])
    write_tensors(  # points (sum of N_e, P); with one minimum there is no path at all
        d / "paths.safetensors", {"points": points, "sizes": torch.tensor(sizes, dtype=torch.int64)}
    )
    write_json(d / "paths.json", _paths_record(conn) | {"seconds": time.perf_counter() - t0})


PATH_ARRAYS = (
    "pairs",
    "saddles",
    "straight",
    "densities",
    "status",
    "force",
    "climb_grad",
    "scale",
    "steps",
    "history_steps",
    "history",
    "climb",
    "certified",
    "eigs",
    "peak_grad",
    "peak_value",
)


def _paths_record(conn: Paths) -> dict[str, Any]:
    # converged: not stopped by the step cap (by force, or with no barrier)
    return {name: getattr(conn, name) for name in PATH_ARRAYS} | {"converged": conn.converged}


def stage_results(config: RunConfig, store: RunStore) -> None:
    d = store.dir(config.run_id)
    mins = read_json(d / "minima.json")
    paths = read_json(d / "paths.json")
    values = np.asarray(mins["values"], dtype=np.float64)
    conn = _paths_from_record(paths, [])
    bars = barcode_from_graph(values, saddle_matrix(values, conn), tol=rounding_tol(values))
    summary = {
        "to_score_sum": bars.to_score("sum"),
        "to_score_max": bars.to_score("max"),
        "n_minima": len(values),
        "n_true_minima": sum(s == "minimum" for s in mins["status"]),
        "n_failed": len(mins["failed"]),
        "n_pairs_total": len(values) * (len(values) - 1) // 2,
        "n_paths": len(conn),
        "n_paths_converged": int(np.sum(conn.status == "converged")),
        "n_paths_no_barrier": int(np.sum(conn.status == "no barrier")),
        "n_paths_step_cap": int(np.sum(conn.status == "step cap")),
        "n_saddles_certified": int(np.sum(conn.certified)),
        # with pairs="mst", paths the barcode does not read keep their coarse maxima
        "n_paths_final": int(np.sum(conn.densities >= _path_options(config).final_density)),
        "seconds_minima": mins["seconds"],
        "seconds_paths": paths["seconds"],
        "finished": time.time(),
    }
    write_json(d / "results.json", {"barcode": bars.to_dict(), "summary": summary})


def _paths_from_record(rec: dict[str, Any], points: list[torch.Tensor]) -> Paths:
    types = {
        "pairs": np.int64,
        "densities": np.int64,
        "steps": np.int64,
        "history_steps": np.int64,
        "status": object,
        "certified": bool,
        "climb": np.int64,
    }
    arrays = {n: np.asarray(rec[n], dtype=types.get(n, np.float64)) for n in PATH_ARRAYS}
    arrays["pairs"] = arrays["pairs"].reshape(-1, 2)
    arrays["eigs"] = arrays["eigs"].reshape(-1, 2)
    return Paths(points=points, **arrays)


def run(
    config: RunConfig,
    *,
    store: RunStore | None = None,
    on_progress: Progress | None = None,
    wait: bool = True,
) -> Run:
    """Run (or resume) ``config`` and return the loaded result.

    Parameters
    ----------
    config : RunConfig
    store : RunStore, optional
        Where runs live; ``runs/`` by default.
    on_progress : callable, optional
        ``on_progress(stage, done, total)`` with stage "minima" or "paths".
    wait : bool
        When another process is computing the same run: wait for it (default), or raise
        ``RunBusyError`` (a ValueError) at once.
    """
    store = store or RunStore()

    def progress(stage: str, done: int, total: int) -> None:
        if done > 0:  # inside the optimisation, after some steps
            pause_point(stage)
        if on_progress:
            on_progress(stage, done, total)

    if store.stage(config.run_id) == "results":  # finished: read it, lock and write nothing
        try:
            return load_run(store, config.run_id)
        except ValueError as exc:
            log.warning(
                "run %s cannot be loaded (%s); computing what is bad again", config.run_id, exc
            )
    objs = objectives(config)  # bad data or size: refused before anything is written
    with store.lock(config.run_id, wait=wait):
        store.clean_temp(config.run_id)
        stage = store.repair(config)
        if stage != "results":
            train_obj, path_obj = objs
            if stage == "none":
                stage_minima(config, train_obj, store, progress)
            if store.stage(config.run_id) == "minima":
                stage_paths(config, path_obj, store, progress)
            stage_results(config, store)
        return load_run(store, config.run_id)


def load_run(store: RunStore, run_id: str) -> Run:
    """Load whatever stages of a run are finished; ValueError if the folder is corrupt."""
    config = store.config(run_id)
    stage = store.stage(run_id)
    if stage == "none":
        raise ValueError(f"run {run_id} has no finished stage yet")
    try:
        return _load(store, run_id, config, stage)
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as exc:
        raise ValueError(f"run {run_id} is corrupt ({type(exc).__name__}: {exc})") from None


def _load(store: RunStore, run_id: str, config: RunConfig, stage: str) -> Run:
    d = store.dir(run_id)
    minima = read_json(d / "minima.json")
    thetas = read_tensors(d / "minima.safetensors")["thetas"]
    if thetas.ndim != 2 or thetas.shape[0] != len(minima["values"]):
        raise ValueError(f"run {run_id}: minima.safetensors does not match minima.json")
    out = Run(run_id, config, minima, thetas)
    if stage in ("paths", "results"):
        out.paths = read_json(d / "paths.json")
        t = read_tensors(d / "paths.safetensors")
        sizes = t["sizes"].tolist()
        out.path_points = list(torch.split(t["points"], sizes)) if sizes else []
    if stage == "results":
        res = read_json(d / "results.json")
        out.barcode = Barcode.from_dict(res["barcode"])
        out.summary = res["summary"]
    return out
