"""Pure plotly figure builders: arrays and result dataclasses in, ``go.Figure`` out.

No I/O and no streamlit: a notebook, a page and an export all call the same builders. Every
figure has a title, axis titles with units, and (when ``ident`` is given) a small annotation
named "ident" carrying the run's identity, so an exported file says where it came from.
Traces put the minimum index (or the pair (i, j)) in ``customdata[..., 0]`` so that a page
can link a selection (plotly ``on_select``) back to a minimum.

Colours are the same everywhere: ``COLORS`` for roles, ``LOSS_SCALE`` for loss values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.barcode import Barcode

COLORS = {
    "bar": "#4C72B0",  # finite minima segments
    "essential": "#C44E52",  # the bar that never dies
    "selected": "#DD8452",  # the minimum the user picked
    "path": "#555555",  # paths and neutral lines
    "straight": "#999999",  # the straight segment, for comparison
    "saddle": "#C44E52",  # saddle marks
    "level": "#8172B3",  # the filtration level on teaching figures
    "ghost": "rgba(120,120,120,0.35)",  # exact bars behind estimated ones
}
SERIES = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3",
          "#8C8C8C", "#CCB974", "#64B5CD")  # fmt: skip
LOSS_SCALE = "Viridis"
LOSS_LABEL = "loss (cross-entropy + L2)"
INF = "\u221e"


def ident_of(run_id: str, config=None) -> str:
    """'run 1a2b3c4d5e6f · digits · mlp width 8 depth 1' from a run id and its RunConfig."""
    if config is None:
        return f"run {run_id}"
    m = config.model
    return f"run {run_id} · {config.data.name} · {m.arch} width {m.width} depth {m.depth}"


def _finish(fig: go.Figure, title: str, x: str, y: str, ident: str, z: str | None = None):
    """Title, axis titles and the ident annotation; the one place figures get their frame."""
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        template="plotly_white",
        margin=dict(t=70, r=30, b=60, l=70),
        legend=dict(groupclick="toggleitem"),
    )
    if z is None:
        fig.update_xaxes(title_text=x)
        fig.update_yaxes(title_text=y)
    else:
        fig.update_scenes(xaxis_title_text=x, yaxis_title_text=y, zaxis_title_text=z)
    if ident:
        fig.add_annotation(name="ident", text=ident, xref="paper", yref="paper", x=1, y=1.0,
                           xanchor="right", yanchor="bottom", showarrow=False,
                           font=dict(size=10, color="#666"))  # fmt: skip
    return fig


def _fmt(x: float) -> str:
    return INF if math.isinf(x) else f"{x:.4g}"


# ------------------------------------------------------------------------------------------
# Barcodes


def _right_edge(births: np.ndarray, deaths: np.ndarray) -> float:
    """Where an infinite bar is drawn to: 15% of the finite range beyond the last finite end."""
    ends = np.concatenate([births, deaths[np.isfinite(deaths)]])
    lo, hi = float(ends.min()), float(ends.max())
    return hi + 0.15 * ((hi - lo) or max(abs(hi), 1.0))


def _bar_rows(bc: Barcode) -> np.ndarray:
    """Bar numbers sorted by length descending (essential first), ties by birth."""
    return np.lexsort((bc.births, -np.nan_to_num(bc.lengths, posinf=np.inf)))


def barcode_figure(
    barcode: Barcode,
    *,
    selected: int | None = None,
    errors: dict[int, tuple[float, float]] | None = None,
    ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:
    """Horizontal bars [birth, death], one row per minimum, longest at the top.

    The essential bar is drawn to the right edge in its own colour and labelled with an
    arrow and "∞". ``errors`` maps a minimum to (birth error, death error), drawn as error
    bars. customdata per bar: (minimum, birth, death, length, merges into, via i, via j).
    """
    order = _bar_rows(barcode)  # top row first
    k = len(order)
    edge = _right_edge(barcode.births, barcode.deaths)
    y_of = k - 1 - np.argsort(order)  # bar number -> row position (top = k - 1)
    fig = go.Figure()
    for essential in (False, True):
        n = order[np.isinf(barcode.deaths[order]) == essential]
        if not n.size:
            continue
        birth, death = barcode.births[n], barcode.deaths[n]
        end = np.where(np.isinf(death), edge, death)
        custom = np.column_stack([barcode.minimum[n], birth, death, barcode.lengths[n],
                                  barcode.merges_into[n], barcode.saddle_edge[n]])  # fmt: skip
        err = [errors.get(int(m), (0.0, 0.0)) for m in barcode.minimum[n]] if errors else None
        fig.add_trace(go.Bar(
            name=f"essential (never dies, {INF})" if essential else "minima segments",
            orientation="h", base=birth, x=end - birth, y=y_of[n], customdata=custom,
            marker_color=COLORS["essential" if essential else "bar"],
            error_x=dict(array=[e[1] for e in err]) if err and not essential else None,
            hovertemplate="minimum %{customdata[0]}<br>birth %{customdata[1]:.5g}<br>"
            + ("never dies: the global minimum of its component" if essential else
               "death %{customdata[2]:.5g}<br>length %{customdata[3]:.4g}<br>merges into "
               "%{customdata[4]} via saddle of pair (%{customdata[5]}, %{customdata[6]})")
            + "<extra></extra>",
        ))  # fmt: skip
        # a marker at every birth keeps zero-length bars visible; it also carries birth errors
        fig.add_trace(go.Scatter(
            x=birth, y=y_of[n], mode="markers", showlegend=False, customdata=custom,
            marker=dict(size=12, symbol="line-ns", line=dict(width=3, color="black")),
            error_x=dict(array=[e[0] for e in err]) if err else None, hoverinfo="skip",
        ))  # fmt: skip
        if essential:
            for y in y_of[n]:
                fig.add_annotation(x=edge, y=y, text=f"\u2192 {INF}", showarrow=False,
                                   xanchor="left", font=dict(size=16))  # fmt: skip
    sel = np.flatnonzero(barcode.minimum == selected)
    if sel.size:
        n = sel[0]
        end = edge if np.isinf(barcode.deaths[n]) else barcode.deaths[n]
        fig.add_trace(go.Bar(
            name=f"selected: min {selected}", orientation="h", base=[barcode.births[n]],
            x=[end - barcode.births[n]], y=[y_of[n]], customdata=[[selected]], hoverinfo="skip",
            marker=dict(color="rgba(0,0,0,0)", line=dict(color=COLORS["selected"], width=4)),
        ))  # fmt: skip
    fig.update_yaxes(tickvals=y_of[order], ticktext=[f"min {barcode.minimum[n]}" for n in order])
    fig.update_xaxes(range=[None, edge + 0.08 * (edge - barcode.births.min())])
    fig.update_layout(barmode="overlay", bargap=0.35)
    title = f"H0 barcode: {k} minima, TO-score (sum of finite segments) = " + _fmt(
        barcode.to_score("sum")
    )
    if k > 1 and barcode.n_essential == 1 and barcode.to_score("max") <= _tiny(barcode.births):
        title += "<br><sup>all minima connected with no barrier: no obstruction found</sup>"
    return _finish(fig, title, loss_label, "minimum (sorted by segment length)", ident)


def _tiny(values: np.ndarray) -> float:
    """Bars no longer than this are numerically zero: 1e-6 of the values' scale."""
    return 1e-6 * max(float(np.abs(values).max()), float(np.ptp(values)), 1e-12)


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
    edge = _right_edge(barcode.births, barcode.deaths)
    lo = float(barcode.births.min())
    span = edge - lo
    rng = [lo - 0.05 * span, edge + 0.05 * span]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=rng, y=rng, mode="lines", name="death = birth",
                             line=dict(color=COLORS["straight"], width=1)))  # fmt: skip
    fig.add_trace(go.Scatter(x=rng, y=[edge, edge], mode="lines", name=f"death = {INF}",
                             line=dict(color=COLORS["essential"], dash="dash")))  # fmt: skip
    for essential in (False, True):
        n = np.flatnonzero(np.isinf(barcode.deaths) == essential)
        if not n.size:
            continue
        mins = barcode.minimum[n]
        y = np.where(np.isinf(barcode.deaths[n]), edge, barcode.deaths[n])
        err = [errors.get(int(m), (0.0, 0.0)) for m in mins] if errors else None
        fig.add_trace(go.Scatter(
            x=barcode.births[n], y=y, mode="markers",
            name=f"essential ({INF})" if essential else "minima",
            customdata=np.column_stack([mins, barcode.lengths[n], barcode.merges_into[n]]),
            marker=dict(size=np.where(mins == selected, 16, 10), opacity=1,
                        color=COLORS["essential" if essential else "bar"],
                        line=dict(width=np.where(mins == selected, 3, 0),
                                  color=COLORS["selected"])),
            error_x=dict(array=[e[0] for e in err]) if err else None,
            error_y=dict(array=[e[1] for e in err]) if err else None,
            hovertemplate="minimum %{customdata[0]}<br>birth %{x:.5g}<br>death %{y:.5g}<br>"
            "length %{customdata[1]:.4g}<br>merges into %{customdata[2]}<extra></extra>",
        ))  # fmt: skip
    fig.add_annotation(x=rng[0], y=edge, text=INF, showarrow=False, xanchor="left",
                       yanchor="bottom", font=dict(size=16, color=COLORS["essential"]))  # fmt: skip
    fig.update_xaxes(range=rng, constrain="domain")
    fig.update_yaxes(range=rng, scaleanchor="x", scaleratio=1)
    return _finish(fig, "Persistence diagram (H0)", f"birth: {loss_label}",
                   f"death: {loss_label}", ident)  # fmt: skip


