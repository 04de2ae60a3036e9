"""The flood figure of the Learn page: a landscape filling with water, its barcode growing and
its persistence diagram filling in, as one plotly figure with a frame per level.

The browser moves the level (slider, Play) without asking the server: the landscape is sent
once and each frame carries only what changes with the level. Each minimum has one colour
(``color_of``), shared by its pool, its bar, its diagram point and its merge-tree leaf; a pool
takes the colour of its oldest minimum (``core.views.learn``).

What each panel shows at a level, and how the pools' colours change without sending the grid
again, is in ``core.views.plots.pools``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.views.learn import Event, Flood, event_tags
from core.views.plots.frame import INF, finish
from core.views.plots.pools import (
    CLEAR,
    bars_trace,
    color_of,
    level_trace,
    points_trace,
    pool_scale,
    pool_values,
    water_trace,
)

HOLD = 6  # while playing, an event's frame stays for this many frame times
FRAME_MS = 110  # one frame's time while playing


class SpecFigure(go.Figure):
    """A finished figure dict (``fig.to_dict()``) handed on as it is: ``to_dict`` returns it
    without copying or validating (plotly takes a quarter of a second to re-validate a figure
    of a hundred frames). Read-only."""

    def __init__(self, spec: dict):
        super().__init__()
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec


def at_frame(spec: dict, i: int) -> dict:
    """The dict ``spec`` of a ``flood_figure`` started at frame ``i``'s level instead: that
    frame's traces and title merged in, the slider on step i. ``spec`` is not changed; the
    parts that stay the same are shared."""
    frame = next(f for f in spec["frames"] if f["name"] == f"{i}")
    data = list(spec["data"])
    for t, new in zip(frame["traces"], frame["data"], strict=True):
        data[t] = {**data[t], **new}
        if "marker" in new:  # a frame sets only some of the marker's properties
            data[t]["marker"] = {**spec["data"][t].get("marker", {}), **new["marker"]}
    layout = dict(spec["layout"])
    layout["title"] = {**layout["title"], "text": frame["layout"]["title"]["text"]}
    layout["sliders"] = [{**layout["sliders"][0], "active": i}]
    return {**spec, "data": data, "layout": layout}


def _title(flood: Flood, level: float, events: list[Event]) -> str:
    """'level c = 0.42: 3 pools (A, B, D) · last: C merged into B at 0.40'."""
    names = flood.names
    live = [names[k] for k in np.flatnonzero(flood.alive(level))]
    pools = f"{len(live)} pool{'s' * (len(live) != 1)} ({', '.join(live)})" if live else "dry"
    past = [e for e in events if e.level <= level]
    if not past:
        return f"level c = {level:.4g}: {pools}"
    e = past[-1]
    what = "born" if e.kind == "birth" else f"merged into {names[e.into]}"
    return f"level c = {level:.4g}: {pools} · last: {names[e.minimum]} {what} at {e.level:.4g}"


def _step_label(flood: Flood, level: float) -> str:
    """A slider step's label: the level, and at an event what happens ('B born', 'C→B')."""
    tags = event_tags(flood, level)
    return f"{level:.4g}" + (f" ({', '.join(tags)})" if tags else "")


# ---------------------------------------------------------------------------------------------
# The figure


