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
  ``failed``, ``Summary.n_failed``); the run goes on with the rest.
- Test hook: ``core.runs.files.PAUSE_AT`` makes the process sleep at a named point (see
  ``core.runs.files.pause_point``) so that the crash tests can kill it there.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

import torch
from torch import nn

from core.engine.evaluate import values_of
from core.engine.landscape import landscape_of
from core.engine.minima import Minima
from core.engine.pairs import GroupMap
from core.engine.paths import Paths
from core.nets.align import align_minima
from core.nets.data import load_dataset
from core.nets.device import resolve_device
from core.nets.models import build_model, n_params
from core.nets.module import check_fits, checkpoint_files, load_checkpoint, model_from_factory
from core.nets.objective import NetworkObjective
from core.runs.config import MAX_PARAMS, MAX_PATH_VALUES, RunConfig
from core.runs.files import pause_point
from core.runs.record import Aligned, Metrics, Run, Summary, modulo_barcode
from core.runs.store import RunStore, read_run, write_stage

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


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
        context=d.context,
    )
    check_size(config, data.input_shape, data.n_classes)
    model = network(config, data.input_shape, data.n_classes)
    if m.factory:
        check_fits(model, data.x_train, data.y_train)

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
            batchnorm=m.batchnorm,
            norm_batch=m.norm_batch,
        )

    train_obj = make(t.batch_size)
    path_obj = train_obj if p.batch_size == t.batch_size else make(p.batch_size)
    return train_obj, path_obj


def path_objectives(config: RunConfig, device: torch.device | None = None):
    """What relaxes the run's paths: (the full objective, the per-step objective or None),
    as ``run`` gives them to ``landscape_of``."""
    train_obj, path_obj = objectives(config, device)
    p = config.paths
    return train_obj, _stepper(path_obj, p.batch_size, p.compile)


