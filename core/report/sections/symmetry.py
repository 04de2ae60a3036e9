"""Observation 1 modulo permutation symmetry: does the TO-score's trend with width (and
depth) survive aligning the minima by weight matching (``paths.align``, ``Run.aligned``)?

Permuting a network's hidden units gives another minimum of the same loss. Raw minima sit in
arbitrary such copies, so part of what a straight segment or a path climbs between them may
be an artefact of the unit labelling. The aligned landscape of a run holds the same minima
permuted onto the lowest one's units, with its own paths, and a barcode that takes each pair's
lower route (raw or aligned); if the TO-score's trend is a property of the landscape and not of
the labelling, it shows in both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.report import numbers as R
from core.report.doc import Doc, verdict
from core.report.sections.common import series_figure, trend_kind
from core.views.rebasin import rebasin_barriers

TITLE = "Observation 1 modulo symmetry"


def observation1_aligned(doc: Doc, runs, specs=None) -> dict[str, Any]:
    """The section; returns ``{"claims": [sentences], by: [(label, raw trend, aligned
    trend)]}`` from the runs that have an aligned landscape (all runs at the fixed budget)."""
    doc.h(2, TITLE)
    aligned = [r for r in runs if r.aligned is not None]
    doc.p(
        "Permuting a network's hidden units gives another minimum of the same loss, so part "
        "of a barrier between two minima may come from how their units happen to be "
        "numbered. A run computed with `--align weight-matching` also holds its minima "
        "aligned to the lowest one (weight matching, Git Re-Basin), with their own paths and "
        "barcode. Does the TO-score's trend survive alignment?"
    )
    if not aligned:
        why = (
            f"none of the {len(runs)} runs has an aligned landscape (paths.align = 'none'); "
            "run the sweep again with `--align weight-matching`"
        )
        doc.p(f"Not testable here: {why}.")
        return {"claims": [f"{TITLE}: not testable here: {why}."], "width": [], "depth": []}
    n_conv = sum(R.converged(r) and bool(np.all(r.aligned.paths.converged)) for r in aligned)
    doc.p(
        f"{len(aligned)} of {len(runs)} runs have an aligned landscape; {n_conv} of them "
        "converged in both landscapes. Raw and aligned TO-scores (sum) below are of those "
        "runs only, all at the fixed budget."
    )
    doc.table(_barrier_rows(aligned), "Per run: TO-scores and mean straight-segment barriers.")
    out: dict[str, Any] = {"claims": []}
    for by in ("width", "depth"):
        keys = R.series_keys(specs, by) if specs is not None else None
        raw, _ = R.score_series(aligned, by, "sum", only_converged=False, keys=keys)
        al, _ = R.score_series(aligned, by, "sum", only_converged=False, keys=keys, aligned=True)
        out[by] = [(s.label, R.trend(s), R.trend(a)) for s, a in zip(raw, al, strict=True)]
        if not raw:
            doc.p(f"No series over {by}: no aligned configuration was run at two or more values.")
            continue
        _figure(doc, raw, al, by)
        doc.table(
            [
                {
                    "series": s.label,
                    by: x,
                    "runs": len(v),
                    "TO sum raw": float(np.mean(v)),
                    "TO sum aligned": float(np.mean(w)),
                }
                for s, a in zip(raw, al, strict=True)
                for x, v, w in zip(s.xs, s.values, a.values, strict=True)
            ],
            f"TO-score (sum) vs {by}, raw and aligned: means over seeds.",
        )
        out["claims"] += [_claim(by, *t) for t in out[by]]
    doc.bullets(out["claims"])
    return out


def _order(run) -> tuple[int, int, int]:
    return run.config.model.width, run.config.model.depth, run.config.seed


def _barrier_rows(runs) -> list[dict[str, Any]]:
    rows = []
    for r in sorted(runs, key=_order):
        b = rebasin_barriers(r)
        rows.append(
            {
                "run": r.run_id,
                "width": r.config.model.width,
                "depth": r.config.model.depth,
                "seed": r.config.seed,
                "TO sum raw": r.barcode.to_score("sum"),
                "TO sum aligned": r.aligned.barcode.to_score("sum"),
                "pairs": len(b),
                "straight barrier raw (mean)": float(np.mean(b.before)) if len(b) else np.nan,
                "straight barrier aligned (mean)": float(np.mean(b.after)) if len(b) else np.nan,
            }
        )
    return rows


def _figure(doc: Doc, raw: Sequence[R.Series], al: Sequence[R.Series], by: str) -> None:
    series = [s for pair in zip(raw, al, strict=True) for s in pair]  # raw, aligned, ...
    fig = series_figure(
        series,
        by,
        labels=[f"{s.label}, {'aligned' if i % 2 else 'raw'}" for i, s in enumerate(series)],
        colors=[i // 2 for i in range(len(series))],
        dashed=[bool(i % 2) for i in range(len(series))],
    )
    doc.figure(
        f"to_score_vs_{by}_aligned",
        fig,
        f"TO-score (sum) vs {by} of the aligned runs: raw minima (solid) and the same minima "
        "aligned by weight matching (dashed); mean over seeds and min..max.",
    )


def _claim(by: str, label: str, raw, aligned) -> str:
    """One sentence: the raw and the aligned trend of a series, and whether it survives."""
    k_raw, k_al = trend_kind(raw), trend_kind(aligned)
    if "untestable" in (k_raw, k_al):
        end = "not testable (fewer than 3 runs, or constant TO-scores)"
    elif k_raw == "flat":
        end = "the raw TO-score has no significant trend, so there is none to survive"
    elif k_al == k_raw:
        end = "the trend survives alignment"
    else:
        end = "the trend does not survive alignment: it came with the unit labelling"
    return (
        f"{TITLE}, TO-score vs {by} ({label}): raw minima: {verdict(raw, True)}; aligned "
        f"minima: {verdict(aligned, True)}; {end}."
    )
