"""The report as a document model: blocks of text, tables and figures (``Doc``) rendered as
Markdown or HTML, number formatting, and the verdict words of a statistical test."""

from __future__ import annotations

import html
import math
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

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


def verdict(res, want_negative: bool | None) -> str:
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


def corr_row(name: str, res) -> dict[str, Any]:
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


def machine() -> str:
    """The machine in one line: cores, processor, torch and its threads."""
    return (
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
