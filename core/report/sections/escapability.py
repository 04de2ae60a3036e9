"""Escapability: does a minimum's escape probability under SGD fall with its bar length?

The paper's v3 title calls the barcode "a topological measure of escapability". This section
reads the escape results saved next to the report's runs (``python -m core escape``, the
Escapability page; ``core.runs.escape``), groups them by their settings, and tests, per
setting, Spearman's rho between bar length and escape probability within each run, pooled
over the runs with permutations within each run. The verdict is stated either way; escape
probabilities count settled trajectories only, and a setting where most trajectories had not
settled is called inconclusive.
"""

from __future__ import annotations

from typing import Any

from core.report.doc import Doc
from core.runs.escape import pooled, same_settings, saved_results
from core.runs.store import RunStore
from core.views.escape import RULE, moved_by, unsettled_note, verdict

TITLE = "Escapability"


def escapability(doc: Doc, store: RunStore, runs) -> dict[str, Any]:
    """The section; returns ``{"claims": [sentences], "settings": [(words, pooled
    RankCorrelation)]}``."""
    doc.h(2, TITLE)
    doc.p(
        "Are short bars easy for SGD to leave and long ones hard, as the paper's newest title "
        "says? From every minimum of a run, several SGD trajectories (each with its own "
        "minibatches) are followed by a full-batch descent, and each is judged escaped "
        f"or not. {RULE} Per setting, Spearman's rho between bar length (the essential bar "
        "ranks longest) and escape probability is computed within each run and pooled over "
        "runs (weighted by minima; permutations within each run)."
    )
    by: dict[str, list] = {}
    for r in runs:
        for res in saved_results(store, r.run_id):
            by.setdefault(same_settings(res), []).append(res)
    if not by:
        why = (
            f"no escape results are saved for the {len(runs)} runs; compute them with "
            "`python -m core escape RUN_ID --lr X`"
        )
        doc.p(f"Not testable here: {why}.")
        return {"claims": [f"{TITLE}: not testable here: {why}."], "settings": []}
    out: dict[str, Any] = {"claims": [], "settings": []}
    rows = []
    for results in by.values():
        corr = pooled(results)
        words = moved_by(results[0]).rsplit(", seed", 1)[0]
        words += f", {results[0].settings['descent_steps']} descent steps"
        out["settings"].append((words, corr))
        said = unsettled_note(results) or verdict(corr)
        out["claims"].append(f"{TITLE} (SGD {words}, {len(results)} runs): {said}")
        rows += [
            {
                "setting": words,
                "run": res.extra.get("run_id", "-"),
                "seed": res.settings["seed"],
                "minima": len(res.escaped),
                "escaped": int(res.escaped.sum()),
                "settled": int(res.settled.sum()),
                "unsettled": int(res.unsettled.sum()),
                "diverged": int(res.diverged.sum()),
                "Spearman rho": res.correlation.rho,
                "p (perm.)": res.correlation.p,
            }
            for res in results
        ]
    doc.table(
        rows,
        "Per run and setting: escapes of the settled trajectories (the escape probability's "
        "denominator), the unsettled and diverged ones apart, and the within-run correlation.",
    )
    doc.bullets(out["claims"])
    return out
