"""Sweeps as the dashboard shows them: how far each is, its TO-score curves, its time left.

Everything is read from the run store (the sweep file's run ids, each run's last finished
stage), so a sweep started from the CLI shows as well as one started from a page; the only
outside fact is which runs are being computed right now. ``grid_spec`` turns the page's grid
inputs into a ``SweepSpec`` (a sweep's report verdicts come from ``core.report``, which sits
above this layer). Nothing here imports streamlit.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.runs.config import RunConfig
from core.runs.presets import PRESETS, get_preset
from core.runs.store import RunInfo, RunStore
from core.runs.sweep import SweepRecord, SweepSpec, expand, parse_list
from core.views.dashboard import sweep_rows, to_score_series
from core.views.plots import to_score_figure
from core.views.progress import Rates, run_seconds, stage_costs


def preset_label(name: str) -> str:
    """How pickers name a preset (a module function: a widget's format_func must pickle)."""
    return f"{name}: {PRESETS[name].description}"


GRID_BASE = get_preset("tiny").specs[0].base  # a grid's settings besides its axes: seconds a run


def grid_spec(
    dataset: str,
    arch: str,
    widths: str,
    depths: str,
    seeds: str,
    base: RunConfig = GRID_BASE,
) -> SweepSpec:
    """The grid every (width, depth, seed) of the comma-separated ``widths``, ``depths`` and
    ``seeds`` spans for one ``dataset`` and ``arch``, the rest from ``base``; ValueError
    naming the bad value (``"widths='4, x': 'x' is not a valid int"``)."""
    axes = {
        name: parse_list(text, int, name)
        for name, text in (("widths", widths), ("depths", depths), ("seeds", seeds))
    }
    return SweepSpec(base=base, datasets=(dataset,), archs=(arch,), **axes)


def grid_name(spec: SweepSpec) -> str:
    """``grid digits mlp w4,8 d1,2 s0``: a grid sweep's name in the store."""

    def join(v) -> str:
        return ",".join(map(str, v))

    data, arch = spec.datasets[0], spec.archs[0]
    return f"grid {data} {arch} w{join(spec.widths)} d{join(spec.depths)} s{join(spec.seeds)}"


@dataclass(frozen=True)
class SweepStatus:
    """How many of a sweep's runs are in each state (they add up to ``total``)."""

    sweep_id: str
    name: str
    total: int
    finished: int  # results stored
    running: int  # being computed now
    failed: int  # the last try raised (and it is not finished since)
    missing: int  # not started, or stopped part-way (resumable)

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0


def run_states(
    rec: SweepRecord, stages: Mapping[str, str], running: Collection[str]
) -> dict[str, str]:
    """Run id -> "finished", "running", "failed" or "missing", for every run of the sweep.

    ``stages``: run id -> its last finished stage in the store (``RunStore.stage``);
    ``running``: the run ids being computed now.
    """
    out = {}
    for rid in rec.run_ids:
        if stages.get(rid) == "results":
            out[rid] = "finished"
        elif rid in running:
            out[rid] = "running"
        elif rid in rec.errors:
            out[rid] = "failed"
        else:
            out[rid] = "missing"
    return out


def sweep_status(
    rec: SweepRecord, stages: Mapping[str, str], running: Collection[str]
) -> SweepStatus:
    states = list(run_states(rec, stages, running).values())
    return SweepStatus(
        rec.sweep_id,
        rec.name,
        len(states),
        *(states.count(s) for s in ("finished", "running", "failed", "missing")),
    )


def store_stages(store: RunStore, run_ids: Sequence[str]) -> dict[str, str]:
    """Run id -> last finished stage ("none" for a run with no folder yet)."""
    return {rid: store.stage(rid) for rid in run_ids}


def sweep_table(statuses: Sequence[SweepStatus], records: Sequence[SweepRecord]) -> list[dict]:
    """One row per sweep for the Sweeps page's table."""
    rows = []
    for s, rec in zip(statuses, records, strict=True):
        rows.append(
            {
                "sweep": s.sweep_id,
                "name": s.name or "(no name)",
                "runs": s.total,
                "finished": s.finished,
                "running": s.running,
                "failed": s.failed,
                "missing": s.missing,
                "computed for (s)": round(rec.compute_seconds, 1),
            }
        )
    return rows


def _series_label(spec: SweepSpec, by: str) -> str:
    b = spec.base
    fixed = f"depth {b.model.depth}" if by == "width" else f"width {b.model.width}"
    if by == "width" and len(spec.depths) == 1:
        fixed = f"depth {spec.depths[0]}"
    if by == "depth" and len(spec.widths) == 1:
        fixed = f"width {spec.widths[0]}"
    archs = "/".join(spec.archs) or b.model.arch
    data = "/".join(spec.datasets) or b.data.name
    return f"{data} {archs}, {fixed}"


@dataclass(frozen=True)
class Curves:
    """TO-score against ``by`` for the sweep's grids that vary ``by``: (S, X) arrays over
    the union of their x values, NaN where a grid has no finished run at an x yet.

    A grid with aligned runs (``paths.align``) has a second series, its aligned landscape's
    TO-score: ``aligned[s]`` says which series are, ``colors[s]`` is the grid's number, the
    same for a grid's raw and aligned series (draw them in one colour, the aligned dashed)."""

    by: str
    xs: list[int]
    means: np.ndarray
    los: np.ndarray
    his: np.ndarray
    labels: list[str]
    n_runs: int  # finished runs drawn
    aligned: list[bool] = field(default_factory=list)
    colors: list[int] = field(default_factory=list)


ALIGNED_LABEL = "aligned (modulo permutations)"


def curves_figure(curves: Curves, x_label: str, y_label: str):
    """The TO-score curves as a figure: one colour per grid, its aligned series dashed; a
    log width axis where the widths span a factor of 4 or more."""
    xs = curves.xs
    return to_score_figure(
        xs,
        curves.means,
        curves.los,
        curves.his,
        x_label=x_label,
        y_label=y_label,
        series_labels=curves.labels,
        colors=curves.colors,
        dashed=curves.aligned,
        log_x=curves.by == "width" and len(xs) > 1 and xs[-1] >= 4 * xs[0] > 0,
    )


def _on_grid(rows, by: str, kind: str, xs: list[int], aligned: bool) -> np.ndarray | None:
    """(3, X) mean, min, max of the rows' TO-score at each of ``xs`` (NaN where none); None
    when no row has one (with ``aligned``: no row of an aligned run)."""
    out = np.full((3, len(xs)), np.nan)
    if not rows:
        return None
    series = to_score_series(rows, by, kind, aligned=aligned)
    if not series[0]:
        return None
    for x, *stats in zip(*series, strict=True):
        out[:, xs.index(x)] = stats
    return out


def _curves(by, xs, groups, n_runs, kind) -> Curves:
    """Curves from ``groups``: (label, finished rows) per grid; a raw series for each, and an
    aligned series after it for each grid with aligned runs."""
    series, labels, aligned, colors = [], [], [], []
    for g, (label, rows) in enumerate(groups):
        for al in (False, True):
            stats = _on_grid(rows, by, kind, xs, al)
            if stats is None and al:
                continue
            series.append(np.full((3, len(xs)), np.nan) if stats is None else stats)
            labels.append(f"{label}, {ALIGNED_LABEL}" if al else label)
            aligned.append(al)
            colors.append(g)
    means, los, his = (np.array([s[i] for s in series]).reshape(-1, len(xs)) for i in range(3))
    return Curves(by, xs, means, los, his, labels, n_runs, aligned, colors)


def sweep_curves(
    rec: SweepRecord, infos: Mapping[str, RunInfo], by: str, kind: str = "sum"
) -> Curves | None:
    """The TO-score curves vs ``by`` ("width" or "depth") from the sweep's finished runs
    (``infos``: run id -> RunInfo of the stored runs); one series per grid of the sweep
    whose ``by`` axis has two values or more, seeds averaged (band: their range), and for a
    grid with aligned runs a second series of their aligned TO-scores. None when no grid
    varies ``by``."""
    axis = {"width": "widths", "depth": "depths"}.get(by)
    if axis is None:
        raise ValueError(f"by must be 'width' or 'depth', got {by!r}")
    grids = [s for s in rec.specs if len(getattr(s, axis)) > 1]
    if not grids:
        return None
    xs = sorted({int(v) for s in grids for v in getattr(s, axis)})
    groups = []
    for spec in grids:
        done = [infos[c.run_id] for c in expand(spec) if c.run_id in infos]
        groups.append((_series_label(spec, by), sweep_rows(done)))  # the finished ones
    return _curves(by, xs, groups, sum(len(rows) for _, rows in groups), kind)


def rows_curves(rows: Sequence[dict], by: str, kind: str = "sum", label: str = "") -> Curves:
    """TO-score vs ``by`` of a list of ``sweep_rows`` (the Compare page's chosen runs): one
    series, and a second of the aligned TO-scores when some rows have them."""
    if by not in ("width", "depth"):
        raise ValueError(f"by must be 'width' or 'depth', got {by!r}")
    xs = sorted({int(r[by]) for r in rows})
    return _curves(by, xs, [(label or f"TO-score ({kind})", list(rows))], len(rows), kind)


def sweep_seconds_left(
    configs: Sequence[RunConfig],
    states: Mapping[str, str],
    rates: Rates,
    current_left: float | None = None,
) -> float | None:
    """Seconds until every run of ``configs`` that is not finished is: the running run's
    ``current_left`` (or its whole cost) plus the others' at ``rates``, one after another.
    None when the cost model cannot count one of them."""
    total = 0.0
    for c in configs:
        state = states.get(c.run_id, "missing")
        if state == "finished":
            continue
        if state == "running" and current_left is not None:
            total += current_left
            continue
        costs = stage_costs(c)
        if costs is None:
            return None
        total += run_seconds(costs, rates)
    return total
