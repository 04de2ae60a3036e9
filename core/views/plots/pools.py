"""What the Learn page's figures draw at one level of a flood: the pools in their owners'
colours, the barcode so far, the persistence diagram so far and the level line.

Each minimum has one colour (``color_of``), shared by its pool, its bar, its diagram point and
its merge-tree leaf; a pool takes the colour of its oldest minimum (``core.views.learn``).

The 2-D pools are one heatmap whose values never change (``pool_values``): a point first
flooded into the pool of minimum b, with value z, shows ``b + 0.98 (z - zmin) / (zmax - zmin)``.
Only the colour scale changes with the level (``pool_scale``): on [b, b + 1) it paints the
colour of that pool's current owner up to the level and leaves the rest clear. So a figure
with a frame per level sends the grid once and a short colour scale per frame.

The trace builders give the whole trace, or with ``update`` only what a frame changes.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.views.learn import Flood
from core.views.plots.frame import COLORS, SERIES, finish

CLEAR = "rgba(0,0,0,0)"


def color_of(k: int) -> str:
    """The colour of minimum ``k`` (by age) in every figure."""
    return SERIES[k % len(SERIES)]


def pool_values(flood: Flood) -> np.ndarray:
    """(H, W) float32 fixed heatmap values: the first owner plus the height within its band."""
    lo, hi = float(flood.Z.min()), float(flood.Z.max())
    fill = 0.98 * (flood.Z - lo) / max(hi - lo, 1e-300)
    return (np.maximum(flood.entry, 0) + fill).astype(np.float32)


def pool_scale(flood: Flood, level: float) -> list[list]:
    """The colour scale of ``pool_values`` (from 0 to K) at ``level``."""
    k = len(flood)
    lo, hi = float(flood.Z.min()), float(flood.Z.max())
    t = min(0.98 * (level - lo) / max(hi - lo, 1e-300), 0.999)
    owner = flood.owner_of(level)
    scale = []
    for b in range(k):
        if t < 0 or owner[b] < 0:
            scale += [[b / k, CLEAR], [(b + 1) / k, CLEAR]]
            continue
        edge, col = round((b + t) / k, 7), color_of(int(owner[b]))
        scale += [[b / k, col], [edge, col], [edge, CLEAR], [(b + 1) / k, CLEAR]]
    return scale


def water_trace(flood: Flood, level: float, update: bool) -> go.Bar:
    """1-D: the water standing over each flooded point of the curve, in its pool's colour."""
    z, pools = flood.Z[0], flood.pools(level)[0]
    depth = np.where(pools >= 0, level - z, 0.0).astype(np.float32)
    color = np.maximum(pools, 0).astype(np.uint8)
    if update:
        return go.Bar(y=depth, marker=dict(color=color))
    k = len(flood)
    scale = [[q / k, color_of(c)] for c in range(k) for q in (c, c + 1)]
    return go.Bar(
        x=flood.xs,
        base=z,
        y=depth,
        width=float(flood.xs[1] - flood.xs[0]),
        name="water",
        marker=dict(color=color, cmin=-0.5, cmax=k - 0.5, colorscale=scale, line=dict(width=0)),
        showlegend=False,
        hoverinfo="skip",
        xaxis="x",
        yaxis="y",
    )


def bars_trace(flood: Flood, level: float, update: bool) -> go.Bar:
    """The barcode so far, upright (the level axis is y): bar k from its birth up to
    min(death, level), solid while alive, faint once dead."""
    b, d = flood.births, flood.deaths
    height = np.where(b <= level, np.minimum(d, level), b) - b
    opacity = np.where(d <= level, 0.4, 1.0)
    if update:
        return go.Bar(y=height, marker=dict(opacity=opacity))
    return go.Bar(
        x=np.arange(len(b)),
        base=b,
        y=height,
        hovertext=flood.names,
        name="bars",
        marker=dict(
            color=[color_of(k) for k in range(len(b))], opacity=opacity, line=dict(width=0)
        ),
        hovertemplate="bar of minimum %{hovertext}: born %{base:.4g}<extra></extra>",
        showlegend=False,
        xaxis="x2",
        yaxis="y2",
    )


def points_trace(flood: Flood, level: float, update: bool) -> go.Scatter:
    """The persistence diagram so far: a dead bar's point at (birth, death); an alive bar's
    hollow point rides the level; an unborn bar has none."""
    b, d = flood.births, flood.deaths
    born, dead = b <= level, d <= level
    x, y = np.where(born, b, np.nan), np.where(born, np.where(dead, d, level), np.nan)
    symbol = np.where(dead, "circle", "circle-open")
    if update:
        return go.Scatter(x=x, y=y, marker=dict(symbol=symbol))
    colors = [color_of(k) for k in range(len(b))]
    return go.Scatter(
        x=x,
        y=y,
        mode="markers+text",
        text=flood.names,
        textposition="middle left",
        name="diagram",
        marker=dict(color=colors, size=11, symbol=symbol, line=dict(width=2, color=colors)),
        hovertemplate="birth %{x:.4g}, death %{y:.4g}<extra></extra>",
        showlegend=False,
        xaxis="x3",
        yaxis="y3",
    )


def level_trace(level: float, xs, axis: str, update: bool) -> go.Scatter:
    """The level c as a horizontal line on the barcode ("2") or the diagram ("3")."""
    if update:
        return go.Scatter(y=[level, level])
    return go.Scatter(
        x=xs,
        y=[level, level],
        mode="lines",
        name="level c",
        hoverinfo="skip",
        showlegend=False,
        line=dict(color=COLORS["level"], width=2, dash="dash"),
        xaxis=f"x{axis}",
        yaxis=f"y{axis}",
    )


def surface_pools_figure(flood: Flood, level: float, *, ident: str = "") -> go.Figure:
    """The landscape in 3-D, its flooded points in their pools' colours and the level c as a
    flat plane (every second grid point)."""
    if flood.ys is None:
        raise ValueError("surface_pools_figure needs a 2-D flood; this one is a curve")
    s = slice(None, None, 2)
    xs, ys, z = flood.xs[s], flood.ys[s], flood.Z[s, s]
    wet = np.where(flood.pools(level)[s, s] >= 0, z, np.nan)
    grey = [[0, "#d9d9d9"], [1, "#f7f7f7"]]
    plane = [[0, COLORS["level"]], [1, COLORS["level"]]]
    box = ([xs[0], xs[-1]], [ys[0], ys[-1]])
    fig = go.Figure(
        [
            go.Surface(x=xs, y=ys, z=z, colorscale=grey, opacity=0.35, name="f", showscale=False),
            go.Surface(
                x=xs,
                y=ys,
                z=wet,
                surfacecolor=pool_values(flood)[s, s],
                cmin=0,
                cmax=len(flood),
                colorscale=pool_scale(flood, level),
                name="pools",
                showscale=False,
            ),
            go.Surface(
                x=box[0],
                y=box[1],
                z=[[level, level], [level, level]],
                colorscale=plane,
                opacity=0.3,
                name=f"level {level:.4g}",
                showscale=False,
                hoverinfo="skip",
            ),
        ]
    )
    return finish(fig, f"The landscape in 3-D at level c = {level:.4g}", "x", "y", ident, z="f")
