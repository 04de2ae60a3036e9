"""How much a barcode depends on the data it was measured on, and on the seed.

A bar's birth is a minimum's loss and its death a saddle's loss, both measured on the run's
training data. Measured on another sample of the same distribution they would differ. Here
every stored minimum and every stored path is re-evaluated on S random subsets of the
training data (without replacement, ``fraction`` of it each):

1. per subset s: minima values v_s (K,) and, for every stored path, the maximum along it at
   the run's stored density (nodes and interpolated points), no lower than its endpoints;
2. the barcode of (v_s, saddles_s) by the same graph-wide H0 persistence as the run;
3. per minimum: the spread over s of its birth and of its death (standard deviation, or the
   half-width of a percentile interval).

The paths are not re-optimised on each subset, so a re-evaluated saddle is an upper bound for
that subset as the stored one is for the full data. ``subsample_spread(...).errors()`` is in
the form that ``core.views.plots.barcode_figure(errors=...)`` and ``diagram_figure`` take.

Across seeds minima do not correspond one to one, so ``seed_spread`` compares what does:
the TO-scores, and the k-th longest segment of each run.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from core.engine.barcode import Barcode, barcode_from_graph, graph_matrix
from core.engine.chain import dense_points
from core.engine.evaluate import values_of
from core.engine.saddles import max_over
from core.nets.objective import NetworkObjective
from core.runs.pipeline import objectives

log = logging.getLogger(__name__)


__all__ = [
    "BarSpread",
    "SeedSpread",
    "reevaluate",
    "seed_spread",
    "subsample_indices",
    "subsample_objective",
    "subsample_spread",
]


def subsample_indices(n: int, n_subsamples: int, fraction: float, seed: int) -> list[np.ndarray]:
    """S sorted index arrays, each ``round(fraction * n)`` distinct examples out of ``n``.

    ``fraction=1`` gives every example in order, S times. Drawn from
    ``numpy.random.default_rng(seed)``; nothing global is seeded.
    """
    if isinstance(n_subsamples, bool) or not isinstance(n_subsamples, int) or n_subsamples < 1:
        raise ValueError(f"n_subsamples={n_subsamples!r}: must be an integer >= 1")
    if not (isinstance(fraction, int | float) and 0 < fraction <= 1):
        raise ValueError(f"fraction={fraction!r}: must be in (0, 1]")
    size = max(1, round(fraction * n))
    rng = np.random.default_rng(seed)
    return [np.sort(rng.permutation(n)[:size]) for _ in range(n_subsamples)]


def subsample_objective(objective, indices: np.ndarray):
    """The same network objective (model, l2, device) on the training examples ``indices``."""

    idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64, device=objective.device)
    data = SimpleNamespace(
        x_train=objective.x_train[idx],
        y_train=objective.y_train[idx],
        x_test=objective.x_test,
        y_test=objective.y_test,
    )
    return NetworkObjective(
        objective.model,
        data,
        l2=objective.l2,
        batch_size=None,
        seed=objective.seed,
        strategy=objective.strategy,
        device=objective.device,
    )


def reevaluate(run, objective, *, chunk: int | None = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Minima values (K,) and saddle matrix (K, K) of a finished run on ``objective``.

    Each stored path is evaluated at its stored density (``paths.json`` ``densities``), the
    way its stored saddle was, and at least at the final saddles' first density: a path that
    ``pairs="mst"`` left at its coarse maximum (outside the tree on the full data) may be in
    the tree on a subset, and is resolved there like the others. The saddle is the largest
    value along it, endpoints included. Pairs without a path are ``inf``.
    """
    if not run.paths:
        raise ValueError(f"run {run.run_id} has no stored paths yet")
    dev, p = objective.device, run.paths
    values = values_of(objective, run.minima.thetas.to(dev), chunk).double().cpu().numpy()  # (K,)
    dens = np.maximum(p.densities, run.config.paths.final_density)
    pts = [dense_points(q.to(dev), int(d)) for q, d in zip(p.points, dens, strict=True)]
    pairs = p.pairs
    tops = max_over(objective, pts)
    ends = values[pairs].max(1, initial=-np.inf)  # a path includes its endpoints
    return values, graph_matrix(values, pairs, np.maximum(tops, ends))


