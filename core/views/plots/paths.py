"""How the paths between minima came out: each pair's saddle estimate over the path
optimisation (relative to its final value, on a log axis), and the loss along one path
beside the straight segment between its minima."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.engine.paths import SPLIT
from core.views.plots.frame import COLORS, LOSS_LABEL, SELECTION, SERIES, finish, log_axis


def relative_history(history) -> np.ndarray:
    """(E, T) each pair's saddle estimates minus its final (last finite) estimate: how far
    each estimate still was from where the optimisation ended."""
    hist = np.asarray(history, dtype=np.float64)
    final = np.array(
        [row[np.isfinite(row)][-1] if np.isfinite(row).any() else np.nan for row in hist]
    )
    return hist - final[:, None]


def saddle_history_figure(
    history_steps,
    history,
    pairs,
    *,
    converged=None,
    highlight: set[int] | None = None,
    relative: bool = True,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:
    """Saddle estimate of each pair vs path-optimisation step: finished pairs (converged or
    with no barrier) solid, pairs stopped at the step cap dashed; ``highlight`` (pair numbers)
    drawn again thick (``meta=SELECTION``).

    ``relative`` (the default) draws estimate - final on a log axis: the first estimates are
    orders of magnitude above the converged tail, which a linear axis of the estimates flattens
    to a line; a line ends where the estimate reached its final value (zero has no place on a
    log axis). The hover gives the estimate itself.
    """
    steps = np.asarray(history_steps)
    hist = np.asarray(history, dtype=np.float64).reshape(-1, len(steps))  # (E, T)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    conv = np.ones(len(pairs), bool) if converged is None else np.asarray(converged, bool)
    y_all = relative_history(hist) if relative else hist
    fig = go.Figure()
    for e, (i, j) in enumerate(pairs):
        group = "finished" if conv[e] else "step cap (upper bound)"
        on = bool(highlight) and e in highlight
        for thick in (False, True) if on else (False,):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=y_all[e],
                    mode="lines",
                    name=f"{i}-{j}" + (" (selected minimum)" if thick else ""),
                    legendgroup=group,
                    legendgrouptitle_text=group,
                    showlegend=not thick,
                    meta=SELECTION if thick else None,
                    customdata=np.column_stack([np.tile([i, j, e], (len(steps), 1)), hist[e]]),
                    line=dict(
                        dash="solid" if conv[e] else "dash",
                        width=4 if thick else 1.5,
                        color=SERIES[e % len(SERIES)],
                    ),
                    hovertemplate="pair %{customdata[0]}-%{customdata[1]}<br>step %{x}<br>"
                    "saddle estimate %{customdata[3]:.5g}"
                    + ("<br>above its final value by %{y:.3g}" if relative else "")
                    + "<extra></extra>",
                )
            )
    positive = y_all[np.isfinite(y_all) & (y_all > 0)]
    if relative and positive.size:
        fig.update_yaxes(**log_axis(float(positive.min()), float(positive.max())))
    n_conv = int(conv.sum())
    title = f"Saddle estimates during path optimisation ({n_conv}/{len(pairs)} finished)"
    y_title = f"saddle estimate: {loss_label}"
    if relative:
        title += "<br><sup>each estimate minus the pair's final one, log scale</sup>"
        y_title = "estimate \u2212 final estimate (loss units)"
    return finish(fig, title, "path optimisation step", y_title, ident)


def profile_figure(
    profile, *, log_y: bool = False, ident: str = "", loss_label: str = LOSS_LABEL
) -> go.Figure:
    """Loss along an optimised path, two panels. Left: the path alone on a loss range fitted
    to it (line: dense points; markers: the path's nodes; the saddle marked, its level
    dotted), so a barrier far below the straight segment's stays readable. Right: the path
    beside the straight segment between the same minima (dashed), on a range that holds both.
    Title and legend give the one stored saddle and the stored straight-segment maximum."""
    p = profile
    i, j = p.pair
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.1,
        subplot_titles=("the optimised path", "beside the straight segment"),
    )
    k = int(np.argmax(p.values))
    fig.add_trace(
        go.Scatter(
            x=p.s,
            y=p.values,
            mode="lines",
            name="optimised path",
            legendgroup="path",
            line=dict(color=COLORS["path"]),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=p.nodes_s,
            y=p.values[:: p.density],
            mode="markers",
            name="path nodes",
            marker_color=COLORS["bar"],
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[p.saddle, p.saddle],
            mode="lines",
            name=f"saddle level {p.saddle:.5g}",
            legendgroup="saddle",
            line=dict(color=COLORS["saddle"], dash="dot", width=1),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[p.s[k]],
            y=[p.values[k]],
            mode="markers",
            name=f"saddle = {p.saddle:.5g} (the path's highest point)",
            legendgroup="saddle",
            marker=dict(color=COLORS["saddle"], size=13, symbol="x"),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=p.s,
            y=p.values,
            mode="lines",
            showlegend=False,
            legendgroup="path",
            name="optimised path",
            line=dict(color=COLORS["path"]),
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=p.straight_s,
            y=p.straight_values,
            mode="lines",
            name=f"straight segment (max {p.straight_saddle:.5g})",
            line=dict(color=COLORS["straight"], dash="dash"),
        ),
        row=1,
        col=2,
    )
    if p.via >= 0 or p.via == SPLIT:
        q = int(np.argmin(np.abs(p.s - p.via_s)))
        where = (
            f"minimum {p.via}: the path is joined here from its two legs"
            if p.via >= 0
            else "a minimum that no start reached: the path is joined here (and at its other "
            "dips) from its legs"
        )
        fig.add_trace(
            go.Scatter(
                x=[p.s[q]],
                y=[p.values[q]],
                mode="markers",
                name=where,
                marker=dict(color=COLORS["bar"], size=12, symbol="diamond-open"),
            ),
            row=1,
            col=1,
        )
    lo, hi = float(np.min(p.values)), float(np.max(p.values))
    pad = 0.08 * ((hi - lo) or max(abs(hi), 1e-12))
    if log_y:
        fig.update_yaxes(type="log")
    else:
        fig.update_yaxes(range=[lo - pad, hi + pad], row=1, col=1)
    fig.update_xaxes(range=[0, 1])
    fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0))
    title = (
        f"Loss along the path {i} → {j}: saddle {p.saddle:.5g}, "
        f"straight segment max {p.straight_saddle:.5g}"
    )
    finish(fig, title, f"position along the path (arc length / {p.length:.3g})", loss_label, ident)
    # the run's ident above the panels' titles, not over the right one
    fig.update_annotations(selector=dict(name="ident"), y=1.1)
    return fig.update_layout(margin_b=120, margin_t=95)