def barcodes_overlay_figure(
    barcodes: Sequence[Barcode], labels: Sequence[str], *, ident: str = "",
    loss_label: str = LOSS_LABEL,
) -> go.Figure:  # fmt: skip
    """Several barcodes on one loss axis, one block of rows per barcode (longest bar on top
    within each block), one colour per barcode; essential bars end at a shared right edge."""
    if len(barcodes) != len(labels):
        raise ValueError(f"labels must have one entry per barcode, got {len(labels)} labels "
                         f"for {len(barcodes)} barcodes")  # fmt: skip
    if not barcodes:
        raise ValueError("barcodes must not be empty")
    edge = _right_edge(np.concatenate([b.births for b in barcodes]),
                       np.concatenate([b.deaths for b in barcodes]))  # fmt: skip
    fig, y0, ticks = go.Figure(), 0, ([], [])
    for c, (bc, lab) in enumerate(zip(barcodes, labels, strict=True)):
        order = _bar_rows(bc)[::-1]  # bottom row first
        rows = y0 + np.arange(len(order))
        end = np.where(np.isinf(bc.deaths[order]), edge, bc.deaths[order])
        fig.add_trace(go.Bar(
            name=f"{lab} (TO-score {_fmt(bc.to_score('sum'))})", orientation="h",
            base=bc.births[order], x=end - bc.births[order], y=rows,
            customdata=np.column_stack([bc.minimum[order], np.full(len(order), c)]),
            marker=dict(color=SERIES[c % len(SERIES)],
                        pattern=dict(shape=np.where(np.isinf(bc.deaths[order]), "/", ""))),
            hovertemplate=f"{lab}<br>minimum %{{customdata[0]}}<br>birth %{{base:.5g}}"
            "<extra></extra>",
        ))  # fmt: skip
        ticks[0].append(y0 + (len(order) - 1) / 2)
        ticks[1].append(lab)
        y0 += len(order) + 1
    fig.update_yaxes(tickvals=ticks[0], ticktext=ticks[1])
    fig.update_layout(barmode="overlay", bargap=0.3)
    return _finish(fig, f"{len(barcodes)} barcodes (hatched: essential, {INF})", loss_label,
                   "barcode", ident)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Paths, convergence, projections


