"""The generic pipeline: minima -> paths -> barcode, for any batched objective.

``barcode_of(f, starts)`` works for a plain Python function of 2-D points as well as for a
network's loss; ``landscape_of`` returns everything it computed on the way (minima, paths,
barcode), which is what the views need.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from core.engine.barcode import Barcode, barcode_from_graph, graph_matrix, rounding_tol
from core.engine.evaluate import Objective
from core.engine.explore import add_minima, minima_from_saddles
from core.engine.minima import Minima, find_minima
from core.engine.options import MinimaOptions, PathOptions
from core.engine.pairs import GroupMap, select_and_connect
from core.engine.paths import Paths

log = logging.getLogger(__name__)


@dataclass
class Landscape:
    """What one pass of the engine found: minima, the paths between them, the barcode, and
    how many of the minima were found by descending from saddles (no start reached them)."""

    minima: Minima
    paths: Paths
    barcode: Barcode
    from_saddles: int = 0


def saddle_matrix(values: np.ndarray, paths: Paths) -> np.ndarray:
    """(K, K) saddle heights: diagonal = minima values, inf where no path was computed."""
    return graph_matrix(values, paths.pairs, paths.saddles)


def _options(cls, given, name: str):
    if given is None:
        return cls()
    if isinstance(given, cls):
        return given
    if isinstance(given, dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown {name} option(s) {unknown}; known: {sorted(known)}")
        return cls(**given)
    raise ValueError(f"{name} must be a {cls.__name__} or a dict, got {type(given).__name__}")


StepObjective = Callable[[int], Objective]


def landscape_of(
    objective: Objective,
    starts: Tensor,
    *,
    minima: MinimaOptions | dict | None = None,
    paths: PathOptions | dict | None = None,
    step_objective: StepObjective | Mapping[str, StepObjective | None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    explore: int = 2,
    found: Minima | None = None,
    connected: Paths | None = None,
    on_stage: Callable[[str, Minima | Paths], None] | None = None,
    group_map: GroupMap | None = None,
) -> Landscape:
    """Minima from ``starts``, min-max paths between them, and the H0 barcode.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,), differentiable; the landscape.
    starts : Tensor
        (M, P) starting points for the descent.
    minima, paths : options or dict
        ``MinimaOptions`` / ``PathOptions`` (``core.engine.options``) or dicts of their fields;
        ``paths.pairs`` says which pairs get a path: "all", or "mst" (refine the minimum
        spanning tree of saddle heights; the same barcode with fewer paths).
    step_objective : callable or mapping, optional
        ``step_objective(step)``: the objective for one optimisation step (a minibatch), for
        both stages, or ``{"minima": ..., "paths": ...}`` for each its own (None: the full
        objective).
    on_progress : callable, optional
        ``on_progress(stage, done, total)`` with stage "minima" or "paths".
    explore : int
        Rounds of descending from the certified saddles (``core.engine.explore``): minima found
        so that no start reached are added and every path is computed again. 0: none.
    found, connected : Minima, Paths, optional
        Stages already computed (a resumed run): the minima (then ``starts`` is not descended
        from) and the paths between them (then no path is computed).
    on_stage : callable, optional
        ``on_stage("minima", minima)`` and ``on_stage("paths", paths)`` as each stage is
        computed (not for the stages given): where a caller saves its progress.
    group_map : callable, optional
        Where the ``paths.groups`` batches of pairs are relaxed (``core.engine.pairs.
        connect_groups``): here by default.
    """
    m_opts = _options(MinimaOptions, minima, "minima")
    p_opts = _options(PathOptions, paths, "paths")
    steps = step_objective if isinstance(step_objective, Mapping) else {}
    unknown = sorted(set(steps) - {"minima", "paths"})
    if unknown:
        raise ValueError(f"step_objective has unknown stage(s) {unknown}; known: minima, paths")
    if not isinstance(step_objective, Mapping):
        steps = {"minima": step_objective, "paths": step_objective}
    if connected is not None and (found is None or explore):
        raise ValueError("connected paths resume a run only with its minima and explore=0")

    def progress(stage):
        return (lambda done, total, *_: on_progress(stage, done, total)) if on_progress else None

    if found is None:
        found = find_minima(
            objective,
            starts,
            m_opts,
            step_objective=steps.get("minima"),
            on_progress=progress("minima"),
        )
        log.info("%d distinct minima from %d starts", len(found), starts.shape[0])
        if on_stage:
            on_stage("minima", found)
    added, conn = 0, connected
    for round_ in range(explore + 1) if conn is None else ():
        conn = select_and_connect(
            objective,
            found.thetas,
            found.values,
            p_opts,
            step_objective=steps.get("paths"),
            on_progress=progress("paths"),
            group_map=group_map,
            minima_options=m_opts,
        )
        extra = minima_from_saddles(objective, found, conn, m_opts) if round_ < explore else None
        if extra is None:
            break
        log.info("%d minima found from saddles that no start reached", len(extra))
        found, added = add_minima(found, extra), added + len(extra)
    if connected is None and on_stage:
        on_stage("paths", conn)
    tol = rounding_tol(found.values, found.thetas.dtype)
    bars = barcode_from_graph(found.values, saddle_matrix(found.values, conn), tol=tol)
    return Landscape(minima=found, paths=conn, barcode=bars, from_saddles=added)


def barcode_of(objective: Objective, starts: Tensor, **options) -> Barcode:
    """The H0 barcode of ``objective`` estimated from minima reached from ``starts``.

    ``options`` are those of :func:`landscape_of`. Example::

        f = lambda x: ((x**2).sum(1) - 1) ** 2 + 0.3 * x[:, 0]
        bars = barcode_of(f, torch.randn(8, 2, dtype=torch.float64), **ANALYTIC)

    The options' defaults are a network's; ``ANALYTIC`` (``core.engine.options``) suits smooth
    functions of a few coordinates of order one.
    """
    return landscape_of(objective, starts, **options).barcode


__all__ = ["Landscape", "barcode_of", "landscape_of", "rounding_tol", "saddle_matrix"]
