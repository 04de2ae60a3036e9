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


def log_ticks(lo: float, hi: float) -> np.ndarray:
    """1-2-5 ticks between lo > 0 and hi."""
    dec = np.arange(np.floor(np.log10(lo)), np.ceil(np.log10(hi)) + 1)
    t = (10.0 ** dec[:, None] * np.array([1.0, 2.0, 5.0])).ravel()
    t = t[(t >= lo) & (t <= hi)]
    return t if t.size >= 2 else np.array([lo, hi])