@dataclass(frozen=True)
class BarSpread:
    """Barcodes of one run re-evaluated on S data subsets.

    Attributes
    ----------
    run_id : str
    fraction : float
        Share of the training examples in each subset.
    reference : Barcode
        The run's stored barcode (full training data).
    births : (S, K) float64
        Per subset and minimum (vertex index): its value = its bar's birth.
    deaths : (S, K) float64
        Per subset and minimum: its bar's death; ``inf`` where it is the essential bar.
    barcodes : list[Barcode]
        The S re-evaluated barcodes.
    """

    run_id: str
    fraction: float
    reference: Barcode
    births: np.ndarray
    deaths: np.ndarray
    barcodes: list[Barcode]

    @property
    def n_subsamples(self) -> int:
        return int(self.births.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """(S, K) segment length per subset and minimum; ``inf`` for the essential bar."""
        return self.deaths - self.births

    @property
    def to_scores(self) -> np.ndarray:
        """(S,) TO-score (sum of finite segments) per subset."""
        return np.array([b.to_score("sum") for b in self.barcodes])

    @property
    def essential_changes(self) -> int:
        """Subsets whose global minimum differs from the reference's."""
        ref = int(self.reference.minimum[0])
        return int(sum(int(b.minimum[0]) != ref for b in self.barcodes))

    def errors(self, kind: str = "std", level: float = 0.9) -> dict[int, tuple[float, float]]:
        """Minimum -> (birth error, death error), for ``barcode_figure(errors=...)``.

        ``kind="std"``: standard deviation over the subsets (0 with one subset).
        ``kind="interval"``: half-width of the central ``level`` percentile interval.
        Deaths count only the subsets where the bar is finite; the reference's essential bar
        gets death error 0 (it is drawn to infinity).
        """
        if kind not in ("std", "interval"):
            raise ValueError(f"kind={kind!r}: must be 'std' or 'interval'")
        if not 0 < level < 1:
            raise ValueError(f"level={level!r}: must be in (0, 1)")
        essential = set(self.reference.minimum[np.isinf(self.reference.deaths)].tolist())
        out = {}
        for k in range(self.births.shape[1]):
            d = self.deaths[:, k]
            d = d[np.isfinite(d)] if k not in essential else np.zeros(1)
            out[k] = (_spread(self.births[:, k], kind, level), _spread(d, kind, level))
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per minimum: reference birth/death/length and their spreads."""
        ref, err = self.reference, self.errors()
        seg = ref.segment_of()
        rows = []
        for k in range(len(seg)):
            lens = self.lengths[:, k]
            fin = lens[np.isfinite(lens)]
            rows.append(
                {
                    "minimum": k,
                    "birth": float(ref.values[k]),
                    "birth std": err[k][0],
                    "length": float(seg[k]),
                    "death std": err[k][1],
                    "length std": float(fin.std(ddof=1)) if fin.size > 1 else 0.0,
                    "finite in": f"{fin.size}/{len(lens)}",
                }
            )
        return rows


def _spread(x: np.ndarray, kind: str, level: float) -> float:
    if x.size < 2:
        return 0.0
    if kind == "std":
        return float(np.std(x, ddof=1))
    lo, hi = np.quantile(x, [(1 - level) / 2, (1 + level) / 2])
    return float((hi - lo) / 2)


def subsample_spread(
    run,
    *,
    n_subsamples: int = 5,
    fraction: float = 0.5,
    seed: int = 0,
    objective=None,
    chunk: int | None = 2048,
) -> BarSpread:
    """Re-evaluate a finished run's minima and stored paths on S training subsets.

    Parameters
    ----------
    run : core.runs.record.Run
        A finished run (barcode and paths stored).
    n_subsamples : int
        S, the number of subsets.
    fraction : float
        Share of the run's training examples in each subset, in (0, 1].
    seed : int
        Seeds the choice of subsets.
    objective : NetworkObjective, optional
        The run's full-data objective (``core.runs.pipeline.objectives(run.config)[1]``); built
        when not given.
    chunk : int, optional
        Most parameter vectors per objective call.

    Returns
    -------
    BarSpread
    """
    if run.barcode is None:
        raise ValueError(f"run {run.run_id} is not finished")
    if objective is None:
        objective = objectives(run.config)[1]
    births, deaths, bars = [], [], []
    for idx in subsample_indices(objective.n_train, n_subsamples, fraction, seed):
        sub = subsample_objective(objective, idx)
        values, saddles = reevaluate(run, sub, chunk=chunk)
        b = barcode_from_graph(values, saddles)
        d = np.empty(len(b))
        d[b.minimum] = b.deaths
        births.append(values)
        deaths.append(d)
        bars.append(b)
    log.info("run %s: %d subsets of %.0f%% re-evaluated", run.run_id, n_subsamples, 100 * fraction)
    return BarSpread(
        run.run_id, float(fraction), run.barcode, np.array(births), np.array(deaths), bars
    )


@dataclass(frozen=True)
class SeedSpread:
    """TO-scores and ranked segment lengths of R runs that differ only in their seed.

    ``ranked`` is (R, L): row r holds run r's finite segment lengths, longest first,
    padded with NaN to the longest row.
    """

    run_ids: list[str]
    to_sum: np.ndarray  # (R,)
    to_max: np.ndarray  # (R,)
    ranked: np.ndarray  # (R, L)

    def summary(self) -> dict[str, float]:
        """Mean, standard deviation, min and max of both TO-scores over the seeds."""
        out = {}
        for name, v in (("sum", self.to_sum), ("max", self.to_max)):
            out |= {
                f"TO {name} mean": float(v.mean()),
                f"TO {name} min": float(v.min()),
                f"TO {name} max": float(v.max()),
                f"TO {name} std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            }
        return out

    def rank_spread(self) -> tuple[np.ndarray, np.ndarray]:
        """(L,) mean and standard deviation over seeds of the k-th longest segment."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a rank only one run has
            mean = np.nanmean(self.ranked, 0)
            many = len(self.ranked) > 1
            std = np.nanstd(self.ranked, 0, ddof=1) if many else np.zeros_like(mean)
        return mean, np.nan_to_num(std)


def seed_spread(runs: Sequence) -> SeedSpread:
    """Spread over R finished runs (normally one configuration at several seeds)."""
    runs = [r for r in runs if r.barcode is not None]
    if not runs:
        raise ValueError("seed_spread needs at least one finished run")
    lens = [np.sort(r.barcode.lengths[np.isfinite(r.barcode.deaths)])[::-1] for r in runs]
    width = max(len(x) for x in lens)
    ranked = np.full((len(runs), width), np.nan)
    for i, x in enumerate(lens):
        ranked[i, : len(x)] = x
    return SeedSpread(
        [r.run_id for r in runs],
        np.array([r.barcode.to_score("sum") for r in runs]),
        np.array([r.barcode.to_score("max") for r in runs]),
        ranked,
    )
