"""A sweep report as a document: Markdown (and HTML) with tables, figures and verdicts.

``build_report(store, sweep_ids)`` reads the sweeps' runs, computes every number through
``core.report.numbers`` and ``core.views.uncertainty``, and returns a ``Doc``;
``write_report`` writes it as ``<name>.md`` (and ``<name>.html``) with figures under
``figures/`` as PNG and SVG.
Every sentence that states a result is generated from the numbers, so regenerating the
report after more runs can never leave a stale claim behind.
"""

from __future__ import annotations

import html
import logging
import math
import os
import platform
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.runs.files import atomic_write
from core.runs.store import RunStore
from core.runs.sweep import load_sweep

log = logging.getLogger(__name__)

__all__ = ["Doc", "build_report", "load_sweep_runs", "write_report"]

ALPHA = 0.05  # significance level of every verdict


def fmt(v: Any, digits: int = 4) -> str:
    """Numbers for tables: 4 significant digits, NaN as '-', booleans as yes/no."""
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        if math.isnan(v):
            return "-"
        if math.isinf(v):
            return "inf"
        return f"{v:.{digits}g}"
    return str(v)


@dataclass
class Doc:
    """Blocks of a document: ("h", level, text), ("p", text), ("table", rows, caption),
    ("figure", name, caption); figures by name."""

    blocks: list[tuple] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def table(self, rows: Sequence[dict[str, Any]], caption: str = "") -> None:
        if rows:
            self.blocks.append(("table", list(rows), caption))

    def figure(self, name: str, fig, caption: str) -> None:
        self.figures[name] = fig
        self.blocks.append(("figure", name, caption))

    def markdown(self, images: Sequence[str] = ("png", "svg")) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"{'#' * b[1]} {b[2]}")
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {x}" for x in b[1]))
            elif b[0] == "table":
                cols = list(dict.fromkeys(k for r in b[1] for k in r))
                lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
                lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in b[1]]
                out.append(("*" + b[2] + "*\n\n" if b[2] else "") + "\n".join(lines))
            elif b[0] == "figure":
                name, cap = b[1], b[2]
                if images:
                    links = ", ".join(f"[{e.upper()}](figures/{name}.{e})" for e in images)
                    out.append(f"![{cap}](figures/{name}.{images[0]})\n\n*{cap}* ({links})")
                else:
                    out.append(f"*Figure {name}: {cap}* (not exported)")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        out, first = [], True
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{html.escape(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in b[1]) + "</ul>")
            elif b[0] == "table":
                cols = list(dict.fromkeys(k for r in b[1] for k in r))
                head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
                body = "".join(
                    "<tr>"
                    + "".join(f"<td>{html.escape(fmt(r.get(c, '')))}</td>" for c in cols)
                    + "</tr>"
                    for r in b[1]
                )
                cap = f"<caption>{html.escape(b[2])}</caption>" if b[2] else ""
                out.append(f"<table>{cap}<tr>{head}</tr>{body}</table>")
            elif b[0] == "figure":
                fig = self.figures[b[1]]
                out.append(fig.to_html(full_html=False, include_plotlyjs=first))
                out.append(f"<p><em>{html.escape(b[2])}</em></p>")
                first = False
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:auto}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
            "padding:2px 6px;font-size:90%}caption{text-align:left;font-style:italic}"
        )
        return (
            f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style>"
            f"</head><body>{''.join(out)}</body></html>"
        )


def _inline(text: str) -> str:
    """Markdown's `code` and *emphasis* as HTML, everything else escaped."""
    t = html.escape(text)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*([^*\s][^*]*)\*", r"<em>\1</em>", t)


def load_sweep_runs(store: RunStore, sweep_ids: Sequence[str]):
    """(sweep records, finished runs in sweep order, ids of runs not finished)."""
    from core.runs.store import read_run

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


def _verdict(res, want_negative: bool | None) -> str:
    """'decreases' / 'increases' / 'no significant trend' from a CorrelationResult."""
    if res is None or not np.isfinite(res.spearman):
        return "not testable (constant or fewer than 3 runs)"
    sig = res.spearman_p_perm < ALPHA
    if want_negative is None:
        sign = "positively" if res.spearman > 0 else "negatively"
        word = f"{sign} related" if sig else "no significant relation"
        return (
            f"{word} (Spearman rho = {res.spearman:.2f}, permutation p = "
            f"{res.spearman_p_perm:.3g}, n = {res.n})"
        )
    word = "decreases" if res.spearman < 0 else "increases"
    return (word if sig else "no significant trend") + (
        f" (Spearman rho = {res.spearman:.2f} [{res.spearman_ci[0]:.2f}, "
        f"{res.spearman_ci[1]:.2f}], permutation p = {res.spearman_p_perm:.3g}, n = {res.n})"
    )


def _corr_row(name: str, res) -> dict[str, Any]:
    if res is None:
        return {"test": name, "n": 0}
    return {
        "test": name,
        "n": res.n,
        "Pearson r": res.pearson,
        "r 95% CI": f"[{res.pearson_ci[0]:.2f}, {res.pearson_ci[1]:.2f}]",
        "p (r, perm.)": res.pearson_p_perm,
        "Spearman rho": res.spearman,
        "rho 95% CI": f"[{res.spearman_ci[0]:.2f}, {res.spearman_ci[1]:.2f}]",
        "p (rho, perm.)": res.spearman_p_perm,
    }


def build_report(
    store: RunStore,
    sweep_ids: Sequence[str],
    *,
    title: str = "Reproduction of the paper's two observations",
    subsamples: int = 5,
    fraction: float = 0.5,
    budgets: Sequence[int] = (100, 300),
    command: str = "",
    progress: Callable[[str], None] | None = None,
) -> Doc:
    """The whole report for the runs of ``sweep_ids`` (see the module docstring)."""
    from core.report import sections as S

    say = progress or (lambda s: log.info(s))
    records, runs, missing = load_sweep_runs(store, sweep_ids)
    if not runs:
        raise ValueError(f"sweeps {', '.join(sweep_ids)} have no finished runs yet")
    head, body = Doc(), Doc()
    head.h(1, title)
    S.intro(head, records, runs, missing, command)
    S.how_to(head, records, str(store.root))
    say("observation 1")
    obs1 = S.observation1(body, runs, [s for r in records for s in r.specs])
    say("budget curves")
    budget = S.budget(body, runs, budgets, obs1)
    say("observation 2")
    obs2 = S.observation2(body, runs)
    S.regimes(body, runs)
    S.claims(body, runs, obs1, budget)
    S.resolution(body, runs, budget)
    say("uncertainty")
    S.uncertainty(body, runs, subsamples, fraction, say)
    S.setup(body, records, runs, missing)
    summary = S.verdicts(obs1, obs2, budget, runs)
    return Doc(
        head.blocks + summary.blocks + body.blocks, head.figures | summary.figures | body.figures
    )


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
    from core.views.export import figure_bytes

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


def machine() -> str:
    import torch

    return (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
