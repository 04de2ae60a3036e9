"""The numbers of a sweep report: tables, series over seeds, correlations, budget curves.

Pure functions of loaded runs (``core.runs.record.Run``); ``core.report.document`` turns them into
a Markdown/HTML document with figures, and a notebook or a page can call them directly.

- ``run_row``: one line per run (TO-scores, convergence, losses, time).
- ``score_series``: TO-score against width or depth, one series per configuration of the
  other fields, mean and min..max over seeds; ``trend`` tests it with Spearman's rho.
- ``segment_gap``: segment length vs generalization gap per minimum, pooled over runs and per
  run, with Pearson and Spearman, bootstrap CIs and permutation p-values (``core.views.stats``).
- ``budget_curve``: the TO-score against the path-optimisation budget. A run stores, for each
  pair, its best saddle estimate at every evaluation step (``paths.json`` ``history``: the
  dense maximum at the checking density of the best path so far, on the full data). The
  barcode built from the column at step t is the barcode the run would have reported had it
  stopped at t, up to the final evaluation's higher density: the stored saddle re-evaluates
  the same best path more densely, so it is >= the last history entry, and the run's TO-score
  is >= the curve's last point (deaths never fall when saddles rise).
- ``regime_rows``: the two training regimes side by side.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.engine.barcode import barcode_from_graph, graph_matrix
from core.runs.sweep import expand, flat_fields
from core.views.stats import CorrelationResult, correlation

log = logging.getLogger(__name__)

__all__ = [
    "Series",
    "budget_curve",
    "budget_series",
    "converged",
    "group_label",
    "run_row",
    "series_keys",
    "stalled",
    "regime_rows",
    "score_series",
    "segment_gap",
    "segment_gap_points",
    "trend",
    "vanishing_bars",
]

GROUP_SKIP = ("seed", "device", "data.data_root", "data.download")


def converged(run) -> bool:
    """True when every optimised path met the stopping rule and none stalled (``stalled``)."""
    return bool(np.all(run.paths.converged)) and not stalled(run)


def stalled(run) -> int:
    """Paths kept at the straight segment although it climbs a barrier (above ``saddle_tol``):
    the optimisation never found anything lower, which the stopping rule (watching the best
    estimate) cannot tell from convergence. A step size too large for the network does this."""
    p, v = run.paths, run.minima.values
    if not len(p):
        return 0
    sad, straight, pairs = p.saddles, p.straight, p.pairs
    barrier = straight - np.maximum(v[pairs[:, 0]], v[pairs[:, 1]])
    return int(np.sum((sad >= straight) & (barrier > run.config.paths.saddle_tol)))


def run_row(run) -> dict[str, Any]:
    """One row per finished run: configuration, TO-scores, convergence, losses, time."""
    c, s, m = run.config, run.summary, run.metrics
    b = run.barcode
    return {
        "run": run.run_id,
        "dataset": c.data.name,
        "arch": c.model.arch,
        "width": c.model.width,
        "depth": c.model.depth,
        "regime": c.train.regime,
        "lr": c.train.lr,
        "force tol": c.paths.force_tol,
        "seed": c.seed,
        "minima": s.n_minima,
        "true minima": s.n_true_minima,
        "TO sum": b.to_score("sum"),
        "TO max": b.to_score("max"),
        "paths": s.n_paths,
        "paths converged": s.n_paths_converged,
        "converged": converged(run),
        "stalled": stalled(run),
        "bars > tol": int(np.sum(b.lengths[np.isfinite(b.deaths)] > c.paths.saddle_tol)),
        "train loss": float(np.mean(m.train_loss)),
        "test loss": float(np.mean(m.test_loss)),
        "gap loss": float(np.mean(m.gap_loss)),
        "gap error": float(np.mean(m.gap_error)),
        "seconds": float(s.seconds_minima + s.seconds_paths),
    }


def _group(config, drop: Sequence[str]) -> str:
    flat = flat_fields(config)
    return json.dumps(
        {k: v for k, v in flat.items() if k not in (*GROUP_SKIP, *drop)}, sort_keys=True
    )


def group_label(configs: Sequence, drop: Sequence[str] = ()) -> list[str]:
    """Short labels naming what distinguishes each config from the others (seed ignored):
    ``"mnist1d cnn depth 2"``, ``"width 8, paths 12-32 pts x 2000 steps"``."""
    flats = [flat_fields(c) for c in configs]
    keys = [k for k in flats[0] if k not in (*GROUP_SKIP, *drop)] if flats else []
    vary = [k for k in keys if len({json.dumps(f[k]) for f in flats}) > 1]
    short = {
        "data.name": "",
        "model.arch": "",
        "model.width": "width ",
        "model.depth": "depth ",
        "train.regime": "",
        "train.lr": "lr ",
        "paths.force_tol": "force tol ",
    }
    shape = ("paths.n_points", "paths.max_points", "paths.steps")
    out = []
    for f in flats:
        parts = [f"{short.get(k, k.split('.')[-1] + ' ')}{f[k]}" for k in vary if k not in shape]
        if any(k in vary for k in shape):
            parts.append(f"paths {f[shape[0]]}-{f[shape[1]]} pts x {f[shape[2]]} steps")
        out.append(" ".join(parts) or "all runs")
    return out


@dataclass(frozen=True)
class Series:
    """A TO-score series against ``by``: mean and min..max over the seeds at each x."""

    label: str
    by: str  # "width" or "depth"
    xs: list[int]
    values: list[list[float]]  # per x: the TO-score of each seed
    run_ids: list[list[str]]

    @property
    def means(self) -> np.ndarray:
        return np.array([np.mean(v) for v in self.values])

    @property
    def los(self) -> np.ndarray:
        return np.array([np.min(v) for v in self.values])

    @property
    def his(self) -> np.ndarray:
        return np.array([np.max(v) for v in self.values])


def series_keys(specs: Sequence, by: str) -> set[str]:
    """The groups (config without ``by`` and seed) that a sweep swept along ``by``: the
    points of every spec with two or more values on that axis."""

    field = f"model.{by}"
    return {_group(c, (field,)) for s in specs if len(getattr(s, f"{by}s")) >= 2 for c in expand(s)}


def score_series(
    runs: Sequence,
    by: str,
    kind: str = "sum",
    *,
    only_converged: bool = True,
    keys: set[str] | None = None,
    aligned: bool = False,
) -> tuple[list[Series], list[str]]:
    """TO-score against ``by`` for every group of runs that differ only in ``by`` and seed.

    ``keys`` (from ``series_keys``) keeps only the groups a sweep swept along ``by``, so two
    grids that happen to share a point do not make a series of their own. Returns the
    series with at least two x values, and the ids of runs left out because they did not
    converge (when ``only_converged``). With ``aligned``, the TO-score of each run's aligned
    landscape (``Run.aligned``; every run must have one).
    """
    if by not in ("width", "depth"):
        raise ValueError(f"by={by!r}: must be 'width' or 'depth'")
    field = f"model.{by}"
    left_out = [r.run_id for r in runs if only_converged and not converged(r)]
    groups: dict[str, list] = {}
    for r in runs:  # labels come from all runs of the groups, so a filter never changes them
        key = _group(r.config, (field,))
        if keys is None or key in keys:
            groups.setdefault(key, []).append(r)
    groups = {k: g for k, g in groups.items() if len({getattr(r.config.model, by) for r in g}) > 1}
    labels = group_label([g[0].config for g in groups.values()], (field,)) if groups else []
    out = []
    for label, members in zip(labels, groups.values(), strict=True):
        at: dict[int, list] = {}
        for r in members:
            if r.run_id not in left_out:
                at.setdefault(getattr(r.config.model, by), []).append(r)
        if len(at) < 2:
            continue
        xs = sorted(at)
        out.append(
            Series(
                label,
                by,
                xs,
                [[(r.aligned if aligned else r).barcode.to_score(kind) for r in at[x]] for x in xs],
                [[r.run_id for r in at[x]] for x in xs],
            )
        )
    return out, left_out


def _corr(x, y, seed: int = 0) -> CorrelationResult | None:
    """``core.views.stats.correlation`` or None when there are fewer than 3 points."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return correlation(x, y, n_boot=2000, n_perm=2000, seed=seed)