def network(config: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The run's network: ``model.factory``'s, or the built-in ``model.arch``."""
    m = config.model
    if m.factory:
        return model_from_factory(m.factory, n_classes)
    return build_model(m.arch, m.width, m.depth, input_shape, n_classes, m.activation)


def n_minima(config: RunConfig) -> int:
    """Minima of the run: one per checkpoint where ``train.checkpoints`` is set."""
    t = config.train
    return len(checkpoint_files(t.checkpoints)) if t.checkpoints else t.minima


def check_size(config: RunConfig, input_shape: tuple[int, ...], n_classes: int) -> int:
    """P, the parameters of the run's network, counted without allocating them (on the
    ``meta`` device); ValueError when the minima or the paths would exceed the size limits."""
    m, p = config.model, config.paths
    k = n_minima(config)
    minima = f"{k} checkpoints" if config.train.checkpoints else f"train.minima={k}"
    with torch.device("meta"):
        n = n_params(network(config, input_shape, n_classes))
    if n * k > MAX_PARAMS:
        which = (
            f"model.factory={m.factory!r}"
            if m.factory
            else (f"model.width={m.width}, model.depth={m.depth}")
        )
        raise ValueError(
            f"{which}: {n:,} parameters x {minima} exceeds the limit of {MAX_PARAMS:,}"
        )
    pairs = k * (k - 1) // 2  # all pairs, or all screened (n_points) for "mst"
    points = p.max_points if p.pairs == "all" else p.n_points
    if pairs * points * n > MAX_PATH_VALUES:
        raise ValueError(
            f"{minima}, paths.max_points={p.max_points}: {pairs:,} paths x "
            f"{points} points x {n:,} parameters exceeds the limit of {MAX_PATH_VALUES:,} "
            f"values; use fewer minima, fewer points, paths.pairs='mst' or a smaller network"
        )
    return n


def _stepper(obj: NetworkObjective, batch: int | None, compiled: bool = False):
    """The per-step objective: minibatches, or the full objective (None) for full batch;
    through ``torch.compile`` when ``compiled`` (the saddles stay on the eager ``obj``)."""
    if compiled:
        twin = obj.compiled()
        return twin.minibatch if batch else (lambda step: twin)
    return obj.minibatch if batch else None


def _starts(config: RunConfig, obj: NetworkObjective) -> torch.Tensor:
    """(M, P) where the descent starts: the checkpoints, or seeded initialisations."""
    t = config.train
    if t.checkpoints:
        files = checkpoint_files(t.checkpoints)
        return torch.stack([load_checkpoint(f, obj.model) for f in files]).to(obj.device)
    return obj.init(t.minima, config.seed)


def _on(minima: Minima, device: torch.device) -> Minima:
    return dataclasses.replace(minima, thetas=minima.thetas.to(device))


def _metrics(obj: NetworkObjective, thetas: torch.Tensor) -> Metrics:
    tr, te = obj.evaluate(thetas, "train"), obj.evaluate(thetas, "test")
    return Metrics(tr["loss"], te["loss"], tr["error"], te["error"])


def run(
    config: RunConfig,
    *,
    store: RunStore | None = None,
    on_progress: Progress | None = None,
    wait: bool = True,
    prepared: tuple[NetworkObjective, NetworkObjective] | None = None,
    group_map: GroupMap | None = None,
) -> Run:
    """Run (or resume) ``config`` and return its record.

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
    prepared : tuple, optional
        ``objectives(config)``, when the caller has built them already (to check the
        settings before starting).
    group_map : callable, optional
        Where the batches of pairs (``paths.groups``) are relaxed: ``PairWorkers`` (Ray
        actors, ``core.runs.ray_executor``), or here (default).
    """
    store = store or RunStore()

    def progress(stage: str, done: int, total: int) -> None:
        if done > 0:  # inside the optimisation, after some steps
            pause_point(stage)
        if on_progress:
            on_progress(stage, done, total)

    if store.stage(config.run_id) == "results":  # finished: read it, lock and write nothing
        try:
            return read_run(store, config.run_id)
        except ValueError as exc:
            log.warning(
                "run %s cannot be loaded (%s); computing what is bad again", config.run_id, exc
            )
    train_obj, path_obj = prepared or objectives(config)  # bad data or size: no write yet
    with store.lock(config.run_id, wait=wait):
        store.clean_temp(config.run_id)
        if store.repair(config) != "results":
            _compute(config, train_obj, path_obj, store, progress, group_map)
        return read_run(store, config.run_id)


def _compute(config, train_obj, path_obj, store: RunStore, progress: Progress, group_map) -> None:
    """The stages that are missing, each written as it finishes (the disk is read only for
    the stages a resumed run already has)."""
    done = read_run(store, config.run_id) if store.stage(config.run_id) != "none" else None
    rec = done or Run(config.run_id, config, None, None)
    clock = [time.perf_counter()]

    def save(stage: str, value) -> None:
        rec.seconds[stage] = time.perf_counter() - clock[0]
        if stage == "minima":
            rec.minima, rec.metrics = value, _metrics(train_obj, value.thetas)
        else:
            rec.paths = value
        write_stage(store, rec, stage)
        clock[0] = time.perf_counter()

    t, p = config.train, config.paths
    try:
        land = landscape_of(
            train_obj,  # the full objective; the two differ only in their minibatches
            _starts(config, train_obj) if done is None else None,
            minima=t,
            paths=p,
            step_objective={
                "minima": _stepper(train_obj, t.batch_size),
                "paths": _stepper(path_obj, p.batch_size, p.compile),
            },
            on_progress=progress,
            explore=0,
            found=_on(done.minima, train_obj.device) if done else None,
            connected=done.paths if done else None,
            on_stage=save,
            group_map=group_map,
        )
    except ValueError as exc:
        if "diverged" not in str(exc):
            raise
        raise ValueError(f"{exc}; a smaller train.lr (now {t.lr:g}) may help") from None
    rec.barcode = land.barcode
    rec.summary = Summary.of(rec.minima, rec.paths, land.barcode, p.final_density, rec.seconds)
    if p.align != "none":
        steps = _stepper(path_obj, p.batch_size, p.compile)
        rec.aligned = aligned_landscape(
            config, train_obj, rec.minima, rec.paths, steps, progress, group_map
        )
        rec.summary.aligned_to_score_sum = rec.aligned.barcode.to_score("sum")
        rec.summary.aligned_to_score_max = rec.aligned.barcode.to_score("max")
    write_stage(store, rec, "results")


def aligned_landscape(
    config: RunConfig,
    objective: NetworkObjective,
    minima: Minima,
    raw: Paths,
    step_objective=None,
    on_progress: Progress | None = None,
    group_map: GroupMap | None = None,
) -> Aligned:
    """The minima aligned to the lowest one by weight matching (``core.nets.align``), the
    paths between them with the run's path options, and the barcode of the lower of each
    pair's ``raw`` and aligned path (``lower_routes``); progress is reported as the stage
    "aligned"."""
    t0 = time.perf_counter()
    thetas = align_minima(objective.model, minima.thetas)  # row 0: the lowest minimum
    values = values_of(objective, thetas).double().cpu().numpy()
    land = landscape_of(
        objective,
        None,
        minima=config.train,
        paths=config.paths,
        step_objective={"paths": step_objective},
        on_progress=(lambda _, done, total: on_progress("aligned", done, total))
        if on_progress
        else None,
        explore=0,
        found=dataclasses.replace(minima, thetas=thetas, values=values),
        group_map=group_map,
    )
    bars = modulo_barcode(raw, land.paths, values, thetas.dtype)
    return Aligned(thetas, values, land.paths, bars, time.perf_counter() - t0)
