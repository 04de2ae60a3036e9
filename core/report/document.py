"""A sweep report as a document: Markdown (and HTML) with tables, figures and verdicts.

``build_report(store, sweep_ids)`` reads the sweeps' runs, computes every number through
``core.report.numbers`` and ``core.views.uncertainty``, and returns a ``Doc``;
``write_report`` writes it as ``<name>.md`` (and ``<name>.html``) with figures under
``figures/`` as PNG and SVG. ``sweep_verdicts(store, sweep_ids)`` gives the report's verdict
sentences alone (its Summary and the Escapability claims) from the same section functions,
without the costly uncertainty section, for the dashboard's Sweeps page.
Every sentence that states a result is generated from the numbers, so regenerating the
report after more runs can never leave a stale claim behind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from core.report import sections as S
from core.report.doc import Doc
from core.report.sections.escapability import escapability
from core.runs.files import atomic_write
from core.runs.store import RunStore, read_run
from core.runs.sweep import load_sweep
from core.views.export import figure_bytes

log = logging.getLogger(__name__)

__all__ = ["build_report", "load_sweep_runs", "sweep_verdicts", "verdict_markdown", "write_report"]

BUDGETS = (100, 300)  # path-step budgets of the budget section


def load_sweep_runs(store: RunStore, sweep_ids: Sequence[str]):
    """(sweep records, finished runs in sweep order, ids of runs not finished)."""

    records = [load_sweep(store, s) for s in sweep_ids]
    ids = list(dict.fromkeys(i for r in records for i in r.run_ids))
    runs, missing = [], []
    for i in ids:
        try:
            r = read_run(store, i)
        except ValueError:
            missing.append(i)
            continue
        (runs if r.barcode is not None else missing).append(r if r.barcode is not None else i)
    return records, runs, missing


def build_report(
    store: RunStore,
    sweep_ids: Sequence[str],
    *,
    title: str = "Reproduction of the paper's two observations",
    subsamples: int = 5,
    fraction: float = 0.5,
    budgets: Sequence[int] = BUDGETS,
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> Doc:
    """The whole report for the runs of ``sweep_ids`` (see the module docstring)."""

    say = progress or (lambda s: log.info(s))
    records, runs, missing = load_sweep_runs(store, sweep_ids)
    if not runs:
        raise ValueError(f"sweeps {', '.join(sweep_ids)} have no finished runs yet")
    head, body = Doc(), Doc()
    head.h(1, title)
    S.intro(head, records, runs, missing, command)
    S.how_to(head, records, str(store.root))
    specs = [s for r in records for s in r.specs]
    obs1, sym, budget, obs2, _ = _observations(body, store, runs, specs, budgets, say)
    S.resolution(body, runs, budget)
    say("uncertainty")
    S.uncertainty(body, runs, subsamples, fraction, say)
    S.setup(body, records, runs, missing)
    summary = S.verdicts(obs1, obs2, budget, runs, sym)
    return Doc(
        head.blocks + summary.blocks + body.blocks, head.figures | summary.figures | body.figures
    )


def _observations(doc: Doc, store: RunStore, runs, specs, budgets, say):
    """The sections whose numbers the verdicts come from, in the report's order: Observation 1
    (raw and modulo symmetry), the budget curves, Observation 2, the regimes, Escapability,
    the prototype's claims.
    Returns (obs1, symmetry, budget, obs2, escapability) as the sections return them."""
    say("observation 1")
    obs1 = S.observation1(doc, runs, specs)
    say("observation 1 modulo symmetry")
    sym = S.observation1_aligned(doc, runs, specs)
    say("budget curves")
    budget = S.budget(doc, runs, budgets, obs1)
    say("observation 2")
    obs2 = S.observation2(doc, runs)
    S.regimes(doc, runs)
    say("escapability")
    esc = escapability(doc, store, runs)
    S.claims(doc, runs, obs1, budget)  # adds the prototype's claims 2 and 3 to budget's
    return obs1, sym, budget, obs2, esc


def sweep_verdicts(
    store: RunStore, sweep_ids: Sequence[str], *, budgets: Sequence[int] = BUDGETS
) -> Doc:
    """The report's verdicts for the finished runs of ``sweep_ids``: its Summary section (the
    same ``sections.verdicts`` over the same section results as ``build_report``) and the
    Escapability section's claims; ValueError when no run has finished."""
    records, runs, missing = load_sweep_runs(store, sweep_ids)
    if not runs:
        raise ValueError(f"sweeps {', '.join(sweep_ids)} have no finished runs yet")
    specs = [s for r in records for s in r.specs]
    obs1, sym, budget, obs2, esc = _observations(
        Doc(), store, runs, specs, budgets, lambda s: log.debug(s)
    )
    out = S.verdicts(obs1, obs2, budget, runs, sym)
    out.p("Escapability:")
    out.bullets(esc["claims"])
    if missing:
        out.p(f"{len(missing)} runs of the sweep are not finished and are left out.")
    return out


def verdict_markdown(store: RunStore, sweep_id: str) -> str:
    """``sweep_verdicts`` of one sweep as Markdown, without the Summary heading (the Sweeps
    page shows it under its own)."""
    doc = sweep_verdicts(store, [sweep_id])
    return Doc([b for b in doc.blocks if b[0] != "h"]).markdown(images=()).strip()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file atomically (the run store's writer: a temporary file, then a rename)."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_report(
    doc: Doc,
    out: str | os.PathLike,
    *,
    name: str = "REPRODUCTION",
    formats: Sequence[str] = ("md",),
    images: Sequence[str] = ("png", "svg"),
) -> list[Path]:
    """Write ``<out>/<name>.md`` (and ``.html``) and ``<out>/figures/*``; return the paths."""

    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    written = []
    for fig_name, fig in doc.figures.items():
        for ext in images:
            p = out / "figures" / f"{fig_name}.{ext}"
            write_bytes_atomic(p, figure_bytes(fig, ext, width=1000, height=560))
            written.append(p)
    if "md" in formats:
        p = out / f"{name}.md"
        write_bytes_atomic(p, doc.markdown(images).encode())
        written.append(p)
    if "html" in formats:
        p = out / f"{name}.html"
        write_bytes_atomic(p, doc.html().encode())
        written.append(p)
    return written
