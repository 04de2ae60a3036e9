"""Barcode figures: the bars, the persistence diagram, several barcodes on one axis."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.engine.barcode import Barcode
from core.views.plots.frame import (
    COLORS,
    INF,
    LOSS_LABEL,
    SELECTION,
    SERIES,
    finish,
    fmt,
    right_edge,
    symbols,
    tiny,
)


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


def _end_markers(fig, birth, death, y, custom, stopping, err=None, color="black") -> None:
    """A dot at every birth (hollow for a stopping point) and, where ``death`` is given, a
    tick at every death: pixel-sized marks that keep bars of any length visible. The birth
    dots carry the birth errors (``err``: (birth error, death error) per bar)."""
    first = not any(t.name == "birth" for t in fig.data)
    fig.add_trace(
        go.Scatter(
            x=birth,
            y=y,
            mode="markers",
            name="birth",
            legendgroup="ends",
            legendgrouptitle_text="ends (hollow: a stopping point)",
            legendrank=2000,  # after the bars' entries
            showlegend=first,
            customdata=custom,
            marker=dict(
                size=9,
                symbol=symbols(np.asarray(custom)[:, 0], stopping),
                color=color,
                line=dict(width=2, color=color),
            ),
            error_x=dict(array=[e[0] for e in err]) if err else None,
            hoverinfo="skip",
        )
    )
    if death is not None:
        fig.add_trace(
            go.Scatter(
                x=death,
                y=y,
                mode="markers",
                name="death",
                legendgroup="ends",
                legendrank=2001,
                showlegend=first,
                customdata=custom,
                marker=dict(size=14, symbol="line-ns", line=dict(width=3, color=color)),
                hoverinfo="skip",
            )
        )


def barcode_figure(
    barcode: Barcode,
    *,
    selected: int | None = None,
    errors: dict[int, tuple[float, float]] | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    death_kinds: dict[int, str] | None = None,
    edge: float | None = None,
    stopping=None,
) -> go.Figure:
    """Horizontal bars [birth, death], one row per minimum, longest at the top.

    The essential bar is drawn to the right edge in its own colour and labelled with an
    arrow and "∞". ``errors`` maps a minimum to (birth error, death error), drawn as error
    bars. ``death_kinds`` maps a minimum to what its death is (one of ``DEATH_KINDS``): a
    certified saddle is drawn solid, an uncertified one dotted, an upper bound hatched.
    ``edge``: where the essential bar ends (default: ``right_edge`` of this barcode); give
    barcodes drawn side by side one edge (``core.views.rebasin.shared_edge``) to share an axis.
    A dot marks every birth and a tick every finite death, so a bar far shorter than a pixel
    still shows where it is; ``stopping`` (minimum indices) get a hollow dot (``symbols``).
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
        _end_markers(fig, birth, None if essential else death, y_of[n], custom, stopping, err)
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
                meta=SELECTION,
                marker=dict(color="rgba(0,0,0,0)", line=dict(color=COLORS["selected"], width=4)),
            )
        )
    stop = {int(m) for m in stopping or ()}
    fig.update_yaxes(
        tickvals=y_of[order],
        ticktext=[
            f"min {barcode.minimum[n]}" + (" (stop)" if int(barcode.minimum[n]) in stop else "")
            for n in order
        ],
    )
    fig.update_xaxes(range=[None, edge + 0.08 * (edge - barcode.births.min())])
    fig.update_layout(barmode="overlay", bargap=0.35)
    title = f"H0 barcode: {k} minima, TO-score (sum of finite segments) = " + fmt(
        barcode.to_score("sum")
    )
    if k > 1 and barcode.n_essential == 1 and barcode.to_score("max") <= tiny(barcode.births):
        title += "<br><sup>all minima connected with no barrier: no obstruction found</sup>"
    finish(fig, title, loss_label, "minimum (sorted by segment length)", ident)
    # below the bars (at the side it took half of a narrow column's width), anchored to the
    # figure's bottom edge so that it never covers the axis title, whatever the plot's height
    return fig.update_layout(
        legend=dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0),
        margin_b=170,
    )


def barcodes_overlay_figure(
    barcodes: Sequence[Barcode],
    labels: Sequence[str],
    *,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    stopping: Sequence | None = None,
) -> go.Figure:
    """Several barcodes on one loss axis, one block of rows per barcode (longest bar on top
    within each block), one colour per barcode; essential bars end at a shared right edge.
    A dot at every birth and a tick at every finite death keep bars shorter than a pixel
    visible; ``stopping`` (one collection of minimum indices per barcode) get hollow dots."""
    if len(barcodes) != len(labels):
        raise ValueError(
            f"labels must have one entry per barcode, got {len(labels)} labels "
            f"for {len(barcodes)} barcodes"
        )
    if not barcodes:
        raise ValueError("barcodes must not be empty")
    stopping = [()] * len(barcodes) if stopping is None else list(stopping)
    if len(stopping) != len(barcodes):
        raise ValueError(
            f"stopping must have one entry per barcode, got {len(stopping)} for {len(barcodes)}"
        )
    edge = right_edge(
        np.concatenate([b.births for b in barcodes]), np.concatenate([b.deaths for b in barcodes])
    )
    fig, y0, ticks = go.Figure(), 0, ([], [])
    for c, (bc, lab) in enumerate(zip(barcodes, labels, strict=True)):
        order = _bar_rows(bc)[::-1]  # bottom row first
        rows = y0 + np.arange(len(order))
        death = bc.deaths[order]
        end = np.where(np.isinf(death), edge, death)
        custom = np.column_stack([bc.minimum[order], np.full(len(order), c), bc.lengths[order]])
        color = SERIES[c % len(SERIES)]
        fig.add_trace(
            go.Bar(
                name=f"{lab} (TO-score {fmt(bc.to_score('sum'))})",
                orientation="h",
                base=bc.births[order],
                x=end - bc.births[order],
                y=rows,
                customdata=custom,
                marker=dict(
                    color=color,
                    pattern=dict(shape=np.where(np.isinf(death), "/", "")),
                ),
                hovertemplate=f"{lab}<br>minimum %{{customdata[0]}}<br>birth %{{base:.5g}}"
                "<br>length %{customdata[2]:.4g}<extra></extra>",
            )
        )
        fin = np.isfinite(death)
        _end_markers(fig, bc.births[order], None, rows, custom, stopping[c], color=color)
        fig.add_trace(
            go.Scatter(
                x=death[fin],
                y=rows[fin],
                mode="markers",
                showlegend=False,
                marker=dict(size=14, symbol="line-ns", line=dict(width=3, color=color)),
                hoverinfo="skip",
            )
        )
        ticks[0].append(y0 + (len(order) - 1) / 2)
        ticks[1].append(lab)
        y0 += len(order) + 1
    fig.update_yaxes(tickvals=ticks[0], ticktext=ticks[1])
    fig.update_layout(barmode="overlay", bargap=0.3)
    n = len(barcodes)
    return finish(
        fig,
        f"{n} barcode{'s' if n > 1 else ''} (hatched: essential, {INF}; dot: birth, tick: death)",
        loss_label,
        "barcode",
        ident,
    )
