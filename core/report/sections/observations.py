"""The paper's two observations: TO-score vs width and depth, segment length vs
generalization gap; and the two training regimes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.report import numbers as R
from core.report.doc import ALPHA, Doc, corr_row, fmt, verdict
from core.report.sections.common import conv_trend, series_figure, tol_of
from core.views import plots


def _series_figure(
    series: Sequence[R.Series], by: str, name: str, doc: Doc, which: str, tol: float
) -> None:
    fig = series_figure(series, by)
    lows = np.array([x for s in series for x in s.los], dtype=float)
    if lows.size and np.all(lows > 0):  # log scale where every value can be drawn on it
        fig.update_yaxes(type="log")
    # a TO-score below the saddle tolerance holds no visible bar: where the plot's scale ends
    fig.add_hline(y=tol, line_dash="dot", line_color="gray")
    doc.figure(
        name,
        fig,
        f"TO-score (sum) vs {by}: mean over seeds (line) and min..max (band), {which}. "
        f"Dotted: the saddle tolerance {tol:g}; below it no bar is visible.",
    )


def observation1(doc: Doc, runs, specs=None) -> dict[str, Any]:
    doc.h(2, "Observation 1: TO-score vs width and depth")
    doc.p(
        "Two views: *converged runs only* (every path met the stopping rule), which is the "
        "comparison the paper's claim needs; and *all runs at the fixed budget*, whose "
        "TO-scores are upper bounds wherever paths were still improving (see the budget "
        "section for how far from converged they were)."
    )
    out: dict[str, Any] = {}
    by_id = {r.run_id: r for r in runs}
    for by in ("width", "depth"):
        doc.h(3, f"TO-score vs {by}")
        keys = R.series_keys(specs, by) if specs is not None else None
        conv, left_out = R.score_series(runs, by, "sum", only_converged=True, keys=keys)
        every, _ = R.score_series(runs, by, "sum", only_converged=False, keys=keys)
        out[by] = [(s, R.trend(s)) for s in conv]
        out[f"{by} all"] = [(s, R.trend(s)) for s in every]
        if not every:
            doc.p(f"No series over {by}: no configuration was run at two or more values.")
            continue
        if conv:
            _series_figure(conv, by, f"to_score_vs_{by}", doc, "converged runs only", tol_of(runs))
        else:
            doc.p(f"No series over {by} has converged runs at two or more values of {by}.")
        _series_figure(
            every, by, f"to_score_vs_{by}_all", doc, "all runs at the fixed budget", tol_of(runs)
        )
        rows = []
        for s in every:
            for x, vals, ids in zip(s.xs, s.values, s.run_ids, strict=True):
                rs = [by_id[i] for i in ids]
                ok = [v for v, r in zip(vals, rs, strict=True) if R.converged(r)]
                rows.append(
                    {
                        "series": s.label,
                        by: x,
                        "converged": f"{len(ok)}/{len(vals)}",
                        "TO sum (converged) mean": np.mean(ok) if ok else np.nan,
                        "TO sum (all) mean": np.mean(vals),
                        "min": np.min(vals),
                        "max": np.max(vals),
                        "TO max (all) mean": np.mean([r.barcode.to_score("max") for r in rs]),
                        "visible bars": np.mean([R.run_row(r)["bars > tol"] for r in rs]),
                    }
                )
        doc.table(rows, f"TO-score (sum) vs {by}: means over seeds, min..max over all seeds.")
        trends = {s.label: res for s, res in out[f"{by} all"]}
        doc.table(
            [
                {
                    "series": s.label,
                    "converged runs": verdict(conv_trend(out[by], s.label), True),
                    "all runs (fixed budget)": verdict(trends[s.label], True),
                }
                for s in every
            ],
            f"Spearman correlation of {by} with the TO-score (sum) over runs.",
        )
        if left_out:
            n = len([i for s in every for ids in s.run_ids for i in ids if i in left_out])
            doc.p(
                f"{n} runs of these series are left out of the converged view; they are listed "
                "under Convergence."
            )
        firsts = [
            (s.label, x, by_id[ids[0]])
            for s in every
            for x, ids in zip(s.xs, s.run_ids, strict=True)
        ]
        doc.figure(
            f"barcodes_vs_{by}",
            plots.barcodes_overlay_figure(
                [r.barcode for _, _, r in firsts],
                [
                    f"{lab}, {by} {x} (seed {r.config.seed}"
                    f"{'' if R.converged(r) else ', not converged'})"
                    for lab, x, r in firsts
                ],
            ),
            f"Barcodes side by side along {by} (first seed of each point).",
        )
    return out


def observation2(doc: Doc, runs) -> dict[str, Any]:
    doc.h(2, "Observation 2: segment length vs generalization gap")
    conv = [r for r in runs if R.converged(r)]
    doc.p(
        f"One point per minimum with a finite segment, from the {len(conv)} converged runs. "
        "*Pooled* correlates raw values over all runs (configurations differ in scale); "
        "*within runs* z-scores lengths and gaps inside each run first; *birth* is a control: "
        "the minimum's own training loss against its gap."
    )
    out = {}
    for gap in ("loss", "error"):
        pts = R.segment_gap_points(conv, gap)
        res = (
            R.segment_gap(pts)
            if len(pts) >= 3
            else {"pooled": None, "within": None, "partial": None, "birth": None, "per_run": []}
        )
        tol = tol_of(runs)
        vis = [p for p in pts if p["length"] > tol]
        res["visible"] = R.segment_gap(vis)["pooled"] if len(vis) >= 3 else None
        out[gap] = res
        doc.table(
            [
                corr_row("pooled", res["pooled"]),
                corr_row("within runs", res["within"]),
                corr_row(f"pooled, visible bars only (> {fmt(tol)})", res["visible"]),
                corr_row("control: birth (loss) vs gap", res["birth"]),
            ],
            f"Segment length vs generalization gap ({gap}: test - train).",
        )
        if pts:
            doc.figure(
                f"segment_vs_gap_{gap}",
                plots.generalization_figure(
                    [p["length"] for p in pts],
                    [p["gap"] for p in pts],
                    stats=res["pooled"],
                    gap_kind=gap,
                    groups=[p["config"] for p in pts],
                    minima=[p["minimum"] for p in pts],
                ),
                f"Generalization gap ({gap}) vs segment length, every finite bar of every "
                "converged run, coloured by configuration.",
            )
    per = [r for r in out["loss"]["per_run"] if r["n"] >= 3]
    if per:
        sig = sum(r["p (rho)"] < ALPHA for r in per if np.isfinite(r["p (rho)"]))
        pos = sum(r["spearman"] > 0 for r in per if np.isfinite(r["spearman"]))
        doc.p(
            f"Per run (loss gap): {sig} of {len(per)} runs have a significant Spearman "
            f"correlation at {ALPHA}; {pos} of {len(per)} are positive."
        )
        doc.table(per, "Per-run correlation of segment length with the loss gap.")
    return out


def regimes(doc: Doc, runs) -> None:
    rows = R.regime_rows([r for r in runs if R.converged(r)])
    doc.h(2, "Two kinds of minima: annealed vs small constant learning rate")
    if not rows:
        doc.p("No configuration was run in both regimes with converged paths.")
        return
    doc.table(
        rows,
        "Per regime: segment lengths of all finite bars, TO-score, losses and gaps "
        "(means over minima and seeds); p (length): permutation test of the difference in "
        "segment length between the two regimes.",
    )
    drop = ("train.regime", "train.lr")
    conv = [r for r in runs if R.converged(r)]
    both: dict[str, set] = {}
    for r in conv:
        both.setdefault(R._group(r.config, drop), set()).add(r.config.train.regime)
    members = [r for r in conv if len(both[R._group(r.config, drop)]) > 1]
    pts = R.segment_gap_points(members, "loss")
    name = {
        r.run_id: f"{r.config.data.name} {r.config.model.arch} w{r.config.model.width} "
        f"d{r.config.model.depth}: {r.config.train.regime} (lr {r.config.train.lr:g})"
        for r in members
    }
    if pts:
        doc.figure(
            "regimes_segment_vs_gap",
            plots.generalization_figure(
                [p["length"] for p in pts],
                [p["gap"] for p in pts],
                gap_kind="loss",
                groups=[name[p["run"]] for p in pts],
            ),
            "Loss gap vs segment length, by training regime.",
        )
