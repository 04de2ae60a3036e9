"""Small pure helpers the dashboard needs: run lists, sweeps, estimates.

Everything here is plain Python over ``core`` results, so a notebook can call it too; the
pages only arrange widgets around it. Nothing here imports streamlit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.engine.barcode import barcode_from_graph, graph_matrix
from core.engine.landscape import rounding_tol
from core.engine.options import PROBE_TRUST, RESTART_TRUST
from core.engine.paths import SPLIT, Paths
from core.nets.device import resolve_device
from core.runs.config import RunConfig
from core.runs.pipeline import objectives
from core.runs.record import Run, lower_routes, modulo_barcode
from core.runs.store import RunInfo

STAGES = ("minima", "paths", "barcode")  # the order in which a run reports progress
STAGE_WORDS = {
    "minima": "training minima",
    "paths": "optimizing paths",
    "barcode": "computing the barcode",
}
TO_SCORE_WORDS = {
    "sum": "TO-score (sum): total length of the finite minima segments, sum of (death - birth)",
    "max": "TO-score (max): length of the longest finite minima segment, max of (death - birth)",
}
STATUS_WORDS = {
    "minimum": "a true minimum",
    "stalled": "a stopping point: the loss stopped changing",
    "max_steps": "a stopping point: the step cap was reached",
    "diverged": "diverged",
}
NO_OBSTRUCTION = "no obstruction found: all minima lie in one basin at this resolution"


# ---------------------------------------------------------------------------------------------
# Runs


def run_label(info_or_run: Any) -> str:
    """One line naming a run: ``3f2a... digits mlp w8 d1, 8 minima``."""
    c = info_or_run.config
    starts = (
        f"checkpoints {c.train.checkpoints}"
        if c.train.checkpoints
        else (f"{c.train.minima} starts")
    )
    return f"{info_or_run.run_id}  {c.data.name} {c.model.network}, {starts}"


def _network_columns(r: RunInfo) -> dict[str, Any]:
    """The columns that name a run and its network, first in every table of runs."""
    m = r.config.model
    return {
        "run": r.run_id,
        "dataset": r.config.data.name,
        "architecture": m.factory
        or (m.arch if m.activation == "relu" else f"{m.arch} {m.activation}"),
        "width": m.width,
        "depth": m.depth,
    }


def runs_table(infos: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """One row per saved run, for the home page and the CSV export.

    TO-scores are ``None`` for runs whose barcode is not computed yet.
    """
    rows = []
    for r in infos:
        c, s = r.config, r.summary
        rows.append(
            {
                **_network_columns(r),
                "minima (distinct)": s.n_minima if s else None,
                "starts": c.train.minima,
                "TO-score sum": s.to_score_sum if s else None,
                "TO-score max": s.to_score_max if s else None,
                "stage": "finished" if r.stage == "results" else f"stopped after {r.stage}",
                "date": dt.datetime.fromtimestamp(r.modified).strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows


def no_obstruction(to_score_max: float, tolerance: float) -> bool:
    """True when no minima segment is longer than twice ``tolerance`` (the saddle tolerance):
    a path that rises at most ``tolerance`` above its higher end counts as having no barrier,
    and its final evaluation is accurate to ``tolerance`` again.

    Every bar is then zero at the resolution of the saddle estimates: all the minima found
    connect through paths that climb no measurable barrier.
    """
    return bool(to_score_max <= 2 * tolerance)


def sweep_rows(infos: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """Finished runs as rows of a width/depth sweep (unfinished runs are left out)."""
    rows = []
    for r in infos:
        if r.stage != "results":
            continue
        c, s = r.config, r.summary
        row = {
            **_network_columns(r),
            "seed": c.seed,
            "minima": s.n_minima,
            "true minima": s.n_true_minima,
            "TO-score sum": s.to_score_sum,
            "TO-score max": s.to_score_max,
            "paths converged": f"{s.n_paths_converged} of {s.n_paths}",
        }
        if s.aligned_to_score_sum is not None:  # paths.align: modulo permutation symmetry
            row |= {
                "aligned TO-score sum": s.aligned_to_score_sum,
                "aligned TO-score max": s.aligned_to_score_max,
            }
        rows.append(row)
    return rows


def to_score_series(
    rows: Sequence[dict[str, Any]], by: str, kind: str = "sum", *, aligned: bool = False
) -> tuple[list[int], list[float], list[float], list[float]]:
    """TO-score against ``by`` ("width" or "depth"): mean, min and max over runs at each x.

    Runs that share an x (different seeds or other settings) are summarized by their mean
    and their range (min..max), not by a confidence interval. With ``aligned``, the aligned
    landscape's TO-score (``sweep_rows``' "aligned TO-score" columns) of the rows that have
    one; the others are left out.
    """
    if by not in ("width", "depth"):
        raise ValueError(f"by must be 'width' or 'depth', got {by!r}")
    if kind not in ("sum", "max"):
        raise ValueError(f"kind must be 'sum' or 'max', got {kind!r}")
    column = f"aligned TO-score {kind}" if aligned else f"TO-score {kind}"
    groups: dict[int, list[float]] = {}
    for row in rows:
        if row.get(column) is not None:
            groups.setdefault(int(row[by]), []).append(float(row[column]))
    xs = sorted(groups)
    means = [float(np.mean(groups[x])) for x in xs]
    los = [float(np.min(groups[x])) for x in xs]
    his = [float(np.max(groups[x])) for x in xs]
    return xs, means, los, his


# ---------------------------------------------------------------------------------------------
# One run


def minimum_facts(run: Run, k: int) -> dict[str, Any]:
    """What the dashboard says about minimum ``k`` of a finished run.

    Returns a dict with the segment ``length`` (inf for the essential bar), ``birth``,
    ``death``, ``merges_into`` (-1 when essential), the ``saddle_edge`` pair that killed the
    bar, the descent ``status`` and the train/test numbers.
    """
    b, m, x = run.barcode, run.minima, run.metrics
    if not 0 <= k < len(m):
        raise ValueError(f"minimum={k!r}: must be between 0 and {len(m) - 1}")
    out = {
        "minimum": k,
        "value": float(m.values[k]),
        "status": m.status[k],
        "train_loss": float(x.train_loss[k]),
        "test_loss": float(x.test_loss[k]),
        "train_error": float(x.train_error[k]),
        "test_error": float(x.test_error[k]),
    }
    if b is not None:
        i = int(np.flatnonzero(b.minimum == k)[0])  # bar of minimum k
        out |= {
            "birth": float(b.births[i]),
            "death": float(b.deaths[i]),
            "length": float(b.lengths[i]),
            "merges_into": int(b.merges_into[i]),
            "saddle_edge": tuple(int(v) for v in b.saddle_edge[i]),
        }
    return out


def _pairs(run: Run) -> np.ndarray:
    """(E, 2) the stored paths' pairs; (0, 2) before the paths stage."""
    return run.paths.pairs if run.paths else np.zeros((0, 2), dtype=np.int64)


