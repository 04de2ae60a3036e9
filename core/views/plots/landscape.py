"""The landscape around the minima: minima and paths in a PCA/UMAP projection, the loss on
the plane through three minima."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.views.plots.frame import (
    COLORS,
    LOSS_LABEL,
    LOSS_SCALE,
    SELECTION,
    STOPPING_WORDS,
    finish,
    log_ticks,
    symbols,
)


def projection_figure(
    projection,
    values,
    *,
    selected: int | None = None,
    path_pairs=None,
    path_values=None,
    dims: int = 2,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    stopping=None,
) -> go.Figure:
    """Minima as large markers coloured by loss (one colour scale; ``stopping`` minima
    hollow), stored paths as thin lines through the same projection; ``dims=3`` draws a
    rotatable 3-D scene, seen from far enough that its axis titles fit."""
    if dims not in (2, 3) or projection.minima.shape[1] < dims:
        raise ValueError(
            f"dims must be 2 or 3 and at most the projection's "
            f"{projection.minima.shape[1]} components, got {dims!r}"
        )
    values = np.asarray(values, dtype=np.float64)
    allv = np.concatenate([values, *(path_values or [])])
    cmin, cmax = float(allv.min()), float(allv.max())
    scatter = go.Scatter3d if dims == 3 else go.Scatter
    xyz = ("x", "y", "z")[:dims]
    fig = go.Figure()
    for e, pts in enumerate(projection.paths):
        pr = path_pairs[e] if path_pairs is not None else (-1, -1)
        pv = path_values[e] if path_values is not None else None
        fig.add_trace(
            scatter(
                **{a: pts[:, d] for d, a in enumerate(xyz)},
                mode="lines+markers" if pv is not None else "lines",
                showlegend=e == 0,
                name="paths",
                legendgroup="paths",
                line=dict(color=COLORS["path"], width=2),
                marker=dict(size=3, color=pv, colorscale=LOSS_SCALE, cmin=cmin, cmax=cmax),
                customdata=np.tile([pr[0], pr[1]], (len(pts), 1)),
                hovertemplate="path %{customdata[0]}-%{customdata[1]}<extra></extra>",
            )
        )
    k = len(values)
    big = 13 if dims == 2 else 7
    fig.add_trace(
        scatter(
            **{a: projection.minima[:, d] for d, a in enumerate(xyz)},
            mode="markers+text",
            name="minima",
            text=[str(m) for m in range(k)],
            textposition="top center",
            customdata=np.column_stack([np.arange(k), values]),
            marker=dict(
                size=big,
                opacity=1,
                symbol=symbols(np.arange(k), stopping),
                line=dict(width=2, color=values, colorscale=LOSS_SCALE, cmin=cmin, cmax=cmax),
                color=values,
                colorscale=LOSS_SCALE,
                cmin=cmin,
                cmax=cmax,
                colorbar=dict(title=dict(text=loss_label, side="right")),
            ),
            hovertemplate="minimum %{customdata[0]}<br>loss %{customdata[1]:.5g}<extra></extra>",
        )
    )
    if selected is not None and 0 <= selected < k:
        fig.add_trace(
            scatter(
                **{a: projection.minima[selected : selected + 1, d] for d, a in enumerate(xyz)},
                mode="markers",
                name=f"selected: min {selected}",
                customdata=[[selected, 0.0]],
                meta=SELECTION,
                marker=dict(
                    size=2 * big,
                    symbol="circle-open",
                    color=COLORS["selected"],
                    line=dict(width=3, color=COLORS["selected"]),
                ),
                hoverinfo="skip",
            )
        )
    titles = projection.axis_titles()
    title = f"Minima and paths, {projection.method.upper()} of minima and path points"
    if stopping is not None and len(stopping):
        title += f"<br><sup>{STOPPING_WORDS}</sup>"
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    if dims == 3:
        finish(fig, title, titles[0], titles[1], ident, z=titles[2])
        axis = dict(nticks=5, tickfont=dict(size=10), title_font=dict(size=12))
        return fig.update_scenes(
            xaxis=axis,
            yaxis=axis,
            zaxis=axis,
            camera=dict(eye=dict(x=1.5, y=1.5, z=1.0)),
            aspectmode="cube",
        ).update_layout(height=620, margin=dict(l=10, r=10, t=70, b=40))
    return finish(fig, title, titles[0], titles[1], ident)


DASHES = ("solid", "dash", "dot")


def plane_figure(
    plane,
    *,
    labels: Sequence[str] = ("a", "b", "c"),
    ident: str = "",
    loss_label: str = LOSS_LABEL,
    log_color: bool = True,
    stopping=None,
) -> go.Figure:
    """Contours of the loss on the plane through three minima, the minima marked, the stored
    paths between them overlaid (the legend says how far each leaves the plane).

    With ``log_color`` (the default, used when all values are positive) contour levels are
    evenly spaced in log10(loss), so the basins near the minima are resolved next to barriers
    that are orders of magnitude higher; the colour bar is labelled in loss values.
    """
    Z = np.asarray(plane.Z, np.float64)
    log = log_color and bool(np.all(Z > 0))
    zc = np.log10(Z) if log else Z
    bar = dict(title=dict(text=loss_label + (" (log scale)" if log else ""), side="right"))
    if log:
        ticks = log_ticks(float(Z.min()), float(Z.max()))
        bar.update(tickvals=np.log10(ticks), ticktext=[f"{t:.3g}" for t in ticks])
    fig = go.Figure(
        go.Contour(
            x=plane.u,
            y=plane.v,
            z=zc,
            customdata=Z,
            colorscale=LOSS_SCALE,
            ncontours=30,
            colorbar=bar,
            name="loss",
            hovertemplate="u %{x:.3g}<br>v %{y:.3g}<br>loss %{customdata:.5g}<extra></extra>",
        )
    )
    for n, ((i, j), uv) in enumerate(plane.paths_uv.items()):
        fig.add_trace(
            go.Scatter(
                x=uv[:, 0],
                y=uv[:, 1],
                mode="lines+markers",
                customdata=np.tile([i, j], (len(uv), 1)),
                name=f"path {i}-{j} (leaves the plane by up to {plane.off_plane[(i, j)]:.3g})",
                # magenta is in no part of the loss colour scale, and shows on white
                line=dict(color=COLORS["plane_path"], width=2.5, dash=DASHES[n % len(DASHES)]),
                marker=dict(size=4, color=COLORS["plane_path"]),
            )
        )
    names = [f"{lab} = min {m}" for lab, m in zip(labels, plane.minima, strict=True)]
    fig.add_trace(
        go.Scatter(
            x=plane.minima_uv[:, 0],
            y=plane.minima_uv[:, 1],
            mode="markers+text",
            name="minima",
            text=names,
            textposition="top center",
            textfont=dict(color="white"),
            customdata=np.column_stack([plane.minima, plane.minima_z]),
            marker=dict(
                size=14,
                symbol=symbols(plane.minima, stopping),
                color=COLORS["selected"],
                line=dict(width=2, color="black"),
            ),
            hovertemplate="minimum %{customdata[0]}<br>loss %{customdata[1]:.5g}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[plane.u[0], plane.u[-1]], constrain="domain")
    fig.update_yaxes(range=[plane.v[0], plane.v[-1]], scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    a, b, c = labels
    return finish(
        fig,
        f"Loss on the plane through minima {a}, {b}, {c}",
        f"u: along {a} → {b} (parameter distance)",
        f"v: towards {c}, orthogonal to u (parameter distance)",
        ident,
    )