def trend(series: Series, seed: int = 0) -> CorrelationResult | None:
    """Correlation of x with the TO-score over all runs of a series (seeds pooled)."""
    xs = [x for x, v in zip(series.xs, series.values, strict=True) for _ in v]
    ys = [y for v in series.values for y in v]
    return _corr(xs, ys, seed)


# ------------------------------------------------------------------------------------------
# Observation 2: segment length vs generalization gap


def segment_gap_points(runs: Sequence, gap: str = "loss") -> list[dict[str, Any]]:
    """One point per minimum with a finite segment: its length, its gap and its run."""
    if gap not in ("loss", "error"):
        raise ValueError(f"gap={gap!r}: must be 'loss' or 'error'")
    labels = group_label([r.config for r in runs]) if runs else []
    out = []
    for r, label in zip(runs, labels, strict=True):
        seg = r.barcode.segment_of()
        for k in np.flatnonzero(np.isfinite(seg)):
            out.append(
                {
                    "run": r.run_id,
                    "config": label,
                    "regime": r.config.train.regime,
                    "minimum": int(k),
                    "length": float(seg[k]),
                    "birth": float(r.barcode.values[k]),
                    "gap": float(r.metrics.gap(gap)[k]),
                }
            )
    return out


def _zscore(v: np.ndarray) -> np.ndarray:
    s = v.std()
    return (v - v.mean()) / s if s > 0 else np.zeros_like(v)


