"""Escapability as tables, text and a figure: escape probability against bar length.

Pure builders over ``core.engine.escape.EscapeResult`` for the Escapability page, the CLI
(``python -m core escape``) and the report; no numbers are computed here but the ones the
result holds (probabilities, Wilson intervals, the correlation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.engine.escape import INCONCLUSIVE, EscapeResult
from core.views.plots.frame import COLORS, INF, SERIES, finish

RULE = (
    "After the SGD and a full-batch descent, a trajectory stayed when the straight segment "
    "from its end point back to its start minimum stays below the start's basin threshold "
    "(its basin level s_k, the lowest stored saddle to another minimum, less a tenth of its "
    "exit barrier). It settled when it stayed, when the segment to another stored minimum "
    "stays below that minimum's threshold (it arrived in that stored basin), or when its loss "
    "is below the start's threshold; it is unsettled when its loss is still at or above it, "
    "and diverged when its loss is not finite. It escaped when it settled and did not stay. "
    "The escape probability is escaped / settled: unsettled and diverged trajectories are "
    "counted apart and left out of it."
)


def moved_by(result: EscapeResult) -> str:
    """The noise in words: 'SGD lr 0.05, batch 32, 500 steps' or 'Langevin noise 0.5, ...'."""
    s = result.settings
    what = f"batch {s['batch_size']}" if "batch_size" in s else f"Langevin noise {s['noise']:g}"
    return f"lr {s['lr']:g}, {what}, {s['steps']} steps, {result.repeats} repeats, seed {s['seed']}"


def _arrivals(row: np.ndarray) -> str:
    hits = [f"{j}: {n}" for j, n in enumerate(row) if n]
    return ", ".join(hits) or "-"


def escape_rows(result: EscapeResult) -> list[dict]:
    """One row per minimum, by bar length (longest first): its numbers as the result holds
    them (lengths ``inf`` for the essential bar). The probability is escaped / settled (nan
    where none settled); unsettled and diverged trajectories are columns of their own."""
    ci, p = result.interval, result.probability
    order = np.argsort(-result.lengths, kind="stable")
    return [
        {
            "minimum": int(k),
            "value": float(result.values[k]),
            "bar length": float(result.lengths[k]),
            "exit barrier": float(result.barriers[k]),
            "escaped": int(result.escaped[k]),
            "settled": int(result.settled[k]),
            "escape probability": float(p[k]),
            "95% low": float(ci[k, 0]),
            "95% high": float(ci[k, 1]),
            "to a stored basin": int(result.stored_arrivals[k]),
            "unsettled": int(result.unsettled[k]),
            "diverged": int(result.diverged[k]),
            "arrived in (minimum: count)": _arrivals(result.arrived[k]),
        }
        for k in order
    ]


def unsettled_note(results: Sequence[EscapeResult]) -> str:
    """'' or one sentence: the results are inconclusive when most of their trajectories
    (together) had not settled after the full-batch descent."""
    total = sum(r.repeats * len(r.unsettled) for r in results)
    unsettled = sum(int(r.unsettled.sum()) for r in results)
    if not total or unsettled <= INCONCLUSIVE * total:
        return ""
    steps = sorted({int(r.settings["descent_steps"]) for r in results})
    return (
        f"Inconclusive: {unsettled} of {total} trajectories had not settled after "
        f"{' or '.join(map(str, steps))} full-batch steps (their loss is still above the "
        "basin threshold), so the escape probabilities rest on too few; run again with more "
        "descent steps (the CLI's --descent-steps, the page's Descent steps)."
    )


def verdict(result_or_corr) -> str:
    """Does escape probability fall with bar length? One sentence from the correlation, or,
    for a result where most trajectories are unsettled, that it is inconclusive."""
    if isinstance(result_or_corr, EscapeResult) and (note := unsettled_note([result_or_corr])):
        return note
    c = getattr(result_or_corr, "correlation", result_or_corr)
    if not math.isfinite(c.rho):
        return (
            "Not testable at these settings: every minimum with a settled trajectory escaped "
            f"with the same probability ({c.summary()}); change the learning rate or the "
            "number of steps."
        )
    sig = c.p < 0.05
    if c.rho < 0:
        word = "falls" if sig else "tends to fall, not significantly,"
    else:
        word = "rises (against the claim)" if sig else "does not fall (no significant relation)"
    return f"Escape probability {word} with bar length: {c.summary()}."


def format_escape(result: EscapeResult, *, from_store: bool = False) -> str:
    """The CLI's text: the settings, the per-minimum table and the correlation."""
    e = result.extra
    where = f"run {e['run_id']}" if "run_id" in e else f"toy {e.get('toy', '-')}"
    noise = "SGD " if "batch_size" in result.settings else ""
    lines = [
        f"escapes from {where}: {noise}{moved_by(result)}, then "
        f"{result.settings['descent_steps']} full-batch steps"
        + (" (saved result)" if from_store else f" ({result.seconds:.1f} s)"),
        "  minimum  bar length  exit barrier  escaped/settled  probability  95% interval      "
        "stored  unsettled  diverged  arrived in",
    ]
    for r in escape_rows(result):
        length = INF if math.isinf(r["bar length"]) else f"{r['bar length']:.3e}"
        barrier = INF if math.isinf(r["exit barrier"]) else f"{r['exit barrier']:.3e}"
        lines.append(
            f"  {r['minimum']:7d}  {length:>10}  {barrier:>12}  "
            f"{r['escaped']:7d}/{r['settled']:<7d}  {r['escape probability']:11.3f}  "
            f"[{r['95% low']:.3f}, {r['95% high']:.3f}]    {r['to a stored basin']:6d}  "
            f"{r['unsettled']:9d}  {r['diverged']:8d}  {r['arrived in (minimum: count)']}"
        )
    lines += [
        "  (probability = escaped / settled; unsettled and diverged trajectories are left out "
        "of it; stored: escapes certified in another stored minimum's basin)",
        "",
        verdict(result),
        f"rule: {RULE}",
    ]
    return "\n".join(lines)


