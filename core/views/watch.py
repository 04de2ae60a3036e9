"""Watch the engine: one pair's min-max path, optimised step by step, on a 2-D toy.

``core.engine.paths.connect`` relaxes a chain between two minima until its highest point (the
climbing point) sits on the saddle. Calling it on one pair with growing step caps
(``PathOptions(steps=k)``, the analytic options of ``core.engine.options.ANALYTIC``) gives
the chain as it was after k steps, without changing the engine: in 2-D each call takes
milliseconds. The last snapshot has no cap other than the analytic options' own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.engine.evaluate import values_of
from core.engine.options import ANALYTIC, PathOptions
from core.engine.paths import connect
from core.views.learn import Flood

CAPS = (1, 3, 10, 30, 100)  # step caps of the snapshots before the final one


@dataclass(frozen=True)
class Snapshot:
    """The chain of one pair after at most ``cap`` steps."""

    cap: int | None  # the step cap; None: the analytic options' own (the final path)
    steps: int  # steps taken
    points: np.ndarray  # (N, 2) the chain, endpoints included
    profile: np.ndarray  # (N,) f at each point of the chain
    saddle: float  # connect's saddle estimate for this chain
    status: str  # connect's status: "converged", "no barrier" or "step cap"

    @property
    def climb(self) -> np.ndarray:
        """(2,) the climbing point: the chain's highest point."""
        return self.points[int(np.argmax(self.profile))]


def snapshots(fn, a, b, caps=CAPS) -> list[Snapshot]:
    """The path from ``a`` to ``b`` (each (2,)) after each of ``caps`` steps, then final."""
    minima = torch.as_tensor(np.stack([a, b]), dtype=torch.float64)  # (2, 2)
    out = []
    for cap in (*caps, None):
        opts = dict(ANALYTIC["paths"]) | ({} if cap is None else {"steps": int(cap)})
        paths = connect(fn, minima, np.array([[0, 1]]), PathOptions(**opts))
        pts = paths.points[0].detach().double()  # (N, 2)
        profile = values_of(fn, pts).double().cpu().numpy()
        out.append(
            Snapshot(
                cap,
                int(paths.steps[0]),
                pts.cpu().numpy(),
                profile,
                float(paths.saddles[0]),
                str(paths.status[0]),
            )
        )
    return out


def exact_saddle(flood: Flood, a: int, b: int) -> float:
    """The level where the pools of the flood's minima ``a`` and ``b`` meet: the exact
    (grid) min-max saddle between them."""
    if a == b:
        raise ValueError(f"a and b must be two minima, got {a} twice")
    for e in range(1, len(flood.owners)):
        own = flood.owners[e]
        if own[a] >= 0 and own[a] == own[b]:
            return float(flood.marks[e - 1])
    return float("inf")