def segment_gap(points: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Correlations of segment length with gap.

    Returns a dict with ``pooled`` (all points), ``within`` (lengths and gaps z-scored within
    each run first, so differences between configurations do not drive it), ``partial``
    (within each run, the least-squares line in the minimum's loss removed from both), ``birth``
    (the minimum's loss vs its gap: a control), each a CorrelationResult or None, and
    ``per_run``: rows with each run's Pearson/Spearman and permutation p-values.
    """
    length = np.array([p["length"] for p in points])
    gap = np.array([p["gap"] for p in points])
    birth = np.array([p["birth"] for p in points])
    runs = list(dict.fromkeys(p["run"] for p in points))
    zl, zg, per_run, nan = np.empty_like(length), np.empty_like(gap), [], np.nan
    rl, rg = np.empty_like(length), np.empty_like(gap)
    for rid in runs:
        m = np.array([p["run"] == rid for p in points])
        zl[m], zg[m] = _zscore(length[m]), _zscore(gap[m])
        rl[m], rg[m] = _residual(length[m], birth[m]), _residual(gap[m], birth[m])
        res = _corr(length[m], gap[m], seed)
        per_run.append(
            {
                "run": rid,
                "config": points[int(np.argmax(m))]["config"],
                "n": int(m.sum()),
                "pearson": res.pearson if res else nan,
                "p (r)": res.pearson_p_perm if res else nan,
                "spearman": res.spearman if res else nan,
                "p (rho)": res.spearman_p_perm if res else nan,
            }
        )
    return {
        "pooled": _corr(length, gap, seed),
        "within": _corr(zl, zg, seed),
        "partial": _corr(rl, rg, seed),
        "birth": _corr(birth, gap, seed),
        "per_run": per_run,
    }


def _residual(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y minus its least-squares line in x (y - mean(y) when x is constant or n < 3)."""
    if y.size < 3 or np.ptp(x) == 0:
        return y - y.mean()
    slope, icept = np.polyfit(x, y, 1)
    return y - (icept + slope * x)


def regime_rows(runs: Sequence) -> list[dict[str, Any]]:
    """Per configuration and regime: segment lengths, gaps and TO-scores over seeds and minima.

    ``p (length)`` is a permutation p-value of the difference in segment length between the
    regimes of one configuration (the correlation of length with the regime indicator).
    """
    drop = ("train.regime", "train.lr")
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(_group(r.config, drop), []).append(r)
    groups = {
        k: g
        for k, g in groups.items()
        if len({(r.config.train.regime, r.config.train.lr) for r in g}) > 1
    }
    labels = group_label([g[0].config for g in groups.values()], drop) if groups else []
    rows = []
    for label, members in zip(labels, groups.values(), strict=True):
        regimes = sorted({(r.config.train.regime, r.config.train.lr) for r in members})
        pts = {
            g: segment_gap_points(
                [r for r in members if (r.config.train.regime, r.config.train.lr) == g]
            )
            for g in regimes
        }
        ind = [i for i, g in enumerate(regimes) for _ in pts[g]]
        lens = [p["length"] for g in regimes for p in pts[g]]
        test = _corr(ind, lens) if len(regimes) == 2 else None
        for g in regimes:
            rs = [r for r in members if (r.config.train.regime, r.config.train.lr) == g]
            ls = np.array([p["length"] for p in pts[g]]) if pts[g] else np.array([np.nan])
            rows.append(
                {
                    "configuration": label,
                    "regime": f"{g[0]} (lr {g[1]:g})",
                    "runs": len(rs),
                    "minima": int(sum(r.summary.n_minima for r in rs)),
                    "mean segment": float(np.mean(ls)),
                    "median segment": float(np.median(ls)),
                    "mean TO sum": float(np.mean([r.barcode.to_score("sum") for r in rs])),
                    "true minima": int(sum(r.summary.n_true_minima for r in rs)),
                    "train loss": float(np.mean([np.mean(r.metrics.train_loss) for r in rs])),
                    "gap loss": float(np.mean([np.mean(r.metrics.gap_loss) for r in rs])),
                    "gap error": float(np.mean([np.mean(r.metrics.gap_error) for r in rs])),
                    "p (length)": test.pearson_p_perm if test else np.nan,
                }
            )
    return rows


# ------------------------------------------------------------------------------------------
# TO-score vs the path-optimisation budget


def _filled_history(run) -> tuple[np.ndarray, np.ndarray]:
    """(T,) steps and (E, T) history with each pair's last estimate carried forward."""
    steps = run.paths.history_steps
    h = run.paths.history.astype(np.float64).reshape(-1, steps.size)  # a copy: filled below
    for t in range(1, h.shape[1]):
        gone = np.isnan(h[:, t])
        h[gone, t] = h[gone, t - 1]
    return steps, h


def barcode_at(run, column: np.ndarray):
    """The barcode of the run's minima with pair saddles ``column`` (E,)."""
    values, pairs = run.minima.values, run.paths.pairs
    column = np.asarray(column, dtype=np.float64)
    if column.shape != (len(pairs),):
        raise ValueError(f"column must have one saddle per pair ({len(pairs)}), got {column.shape}")
    ok = np.isfinite(column)  # a path includes its endpoints
    top = np.maximum(column[ok], values[pairs[ok]].max(1, initial=-np.inf))
    return barcode_from_graph(values, graph_matrix(values, pairs[ok], top))


def budget_curve(run, kind: str = "sum") -> tuple[np.ndarray, np.ndarray]:
    """(T,) path steps and (T,) TO-scores of the barcode from the saddle history at each step.

    Step 0 is the straight segments. See the module docstring for how the last point relates
    to the run's own TO-score.
    """
    steps, h = _filled_history(run)
    return steps, np.array([barcode_at(run, h[:, t]).to_score(kind) for t in range(steps.size)])


def budget_series(runs: Sequence, kind: str = "sum") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per configuration (seeds pooled): (label, steps (T,), TO-scores (R, T)).

    Runs of a configuration are put on the union of their step grids, each holding its last
    value after it stopped (it stopped because it converged or reached the step cap).
    """
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(_group(r.config, ()), []).append(r)
    labels = group_label([g[0].config for g in groups.values()]) if groups else []
    out = []
    for label, members in zip(labels, groups.values(), strict=True):
        curves = [budget_curve(r, kind) for r in members]
        grid = np.unique(np.concatenate([s for s, _ in curves]))
        rows = [v[np.searchsorted(s, grid, side="right") - 1] for s, v in curves]
        out.append((label, grid, np.array(rows)))
    return out


def vanishing_bars(run, budget: int, *, rel: float = 0.1) -> dict[str, Any]:
    """Bars visible after ``budget`` path steps, and how many of them vanished by the end.

    A bar *vanishes* when its final length (the stored barcode) is at most
    ``max(saddle_tol, rel * its length at the budget)``. Returns counts and both TO-scores.
    """
    steps, h = _filled_history(run)
    t = int(np.searchsorted(steps, budget, side="right") - 1)
    early = barcode_at(run, h[:, max(t, 0)]).segment_of()
    final = run.barcode.segment_of()
    tol = run.config.paths.saddle_tol
    seen = np.isfinite(early) & (early > tol)
    gone = seen & np.isfinite(final) & (final <= np.maximum(tol, rel * early))
    return {
        "run": run.run_id,
        "budget": int(steps[max(t, 0)]),
        "visible": int(seen.sum()),
        "vanished": int(gone.sum()),
        "TO at budget": float(np.sum(early[np.isfinite(early)])),
        "TO final": run.barcode.to_score("sum"),
    }