def saddle_history_figure(
    history_steps, history, pairs, *, converged=None, highlight: set[int] | None = None,
    log_y: bool = False, ident: str = "", loss_label: str = LOSS_LABEL,
) -> go.Figure:  # fmt: skip
    """Best saddle estimate of each pair vs path-optimisation step: converged pairs solid,
    unconverged dashed; ``highlight`` (pair numbers) drawn thick, the others faded.
    ``log_y`` shows the late, small changes next to the first (straight-segment) values."""
    steps = np.asarray(history_steps)
    hist = np.asarray(history, dtype=np.float64).reshape(-1, len(steps))  # (E, T)
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    conv = np.ones(len(pairs), bool) if converged is None else np.asarray(converged, bool)
    fig = go.Figure()
    for e, (i, j) in enumerate(pairs):
        group = "converged" if conv[e] else "not converged"
        on = highlight is None or e in highlight
        fig.add_trace(go.Scatter(
            x=steps, y=hist[e], mode="lines", name=f"{i}-{j}", legendgroup=group,
            legendgrouptitle_text=group, customdata=np.tile([i, j, e], (len(steps), 1)),
            line=dict(dash="solid" if conv[e] else "dash", width=3 if highlight and on else 1.5,
                      color=SERIES[e % len(SERIES)]),
            opacity=1.0 if on else 0.25,
            hovertemplate="pair %{customdata[0]}-%{customdata[1]}<br>step %{x}<br>"
            "saddle %{y:.5g}<extra></extra>",
        ))  # fmt: skip
    fig.update_yaxes(type="log" if log_y else "linear")
    n_conv = int(conv.sum())
    title = f"Saddle estimates during path optimisation ({n_conv}/{len(pairs)} converged)"
    return _finish(fig, title, "path optimisation step", f"saddle estimate: {loss_label}", ident)


