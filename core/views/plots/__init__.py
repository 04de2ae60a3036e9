"""Pure plotly figure builders: arrays and result dataclasses in, ``go.Figure`` out.

No I/O and no streamlit: a notebook, a page and an export all call the same builders. Every
figure has a title, axis titles with units, and (when ``ident`` is given) a small annotation
named "ident" carrying the run's identity, so an exported file says where it came from.
Traces put the minimum index (or the pair (i, j)) in ``customdata[..., 0]`` so that a page
can link a selection (plotly ``on_select``) back to a minimum.

Colours are the same everywhere: ``COLORS`` for roles, ``LOSS_SCALE`` for loss values.

One module per kind of figure: ``barcodes``, ``diagram`` (persistence), ``paths`` (saddle
histories and loss profiles), ``landscape`` (projections and planes), ``stats``,
``rebasin`` (barriers modulo permutation symmetry), ``teaching`` (2-D landscapes); ``frame``
holds what they share. Import the builders from here.
"""

from core.views.plots.barcodes import barcode_figure, barcodes_overlay_figure
from core.views.plots.diagram import diagram_figure
from core.views.plots.frame import (
    COLORS,
    INF,
    LOSS_LABEL,
    LOSS_SCALE,
    SELECTION,
    SERIES,
    ident_of,
)
from core.views.plots.landscape import plane_figure, projection_figure
from core.views.plots.paths import profile_figure, relative_history, saddle_history_figure
from core.views.plots.rebasin import paired_barcode_figures, rebasin_figure
from core.views.plots.stats import generalization_figure, to_score_figure
from core.views.plots.teaching import (
    growing_barcode_figure,
    merge_tree_figure,
    sublevel_figure,
    surface_figure,
)

__all__ = [
    "COLORS",
    "INF",
    "LOSS_LABEL",
    "LOSS_SCALE",
    "SELECTION",
    "SERIES",
    "barcode_figure",
    "barcodes_overlay_figure",
    "diagram_figure",
    "generalization_figure",
    "growing_barcode_figure",
    "ident_of",
    "merge_tree_figure",
    "paired_barcode_figures",
    "plane_figure",
    "profile_figure",
    "projection_figure",
    "rebasin_figure",
    "relative_history",
    "saddle_history_figure",
    "sublevel_figure",
    "surface_figure",
    "to_score_figure",
]
