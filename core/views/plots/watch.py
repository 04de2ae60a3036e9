"""Watch the engine: one snapshot of a pair's chain over the contours, and f along it with the
exact saddle height as a line."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.views.learn import Flood
from core.views.plots.frame import COLORS, contour_lines, finish


def watch_figure(flood: Flood, snap, exact: float, names: tuple[str, str]) -> go.Figure:
    """Left: contours, the chain and its climbing point; right: f along the chain (by point
    index), the chain's saddle estimate and the exact saddle height."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.1)
    fig.add_trace(
        contour_lines(flood.xs, flood.ys, flood.Z),
        row=1,
        col=1,
    )
    pts, top = snap.points, snap.climb
    fig.add_trace(
        go.Scatter(
            x=pts[:, 0],
            y=pts[:, 1],
            mode="lines+markers",
            name="chain",
            line=dict(color=COLORS["plane_path"]),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=[top[0]],
            y=[top[1]],
            mode="markers",
            name="climbing point",
            marker=dict(symbol="star", size=14, color=COLORS["saddle"]),
        ),
        row=1,
        col=1,
    )
    idx = np.arange(len(snap.profile))
    fig.add_trace(
        go.Scatter(
            x=idx,
            y=snap.profile,
            mode="lines+markers",
            name="f along the chain",
            line=dict(color=COLORS["plane_path"]),
        ),
        row=1,
        col=2,
    )
    fig.add_hline(
        y=exact,
        line=dict(color=COLORS["level"], dash="dash"),
        row=1,
        col=2,
        annotation_text=f"exact saddle {exact:.4g}",
    )
    fig.update_yaxes(scaleanchor="x", scaleratio=1, row=1, col=1)
    cap = "final" if snap.cap is None else f"cap {snap.cap}"
    title = (
        f"Path {names[0]}–{names[1]} after {snap.steps} steps ({cap}, {snap.status}): "
        f"saddle {snap.saddle:.5g}"
    )
    finish(fig, title, "x", "y", "")
    fig.update_xaxes(title_text="point on the chain", row=1, col=2)
    fig.update_yaxes(title_text="f", row=1, col=2)
    return fig