def profile_figure(
    profile, *, log_y: bool = False, ident: str = "", loss_label: str = LOSS_LABEL
) -> go.Figure:
    """Loss along an optimised path (line: dense points; markers: the path's nodes), the
    straight segment dashed, and the saddle as a horizontal line with its marker."""
    p = profile
    i, j = p.pair
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=p.straight_s, y=p.straight_values, mode="lines",
                             name=f"straight segment (max {p.straight_values.max():.5g})",
                             line=dict(color=COLORS["straight"], dash="dash")))  # fmt: skip
    fig.add_trace(go.Scatter(x=p.s, y=p.values, mode="lines", name="optimised path",
                             line=dict(color=COLORS["path"])))  # fmt: skip
    fig.add_trace(go.Scatter(x=p.nodes_s, y=p.values[:: p.density], mode="markers",
                             name="path nodes", marker_color=COLORS["bar"]))  # fmt: skip
    k = int(np.argmax(p.values))
    fig.add_trace(go.Scatter(x=[p.s[k]], y=[p.values[k]], mode="markers",
                             name=f"saddle = {p.saddle_recomputed:.6g}",
                             marker=dict(color=COLORS["saddle"], size=13, symbol="x")))  # fmt: skip
    fig.add_hline(y=p.saddle_recomputed, line=dict(color=COLORS["saddle"], dash="dot", width=1))
    fig.update_yaxes(type="log" if log_y else "linear")
    title = (f"Loss along the path {i} → {j}: saddle {p.saddle_recomputed:.6g} "
             f"(stored {p.saddle:.6g}), straight {p.straight_saddle:.6g}")  # fmt: skip
    return _finish(fig, title, f"position along the path (arc length / {p.length:.3g})",
                   loss_label, ident)  # fmt: skip


def projection_figure(
    projection, values, *, selected: int | None = None, path_pairs=None, path_values=None,
    dims: int = 2, ident: str = "", loss_label: str = LOSS_LABEL,
) -> go.Figure:  # fmt: skip
    """Minima as large markers coloured by loss (one colour scale), stored paths as thin
    lines through the same projection; ``dims=3`` draws a rotatable 3-D scene."""
    if dims not in (2, 3) or projection.minima.shape[1] < dims:
        raise ValueError(f"dims must be 2 or 3 and at most the projection's "
                         f"{projection.minima.shape[1]} components, got {dims!r}")  # fmt: skip
    values = np.asarray(values, dtype=np.float64)
    allv = np.concatenate([values, *(path_values or [])])
    cmin, cmax = float(allv.min()), float(allv.max())
    scatter = go.Scatter3d if dims == 3 else go.Scatter
    xyz = ("x", "y", "z")[:dims]
    fig = go.Figure()
    for e, pts in enumerate(projection.paths):
        pr = path_pairs[e] if path_pairs is not None else (-1, -1)
        pv = path_values[e] if path_values is not None else None
        fig.add_trace(scatter(
            **{a: pts[:, d] for d, a in enumerate(xyz)},
            mode="lines+markers" if pv is not None else "lines", showlegend=e == 0,
            name="paths", legendgroup="paths", line=dict(color=COLORS["path"], width=2),
            marker=dict(size=3, color=pv, colorscale=LOSS_SCALE, cmin=cmin, cmax=cmax),
            customdata=np.tile([pr[0], pr[1]], (len(pts), 1)),
            hovertemplate="path %{customdata[0]}-%{customdata[1]}<extra></extra>",
        ))  # fmt: skip
    k = len(values)
    big = 13 if dims == 2 else 7
    fig.add_trace(scatter(
        **{a: projection.minima[:, d] for d, a in enumerate(xyz)}, mode="markers+text",
        name="minima", text=[str(m) for m in range(k)], textposition="top center",
        customdata=np.column_stack([np.arange(k), values]),
        marker=dict(size=big, opacity=1, color=values, colorscale=LOSS_SCALE, cmin=cmin,
                    cmax=cmax, colorbar=dict(title=dict(text=loss_label, side="right"))),
        hovertemplate="minimum %{customdata[0]}<br>loss %{customdata[1]:.5g}<extra></extra>",
    ))  # fmt: skip
    if selected is not None and 0 <= selected < k:
        fig.add_trace(scatter(
            **{a: projection.minima[selected : selected + 1, d] for d, a in enumerate(xyz)},
            mode="markers", name=f"selected: min {selected}", customdata=[[selected, 0.0]],
            marker=dict(size=2 * big, symbol="circle-open", color=COLORS["selected"],
                        line=dict(width=3, color=COLORS["selected"])),
            hoverinfo="skip",
        ))  # fmt: skip
    titles = projection.axis_titles()
    title = f"Minima and paths, {projection.method.upper()} of minima and path points"
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    if dims == 3:
        return _finish(fig, title, titles[0], titles[1], ident, z=titles[2])
    return _finish(fig, title, titles[0], titles[1], ident)


