"""Statistics and comparisons: generalization gap vs segment length, TO-score vs width/depth."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.views.plots.frame import COLORS, SERIES, STOPPING_WORDS, finish, log_axis


def generalization_figure(
    lengths,
    gaps,
    *,
    stats=None,
    gap_kind: str = "loss",
    groups: Sequence[str] | None = None,
    minima=None,
    stopping=None,
    ident: str = "",
) -> go.Figure:
    """Generalization gap vs minima-segment length, one point per minimum, with the OLS line;
    ``stopping`` (one bool per point) draws a point hollow: a stopping point, not a minimum.

    The essential bar (infinite length) has no segment and is left out; a note says so. The
    title carries n, Pearson r [CI], Spearman rho [CI] and the permutation p-values from
    ``stats`` (a ``core.views.stats.CorrelationResult`` computed on the same finite points).
    """
    if gap_kind not in ("loss", "error"):
        raise ValueError(f"gap_kind must be 'loss' or 'error', got {gap_kind!r}")
    x, y = np.asarray(lengths, np.float64), np.asarray(gaps, np.float64)
    ids = np.arange(len(x)) if minima is None else np.asarray(minima)
    keep = np.isfinite(x) & np.isfinite(y)
    grp = np.asarray(groups if groups is not None else ["minima"] * len(x), dtype=object)
    stop = np.zeros(len(x), bool) if stopping is None else np.asarray(stopping, bool)
    fig = go.Figure()
    for c, g in enumerate(dict.fromkeys(grp[keep])):
        m = keep & (grp == g)
        fig.add_trace(
            go.Scatter(
                x=x[m],
                y=y[m],
                mode="markers",
                name=str(g),
                customdata=ids[m],
                marker=dict(
                    size=11,
                    color=SERIES[c % len(SERIES)],
                    symbol=np.where(stop[m], "circle-open", "circle"),
                    line=dict(width=2, color=SERIES[c % len(SERIES)]),
                ),
                hovertemplate="minimum %{customdata}<br>segment %{x:.4g}<br>gap %{y:.4g}"
                "<extra></extra>",
            )
        )
    if keep.sum() >= 2 and np.ptp(x[keep]) > 0:
        slope, icept = np.polyfit(x[keep], y[keep], 1)
        xl = np.array([x[keep].min(), x[keep].max()])
        fig.add_trace(
            go.Scatter(
                x=xl,
                y=icept + slope * xl,
                mode="lines",
                name=f"least squares: slope {slope:.3g}",
                line=dict(color=COLORS["path"], dash="dot"),
            )
        )
    if (~keep).any():
        fig.add_annotation(
            text=f"not shown: minimum {', '.join(map(str, ids[~keep]))} "
            f"(essential bar, no finite segment)",
            xref="paper",
            yref="paper",
            x=1,
            y=-0.1,
            xanchor="right",
            yanchor="top",
            showarrow=False,
            font=dict(size=11, color="#666"),
        )
    title = f"Generalization gap vs segment length (n = {int(keep.sum())})"
    if stop[keep].any():
        title += f"; {int(stop[keep].sum())} stopping points"
    if stats is not None:
        title += (
            f"<br><sup>Pearson r = {stats.pearson:.2f} [{stats.pearson_ci[0]:.2f}, "
            f"{stats.pearson_ci[1]:.2f}], p = {stats.pearson_p_perm:.3g}; Spearman "
            f"\u03c1 = {stats.spearman:.2f} [{stats.spearman_ci[0]:.2f}, "
            f"{stats.spearman_ci[1]:.2f}], p = {stats.spearman_p_perm:.3g} "
            f"({100 * stats.ci:.0f}% bootstrap CI, permutation p)</sup>"
        )
    if stop[keep].any():
        title += f"<br><sup>{STOPPING_WORDS}</sup>"
    y_title = f"generalization gap: test \u2212 train {'loss' if gap_kind == 'loss' else 'error'}"
    finish(fig, title, "minima segment length (loss units)", y_title, ident)
    return fig.update_layout(margin_b=90, margin_t=70 + 18 * title.count("<br>"))


def to_score_figure(
    xs,
    means,
    los,
    his,
    *,
    x_label: str,
    series_labels: Sequence[str] | None = None,
    y_label: str = "TO-score (sum of finite segment lengths)",
    log_x: bool = False,
    log_y: bool | None = None,
    band_label: str = "range over seeds",
    colors: Sequence[int] | None = None,
    dashed: Sequence[bool] | None = None,
    ident: str = "",
) -> go.Figure:
    """TO-score vs width or depth: a line per series (mean over seeds) with a band [lo, hi].

    ``means``, ``los``, ``his`` are (X,) for one series or (S, X) for S series. ``log_y``
    None: a log axis when every value is positive and they span at least a factor of 10
    (TO-scores fall by orders of magnitude with width), else linear (a zero TO-score, no
    obstruction found, has no place on a log axis). ``colors`` (S,) picks each series'
    colour from ``SERIES`` (default: its number); ``dashed`` (S,) draws a series dashed (the
    aligned landscape's TO-score beside the raw one in the same colour).
    """
    xs = np.asarray(xs, np.float64)
    m, lo, hi = (np.atleast_2d(np.asarray(a, np.float64)) for a in (means, los, his))
    if not m.shape == lo.shape == hi.shape or m.shape[1] != len(xs):
        raise ValueError(
            f"means, los, his must all be (S, {len(xs)}), got {m.shape}, {lo.shape}, {hi.shape}"
        )
    labels = series_labels or [f"series {s}" for s in range(len(m))]
    colors = list(range(len(m))) if colors is None else list(colors)
    dashed = [False] * len(m) if dashed is None else list(dashed)
    if not len(labels) == len(colors) == len(dashed) == len(m):
        raise ValueError(
            f"series_labels, colors and dashed must have {len(m)} entries, got "
            f"{len(labels)}, {len(colors)} and {len(dashed)}"
        )
    fig = go.Figure()
    for s in range(len(m)):
        col = SERIES[colors[s] % len(SERIES)]
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([xs, xs[::-1]]),
                y=np.concatenate([hi[s], lo[s][::-1]]),
                fill="toself",
                fillcolor=col,
                opacity=0.2,
                line=dict(width=0),
                hoverinfo="skip",
                mode="lines",
                legendgroup=labels[s],
                showlegend=False,
                name=f"{labels[s]} band",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=m[s],
                mode="lines+markers",
                name=labels[s],
                legendgroup=labels[s],
                line=dict(color=col, dash="dash" if dashed[s] else None),
            )
        )
    if log_x:  # a tick at every x given (widths 4, 8, 16 ...), not plotly's digit ticks
        fig.update_xaxes(type="log", tickvals=xs, ticktext=[f"{x:g}" for x in xs])
    finite = np.concatenate([m.ravel(), lo.ravel(), hi.ravel()])
    finite = finite[np.isfinite(finite)]
    if log_y is None:
        log_y = bool(finite.size and finite.min() > 0 and finite.max() >= 10 * finite.min())
    if log_y and finite.size and finite.min() > 0:
        fig.update_yaxes(**log_axis(float(finite.min()), float(finite.max())))
    else:
        fig.update_yaxes(type="log" if log_y else "linear")
    finish(
        fig, f"{y_label.split(' (')[0]} vs {x_label} (band: {band_label})", x_label, y_label, ident
    )
    # below the plot: a page draws this in half its width, where a side legend squeezes it
    return fig.update_layout(legend=dict(orientation="h", y=-0.25, x=0), margin_b=110)
