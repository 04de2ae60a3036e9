"""The persistence diagram: one point (birth, death) per minimum, infinity drawn apart."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.engine.barcode import Barcode
from core.views.plots.frame import (
    COLORS,
    INF,
    LOSS_LABEL,
    SELECTION,
    finish,
    linear_ticks,
    right_edge,
    symbols,
)


def diagram_figure(
    barcode: Barcode,
    *,
    selected: int | None = None,
    errors: dict[int, tuple[float, float]] | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    stopping=None,
) -> go.Figure:
    """Persistence diagram: (birth, death) per minimum and the diagonal. Infinity is drawn as
    in GUDHI's ``plot_persistence_diagram``: a line in a shaded band above every finite value,
    its tick labelled "∞" and no finite tick above the finite values, so the essential point
    never reads as dying at a number. Both axes share one range; ``stopping`` (minimum
    indices) are hollow; ``selected`` gets a ring (a trace of its own, ``meta=SELECTION``)."""
    ends = np.concatenate([barcode.births, barcode.deaths[np.isfinite(barcode.deaths)]])
    lo, hi = float(ends.min()), float(ends.max())
    inf_y = right_edge(barcode.births, barcode.deaths)  # 15% of the finite range above hi
    gap = inf_y - hi
    rng = [lo - gap / 3, inf_y + gap / 2]
    ticks = linear_ticks(lo, hi)
    fig = go.Figure()
    fig.add_hrect(y0=hi + gap / 2, y1=rng[1], fillcolor="#eeeeee", line_width=0, layer="below")
    fig.add_trace(
        go.Scatter(
            x=[rng[0], hi],
            y=[rng[0], hi],
            mode="lines",
            name="death = birth",
            line=dict(color=COLORS["straight"], width=1),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[rng[0], hi],
            y=[inf_y, inf_y],
            mode="lines",
            name=f"death = {INF} (never dies)",
            line=dict(color=COLORS["essential"], width=1),
        )
    )
    for essential in (False, True):
        n = np.flatnonzero(np.isinf(barcode.deaths) == essential)
        if not n.size:
            continue
        mins = barcode.minimum[n]
        y = np.where(np.isinf(barcode.deaths[n]), inf_y, barcode.deaths[n])
        err = [errors.get(int(m), (0.0, 0.0)) for m in mins] if errors else None
        fig.add_trace(
            go.Scatter(
                x=barcode.births[n],
                y=y,
                mode="markers",
                name=f"essential ({INF})" if essential else "minima (finite bars)",
                customdata=np.column_stack([mins, barcode.lengths[n], barcode.merges_into[n]]),
                marker=dict(
                    size=10,
                    symbol=symbols(mins, stopping),
                    color=COLORS["essential" if essential else "bar"],
                    line=dict(width=2, color=COLORS["essential" if essential else "bar"]),
                ),
                error_x=dict(array=[e[0] for e in err]) if err else None,
                error_y=dict(array=[e[1] for e in err]) if err else None,
                hovertemplate="minimum %{customdata[0]}<br>birth %{x:.5g}<br>death "
                + (INF if essential else "%{y:.5g}<br>length %{customdata[1]:.4g}")
                + "<br>merges into %{customdata[2]}<extra></extra>",
            )
        )
    sel = np.flatnonzero(barcode.minimum == selected)
    if sel.size:
        n = sel[0]
        fig.add_trace(
            go.Scatter(
                x=[barcode.births[n]],
                y=[inf_y if np.isinf(barcode.deaths[n]) else barcode.deaths[n]],
                mode="markers",
                name=f"selected: min {selected}",
                customdata=[[selected]],
                meta=SELECTION,
                hoverinfo="skip",
                marker=dict(
                    size=18, symbol="circle-open", line=dict(width=3), color=COLORS["selected"]
                ),
            )
        )
    labels = [f"{t:.3g}" for t in ticks]
    fig.update_xaxes(range=rng, constrain="domain", tickvals=ticks, ticktext=labels)
    fig.update_yaxes(
        range=rng, scaleanchor="x", scaleratio=1, tickvals=[*ticks, inf_y], ticktext=[*labels, INF]
    )
    finish(fig, "Persistence diagram (H0)", f"birth: {loss_label}", f"death: {loss_label}", ident)
    return fig.update_layout(legend=dict(orientation="h", y=-0.22, x=0), margin_b=120)
