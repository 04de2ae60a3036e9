"""The Learn page's noisy particles: each minimum's bar with its escape count, and where the
particles ended over the landscape's contours; every minimum in its flood colour
(``core.views.plots.pools.color_of``)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.views.learn import Flood
from core.views.particles import Particles
from core.views.plots.frame import INF, contour_lines, finish
from core.views.plots.pools import color_of


def escape_words(escaped: int, settled: int, probability: float) -> str:
    """'12 / 50 escaped (24%)'; 'no engine minimum here' for an unmatched minimum."""
    if settled < 0:
        return "no engine minimum here"
    if settled == 0:
        return "0 settled"
    return f"{escaped} / {settled} escaped ({probability:.0%})"


def escape_bars_figure(flood: Flood, particles: Particles, ident: str = "") -> go.Figure:
    """Each minimum's bar (birth to death; the essential one to the top of the drawn grid),
    in its colour, with its escape count written beside it."""
    escaped, settled, prob = particles.counts()
    top = float(flood.Z.max())
    fig = go.Figure()
    for k, name in enumerate(flood.names):
        b, d = float(flood.births[k]), float(flood.deaths[k])
        words = escape_words(int(escaped[k]), int(settled[k]), float(prob[k]))
        fig.add_trace(
            go.Scatter(
                x=[b, d if np.isfinite(d) else top],
                y=[name, name],
                mode="lines+text",
                line=dict(color=color_of(k), width=12),
                text=["", f"  {words}"],
                textposition="middle right",
                name=name,
                showlegend=False,
                hovertemplate=f"{name}: bar [{b:.4g}, {d if np.isfinite(d) else INF}]; "
                f"{words}<extra></extra>",
            )
        )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[float(flood.births.min()), top + 0.6 * (top - flood.births.min())])
    title = f"Bars and escapes at noise {particles.noise:g}"
    return finish(fig, title, "f", "minimum", ident)


def particles_figure(flood: Flood, particles: Particles, ident: str = "") -> go.Figure:
    """Contours of f, the minima as letters, and every particle's end point in its start
    minimum's colour: a dot where it stayed in that basin, a cross where it escaped."""
    fig = go.Figure(contour_lines(flood.xs, flood.ys, flood.Z))
    for k, name in enumerate(flood.names):
        mine = particles.start == k
        for out, sym in ((False, "circle"), (True, "x")):
            pts = particles.ends[mine & (particles.escaped == out)]
            fig.add_trace(
                go.Scatter(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    mode="markers",
                    marker=dict(symbol=sym, size=5, color=color_of(k), opacity=0.7),
                    name=f"from {name}: {'escaped' if out else 'stayed'}",
                    legendgroup=name,
                )
            )
    fig.add_trace(
        go.Scatter(
            x=flood.minima[:, 0],
            y=flood.minima[:, 1],
            mode="text",
            text=flood.names,
            textfont=dict(size=16, color="black"),
            name="minima",
            hoverinfo="skip",
        )
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return finish(fig, "Where the particles ended", "x", "y", ident)