def pair_index(run: Run, edge: tuple[int, int]) -> int | None:
    """Index of the stored path joining ``edge`` (either order); None if none was computed."""
    pairs = _pairs(run)
    a, b = sorted(edge)
    hit = np.flatnonzero((pairs[:, 0] == a) & (pairs[:, 1] == b))
    return int(hit[0]) if hit.size else None


def pair_labels(run: Run) -> list[str]:
    """ "0 - 3 (saddle 0.1234)" for every stored path, in stored order."""
    pairs, saddles = _pairs(run), run.paths.saddles if run.paths else []
    return [
        f"{a} - {b} (saddle {s:.4g})" for (a, b), s in zip(pairs.tolist(), saddles, strict=True)
    ]


def pairs_of_minimum(run: Run, k: int) -> list[int]:
    """Indices of the stored paths that have minimum ``k`` as an end."""
    pairs = _pairs(run)
    return np.flatnonzero((pairs == k).any(axis=1)).tolist()


def death_kinds(run: Run, aligned: bool = False) -> dict[int, str]:
    """Minimum -> what ends its bar (``core.views.plots.barcodes.DEATH_KINDS``): the status of the
    path whose saddle killed it; of the aligned landscape's bars with ``aligned`` (the raw or
    aligned path, whichever is the pair's lower)."""
    if aligned:  # the lower of each pair's raw and aligned path
        pairs, _, held = lower_routes(run.paths, run.aligned.paths)
        b = run.aligned.barcode
    else:
        pairs, held, b = (
            run.paths.pairs,
            [(run.paths, e) for e in range(len(run.paths))],
            run.barcode,
        )
    row = {
        (min(int(i), int(j)), max(int(i), int(j))): h for h, (i, j) in zip(held, pairs, strict=True)
    }
    out = {}
    for m, d, (i, j) in zip(b.minimum, b.deaths, b.saddle_edge, strict=True):
        h = row.get((min(int(i), int(j)), max(int(i), int(j))))
        if not np.isfinite(d) or h is None:
            continue
        p, e = h
        status = p.status[e]
        out[int(m)] = (
            "no barrier"
            if status == "no barrier"
            else "upper bound (path not converged)"
            if status == "step cap"
            else "certified saddle"
            if p.certified[e]
            else "saddle, not certified"
        )
    return out


