"""The engine against exact answers: barcodes of analytic 2-D landscapes.

On a toy landscape the exact H0 barcode is known (sublevel persistence of a fine grid, see
``core.engine.toy``), so the engine's estimate from sampled minima and optimised paths can be
checked bar by bar. The criterion used by the tests and ``python -m core toy NAME``:

- significant bars are those longer than ``0.5%`` of the landscape's value range;
- the engine and the exact barcode have the same number of significant bars (none missing,
  none spurious);
- the bottleneck distance between the two sets of significant finite bars is at most
  ``1%`` of the value range.
"""

from __future__ import annotations

from dataclasses import dataclass

import gudhi
import numpy as np

from core.engine.landscape import Landscape, landscape_of
from core.engine.options import ANALYTIC
from core.engine.toy import ExactBars, exact_barcode, get_toy, starts_grid

SIGNIFICANT = 0.005  # bars longer than this fraction of the value range are compared
TOLERANCE = 0.01  # allowed bottleneck distance, as a fraction of the value range

TOY_MINIMA, TOY_PATHS = ANALYTIC["minima"], ANALYTIC["paths"]


def _path_counts(p) -> str:
    """'33 converged by force (33 certified), 3 no barrier, 0 at the step cap; 14 joined ...'."""
    n = {k: int((p.status == k).sum()) for k in ("converged", "no barrier", "step cap")}
    certified = 0 if p.certified is None else int(p.certified.sum())
    joined = 0 if p.via is None else int((p.via >= 0).sum())
    return (
        f"{n['converged']} converged by force ({certified} certified), {n['no barrier']} no "
        f"barrier, {n['step cap']} at the step cap; {joined} joined through a third minimum"
    )


@dataclass
class ToyComparison:
    name: str
    landscape: Landscape
    exact: ExactBars
    engine_bars: np.ndarray  # (S, 2) significant finite (birth, death) of the engine
    exact_bars: np.ndarray  # (S', 2) the same for the exact barcode
    bottleneck: float
    value_range: float

    @property
    def ok(self) -> bool:
        return (
            len(self.engine_bars) == len(self.exact_bars)
            and self.bottleneck <= TOLERANCE * self.value_range
        )

    def report(self) -> str:
        """A plain-text table of both barcodes and the verdict."""
        lines = [
            f"toy {self.name}: value range {self.value_range:.4g}; significant bars are longer "
            f"than {SIGNIFICANT:.1%} of it",
            f"engine: {len(self.landscape.minima)} minima, {len(self.landscape.paths)} paths: "
            + _path_counts(self.landscape.paths),
            "  engine (birth, death)        exact (birth, death)",
        ]
        for i in range(max(len(self.engine_bars), len(self.exact_bars))):
            a = self.engine_bars[i] if i < len(self.engine_bars) else None
            b = self.exact_bars[i] if i < len(self.exact_bars) else None
            fa = f"({a[0]: .5f}, {a[1]: .5f})" if a is not None else " " * 20
            fb = f"({b[0]: .5f}, {b[1]: .5f})" if b is not None else "-"
            lines.append(f"  {fa:28} {fb}")
        rel = self.bottleneck / self.value_range
        lines.append(
            f"bottleneck distance {self.bottleneck:.3g} = {rel:.3%} of the range "
            f"(allowed {TOLERANCE:.0%}): {'MATCH' if self.ok else 'MISMATCH'}"
        )
        return "\n".join(lines)


def significant(births: np.ndarray, deaths: np.ndarray, value_range: float) -> np.ndarray:
    """(S, 2) finite bars longer than SIGNIFICANT * value_range, by birth."""
    keep = np.isfinite(deaths) & (deaths - births > SIGNIFICANT * value_range)
    bars = np.stack([births[keep], deaths[keep]], 1)
    return bars[np.argsort(bars[:, 0], kind="stable")]


def compare_engine_to_exact(
    name: str, *, n_starts: int = 32, resolution: int = 801, pairs: str = "all", device="cpu"
) -> ToyComparison:
    """Run the engine on toy ``name`` (on ``device``) and compare its barcode with the exact one."""
    toy = get_toy(name)
    if n_starts < 2:
        raise ValueError(f"n_starts must be at least 2, got {n_starts}")
    land = landscape_of(
        toy.fn,
        starts_grid(toy, n_starts).to(device),
        minima=TOY_MINIMA,
        paths=TOY_PATHS | {"pairs": pairs},
    )
    exact = exact_barcode(toy, resolution=resolution)
    vr = exact.value_range
    eng = significant(land.barcode.births, land.barcode.deaths, vr)
    ex = significant(exact.births, exact.deaths, vr)
    dist = gudhi.bottleneck_distance(eng, ex) if len(eng) or len(ex) else 0.0
    return ToyComparison(name, land, exact, eng, ex, float(dist), vr)