def _log_ticks(lo: float, hi: float) -> np.ndarray:
    """1-2-5 ticks between lo > 0 and hi."""
    dec = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    t = (10.0 ** dec[:, None] * np.array([1.0, 2.0, 5.0])).ravel()
    t = t[(t >= lo) & (t <= hi)]
    return t if t.size >= 2 else np.array([lo, hi])


def plane_figure(
    plane, *, labels: Sequence[str] = ("a", "b", "c"), ident: str = "",
    loss_label: str = LOSS_LABEL, log_color: bool = True,
) -> go.Figure:  # fmt: skip
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
        ticks = _log_ticks(float(Z.min()), float(Z.max()))
        bar.update(tickvals=np.log10(ticks), ticktext=[f"{t:.3g}" for t in ticks])
    fig = go.Figure(go.Contour(
        x=plane.u, y=plane.v, z=zc, customdata=Z, colorscale=LOSS_SCALE, ncontours=30,
        colorbar=bar, name="loss",
        hovertemplate="u %{x:.3g}<br>v %{y:.3g}<br>loss %{customdata:.5g}<extra></extra>",
    ))  # fmt: skip
    for (i, j), uv in plane.paths_uv.items():
        fig.add_trace(go.Scatter(
            x=uv[:, 0], y=uv[:, 1], mode="lines+markers", customdata=np.tile([i, j], (len(uv), 1)),
            name=f"path {i}-{j} (leaves the plane by up to {plane.off_plane[(i, j)]:.3g})",
            line=dict(color="white", width=2), marker=dict(size=4, color="white"),
        ))  # fmt: skip
    names = [f"{lab} = min {m}" for lab, m in zip(labels, plane.minima, strict=True)]
    fig.add_trace(go.Scatter(
        x=plane.minima_uv[:, 0], y=plane.minima_uv[:, 1], mode="markers+text", name="minima",
        text=names, textposition="top center", textfont=dict(color="white"),
        customdata=np.column_stack([plane.minima, plane.minima_z]),
        marker=dict(size=14, color=COLORS["selected"], line=dict(width=2, color="black")),
        hovertemplate="minimum %{customdata[0]}<br>loss %{customdata[1]:.5g}<extra></extra>",
    ))  # fmt: skip
    fig.update_xaxes(range=[plane.u[0], plane.u[-1]], constrain="domain")
    fig.update_yaxes(range=[plane.v[0], plane.v[-1]], scaleanchor="x", scaleratio=1)
    fig.update_layout(legend=dict(orientation="h", y=-0.15))
    a, b, c = labels
    return _finish(fig, f"Loss on the plane through minima {a}, {b}, {c}",
                   f"u: along {a} → {b} (parameter distance)",
                   f"v: towards {c}, orthogonal to u (parameter distance)", ident)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Statistics and comparisons