def stopping_points(run: Run) -> list[int]:
    """The minima whose descent ended without meeting the gradient-norm criterion (on the
    step cap, or stalled): stopping points, not certified minima. Every view marks them."""
    return np.flatnonzero(~run.minima.converged).tolist()


def stopping_warning(infos: Sequence[Any]) -> str | None:
    """A warning for a comparison of runs when some of them have stopping points (their bars
    start on a slope, so their TO-scores are not comparable); None when all are minima."""
    bad = [r for r in infos if r.summary.n_true_minima < r.summary.n_minima]
    if not bad:
        return None
    each = "; ".join(
        f"{r.run_id} ({r.config.model.network}): {r.summary.n_minima - r.summary.n_true_minima}"
        f" of {r.summary.n_minima}"
        for r in bad
    )
    return (
        f"{len(bad)} of {len(infos)} runs have minima that are only stopping points (the "
        f"descent hit its step cap or stalled above the gradient-norm tolerance): {each}. A "
        "stopping point's bar starts on a slope, not in a basin, so these TO-scores are not "
        "comparable with the others'. Train them longer (more training steps) to compare."
    )


def convergence_words(run: Run) -> list[str]:
    """Sentences on how far the run's numbers can be trusted."""
    s, c = run.summary, run.config
    m = run.minima
    stopped = stopping_points(run)
    lines = [
        f"{s.n_true_minima} of {s.n_minima} distinct minima are true minima "
        f"(gradient norm <= {c.train.grad_tol:g});"
        + (
            f" minima {', '.join(map(str, stopped))} are stopping points (the descent "
            "ended on the step cap or a flat stretch), so their bars are less certain."
            if stopped
            else " all of them are certified."
        ),
        f"{s.n_paths_converged} of {s.n_paths} optimized paths converged by force "
        "(perpendicular force and the climbing point's gradient below the tolerances, on the "
        f"full data), {s.n_paths_no_barrier} joined their minima with no barrier, "
        f"and {s.n_paths_step_cap} stopped at the step cap: their saddles are upper "
        "bounds and the bars they end may be too long.",
        f"{s.n_saddles_certified} saddles are certified index-1 saddles (gradient "
        "below the tolerance and exactly one clearly negative Hessian eigenvalue at the path's "
        "peak); in the barcode, certified deaths are solid, uncertified ones dotted, upper "
        "bounds hatched. A certified saddle is exact for the route its path found, not proof "
        "that no lower route exists: routes across basins of minima that no start reached can "
        "be lower, so every death is an upper bound of the landscape's (more routes: "
        "restarts with other step sizes, `--path-restarts`; neighbour legs, "
        "`--path-neighbours`; the pairs across the passes that end bars at far trust radii, "
        "`--path-probe`).",
    ]
    via = np.full(len(run.paths), -1) if run.paths.via is None else run.paths.via
    joined, split = int((via >= 0).sum()), int((via == SPLIT).sum())
    if joined:
        lines.append(
            f"{joined} paths ran through a third minimum: each stopped there and was joined "
            "from its two legs' paths, so its saddle is the higher of theirs."
        )
    if split:
        lines.append(
            f"{split} paths stopped at the step cap with dips between peaks: each was split at "
            "the minima below its dips (ones that no start reached) and joined from the paths "
            "of its legs between them, which were lower; its saddle is the highest leg's."
        )
    lines += [w for modulo in (False, True) if (w := route_search_words(run, modulo))]
    if s.n_failed:
        why = "; ".join(f"start {k}: {reason}" for k, reason in m.failed.items())
        lines.append(
            f"{s.n_failed} starts diverged and were left out" + (f" ({why})." if why else ".")
        )
    if s.n_paths < s.n_pairs_total:
        lines.append(
            f"{s.n_paths} of {s.n_pairs_total} pairs got an optimized path (pairs = mst): "
            "the others' short screening paths stayed above the route between their minima by "
            "more than any screened path fell when optimized, an empirical rule "
            "(BENCHMARKS.md, pair selection)."
        )
    return lines


