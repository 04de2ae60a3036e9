"""The sections of a sweep report: each adds text, tables and figures to a ``Doc`` and
returns the numbers its verdict needs. Numbers come from ``core.report.numbers`` and
``core.views.uncertainty``; figures from ``core.views.plots``.

One module per part of the report: ``summary`` (introduction, verdicts, set-up),
``observations``, ``symmetry`` (Observation 1 modulo permutation symmetry), ``budget``,
``resolution``; ``common`` holds what they share.
"""

from core.report.sections.budget import budget, claims
from core.report.sections.observations import observation1, observation2, regimes
from core.report.sections.resolution import best_barcode, resolution, uncertainty
from core.report.sections.summary import how_to, intro, scale_note, setup, verdicts
from core.report.sections.symmetry import observation1_aligned

__all__ = [
    "best_barcode",
    "budget",
    "claims",
    "how_to",
    "intro",
    "observation1",
    "observation1_aligned",
    "observation2",
    "regimes",
    "resolution",
    "scale_note",
    "setup",
    "uncertainty",
    "verdicts",
]
