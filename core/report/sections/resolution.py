"""How much the barcodes move: seed-to-seed uncertainty and the path-resolution check."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from core.engine.barcode import barcode_from_graph
from core.report import numbers as R
from core.report.doc import Doc, fmt, verdict
from core.report.sections.common import groups_of
from core.views import plots
from core.views.uncertainty import seed_spread, subsample_spread


def uncertainty(doc: Doc, runs, subsamples: int, fraction: float, say: Callable) -> None:

    doc.h(2, "Uncertainty of the bars")
    doc.p(
        f"Data: the first converged seed of each configuration re-evaluated on {subsamples} "
        f"random subsets of {100 * fraction:.0f}% of its training data (minima and stored "
        "paths re-evaluated, paths not re-optimised): spread = standard deviation over the "
        "subsets. A bar is *resolved* when it is longer than twice its death's spread. Seeds: "
        "TO-scores and the longest segment over the seeds of each configuration."
    )
    rows, best, t0 = [], None, time.perf_counter()
    groups = groups_of(runs)
    for group, label in zip(groups, R.group_label([g[0].config for g in groups]), strict=True):
        conv = [r for r in group if R.converged(r)]
        if not conv:
            continue
        r = conv[0]
        sp = subsample_spread(r, n_subsamples=subsamples, fraction=fraction, seed=0)
        err = sp.errors()
        seg = r.barcode.segment_of()
        fin = np.isfinite(seg)
        dstd = np.array([err[k][1] for k in range(len(seg))])
        vis = fin & (seg > r.config.paths.saddle_tol)
        ss = seed_spread(group)
        mean, std = ss.rank_spread()
        rows.append(
            {
                "configuration": label,
                "run": r.run_id,
                "TO sum": r.barcode.to_score(),
                "TO std (data)": float(sp.to_scores.std(ddof=1)) if subsamples > 1 else 0.0,
                "median death std": float(np.median(dstd[fin])) if fin.any() else np.nan,
                "visible bars": int(vis.sum()),
                "resolved bars": int(np.sum(vis & (seg > 2 * dstd))),
                "global min changes": sp.essential_changes,
                "seeds": len(group),
                "TO mean (seeds)": float(ss.to_sum.mean()),
                "TO std (seeds)": float(ss.to_sum.std(ddof=1)) if len(group) > 1 else 0.0,
                "longest bar (seeds)": f"{fmt(mean[0]) if mean.size else '-'} +- "
                f"{fmt(std[0]) if std.size else '-'}",
            }
        )
        if best is None or vis.sum() > best[0]:
            best = (int(vis.sum()), r, err, label)
        say(f"uncertainty {len(rows)}: {r.run_id}")
    doc.table(
        rows,
        f"Spread of the bars over data subsets and over seeds "
        f"({time.perf_counter() - t0:.0f} s to compute).",
    )
    if best:
        _, r, err, label = best
        ident = plots.ident_of(r.run_id, r.config)
        doc.figure(
            "barcode_errors",
            plots.barcode_figure(r.barcode, errors=err, ident=ident),
            f"Barcode of {label} (run {r.run_id}) with the data-subset spread of births "
            "and deaths as error bars.",
        )
        doc.figure(
            "diagram_errors",
            plots.diagram_figure(r.barcode, errors=err, ident=ident),
            "Persistence diagram of the same run with the same error bars.",
        )


PATH_KEYS = tuple(
    f"paths.{k}" for k in ("n_points", "max_points", "steps", "force_tol", "batch_size")
)


def _setting(p) -> str:
    return f"{p.n_points}-{p.max_points} pts, {p.steps} steps, force tol {p.force_tol:g}"


def best_barcode(group):
    """The barcode from the lowest saddle of every pair over runs that share their minima
    (same training settings and seed, different path settings): each saddle is an upper
    bound, so the lowest is the best one. None when the minima differ."""

    v = np.asarray(group[0].barcode.values)
    if any(
        len(r.barcode.values) != len(v) or not np.allclose(r.barcode.values, v, atol=1e-7)
        for r in group
    ):
        return None
    s = np.minimum.reduce([np.asarray(r.barcode.saddles) for r in group])
    return barcode_from_graph(v, s, tol=1e-6)


def resolution(doc: Doc, runs, budget) -> None:
    """The same minima connected by different path optimisers: finer or longer paths, other
    step sizes. Is a TO-score the landscape or the optimiser?"""
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(R._group(r.config, PATH_KEYS) + f"|{r.config.seed}", []).append(r)
    groups = {k: g for k, g in groups.items() if len(g) > 1}
    if not groups:
        return
    doc.h(2, "Path settings check: the same minima, different path optimisers")
    doc.p(
        "Each row group holds runs with the same training settings and seed (so the same "
        "minima) whose paths were optimised differently. *best* is the barcode built from "
        "the lowest saddle of every pair over those runs (every saddle is an upper bound)."
    )
    labels = R.group_label([g[0].config for g in groups.values()], PATH_KEYS)
    rows, changes, best = [], {}, []
    for lab, g in zip(labels, groups.values(), strict=True):
        g = sorted(
            g,
            key=lambda r: (
                -r.config.paths.force_tol,
                r.config.paths.max_points,
                r.config.paths.steps,
            ),
        )
        for r in g:
            rows.append(
                {
                    "configuration": lab,
                    "seed": r.config.seed,
                    "paths": _setting(r.config.paths),
                    "converged": R.converged(r),
                    "stalled paths": R.stalled(r),
                    "TO sum": r.barcode.to_score(),
                    "run": r.run_id,
                }
            )
        bb = best_barcode(g)
        if bb is not None:
            rows.append(
                {
                    "configuration": lab,
                    "seed": g[0].config.seed,
                    "paths": "best",
                    "TO sum": bb.to_score(),
                }
            )
            best.append((g[0].config, bb.to_score()))
        a = g[0].barcode.to_score()
        for r in g[1:]:
            key = f"{_setting(g[0].config.paths)} -> {_setting(r.config.paths)}"
            changes.setdefault((key, lab), []).append(
                100 * (r.barcode.to_score() - a) / a if a > 0 else np.nan
            )
    doc.table(rows, "TO-score (sum) of the same minima under different path settings.")
    agg = [
        {
            "change of path settings": k,
            "configuration": lab,
            "seeds": len(v),
            "median change of the TO-score": f"{np.nanmedian(v):+.0f}%",
        }
        for (k, lab), v in changes.items()
    ]
    doc.table(agg, "How the TO-score changes with the path settings (median over seeds).")
    text = [
        f"{row['configuration']}: {row['median change of the TO-score']} "
        f"({row['change of path settings']})"
        for row in agg
    ]
    budget["claims"].append(
        "Path settings check (same minima, TO-score change): " + "; ".join(text) + "."
    )
    budget["claims"] += _best_trends(best)


def _best_trends(best) -> list[str]:
    """Spearman trend of the best TO-score along depth or width where 3+ values exist."""
    out = []
    for by in ("depth", "width"):
        fams: dict[str, list] = {}
        for c, to in best:
            fams.setdefault(R._group(c, (f"model.{by}",)), []).append((getattr(c.model, by), to))
        for key, pts in fams.items():
            if len({x for x, _ in pts}) < 3:
                continue
            c = next(c for c, _ in best if R._group(c, (f"model.{by}",)) == key)
            lab = f"{c.data.name} {c.model.arch}" + (
                f" width {c.model.width}" if by == "depth" else f" depth {c.model.depth}"
            )
            res = R._corr([x for x, _ in pts], [t for _, t in pts])
            means = {x: np.mean([t for y, t in pts if y == x]) for x in sorted({x for x, _ in pts})}
            out.append(
                f"Best TO-score over path settings vs {by} ({lab}): "
                + ", ".join(f"{by} {x}: {fmt(m)}" for x, m in means.items())
                + f"; {verdict(res, True)}."
            )
    return out