RESOLUTION = 0.03  # TO-scores within 3% (or saddle_tol per finite bar) are one reading


def resolution(scores: Sequence[float], saddle_tol: float, finite_bars: int) -> float:
    """The TO-score difference below which two readings agree: 3% of the larger, or
    ``saddle_tol`` times the finite bars, whichever is larger."""
    return max(RESOLUTION * max(scores), saddle_tol * max(finite_bars, 1))


def narrow_to_score(values: Sequence[float], paths: Paths) -> float | None:
    """The TO-score (sum) of minima ``values`` (K,) joined by ``paths`` when every pair takes
    its saddle through the search one step narrower (``Paths.narrowed``: without the probe
    or the last restart, or through the nearer half of the neighbour legs); None where the
    run's search has no narrower step."""
    narrow = paths.narrowed()
    if narrow is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    bars = barcode_from_graph(v, graph_matrix(v, narrow.pairs, narrow.saddles), tol=rounding_tol(v))
    return bars.to_score("sum")


def widening(
    values: Sequence[float], paths: Paths, aligned: Paths | None = None, saddle_tol: float = 0.0
) -> tuple[float, float, bool] | None:
    """How the TO-score (sum) of minima ``values`` (K,) joined by ``paths`` moved in the last
    widening of the route search: (the score one step narrower, the score, whether the two
    agree within ``resolution``); None where the search had no narrower step. With
    ``aligned`` (the paths between the aligned minima), of the barcode modulo the symmetry:
    both sets of paths one step narrower, each pair through the lower of the two
    (``modulo_barcode``)."""
    v = np.asarray(values, dtype=np.float64)
    if aligned is None:
        half = narrow_to_score(v, paths)
        if half is None:
            return None
        full = barcode_from_graph(
            v, graph_matrix(v, paths.pairs, paths.saddles), tol=rounding_tol(v)
        )
    else:
        raw, al = paths.narrowed(), aligned.narrowed()
        if raw is None and al is None:
            return None
        half = modulo_barcode(
            paths if raw is None else raw, aligned if al is None else al, v
        ).to_score("sum")
        full = modulo_barcode(paths, aligned, v)
    bars = int(np.isfinite(full.deaths).sum())
    score = full.to_score("sum")
    return half, score, half - score <= resolution([half, score], saddle_tol, bars)


def route_search(run: Run, modulo: bool = False) -> tuple[float, float, bool] | None:
    """``widening`` of ``run``'s barcode (``modulo``: of its barcode modulo the symmetry);
    None for a run without restarts, neighbour legs or probe, or not aligned when ``modulo``."""
    p = run.config.paths
    if not (p.restarts or p.neighbours or p.probe) or (modulo and run.aligned is None):
        return None
    if modulo:
        return widening(run.aligned.values, run.paths, run.aligned.paths, p.saddle_tol)
    return widening(run.minima.values, run.paths, saddle_tol=p.saddle_tol)


