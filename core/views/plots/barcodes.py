"""Barcode figures: the bars, the persistence diagram, several barcodes on one axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.engine.barcode import Barcode
from core.views.plots.frame import COLORS, INF, LOSS_LABEL, SERIES, finish, fmt, right_edge, tiny


def _bar_rows(bc: Barcode) -> np.ndarray:
    """Bar numbers sorted by length descending (essential first), ties by birth."""
    return np.lexsort((bc.births, -np.nan_to_num(bc.lengths, posinf=np.inf)))


# what ends a bar -> the fill pattern of its segment
DEATH_KINDS = {
    "certified saddle": "",
    "saddle, not certified": ".",
    "upper bound (path not converged)": "/",
    "no barrier": "",
}


def barcode_figure(
    barcode: Barcode,
    *,
    selected: int | None = None,
    errors: dict[int, tuple[float, float]] | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    death_kinds: dict[int, str] | None = None,
    edge: float | None = None,
) -> go.Figure:
    """Horizontal bars [birth, death], one row per minimum, longest at the top.

    The essential bar is drawn to the right edge in its own colour and labelled with an
    arrow and "∞". ``errors`` maps a minimum to (birth error, death error), drawn as error
    bars. ``death_kinds`` maps a minimum to what its death is (one of ``DEATH_KINDS``): a
    certified saddle is drawn solid, an uncertified one dotted, an upper bound hatched.
    ``edge``: where the essential bar ends (default: ``right_edge`` of this barcode); give
    barcodes drawn side by side one edge (``core.views.rebasin.shared_edge``) to share an axis.
    customdata per bar: (minimum, birth, death, length, merges into, via i, via j).
    """
    order = _bar_rows(barcode)  # top row first
    k = len(order)
    edge = right_edge(barcode.births, barcode.deaths) if edge is None else float(edge)
    y_of = k - 1 - np.argsort(order)  # bar number -> row position (top = k - 1)
    fig = go.Figure()
    kinds = death_kinds or {}
    groups = [(False, kind) for kind in DEATH_KINDS] + [(False, None), (True, None)]
    for essential, kind in groups:
        n = order[np.isinf(barcode.deaths[order]) == essential]
        if not essential:
            n = np.array([i for i in n if kinds.get(int(barcode.minimum[i])) == kind], dtype=int)
        if not n.size:
            continue
        birth, death = barcode.births[n], barcode.deaths[n]
        end = np.where(np.isinf(death), edge, death)
        custom = np.column_stack(
            [
                barcode.minimum[n],
                birth,
                death,
                barcode.lengths[n],
                barcode.merges_into[n],
                barcode.saddle_edge[n],
            ]
        )
        err = [errors.get(int(m), (0.0, 0.0)) for m in barcode.minimum[n]] if errors else None
        fig.add_trace(
            go.Bar(
                name=f"essential (never dies, {INF})"
                if essential
                else (f"minima segments: {kind}" if kind else "minima segments"),
                orientation="h",
                base=birth,
                x=end - birth,
                y=y_of[n],
                customdata=custom,
                marker=dict(
                    color=COLORS["essential" if essential else "bar"],
                    pattern_shape=DEATH_KINDS.get(kind, ""),
                ),
                error_x=dict(array=[e[1] for e in err]) if err and not essential else None,
                hovertemplate="minimum %{customdata[0]}<br>birth %{customdata[1]:.5g}<br>"
                + (
                    "never dies: the global minimum of its component"
                    if essential
                    else "death %{customdata[2]:.5g}<br>length %{customdata[3]:.4g}<br>merges into "
                    "%{customdata[4]} via saddle of pair (%{customdata[5]}, %{customdata[6]})"
                )
                + "<extra></extra>",
            )
        )
        # a marker at every birth keeps zero-length bars visible; it also carries birth errors
        fig.add_trace(
            go.Scatter(
                x=birth,
                y=y_of[n],
                mode="markers",
                showlegend=False,
                customdata=custom,
                marker=dict(size=12, symbol="line-ns", line=dict(width=3, color="black")),
                error_x=dict(array=[e[0] for e in err]) if err else None,
                hoverinfo="skip",
            )
        )
        if essential:
            for y in y_of[n]:
                fig.add_annotation(
                    x=edge,
                    y=y,
                    text=f"\u2192 {INF}",
                    showarrow=False,
                    xanchor="left",
                    font=dict(size=16),
                )
    sel = np.flatnonzero(barcode.minimum == selected)
    if sel.size:
        n = sel[0]
        end = edge if np.isinf(barcode.deaths[n]) else barcode.deaths[n]
        fig.add_trace(
            go.Bar(
                name=f"selected: min {selected}",
                orientation="h",
                base=[barcode.births[n]],
                x=[end - barcode.births[n]],
                y=[y_of[n]],
                customdata=[[selected]],
                hoverinfo="skip",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color=COLORS["selected"], width=4)),
            )
        )
    fig.update_yaxes(tickvals=y_of[order], ticktext=[f"min {barcode.minimum[n]}" for n in order])
    fig.update_xaxes(range=[None, edge + 0.08 * (edge - barcode.births.min())])
    fig.update_layout(barmode="overlay", bargap=0.35)
    title = f"H0 barcode: {k} minima, TO-score (sum of finite segments) = " + fmt(
        barcode.to_score("sum")
    )
    if k > 1 and barcode.n_essential == 1 and barcode.to_score("max") <= tiny(barcode.births):
        title += "<br><sup>all minima connected with no barrier: no obstruction found</sup>"
    return finish(fig, title, loss_label, "minimum (sorted by segment length)", ident)


def diagram_figure(
    barcode: Barcode,
    *,
    selected: int | None = None,
    errors: dict[int, tuple[float, float]] | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:
    """Persistence diagram: (birth, death) per minimum, the diagonal, and the essential bar on
    a dashed "∞" line above the largest finite death. Both axes share one range."""
    edge = right_edge(barcode.births, barcode.deaths)
    lo = float(barcode.births.min())
    span = edge - lo
    rng = [lo - 0.05 * span, edge + 0.05 * span]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=rng,
            y=rng,
            mode="lines",
            name="death = birth",
            line=dict(color=COLORS["straight"], width=1),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=rng,
            y=[edge, edge],
            mode="lines",
            name=f"death = {INF}",
            line=dict(color=COLORS["essential"], dash="dash"),
        )
    )
    for essential in (False, True):
        n = np.flatnonzero(np.isinf(barcode.deaths) == essential)
        if not n.size:
            continue
        mins = barcode.minimum[n]
        y = np.where(np.isinf(barcode.deaths[n]), edge, barcode.deaths[n])
        err = [errors.get(int(m), (0.0, 0.0)) for m in mins] if errors else None
        fig.add_trace(
            go.Scatter(
                x=barcode.births[n],
                y=y,
                mode="markers",
                name=f"essential ({INF})" if essential else "minima",
                customdata=np.column_stack([mins, barcode.lengths[n], barcode.merges_into[n]]),
                marker=dict(
                    size=np.where(mins == selected, 16, 10),
                    opacity=1,
                    color=COLORS["essential" if essential else "bar"],
                    line=dict(width=np.where(mins == selected, 3, 0), color=COLORS["selected"]),
                ),
                error_x=dict(array=[e[0] for e in err]) if err else None,
                error_y=dict(array=[e[1] for e in err]) if err else None,
                hovertemplate="minimum %{customdata[0]}<br>birth %{x:.5g}<br>death %{y:.5g}<br>"
                "length %{customdata[1]:.4g}<br>merges into %{customdata[2]}<extra></extra>",
            )
        )
    fig.add_annotation(
        x=rng[0],
        y=edge,
        text=INF,
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font=dict(size=16, color=COLORS["essential"]),
    )
    fig.update_xaxes(range=rng, constrain="domain")
    fig.update_yaxes(range=rng, scaleanchor="x", scaleratio=1)
    return finish(
        fig, "Persistence diagram (H0)", f"birth: {loss_label}", f"death: {loss_label}", ident
    )


def barcodes_overlay_figure(
    barcodes: Sequence[Barcode],
    labels: Sequence[str],
    *,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:
    """Several barcodes on one loss axis, one block of rows per barcode (longest bar on top
    within each block), one colour per barcode; essential bars end at a shared right edge."""
    if len(barcodes) != len(labels):
        raise ValueError(
            f"labels must have one entry per barcode, got {len(labels)} labels "
            f"for {len(barcodes)} barcodes"
        )
    if not barcodes:
        raise ValueError("barcodes must not be empty")
    edge = right_edge(
        np.concatenate([b.births for b in barcodes]), np.concatenate([b.deaths for b in barcodes])
    )
    fig, y0, ticks = go.Figure(), 0, ([], [])
    for c, (bc, lab) in enumerate(zip(barcodes, labels, strict=True)):
        order = _bar_rows(bc)[::-1]  # bottom row first
        rows = y0 + np.arange(len(order))
        end = np.where(np.isinf(bc.deaths[order]), edge, bc.deaths[order])
        fig.add_trace(
            go.Bar(
                name=f"{lab} (TO-score {fmt(bc.to_score('sum'))})",
                orientation="h",
                base=bc.births[order],
                x=end - bc.births[order],
                y=rows,
                customdata=np.column_stack([bc.minimum[order], np.full(len(order), c)]),
                marker=dict(
                    color=SERIES[c % len(SERIES)],
                    pattern=dict(shape=np.where(np.isinf(bc.deaths[order]), "/", "")),
                ),
                hovertemplate=f"{lab}<br>minimum %{{customdata[0]}}<br>birth %{{base:.5g}}"
                "<extra></extra>",
            )
        )
        ticks[0].append(y0 + (len(order) - 1) / 2)
        ticks[1].append(lab)
        y0 += len(order) + 1
    fig.update_yaxes(tickvals=ticks[0], ticktext=ticks[1])
    fig.update_layout(barmode="overlay", bargap=0.3)
    return finish(
        fig, f"{len(barcodes)} barcodes (hatched: essential, {INF})", loss_label, "barcode", ident
    )