def generalization_figure(
    lengths, gaps, *, stats=None, gap_kind: str = "loss", groups: Sequence[str] | None = None,
    minima=None, ident: str = "",
) -> go.Figure:  # fmt: skip
    """Generalization gap vs minima-segment length, one point per minimum, with the OLS line.

    The essential bar (infinite length) has no segment and is left out; a note says so. The
    title carries n, Pearson r [CI], Spearman rho [CI] and the permutation p-values from
    ``stats`` (a ``core.stats.CorrelationResult`` computed on the same finite points).
    """
    if gap_kind not in ("loss", "error"):
        raise ValueError(f"gap_kind must be 'loss' or 'error', got {gap_kind!r}")
    x, y = np.asarray(lengths, np.float64), np.asarray(gaps, np.float64)
    ids = np.arange(len(x)) if minima is None else np.asarray(minima)
    keep = np.isfinite(x) & np.isfinite(y)
    grp = np.asarray(groups if groups is not None else ["minima"] * len(x), dtype=object)
    fig = go.Figure()
    for c, g in enumerate(dict.fromkeys(grp[keep])):
        m = keep & (grp == g)
        fig.add_trace(go.Scatter(
            x=x[m], y=y[m], mode="markers", name=str(g), customdata=ids[m],
            marker=dict(size=11, color=SERIES[c % len(SERIES)]),
            hovertemplate="minimum %{customdata}<br>segment %{x:.4g}<br>gap %{y:.4g}"
            "<extra></extra>",
        ))  # fmt: skip
    if keep.sum() >= 2 and np.ptp(x[keep]) > 0:
        slope, icept = np.polyfit(x[keep], y[keep], 1)
        xl = np.array([x[keep].min(), x[keep].max()])
        fig.add_trace(go.Scatter(x=xl, y=icept + slope * xl, mode="lines",
                                 name=f"least squares: slope {slope:.3g}",
                                 line=dict(color=COLORS["path"], dash="dot")))  # fmt: skip
    if (~keep).any():
        fig.add_annotation(text=f"not shown: minimum {', '.join(map(str, ids[~keep]))} "
                           f"(essential bar, no finite segment)", xref="paper", yref="paper",
                           x=1, y=-0.1, xanchor="right", yanchor="top", showarrow=False,
                           font=dict(size=11, color="#666"))  # fmt: skip
    title = f"Generalization gap vs segment length (n = {int(keep.sum())})"
    if stats is not None:
        title += (f"<br><sup>Pearson r = {stats.pearson:.2f} [{stats.pearson_ci[0]:.2f}, "
                  f"{stats.pearson_ci[1]:.2f}], p = {stats.pearson_p_perm:.3g}; Spearman "
                  f"\u03c1 = {stats.spearman:.2f} [{stats.spearman_ci[0]:.2f}, "
                  f"{stats.spearman_ci[1]:.2f}], p = {stats.spearman_p_perm:.3g} "
                  f"({100 * stats.ci:.0f}% bootstrap CI, permutation p)</sup>")  # fmt: skip
    y_title = f"generalization gap: test \u2212 train {'loss' if gap_kind == 'loss' else 'error'}"
    _finish(fig, title, "minima segment length (loss units)", y_title, ident)
    return fig.update_layout(margin_b=90)


def to_score_figure(
    xs, means, los, his, *, x_label: str, series_labels: Sequence[str] | None = None,
    y_label: str = "TO-score (sum of finite segment lengths)", log_x: bool = False,
    log_y: bool | None = None, band_label: str = "range over seeds", ident: str = "",
) -> go.Figure:  # fmt: skip
    """TO-score vs width or depth: a line per series (mean over seeds) with a band [lo, hi].

    ``means``, ``los``, ``his`` are (X,) for one series or (S, X) for S series. ``log_y``
    None: a log axis when every value is positive and they span at least a factor of 10
    (TO-scores fall by orders of magnitude with width), else linear (a zero TO-score, no
    obstruction found, has no place on a log axis).
    """
    xs = np.asarray(xs, np.float64)
    m, lo, hi = (np.atleast_2d(np.asarray(a, np.float64)) for a in (means, los, his))
    if not m.shape == lo.shape == hi.shape or m.shape[1] != len(xs):
        raise ValueError(f"means, los, his must all be (S, {len(xs)}), got "
                         f"{m.shape}, {lo.shape}, {hi.shape}")  # fmt: skip
    labels = series_labels or [f"series {s}" for s in range(len(m))]
    fig = go.Figure()
    for s in range(len(m)):
        col = SERIES[s % len(SERIES)]
        fig.add_trace(go.Scatter(
            x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([hi[s], lo[s][::-1]]),
            fill="toself", fillcolor=col, opacity=0.2, line=dict(width=0), hoverinfo="skip",
            mode="lines", legendgroup=labels[s], showlegend=False, name=f"{labels[s]} band",
        ))  # fmt: skip
        fig.add_trace(go.Scatter(x=xs, y=m[s], mode="lines+markers", name=labels[s],
                                 legendgroup=labels[s], line=dict(color=col)))  # fmt: skip
    fig.update_xaxes(type="log" if log_x else "linear")
    if log_y is None:
        finite = np.concatenate([lo.ravel(), hi.ravel()])
        finite = finite[np.isfinite(finite)]
        log_y = bool(finite.size and finite.min() > 0 and finite.max() >= 10 * finite.min())
    fig.update_yaxes(type="log" if log_y else "linear")
    return _finish(fig, f"{y_label.split(' (')[0]} vs {x_label} (band: {band_label})",
                   x_label, y_label, ident)  # fmt: skip


