"""Teaching figures for 2-D landscapes (grids follow ``core.engine.toy``:
Z[i, j] = f(xs[j], ys[i])): the surface with a level, the sublevel set's components, the
barcode growing with the level, and the merge tree of a barcode."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.views.plots.frame import (
    COLORS,
    INF,
    LOSS_LABEL,
    LOSS_SCALE,
    SERIES,
    contour_lines,
    finish,
    right_edge,
)


def surface_figure(xs, ys, Z, *, level: float | None = None, ident: str = "") -> go.Figure:
    """The landscape as a 3-D surface, with the filtration level as a flat plane."""
    Z = np.asarray(Z, np.float64)
    bar = dict(title=dict(text="f(x, y)", side="right"))
    fig = go.Figure(go.Surface(x=xs, y=ys, z=Z, colorscale=LOSS_SCALE, name="f", colorbar=bar))
    title = "The landscape f(x, y)"
    if level is not None:
        flat = [[0, COLORS["level"]], [1, COLORS["level"]]]
        fig.add_trace(
            go.Surface(
                x=xs,
                y=ys,
                z=np.full_like(Z, level),
                name=f"level {level:.4g}",
                showscale=False,
                opacity=0.45,
                colorscale=flat,
            )
        )
        title += f" and the level c = {level:.4g}"
    return finish(fig, title, "x", "y", ident, z="f(x, y)")


def sublevel_figure(
    xs, ys, Z, labels, level: float, *, minima_xy=None, saddles_xy=None, ident: str = ""
) -> go.Figure:
    """Contour lines of f and the sublevel set {f <= level}, one colour per connected
    component (``labels`` from ``core.engine.toy.sublevel_components``: -1 above the level)."""
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if labels.size else 0
    z = np.where(labels >= 0, labels, np.nan).astype(np.float64)
    cols = [SERIES[c % len(SERIES)] for c in range(max(n, 1))]
    nc = len(cols)  # a stepped scale: component c gets exactly cols[c]
    scale = [[q / nc, col] for c, col in enumerate(cols) for q in (c, c + 1)]
    fig = go.Figure(
        go.Heatmap(
            x=xs,
            y=ys,
            z=z,
            zmin=-0.5,
            zmax=len(cols) - 0.5,
            colorscale=scale,
            showscale=False,
            opacity=0.75,
            name="sublevel set",
            hovertemplate="component %{z}<extra></extra>",
        )
    )
    fig.add_trace(contour_lines(xs, ys, Z))
    for pts, name, sym, col in (
        (minima_xy, "minima", "circle", "black"),
        (saddles_xy, "saddles", "x", COLORS["saddle"]),
    ):
        if pts is not None and len(pts):
            pts = np.asarray(pts, np.float64).reshape(-1, 2)
            fig.add_trace(
                go.Scatter(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    mode="markers",
                    name=name,
                    customdata=np.arange(len(pts)),
                    marker=dict(symbol=sym, size=10, color=col),
                )
            )
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    word = "component" if n == 1 else "components"
    return finish(
        fig, f"Sublevel set {{f \u2264 {level:.4g}}}: {n} connected {word}", "x", "y", ident
    )


def growing_barcode_figure(
    births, deaths, level: float, *, exact=None, ident: str = "", loss_label: str = "f(x, y)"
) -> go.Figure:
    """The barcode as the level rises: bars born at or below ``level`` run up to
    min(death, level); bars not yet born are absent; ``exact`` (an object with ``births``
    and ``deaths``, e.g. ``core.engine.toy.ExactBars``) is drawn as ghost outlines. Rows and axis
    range stay fixed as the level changes, so an animation does not jump."""
    b, d = np.asarray(births, np.float64), np.asarray(deaths, np.float64)
    order = np.lexsort((d, b))  # row 0 (bottom) = oldest bar
    b, d = b[order], d[order]
    eb = np.asarray(exact.births, np.float64) if exact is not None else np.zeros(0)
    ed = np.asarray(exact.deaths, np.float64) if exact is not None else np.zeros(0)
    edge = right_edge(np.concatenate([b, eb]), np.concatenate([d, ed]))
    fig = go.Figure()
    if exact is not None:
        eo = np.lexsort((ed, eb))
        ee = np.where(np.isinf(ed[eo]), edge, ed[eo])
        fig.add_trace(
            go.Bar(
                orientation="h",
                base=eb[eo],
                x=ee - eb[eo],
                y=np.arange(len(eo)),
                name="exact (grid)",
                marker=dict(color="rgba(0,0,0,0)", line=dict(color=COLORS["ghost"], width=2)),
            )
        )
    born = b <= level
    end = np.minimum(np.where(np.isinf(d), edge, d), max(level, -np.inf))[born]
    alive = d[born] > level
    fig.add_trace(
        go.Bar(
            orientation="h",
            base=b[born],
            x=end - b[born],
            y=np.flatnonzero(born),
            customdata=order[born],
            name="bars so far",
            marker=dict(color=np.where(alive, COLORS["bar"], COLORS["straight"])),
            hovertemplate="bar of minimum %{customdata}<br>born %{base:.4g}<extra></extra>",
        )
    )
    fig.add_vline(
        x=level,
        line=dict(color=COLORS["level"], width=2, dash="dash"),
        annotation_text=f"level c = {level:.4g}",
        annotation_position="top",
    )
    lo = float(min(b.min(), eb.min() if eb.size else np.inf))
    fig.update_xaxes(range=[lo - 0.05 * (edge - lo), edge + 0.02 * (edge - lo)])
    fig.update_yaxes(range=[-0.6, max(len(b), len(eb)) - 0.4], showticklabels=False)
    fig.update_layout(barmode="overlay")
    title = (
        f"Barcode at level c = {level:.4g}: {int(alive.sum())} alive, {int((~alive).sum())} dead"
    )
    return finish(fig, title, loss_label, "bars (oldest at the bottom)", ident)


def _merge_layout(births, deaths, into, labels):
    """Leaf x positions and join nodes of the merge tree of H0 bars (elder rule)."""
    k = len(births)
    row = {lab: n for n, lab in enumerate(labels)}
    comp = list(range(k))  # bar -> representative bar of its component
    node = {n: ("leaf", n) for n in range(k)}  # component rep -> its current top node
    children, height = {}, {("leaf", n): births[n] for n in range(k)}
    for n in sorted(np.flatnonzero(np.isfinite(deaths)), key=lambda n: deaths[n]):
        t = row[into[n]] if into[n] in row else None
        if t is None:
            continue
        a, r = comp[n], comp[t]
        j = ("join", n)
        children[j], height[j] = (node[r], node[a]), deaths[n]
        for m in range(k):
            if comp[m] == a:
                comp[m] = r
        node[r] = j
    x, order = {}, []

    def place(v):
        if v[0] == "leaf":
            order.append(v[1])
            x[v] = float(len(order) - 1)
        else:
            for c in children[v]:
                place(c)
            x[v] = float(np.mean([x[c] for c in children[v]]))

    roots = [node[r] for r in sorted(set(comp), key=lambda r: births[r])]
    for v in roots:
        place(v)
    return x, height, children, roots


def merge_tree_figure(
    births,
    deaths,
    merges_into,
    minima_labels,
    *,
    colors=None,
    level: float | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:
    """The merge tree (disconnectivity graph) of an H0 barcode: a leaf per minimum at its
    birth, a join at each death where a component merges into an older one.

    Row n of the arrays is one bar of minimum ``minima_labels[n]``; ``merges_into[n]`` is the
    label of the minimum it merges into (-1 / None: essential). ``Barcode`` fields fit
    directly: ``merge_tree_figure(b.births, b.deaths, b.merges_into, b.minimum)``. ``colors``
    (one per row) colours the leaves; ``level`` draws the filtration level as a line.
    """
    b, d = np.asarray(births, np.float64), np.asarray(deaths, np.float64)
    labels = list(minima_labels)
    x, h, children, roots = _merge_layout(b, d, list(merges_into), labels)
    top = right_edge(b, d)
    lx, ly = [], []
    for j, (c1, c2) in children.items():
        for c in (c1, c2):
            lx += [x[c], x[c], None]
            ly += [h[c], h[j], None]
        lx += [x[c1], x[c2], None]
        ly += [h[j], h[j], None]
    for r in roots:
        lx += [x[r], x[r], None]
        ly += [h[r], top, None]
    fig = go.Figure(
        go.Scatter(
            x=lx,
            y=ly,
            mode="lines",
            name="merge tree",
            hoverinfo="skip",
            line=dict(color=COLORS["path"], width=2),
        )
    )
    leaves = [("leaf", n) for n in range(len(b))]
    fig.add_trace(
        go.Scatter(
            x=[x[v] for v in leaves],
            y=b,
            mode="markers",
            name="minima (births)",
            customdata=np.array(labels, dtype=object),
            marker=dict(size=11, color=list(colors) if colors is not None else COLORS["bar"]),
            hovertemplate="minimum %{customdata}<br>birth %{y:.5g}<extra></extra>",
        )
    )
    joins = list(children)
    fig.add_trace(
        go.Scatter(
            x=[x[j] for j in joins],
            y=[h[j] for j in joins],
            mode="markers",
            name="saddles (deaths)",
            marker=dict(size=10, symbol="x", color=COLORS["saddle"]),
            customdata=np.array([[labels[j[1]], merges_into[j[1]]] for j in joins], dtype=object)
            if joins
            else None,
            hovertemplate="minimum %{customdata[0]} merges into %{customdata[1]}<br>"
            "death %{y:.5g}<extra></extra>",
        )
    )
    fig.add_annotation(
        x=x[roots[0]], y=top, text=INF, showarrow=False, yanchor="bottom", font=dict(size=16)
    )
    if level is not None:
        fig.add_hline(
            y=level,
            line=dict(color=COLORS["level"], width=2, dash="dash"),
            annotation_text=f"level c = {level:.4g}",
            annotation_position="bottom right",
        )
    fig.update_xaxes(tickvals=[x[v] for v in leaves], ticktext=[f"min {lab}" for lab in labels])
    return finish(
        fig, "Merge tree (disconnectivity graph) of the H0 barcode", "minimum", loss_label, ident
    )
