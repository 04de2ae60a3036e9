"""What several sections share: the saddle tolerance of a set of runs, runs grouped by
configuration, a step series read on a grid, a series' trend by label and its verdict word."""

from __future__ import annotations

import numpy as np

from core.report import numbers as R
from core.report.doc import ALPHA
from core.views import plots

ONE = "one basin (all bars <= tol)"


def tol_of(runs) -> float:
    """The loosest saddle tolerance of the runs: shorter bars are not visible."""
    return max(r.config.paths.saddle_tol for r in runs)


def groups_of(runs) -> list[list]:
    """The runs grouped by configuration (seeds of one configuration together)."""
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(R._group(r.config, ()), []).append(r)
    return list(groups.values())


def on_grid(grid: np.ndarray, steps: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """``vals[..., t]`` recorded at ``steps`` read at ``grid``: the last value at or before."""
    idx = np.searchsorted(steps, grid, side="right") - 1
    return vals[..., np.clip(idx, 0, None)]


def conv_trend(pairs, label: str):
    """The trend of the series called ``label`` among (series, trend) pairs, or None."""
    return next((res for s, res in pairs if s.label == label), None)


def trend_kind(res) -> str:
    """A correlation's verdict in one word: "down", "up", "flat" (not significant at ALPHA)
    or "untestable" (None, or constant values)."""
    if res is None or not np.isfinite(res.spearman):
        return "untestable"
    if res.spearman_p_perm >= ALPHA:
        return "flat"
    return "down" if res.spearman < 0 else "up"


def series_figure(series, by: str, labels=None, colors=None, dashed=None):
    """TO-score (sum) vs ``by`` of report series (``numbers.Series``), on the union of their
    x values (NaN where a series has none): a line per series with its min..max band."""
    xs = sorted({x for s in series for x in s.xs})

    def on_grid(s, a) -> list[float]:
        m = dict(zip(s.xs, a, strict=True))
        return [m.get(x, np.nan) for x in xs]

    fig = plots.to_score_figure(
        xs,
        [on_grid(s, s.means) for s in series],
        [on_grid(s, s.los) for s in series],
        [on_grid(s, s.his) for s in series],
        x_label=by,
        series_labels=labels or [s.label for s in series],
        y_label="TO-score (sum; loss units)",
        log_x=by == "width",
        band_label="min..max over seeds",
        colors=colors,
        dashed=dashed,
    )
    if by == "depth":
        fig.update_xaxes(dtick=1)
    return fig
