"""The Learn page's noisy particles: how often noise carries a particle out of each pool.

``core.engine.escape.toy_escape`` throws R noisy particles from every minimum that the engine
finds on a 2-D toy and counts, per minimum, the settled ones that escaped its basin. The Learn
page names minima by age on the exact grid (``core.views.learn.Flood``); ``match_minima``
pairs each of those with the engine's minimum at the same place, so a count sits beside the
bar of the same letter and colour.

The end points are drawn too: ``end_points`` repeats the experiment's moves (the same noisy
steps from the same seed, then the same descent) and the basin rule's verdict per particle
(``core.engine.escape.classify``), so the picture counts exactly what the table says.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.engine.escape import EscapeResult, classify, descend, langevin, thresholds, toy_escape
from core.engine.landscape import Landscape
from core.engine.toy import get_toy
from core.views.learn import Flood

NOISES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # the page's noise scales
REPEATS = 50  # particles per minimum on the page
NEAR = 0.02  # an engine minimum matches a grid minimum within this share of the box's side


@dataclass(frozen=True)
class Particles:
    """Noisy particles thrown from every minimum of a toy, counted per minimum of its flood."""

    noise: float  # the noise scale of the Langevin steps
    result: EscapeResult  # toy_escape's counts, by engine vertex
    vertex: np.ndarray  # (K,) int, the engine vertex of the flood's minimum k; -1: none found
    start: np.ndarray  # (T,) int, the flood minimum each particle started at (-1: unmatched)
    ends: np.ndarray  # (T, 2) each particle's end point after the noise and the descent
    escaped: np.ndarray  # (T,) bool, the basin rule's verdict per particle

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(K,) escaped, (K,) settled and (K,) escape probability for the flood's minima
        (-1, -1 and nan where no engine minimum matched)."""
        ok, v = self.vertex >= 0, np.maximum(self.vertex, 0)
        escaped = np.where(ok, self.result.escaped[v], -1)
        settled = np.where(ok, self.result.settled[v], -1)
        return escaped, settled, np.where(ok, self.result.probability[v], np.nan)


def match_minima(grid: np.ndarray, engine: np.ndarray, near: float) -> np.ndarray:
    """(K,) int: for each grid minimum (K, 2) the nearest engine minimum (J, 2) within
    ``near``, each engine minimum used once at most (nearest pairs first); -1: none."""
    grid, engine = np.asarray(grid, np.float64), np.asarray(engine, np.float64)
    out = np.full(len(grid), -1, dtype=np.int64)
    if not len(grid) or not len(engine):
        return out
    dist = np.linalg.norm(grid[:, None] - engine[None], axis=2)  # (K, J)
    used = np.zeros(len(engine), dtype=bool)
    for flat in np.argsort(dist, axis=None):
        k, j = np.unravel_index(flat, dist.shape)
        if dist[k, j] > near:
            break
        if out[k] < 0 and not used[j]:
            out[k], used[j] = j, True
    return out


def end_points(land: Landscape, res: EscapeResult, fn) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) end points and (T,) escaped flags of ``res``'s particles, T = K * R (row
    k * R + r from engine vertex k): the moves of ``langevin_escape`` with its settings."""
    s = res.settings
    minima = land.minima.thetas
    starts = minima.repeat_interleave(res.repeats, dim=0)  # (K * R, 2)
    moved = langevin(fn, starts, lr=s["lr"], noise=s["noise"], steps=s["steps"], seed=s["seed"])
    ends = descend(fn, moved, lr=s["lr"], steps=s["descent_steps"])
    start = np.repeat(np.arange(len(minima)), res.repeats)
    out = classify(fn, ends, start, minima, thresholds(land.barcode), points=s["points"])
    return ends.detach().double().cpu().numpy(), out.escaped


def flood_to_engine(name: str, flood: Flood, thetas) -> np.ndarray:
    """(K,) the engine minimum (a row of ``thetas`` (J, 2)) at each of ``flood``'s minima,
    -1 where none lies within ``NEAR`` of the toy's box side (``match_minima``)."""
    toy = get_toy(name)
    side = float(toy.box[1] - toy.box[0])
    return match_minima(flood.minima, np.asarray(thetas, np.float64), NEAR * side)


def throw_particles(name: str, flood: Flood, noise: float, *, repeats: int = REPEATS) -> Particles:
    """``toy_escape(name, noise=noise, repeats=repeats)``, its end points, and its minima
    matched to ``flood``'s (the flood of the same toy)."""
    land, res = toy_escape(name, noise=noise, repeats=repeats)
    ends, escaped = end_points(land, res, get_toy(name).fn)
    vertex = flood_to_engine(name, flood, land.minima.thetas.double().cpu().numpy())
    of_vertex = np.full(len(land.minima.thetas), -1, dtype=np.int64)
    of_vertex[vertex[vertex >= 0]] = np.flatnonzero(vertex >= 0)
    start = np.repeat(of_vertex, res.repeats)
    return Particles(float(noise), res, vertex, start, ends, np.asarray(escaped, bool))