# ------------------------------------------------------------------------------------------
# Teaching: 2-D landscapes. Grids follow core.toy: Z[i, j] = f(xs[j], ys[i]).


def surface_figure(xs, ys, Z, *, level: float | None = None, ident: str = "") -> go.Figure:
    """The landscape as a 3-D surface, with the filtration level as a flat plane."""
    Z = np.asarray(Z, np.float64)
    bar = dict(title=dict(text="f(x, y)", side="right"))
    fig = go.Figure(go.Surface(x=xs, y=ys, z=Z, colorscale=LOSS_SCALE, name="f", colorbar=bar))
    title = "The landscape f(x, y)"
    if level is not None:
        flat = [[0, COLORS["level"]], [1, COLORS["level"]]]
        fig.add_trace(go.Surface(x=xs, y=ys, z=np.full_like(Z, level), name=f"level {level:.4g}",
                                 showscale=False, opacity=0.45, colorscale=flat))  # fmt: skip
        title += f" and the level c = {level:.4g}"
    return _finish(fig, title, "x", "y", ident, z="f(x, y)")


def sublevel_figure(
    xs, ys, Z, labels, level: float, *, minima_xy=None, saddles_xy=None, ident: str = ""
) -> go.Figure:
    """Contour lines of f and the sublevel set {f <= level}, one colour per connected
    component (``labels`` from ``core.toy.sublevel_components``: -1 above the level)."""
    labels = np.asarray(labels)
    n = int(labels.max()) + 1 if labels.size else 0
    z = np.where(labels >= 0, labels, np.nan).astype(np.float64)
    cols = [SERIES[c % len(SERIES)] for c in range(max(n, 1))]
    nc = len(cols)  # a stepped scale: component c gets exactly cols[c]
    scale = [[q / nc, col] for c, col in enumerate(cols) for q in (c, c + 1)]
    fig = go.Figure(go.Heatmap(
        x=xs, y=ys, z=z, zmin=-0.5, zmax=len(cols) - 0.5, colorscale=scale, showscale=False,
        opacity=0.75, name="sublevel set", hovertemplate="component %{z}<extra></extra>",
    ))  # fmt: skip
    fig.add_trace(go.Contour(x=xs, y=ys, z=Z, contours_coloring="lines", showscale=False,
                             ncontours=20, line=dict(width=1), colorscale="Greys",
                             name="contours of f", hoverinfo="skip"))  # fmt: skip
    for pts, name, sym, col in ((minima_xy, "minima", "circle", "black"),
                                (saddles_xy, "saddles", "x", COLORS["saddle"])):  # fmt: skip
        if pts is not None and len(pts):
            pts = np.asarray(pts, np.float64).reshape(-1, 2)
            fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name=name,
                                     customdata=np.arange(len(pts)),
                                     marker=dict(symbol=sym, size=10, color=col)))  # fmt: skip
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    word = "component" if n == 1 else "components"
    return _finish(fig, f"Sublevel set {{f \u2264 {level:.4g}}}: {n} connected {word}",
                   "x", "y", ident)  # fmt: skip