def route_search_words(run: Run, modulo: bool = False) -> str | None:
    """One sentence on whether the last widening of the route search still lowered the
    barcode (``modulo``: the barcode modulo the symmetry), and which setting widens it
    further."""
    found = route_search(run, modulo)
    if found is None:
        return None
    half, full, agree = found
    fall = (half - full) / half if half > 0 else 0.0
    p = run.config.paths
    n, r = p.neighbours, p.restarts
    what = "Route search" + (" modulo the symmetry" if modulo else "")
    wider = (
        f"--path-restarts {r + 1}"
        if r < len(RESTART_TRUST)
        else f"--path-neighbours {max(2 * n, 4)}"
    )
    if p.probe:
        said = (
            f"{what}: without its probe of the passes that end bars (trust radius "
            f"{', '.join(f'x{t:g}' for t in PROBE_TRUST)}) the TO-score is {half:.4g}, with it "
            f"{full:.4g}"
        )
    elif r:
        said = (
            f"{what}: without {'its restart' if r == 1 else f'the last of its {r} restarts'}"
            f" (trust radius x{RESTART_TRUST[r - 1]:g}) the TO-score is {half:.4g}, with it "
            f"{full:.4g}"
        )
    else:
        said = (
            f"{what}: through the nearer {n // 2} of the {n} neighbour legs per minimum "
            f"the TO-score is {half:.4g}, through all {n} {full:.4g}"
        )
        wider = f"--path-neighbours {2 * n} or --path-restarts 1"
    said += f" ({fall:.1%} lower)"
    if agree:
        return said + (
            ", within the stated resolution: widening no longer lowers it, but searches started "
            "with other settings (the trust radius above all) may still find lower routes, so "
            "the bars remain upper bounds."
        )
    return (
        said + ": more than the stated resolution, so the route search has not settled and "
        f"the bars are upper bounds that a wider search may lower ({wider})."
    )


def generalization_points(
    runs: Sequence[Any], gap_kind: str = "loss"
) -> tuple[np.ndarray, np.ndarray, list[str], list[int]]:
    """Segment length and generalization gap of every finite bar of every run.

    Returns ``(lengths, gaps, groups, minima)``: one entry per minimum with a finite bar (the
    global minimum's essential bar has no length); ``groups`` names the run of each point.
    The gap is test minus train: loss (cross-entropy) or error (fraction misclassified).
    """
    if gap_kind not in ("loss", "error"):
        raise ValueError(f"gap_kind must be 'loss' or 'error', got {gap_kind!r}")
    lengths, gaps, groups, minima = [], [], [], []
    for run in runs:
        if run.barcode is None:
            continue
        seg = run.barcode.segment_of()  # (K,) by vertex
        gap = run.metrics.gap(gap_kind)
        for k in np.flatnonzero(np.isfinite(seg)):
            lengths.append(float(seg[k]))
            gaps.append(float(gap[k]))
            groups.append(run.run_id)
            minima.append(int(k))
    return np.asarray(lengths), np.asarray(gaps), groups, minima


def generalization_stopping(runs: Sequence[Any]) -> list[bool]:
    """For every point of ``generalization_points(runs)``, in its order: is its minimum a
    stopping point (``stopping_points``)?"""
    out = []
    for run in runs:
        if run.barcode is None:
            continue
        stop = set(stopping_points(run))
        seg = run.barcode.segment_of()
        out += [int(k) in stop for k in np.flatnonzero(np.isfinite(seg))]
    return out


# ---------------------------------------------------------------------------------------------
# Progress of a run


def remaining_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Time left in a stage at the rate so far; None before the first step is done."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    return max(0.0, elapsed * (total - done) / done)


def format_seconds(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "unknown"
    if s < 60:
        return f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def progress_words(stage: str, done: int, total: int, elapsed: float) -> str:
    """E.g. "optimizing paths: step 300 of 1500, 12 s elapsed, at most about 48 s left"."""
    left = remaining_seconds(elapsed, done, total)
    words = STAGE_WORDS.get(stage, stage)
    cap = " (step cap; converged ones stop early)" if stage in ("minima", "paths") else ""
    est = "estimating..." if left is None else f"at most about {format_seconds(left)} left{cap}"
    return f"{words}: step {done} of {total}, {format_seconds(elapsed)} elapsed, {est}"


def check_runnable(config: RunConfig):
    """The run's objectives (``core.runs.pipeline.objectives``), or ValueError for settings
    that cannot run on this machine, before anything is saved: a ``cuda`` device without
    CUDA, a torchvision dataset that is not on disk and may not be downloaded, a network over
    the size limit. ``core.runs.pipeline.run(config, prepared=...)`` then uses them."""
    return objectives(config, resolve_device(config.device))
