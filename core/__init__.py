"""Loss-landscape barcodes: H0 persistence of a loss over parameter space.

After Barannikov et al., "Topological obstructions in neural networks learning"
(arXiv 2012.15834). ``from core import barcode_of`` is the whole engine for any batched
objective; the network code (``core.nets.objective``, ``core.runs.pipeline``) builds on it.

Shape letters used in docstrings and comments throughout:

- ``M``: parameter vectors evaluated together (starts, path points, models).
- ``P``: parameters of one vector (a flat ``theta``).
- ``K``: distinct minima after merging duplicates.
- ``E``: pairs of minima (edges of the saddle graph).
- ``N``: points of one path, both endpoints included.
- ``B``: data examples in a (mini)batch.
- ``C``: classes.
"""

from core.engine.barcode import Barcode, barcode_from_graph
from core.engine.landscape import Landscape, barcode_of, landscape_of
from core.engine.options import ANALYTIC, MinimaOptions, PathOptions
from core.nets.module import landscape_of_model

__all__ = [
    "ANALYTIC",
    "Barcode",
    "Landscape",
    "MinimaOptions",
    "PathOptions",
    "barcode_from_graph",
    "barcode_of",
    "landscape_of",
    "landscape_of_model",
]