def sweep_rows(results: Sequence[EscapeResult]) -> list[dict]:
    """One row per result (e.g. per learning rate): the settings, escapes of the settled
    trajectories, the unsettled and diverged ones apart, and the correlation."""
    return [
        {
            "lr": r.settings["lr"],
            "batch": r.settings.get("batch_size", "-"),
            "steps": r.settings["steps"],
            "repeats": r.repeats,
            "escaped": int(r.escaped.sum()),
            "settled": int(r.settled.sum()),
            "unsettled": int(r.unsettled.sum()),
            "diverged": int(r.diverged.sum()),
            "Spearman rho": r.correlation.rho,
            "p (perm.)": r.correlation.p,
        }
        for r in results
    ]


def _x_positions(lengths: np.ndarray) -> tuple[np.ndarray, float]:
    """Lengths on the x axis, the essential bar(s) drawn at a place right of the longest."""
    finite = lengths[np.isfinite(lengths)]
    right = 1.25 * float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    return np.where(np.isfinite(lengths), lengths, right), right


def escape_figure(results: Sequence[EscapeResult], ident: str = "") -> go.Figure:
    """Escape probability (escaped / settled, Wilson 95% error bars; a minimum with no settled
    trajectory is not drawn) against bar length, one series per result
    (e.g. per learning rate); the essential bar sits at the right, marked with the infinity
    sign. The title carries each series' Spearman rho and permutation p."""
    fig = go.Figure()
    right = 1.0
    for c, r in enumerate(results):
        x, right = _x_positions(r.lengths)
        ci, p = r.interval, r.probability
        fig.add_trace(
            go.Scatter(
                x=x,
                y=p,
                mode="markers",
                name=f"lr {r.settings['lr']:g}",
                marker=dict(
                    size=10,
                    color=SERIES[c % len(SERIES)],
                    symbol=np.where(np.isfinite(r.lengths), "circle", "diamond"),
                    line=dict(color=np.where(np.isfinite(r.lengths), "white", COLORS["essential"])),
                ),
                error_y=dict(
                    type="data", symmetric=False, array=ci[:, 1] - p, arrayminus=p - ci[:, 0]
                ),
                customdata=np.arange(len(p)),
                hovertemplate="minimum %{customdata}<br>bar length %{x:.3g}<br>"
                "escape probability %{y:.3f}<extra></extra>",
            )
        )
    if any(np.isinf(r.lengths).any() for r in results):
        fig.add_annotation(x=right, y=1.05, text=f"essential ({INF})", showarrow=False)
    rhos = "; ".join(f"lr {r.settings['lr']:g}: {r.correlation.summary()}" for r in results)
    fig.update_yaxes(range=[-0.05, 1.1])
    return finish(
        fig,
        f"Escape probability vs bar length<br><sup>{rhos}</sup>",
        "bar length (death - birth)",
        "escape probability",
        ident,
    )
