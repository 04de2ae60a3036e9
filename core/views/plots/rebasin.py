"""Figures of a landscape modulo permutation symmetry (weight matching): the raw and the
aligned barcode side by side on one loss axis, and each pair's straight-segment barrier
before and after aligning the minima (the re-basin figure)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.engine.barcode import Barcode
from core.views.plots.barcodes import barcode_figure
from core.views.plots.frame import COLORS, finish, fmt, right_edge


def paired_barcode_figures(
    raw: Barcode,
    aligned: Barcode,
    *,
    selected: int | None = None,
    death_kinds: tuple[dict[int, str] | None, dict[int, str] | None] = (None, None),
    ident: str = "",
    stopping=None,
) -> tuple[go.Figure, go.Figure]:
    """``barcode_figure`` of the raw and of the aligned barcode, made to stand side by side:
    one loss axis (the same range, infinite bars to one right edge), the legend below the
    bars, and titles that name each with its TO-scores. ``death_kinds``: of the raw and of the
    aligned bars (``core.views.dashboard.death_kinds``); ``stopping``: the minima that are
    stopping points (aligning permutes a minimum's units, it stays the same minimum)."""
    births = np.concatenate([raw.births, aligned.births])
    edge = right_edge(births, np.concatenate([raw.deaths, aligned.deaths]))
    lo = float(births.min())
    span = [lo - 0.04 * (edge - lo), edge + 0.08 * (edge - lo)]
    figs = []
    for name, bc, kinds in (("Raw", raw, death_kinds[0]), ("Aligned", aligned, death_kinds[1])):
        fig = barcode_figure(
            bc, selected=selected, ident=ident, death_kinds=kinds, edge=edge, stopping=stopping
        )
        fig.update_xaxes(range=span)
        note = fig.layout.title.text.partition("<br>")[2]  # "no obstruction found", if so
        fig.update_layout(
            title_text=f"{name} minima: TO-score sum {fmt(bc.to_score('sum'))}, "
            f"max {fmt(bc.to_score('max'))}" + (f"<br>{note}" if note else ""),
            legend=dict(orientation="h", y=-0.22, x=0),
            margin_b=110,
        )
        figs.append(fig)
    return figs[0], figs[1]


def rebasin_figure(
    pairs,
    before,
    after,
    *,
    ident: str = "",
) -> go.Figure:
    """One point per pair of minima: its straight-segment barrier (the segment's maximum minus
    its higher end, loss units) between the raw minima (x) and between the aligned ones (y),
    with the diagonal y = x; a point below it is a barrier that alignment lowered.

    ``pairs`` is (E, 2), ``before`` and ``after`` (E,) (``core.views.rebasin.Barriers``);
    both axes share one range. customdata per point: (i, j).
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    x, y = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if not len(pairs) == len(x) == len(y):
        raise ValueError(
            f"pairs, before and after must have one entry per pair, got {len(pairs)}, "
            f"{len(x)} and {len(y)}"
        )
    both = np.concatenate([x, y, [0.0]])
    lo, hi = float(both.min()), float(both.max())
    pad = 0.05 * ((hi - lo) or 1.0)
    rng = [lo - pad, hi + pad]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=rng,
            y=rng,
            mode="lines",
            name="no change (after = before)",
            line=dict(color=COLORS["straight"], dash="dash"),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=y,
            mode="markers",
            name="pair of minima",
            customdata=pairs,
            marker=dict(size=11, color=COLORS["bar"]),
            hovertemplate="pair %{customdata[0]} - %{customdata[1]}<br>before %{x:.5g}<br>"
            "after %{y:.5g}<extra></extra>",
        )
    )
    fig.update_xaxes(range=rng, constrain="domain")
    fig.update_yaxes(range=rng, scaleanchor="x", scaleratio=1)
    title = f"Straight-segment barriers before and after weight matching ({len(x)} pairs)"
    if len(x):
        title += (
            f"<br><sup>lower after alignment: {int(np.sum(y < x))} of {len(x)}; mean "
            f"{x.mean():.4g} before, {y.mean():.4g} after</sup>"
        )
    return finish(
        fig,
        title,
        "barrier between the raw minima (loss units)",
        "barrier between the aligned minima (loss units)",
        ident,
    )
