"""What several sections share: the saddle tolerance of a set of runs, runs grouped by
configuration, a step series read on a grid, a series' trend by label and its verdict word."""

from __future__ import annotations

import numpy as np

from core.report import numbers as R
from core.report.doc import ALPHA

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