def growing_barcode_figure(
    births, deaths, level: float, *, exact=None, ident: str = "", loss_label: str = "f(x, y)"
) -> go.Figure:
    """The barcode as the level rises: bars born at or below ``level`` run up to
    min(death, level); bars not yet born are absent; ``exact`` (an object with ``births``
    and ``deaths``, e.g. ``core.toy.ExactBars``) is drawn as ghost outlines. Rows and axis
    range stay fixed as the level changes, so an animation does not jump."""
    b, d = np.asarray(births, np.float64), np.asarray(deaths, np.float64)
    order = np.lexsort((d, b))  # row 0 (bottom) = oldest bar
    b, d = b[order], d[order]
    eb = np.asarray(exact.births, np.float64) if exact is not None else np.zeros(0)
    ed = np.asarray(exact.deaths, np.float64) if exact is not None else np.zeros(0)
    edge = _right_edge(np.concatenate([b, eb]), np.concatenate([d, ed]))
    fig = go.Figure()
    if exact is not None:
        eo = np.lexsort((ed, eb))
        ee = np.where(np.isinf(ed[eo]), edge, ed[eo])
        fig.add_trace(go.Bar(orientation="h", base=eb[eo], x=ee - eb[eo], y=np.arange(len(eo)),
                             name="exact (grid)", marker=dict(color="rgba(0,0,0,0)",
                             line=dict(color=COLORS["ghost"], width=2))))  # fmt: skip
    born = b <= level
    end = np.minimum(np.where(np.isinf(d), edge, d), max(level, -np.inf))[born]
    alive = d[born] > level
    fig.add_trace(go.Bar(
        orientation="h", base=b[born], x=end - b[born], y=np.flatnonzero(born),
        customdata=order[born], name="bars so far",
        marker=dict(color=np.where(alive, COLORS["bar"], COLORS["straight"])),
        hovertemplate="bar of minimum %{customdata}<br>born %{base:.4g}<extra></extra>",
    ))  # fmt: skip
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
    title = (f"Barcode at level c = {level:.4g}: {int(alive.sum())} alive, "
             f"{int((~alive).sum())} dead")  # fmt: skip
    return _finish(fig, title, loss_label, "bars (oldest at the bottom)", ident)


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
    births, deaths, merges_into, minima_labels, *, ident: str = "", loss_label: str = LOSS_LABEL
) -> go.Figure:
    """The merge tree (disconnectivity graph) of an H0 barcode: a leaf per minimum at its
    birth, a join at each death where a component merges into an older one.

    Row n of the arrays is one bar of minimum ``minima_labels[n]``; ``merges_into[n]`` is the
    label of the minimum it merges into (-1 / None: essential). ``Barcode`` fields fit
    directly: ``merge_tree_figure(b.births, b.deaths, b.merges_into, b.minimum)``.
    """
    b, d = np.asarray(births, np.float64), np.asarray(deaths, np.float64)
    labels = list(minima_labels)
    x, h, children, roots = _merge_layout(b, d, list(merges_into), labels)
    top = _right_edge(b, d)
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
    fig = go.Figure(go.Scatter(x=lx, y=ly, mode="lines", name="merge tree", hoverinfo="skip",
                               line=dict(color=COLORS["path"], width=2)))  # fmt: skip
    leaves = [("leaf", n) for n in range(len(b))]
    fig.add_trace(go.Scatter(
        x=[x[v] for v in leaves], y=b, mode="markers", name="minima (births)",
        customdata=np.array(labels, dtype=object), marker=dict(size=11, color=COLORS["bar"]),
        hovertemplate="minimum %{customdata}<br>birth %{y:.5g}<extra></extra>",
    ))  # fmt: skip
    joins = list(children)
    fig.add_trace(go.Scatter(
        x=[x[j] for j in joins], y=[h[j] for j in joins], mode="markers",
        name="saddles (deaths)", marker=dict(size=10, symbol="x", color=COLORS["saddle"]),
        customdata=np.array([[labels[j[1]], merges_into[j[1]]] for j in joins], dtype=object)
        if joins else None,
        hovertemplate="minimum %{customdata[0]} merges into %{customdata[1]}<br>"
        "death %{y:.5g}<extra></extra>",
    ))  # fmt: skip
    fig.add_annotation(x=x[roots[0]], y=top, text=INF, showarrow=False, yanchor="bottom",
                       font=dict(size=16))  # fmt: skip
    fig.update_xaxes(tickvals=[x[v] for v in leaves], ticktext=[f"min {lab}" for lab in labels])
    return _finish(fig, "Merge tree (disconnectivity graph) of the H0 barcode", "minimum",
                   loss_label, ident)  # fmt: skip
