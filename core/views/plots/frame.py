"""What every figure shares: the colours, the frame (title, axis titles, the run's ident) and
the helpers that place infinite bars and log ticks."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from core.nets.models import WITH_BATCHNORM

COLORS = {
    "bar": "#4C72B0",  # finite minima segments
    "essential": "#C44E52",  # the bar that never dies
    "selected": "#DD8452",  # the minimum the user picked
    "path": "#555555",  # paths and neutral lines
    "straight": "#999999",  # the straight segment, for comparison
    "saddle": "#C44E52",  # saddle marks
    "level": "#8172B3",  # the filtration level on teaching figures
    "ghost": "rgba(120,120,120,0.35)",  # exact bars behind estimated ones
    "plane_path": "#E7298A",  # paths over the loss colour scale (in no part of Viridis)
}
SERIES = (
    "#4C72B0",
    "#DD8452",
    "#55A868",
    "#C44E52",
    "#8172B3",
    "#937860",
    "#DA8BC3",
    "#8C8C8C",
    "#CCB974",
    "#64B5CD",
)
LOSS_SCALE = "Viridis"
LOSS_LABEL = "loss (cross-entropy + L2)"
INF = "\u221e"
# the ``meta`` of traces that only draw the user's selection: exports leave them out
SELECTION = "selection"
STOPPING_WORDS = "hollow: stopping point (the descent ended on its step cap or stalled)"


def ident_of(run_id: str, config=None) -> str:
    """'run 1a2b3c4d5e6f · digits · mlp width 8 depth 1' from a run id and its RunConfig; for
    a network with BatchNorm, how it enters the loss (' · BatchNorm: batch statistics of 256')."""
    if config is None:
        return f"run {run_id}"
    m = config.model
    ident = f"run {run_id} · {config.data.name} · {m.network}"
    if m.arch in WITH_BATCHNORM or m.factory:
        how = "batch statistics of" if m.batchnorm == "batch" else "statistics recomputed from"
        where = "BatchNorm, if any" if m.factory else "BatchNorm"
        ident += f" · {where}: {how} {m.norm_batch}"
    return ident


def finish(fig: go.Figure, title: str, x: str, y: str, ident: str, z: str | None = None):
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
        fig.add_annotation(
            name="ident",
            text=ident,
            xref="paper",
            yref="paper",
            x=1,
            y=1.0,
            xanchor="right",
            yanchor="bottom",
            showarrow=False,
            font=dict(size=10, color="#666"),
        )
    return fig


def fmt(x: float) -> str:
    return INF if math.isinf(x) else f"{x:.4g}"


def right_edge(births: np.ndarray, deaths: np.ndarray) -> float:
    """Where an infinite bar is drawn to: 15% of the finite range beyond the last finite end."""
    ends = np.concatenate([births, deaths[np.isfinite(deaths)]])
    lo, hi = float(ends.min()), float(ends.max())
    return hi + 0.15 * ((hi - lo) or max(abs(hi), 1.0))


def tiny(values: np.ndarray) -> float:
    """Bars no longer than this are numerically zero: 1e-6 of the values' scale."""
    return 1e-6 * max(float(np.abs(values).max()), float(np.ptp(values)), 1e-12)


def symbols(minima, stopping=None, solid: str = "circle") -> list[str]:
    """Marker symbol per minimum: ``solid`` for a true minimum, its hollow form ("-open") for
    a stopping point (a minimum index in ``stopping``)."""
    stop = {int(m) for m in stopping or ()}
    return [f"{solid}-open" if int(m) in stop else solid for m in np.asarray(minima).ravel()]


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)


def power_label(e: int, exponent: bool = False) -> str:
    """10**e as "0.001" ... "1000", or as "10⁻⁵" with ``exponent``."""
    return "10" + str(e).translate(_SUPERSCRIPT) if exponent else f"{10.0**e:g}"


def log_axis(lo: float, hi: float) -> dict:
    """Settings of a log axis over [lo, hi] (0 < lo <= hi) for ``update_xaxes/update_yaxes``.

    Labels at the powers of ten only, increasing, in plain digits ("0.001", "0.01"), or all as
    powers ("10⁻⁵") when the range reaches beyond 10⁻⁴ or 10⁴; unlabelled minor ticks (and grid
    lines, over at most three decades) at 2..9 times each; the range widened to whole decades
    so at least two labels show. Plotly's own log ticks label the minor ticks with a digit
    ("3 ... 9 0.01 2"), which reads as a falling axis."""
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"a log axis needs 0 < lo <= hi < inf, got lo={lo!r}, hi={hi!r}")
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    d1 = max(d1, d0 + 1)
    major = list(range(d0, d1 + 1))
    minor = [m * 10.0**e for e in major[:-1] for m in range(2, 10)]
    grid = d1 - d0 <= 3  # minor grid lines help over a few decades and clutter over many
    return dict(
        type="log",
        range=[d0, d1],
        tickvals=[10.0**e for e in major],
        ticktext=[power_label(e, exponent=d0 < -4 or d1 > 4) for e in major],
        minor=dict(tickvals=minor, ticks="inside", ticklen=4, showgrid=grid, gridcolor="#f2f2f2"),
    )


def linear_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round ticks (steps of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    span = hi - lo
    if not span > 0:
        return np.array([lo])
    raw = span / n
    step = 10.0 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    t = np.arange(math.ceil(lo / step), math.floor(hi / step) + 1) * step
    return np.round(t, 12)


def log_ticks(lo: float, hi: float) -> np.ndarray:
    """1-2-5 ticks between lo > 0 and hi."""
    dec = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    t = (10.0 ** dec[:, None] * np.array([1.0, 2.0, 5.0])).ravel()
    t = t[(t >= lo) & (t <= hi)]
    return t if t.size >= 2 else np.array([lo, hi])


def contour_lines(xs, ys, Z) -> go.Contour:
    """Grey contour lines of a 2-D landscape sampled on a grid, under paths and particles."""
    return go.Contour(
        x=xs,
        y=ys,
        z=Z,
        contours_coloring="lines",
        showscale=False,
        ncontours=20,
        line=dict(width=1),
        colorscale="Greys",
        name="contours of f",
        hoverinfo="skip",
    )
