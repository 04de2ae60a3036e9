"""How the TO-score depends on the path-optimisation budget, and the claims that follow
from it (bars that vanish, depth trends that change with the budget)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.report import numbers as R
from core.report.doc import ALPHA, Doc, verdict
from core.report.sections.common import ONE, groups_of, on_grid, tol_of
from core.views import plots


def _slug(text: str) -> str:
    return "_".join("".join(c if c.isalnum() else " " for c in text).split())[:60]


def _budget_figure(doc: Doc, series, idx: list[int], labels: list[str], name: str, what: str):
    grid = np.unique(np.concatenate([series[i][1] for i in idx]))
    curves = [on_grid(grid, series[i][1], series[i][2]) for i in idx]
    fig = plots.to_score_figure(
        grid,
        [c.mean(0) for c in curves],
        [c.min(0) for c in curves],
        [c.max(0) for c in curves],
        x_label="path-optimisation steps",
        series_labels=labels,
        band_label="min..max over seeds",
        ident=what,
    )
    fig.update_yaxes(type="log")
    doc.figure(
        name,
        fig,
        f"{what}: TO-score (sum) of the barcode built from the saddle history "
        "at each path step, mean over seeds (log scale; zero is not drawn).",
    )


def budget(doc: Doc, runs, budgets: Sequence[int], obs1=None) -> dict[str, Any]:
    doc.h(2, "TO-score vs the path-optimisation budget")
    doc.p(
        "Each run stores every pair's best saddle estimate at each check (every 25 path steps; "
        "step 0 = the straight segment). The barcode built from those estimates at step t is "
        "what the run would report had it stopped there. The estimates are the maxima at 2 "
        "points per interval; the stored saddles evaluate the final paths at 8 or more points "
        "per interval with a point on each path's peak (the table shows both)."
    )
    series = R.budget_series(runs, "sum")
    groups = groups_of(runs)
    key_of = {R._group(g[0].config, ()): i for i, g in enumerate(groups)}
    by_id = {r.run_id: r for r in runs}
    plotted: set[int] = set()
    for by in ("width", "depth"):  # one figure per series of Observation 1
        for s, _ in (obs1 or {}).get(f"{by} all", []):
            idx = [key_of[R._group(by_id[ids[0]].config, ())] for ids in s.run_ids]
            _budget_figure(
                doc,
                series,
                idx,
                [f"{by} {x}" for x in s.xs],
                f"to_score_vs_budget_{by}_{_slug(s.label)}",
                s.label,
            )
            plotted.update(idx)
    rest = [i for i in range(len(groups)) if i not in plotted]
    if rest:
        _budget_figure(
            doc,
            series,
            rest,
            [series[i][0] for i in rest],
            "to_score_vs_budget_other",
            "other configurations",
        )
    rows, vanish = [], []
    by_label = {}
    for (lab, g, v), r_group in zip(series, groups, strict=True):
        at = {f"TO @ {b}": float(on_grid(np.array([b]), g, v).mean()) for b in (0, *budgets)}
        final = float(np.mean([r.barcode.to_score("sum") for r in r_group]))
        rows.append(
            {
                "configuration": lab,
                "seeds": len(r_group),
                **at,
                "TO @ last check": float(v[:, -1].mean()),
                "TO stored": final,
                "drop over last 150 steps": _drop(g, v),
                "steps to within 10%": _settle(g, v),
                "converged": f"{sum(R.converged(r) for r in r_group)}/{len(r_group)}",
                "stalled runs": sum(R.stalled(r) > 0 for r in r_group),
            }
        )
        for r in r_group:
            vanish.append(R.vanishing_bars(r, budgets[-1]) | {"configuration": lab})
        by_label[lab] = (g, v, r_group)
    doc.table(
        rows,
        "Mean TO-score (sum) over seeds at fixed budgets, at the last check, and "
        "the stored (final, dense) value.",
    )
    seen = sum(v["visible"] for v in vanish)
    gone = sum(v["vanished"] for v in vanish)
    agg: dict[str, list] = {}
    for v in vanish:
        agg.setdefault(v["configuration"], []).append(v)
    doc.table(
        [
            {
                "configuration": k,
                f"visible at {budgets[-1]} steps": sum(x["visible"] for x in v),
                "vanished by the end": sum(x["vanished"] for x in v),
                "TO at budget": np.mean([x["TO at budget"] for x in v]),
                "TO final": np.mean([x["TO final"] for x in v]),
            }
            for k, v in agg.items()
        ],
        f"Bars visible after {budgets[-1]} path steps that vanish by the end (final length "
        "<= max(tolerance, 10% of the length at the budget)).",
    )
    settle = float(np.median([r["steps to within 10%"] for r in rows]))
    claims = [_claim_vanish(seen, gone, budgets[-1], settle)]
    return {
        "rows": rows,
        "vanish": (seen, gone),
        "claims": claims,
        "by_label": by_label,
        "budgets": budgets,
    }


def _drop(steps: np.ndarray, v: np.ndarray) -> str:
    """Relative fall of the mean TO-score over the last 150 path steps, as a percentage."""
    last = on_grid(np.array([max(int(steps[-1]) - 150, 0), int(steps[-1])]), steps, v).mean(0)
    return f"{100 * (last[0] - last[1]) / last[0]:.2g}%" if last[0] > 0 else "-"


def _settle(steps: np.ndarray, v: np.ndarray) -> int:
    """First path step at which the mean TO-score is within 10% of its last value."""
    m = v.mean(0)
    return int(steps[np.argmax(m <= 1.1 * m[-1] + 1e-12)])


def _claim_vanish(seen: int, gone: int, b: int, settle: float) -> str:
    if not seen:
        return (
            f"Prototype claim 1 (long bars at a small budget vanish later): not testable "
            f"here, no bar was visible after {b} steps."
        )
    share = gone / seen
    word = "holds" if share >= 0.5 else "partly holds" if share >= 0.1 else "does not hold"
    return (
        f"Prototype claim 1 (bars that look long at a small budget vanish at a larger one): "
        f"{word}: {gone} of {seen} bars visible after {b} path steps ({100 * share:.0f}%) "
        "vanished by the end of the optimisation. Why: the TO-score "
        f"settles within 10% of its last value after a median of {settle:.0f} path steps "
        "(per configuration, table in the budget section); what lowers it further is a finer "
        "path (path resolution check)."
    )


def claims(doc: Doc, runs, obs1, budget) -> None:
    """Prototype claims 2 and 3 (claim 1 comes from ``budget``)."""
    by_id = {r.run_id: r for r in runs}
    rows = []
    for s, _ in obs1.get("width all", []):
        for x, ids in zip(s.xs, s.run_ids, strict=True):
            rs = [by_id[i] for i in ids]
            tol = tol_of(rs)
            flat = sum(r.barcode.to_score("max") <= tol for r in rs)
            rows.append(
                {
                    "series": s.label,
                    "width": x,
                    "runs": len(rs),
                    "converged": sum(R.converged(r) for r in rs),
                    ONE: flat,
                    "visible bars (mean)": np.mean([R.run_row(r)["bars > tol"] for r in rs]),
                }
            )
    text = []
    if rows:
        doc.h(2, "Does the landscape collapse to one basin as width grows?")
        doc.table(rows, "Runs in which every bar is within the saddle tolerance (one basin).")
        for s, _ in obs1["width all"]:
            mine = [r for r in rows if r["series"] == s.label]
            widths = sorted(r["width"] for r in mine)
            flat = {r["width"] for r in mine if r[ONE] == r["runs"]}
            first = next((w for w in widths if all(x in flat for x in widths if x >= w)), None)
            holds = any(w >= 16 for w in widths) and all(w in flat for w in widths if w >= 16)
            where = (
                f"every run is a single basin from width {first} on"
                if first
                else "no width of the sweep gives a single basin in every run"
            )
            text.append(
                f"Prototype claim 2 (one basin from width 16 on), {s.label}: "
                f"{'holds' if holds else 'does not hold'}: {where}."
            )
    text += _claim_depth(budget)
    budget["claims"] += text


def _claim_depth(budget) -> list[str]:
    """Prototype claim 3: at a fixed budget, deeper networks had the larger TO-score."""
    fams: dict[str, list] = {}
    for g, v, rs in budget["by_label"].values():
        c = rs[0].config
        fams.setdefault(R._group(c, ("model.depth",)), []).append((c.model.depth, g, v, rs))
    fams = {k: sorted(f, key=lambda t: t[0]) for k, f in fams.items() if len(f) >= 3}
    labels = R.group_label([f[0][3][0].config for f in fams.values()], ("model.depth",))
    out = []
    for lab, fam in zip(labels, fams.values(), strict=True):
        parts, res = [], {}
        for b in (*budget["budgets"], None):
            xs, ys = [], []
            for d, g, v, _ in fam:
                vals = v[:, -1] if b is None else on_grid(np.array([b]), g, v)[:, 0]
                xs += [d] * len(vals)
                ys += list(vals)
            res[b] = R._corr(xs, ys)
            name = "the last check" if b is None else f"{b} steps"
            parts.append(f"at {name}: {verdict(res[b], True)}")
        runs = [r for f in fam for r in f[3]]
        bad = sum(R.stalled(r) > 0 for r in runs)
        why = _why_depth(res[budget["budgets"][0]], res[None])
        if bad:
            why = (
                f"But {bad} of its {len(runs)} runs stalled (paths kept at straight segments "
                "that climb a barrier): their TO-scores measure the failed optimisation, not "
                "the landscape."
            )
        out.append(
            f"Prototype claim 3 (deeper networks have the larger TO-score at a fixed "
            f"budget), {lab}, depths {[f[0] for f in fam]}: " + "; ".join(parts) + f". {why}"
        )
    return out


def _why_depth(early, last) -> str:
    def up(r):
        return (
            r is not None
            and np.isfinite(r.spearman)
            and r.spearman > 0
            and (r.spearman_p_perm < ALPHA)
        )

    if up(early) and not up(last):
        return (
            "It holds at the small budget only: deeper networks' paths need more steps, so "
            "their larger TO-score there is unconverged paths, not the landscape."
        )
    if up(early) and up(last):
        return (
            "It holds at every budget: at this path resolution deeper networks have the "
            "higher barriers."
        )
    if up(last):
        return "Deeper networks have the larger TO-score only once the paths have converged."
    return "It does not hold here at any of these budgets."