def _landscape(fig: go.Figure, flood: Flood, level: float, big: int) -> None:
    """Panel 1, drawn once: the curve (and its water) or the pools' heatmap and contours; the
    minima, each labelled with its name in its colour."""
    if flood.ys is None:
        fig.add_trace(water_trace(flood, level, False), 1, 1)
        fig.add_trace(
            go.Scatter(
                x=flood.xs,
                y=flood.Z[0],
                mode="lines",
                name="f",
                line=dict(color="black", width=2),
                showlegend=False,
            ),
            1,
            1,
        )
        fig.update_xaxes(title_text="t", row=1, col=1)
        fig.update_yaxes(title_text="f(t)", row=1, col=1)
        y = flood.births
    else:
        fig.add_trace(
            go.Heatmap(
                x=flood.xs,
                y=flood.ys,
                z=pool_values(flood),
                zmin=0,
                zmax=len(flood),
                colorscale=pool_scale(flood, level),
                showscale=False,
                hoverinfo="skip",
                name="pools",
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Contour(
                x=flood.xs[::2],
                y=flood.ys[::2],
                z=flood.Z[::2, ::2].astype(np.float32),
                contours_coloring="lines",
                showscale=False,
                ncontours=18,
                line=dict(width=1),
                colorscale=[[0, "#999"], [1, "#999"]],
                hoverinfo="skip",
                name="contours of f",
            ),
            1,
            1,
        )
        fig.update_xaxes(title_text="x", constrain="domain", row=1, col=1)
        fig.update_yaxes(title_text="y", scaleanchor="x", scaleratio=1, row=1, col=1)
        y = flood.minima[:, 1]
    colors = [color_of(k) for k in range(len(flood))]
    fig.add_trace(
        go.Scatter(
            x=flood.minima[:, 0],
            y=y,
            mode="markers+text",
            text=flood.names,
            textposition="top center",
            textfont=dict(size=big + 3, color="black"),
            marker=dict(size=big - 2, color=colors, line=dict(width=1.5, color="black")),
            customdata=np.arange(len(flood)),
            name="minima",
            showlegend=False,
            hovertemplate="minimum %{text}<extra></extra>",
        ),
        1,
        1,
    )


def _controls(flood: Flood, levels: np.ndarray, start: int, big: int) -> dict:
    """Play / Pause buttons and the level slider (one step per frame)."""
    # redraw: heatmaps and bars are not among the traces plotly can animate without it
    now = dict(mode="immediate", frame=dict(duration=0, redraw=True), transition=dict(duration=0))
    play = dict(
        frame=dict(duration=FRAME_MS, redraw=True),
        transition=dict(duration=0),
        mode="immediate",
        fromcurrent=True,
    )
    buttons = [
        dict(label="▶ Play", method="animate", args=[None, play]),
        dict(label="❚❚ Pause", method="animate", args=[[None], {**now, "frame": dict(duration=0)}]),
    ]
    steps = [
        dict(label=_step_label(flood, lv), method="animate", args=[[f"{i}"], now])
        for i, lv in enumerate(levels)
    ]
    return dict(
        updatemenus=[
            dict(
                type="buttons",
                direction="left",
                x=0,
                y=-0.2,
                xanchor="left",
                yanchor="top",
                showactive=False,
                pad=dict(t=0, r=4),
                buttons=buttons,
            )
        ],
        sliders=[
            dict(
                active=start,
                x=0.15,
                len=0.85,
                y=-0.15,
                yanchor="top",
                pad=dict(t=0, b=0),
                currentvalue=dict(visible=False),
                font=dict(size=1, color=CLEAR),
                ticklen=3,
                minorticklen=0,
                steps=steps,
            )
        ],
    )


def flood_figure(
    flood: Flood, levels: np.ndarray, start: int = 0, *, large: bool = False, ident: str = ""
) -> go.Figure:
    """The flood of a curve or a grid: the landscape with its pools, the barcode so far and
    the persistence diagram so far, with a frame per level of ``levels`` (ascending), shown
    at ``levels[start]``; Play / Pause buttons and a level slider under it."""
    levels = np.asarray(levels, np.float64)
    if not 0 <= start < len(levels):
        raise ValueError(f"start must index levels (0..{len(levels) - 1}), got {start}")
    events, big, c = flood.events(), (15 if large else 11), float(levels[start])
    what = "curve f(t)" if flood.ys is None else "landscape"
    titles = (f"the {what} and its pools", "barcode so far", "persistence diagram so far")
    fig = make_subplots(
        cols=3, column_widths=[0.46, 0.27, 0.27], horizontal_spacing=0.07, subplot_titles=titles
    )
    finish(fig, _title(flood, c, events), "", "", ident)
    pad = 0.04 * (levels[-1] - levels[0])
    rng, cols = [levels[0] - pad, levels[-1] + pad], (-0.5, len(flood) - 0.5)
    # 1. drawn once: the landscape and the minima, the diagonal of the diagram
    _landscape(fig, flood, c, big)
    fig.add_trace(
        go.Scatter(
            x=rng,
            y=rng,
            mode="lines",
            line=dict(color="#bbb"),
            showlegend=False,
            hoverinfo="skip",
            name="death = birth",
        ),
        1,
        3,
    )

    # 2. what changes with the level: the same builders give the traces and the frames
    def moving(level: float, update: bool) -> list:
        return [
            bars_trace(flood, level, update),
            points_trace(flood, level, update),
            level_trace(level, cols, "2", update),
            level_trace(level, rng, "3", update),
        ]

    def first(level: float):  # a frame's update of trace 0: the water, or the pools' colours
        if flood.ys is None:
            return water_trace(flood, level, True)
        return go.Heatmap(colorscale=pool_scale(flood, level))

    n = len(fig.data)
    fig.add_traces(moving(c, False))
    traces = [0, *range(n, len(fig.data))]
    frames = []
    for i, level in enumerate(levels):
        title = dict(title_text=_title(flood, level, events))
        data = [first(level), *moving(level, True)]
        frames.append(go.Frame(name=f"{i}", data=data, traces=traces, layout=title))
        if level in flood.marks:  # frames without data keep the picture: a pause at an event
            frames += [go.Frame(name=f"{i}.{h}", layout=title) for h in range(1, HOLD)]
    fig.frames = frames
    # 3. the panels' axes, the controls
    fig.update_yaxes(range=rng, row=1, col=2)
    fig.update_xaxes(
        range=cols,
        tickvals=list(range(len(flood))),
        ticktext=flood.names,
        title_text="minimum",
        row=1,
        col=2,
    )
    fig.update_xaxes(range=rng, title_text="birth", row=1, col=3)
    fig.update_yaxes(range=rng, title_text="death", row=1, col=3)
    fig.add_annotation(
        x=0,
        y=rng[1],
        xref="x2",
        yref="y2",
        text=f"{flood.names[0]}: {INF}",
        showarrow=False,
        yanchor="top",
        font=dict(size=big),
    )
    fig.update_layout(
        **_controls(flood, levels, start, big),
        font=dict(size=big + 2 if large else 12),
        barmode="overlay",
        height=430 if large else 475,
        margin=dict(t=60, r=10, b=105, l=50),
    )
    if flood.ys is None:
        fig.update_yaxes(range=rng, row=1, col=1)
    return fig
