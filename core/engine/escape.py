"""Escapability: how often noisy descent leaves a minimum's basin, against its bar length.

The paper's v3 title calls the barcode "a topological measure of escapability": a minimum with
a short segment should be easy for a noisy optimiser to leave, one with a long segment hard.
This module tests that on any batched objective; ``core.runs.escape`` runs it on a stored
network run with SGD's minibatch noise.

1. From each of the K stored minima start R trajectories, all in one (K * R, P) tensor (row
   ``k * R + r`` starts at minimum k).
2. Move them by noisy steps (``langevin``: Gaussian noise of a given scale; networks: minibatch
   noise), then by a short full-batch gradient descent (``descend``).
3. Decide for every end point whether it left its start's basin (``classify``, rule below).
4. Per minimum: the escape probability with a Wilson 95% interval; over the minima: Spearman's
   rho between bar length and escape probability with a permutation p-value
   (``rank_correlation``; ``pooled_rank_correlation`` over several runs).

**The basin rule.** The basin of minimum k is the connected component holding theta_k of the
sublevel set {L < s_k}, where ``s_k = min_{j != k} S[k, j]`` is the lowest stored saddle from k
to any other stored minimum (``basin_levels``, from the barcode's saddle matrix S): the level at
which k's component first meets another stored minimum's. Below their levels the basins of
two minima are disjoint. For a minimum that absorbs no higher one first (a leaf of the merge
tree) s_k is its death, so ``s_k - b_k`` is its bar length; a minimum that absorbs a higher one
first has a lower exit, and the global minimum's exit is finite although its bar is not.

- A trajectory *stayed* when the loss along the straight segment from its end point x to
  theta_k stays below ``s_k - MARGIN (s_k - b_k)`` (``thresholds``; ``segment_maxima`` reads
  the segment at ``points`` points and again around the highest one): the segment is then a
  path inside {L < s_k}, so x is in k's basin. This is a certificate. The margin (a tenth of
  the exit barrier) keeps a segment that runs over the saddle itself (two minima and their
  saddle on one line) from reading a hair below s_k and counting as a stay.
- A trajectory *settled* when its end point has come to rest in some basin: certified in k's as
  above, in
  another stored minimum j's basin (the segment from it to its nearest other minimum theta_j
  stays below j's threshold: it *arrived* in j), or at least below k's threshold, so that it
  lies in some component of {L < s_k - margin} (k's, or a basin the run did not store). An end
  point whose loss is still at or above k's threshold after the full-batch descent is
  *unsettled*: it is still coming down, and where it ends is not known yet. A trajectory whose
  parameters or loss became non-finite *diverged*.
- It *escaped* when it settled and is not certified in k's basin (rule version ``RULE``).

**The escape probability counts settled trajectories only**: escaped / settled, with unsettled
and diverged ones reported as their own counts and left out of its denominator (a short
descent would otherwise count every slow trajectory as an escape). When most trajectories are
unsettled the result is inconclusive (``EscapeResult.inconclusive``): descend for longer.

Where it can err: a straight segment is one path of many, so an end point in a curved basin
whose segment back crosses a ridge counts as escaped (escape probability overestimated);
stored saddles are upper bounds of the true ones, which makes basins larger (underestimated).
On the analytic 2-D landscapes the tests check the rule against the gradient flow's own basins.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from core.engine.barcode import Barcode
from core.engine.escape_stats import RankCorrelation, rank_correlation, wilson
from core.engine.evaluate import Objective, values_and_grads, values_of

POINTS = 16  # evaluations along each segment, both ends included
SEGMENT_VALUES = 1 << 24  # most parameter values held at once by segment_maxima
MARGIN = 0.1  # the rule's margin below a basin's level, as a fraction of its exit barrier
RULE = 2  # version of the rule, saved in every result: 2 counts settled trajectories only
INCONCLUSIVE = 0.5  # a result is inconclusive when more than this share is unsettled


def check_positive(name: str, value, *, integer: bool = False, zero: bool = False) -> None:
    """ValueError naming ``name`` unless ``value`` is a finite number > 0 (>= 0 with ``zero``),
    an int where ``integer``."""
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value >= 0 if zero else value > 0)):
        what = "an int" if integer else "a finite number"
        raise ValueError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")


# ---------------------------------------------------------------------------------------------
# Dynamics


def langevin(
    objective: Objective,
    thetas: Tensor,
    *,
    lr: float,
    noise: float,
    steps: int,
    seed: int = 0,
) -> Tensor:
    """``steps`` Euler-Maruyama steps of dx = -grad L dt + noise dW with time step ``lr``:
    ``x <- x - lr * grad L(x) + noise * sqrt(lr) * xi``, xi standard normal from a private
    generator seeded with ``seed``; all M rows at once. (M, P) -> (M, P)."""
    gen = torch.Generator().manual_seed(seed)
    x, scale = thetas.detach().clone(), noise * math.sqrt(lr)
    for _ in range(steps):
        _, g = values_and_grads(objective, x)
        x = x - lr * g
        if scale:
            xi = torch.randn(x.shape, generator=gen, dtype=x.dtype)
            x = x + scale * xi.to(x.device)
    return x


def descend(objective: Objective, thetas: Tensor, *, lr: float, steps: int) -> Tensor:
    """``steps`` full-objective gradient steps of size ``lr`` on all rows: (M, P) -> (M, P)."""
    return langevin(objective, thetas, lr=lr, noise=0.0, steps=steps)


# ---------------------------------------------------------------------------------------------
# The basin rule


def basin_levels(barcode: Barcode) -> np.ndarray:
    """(K,) by vertex: s_k, the lowest stored saddle from minimum k to any other (``inf``
    where k has no finite saddle, or K = 1). See the module docstring."""
    s = np.array(barcode.saddles, dtype=np.float64)
    np.fill_diagonal(s, np.inf)
    return s.min(axis=1)


def segment_maxima(objective: Objective, a: Tensor, b: Tensor, points: int = POINTS) -> Tensor:
    """(M,) the highest objective value on each straight segment from ``a[m]`` to ``b[m]``
    (both (M, P)): ``points`` evenly spaced points, ends included, then ``points`` more
    between the two neighbours of the highest one (so a narrow ridge is not under-read);
    ``inf`` where a value is not finite."""
    m, p = a.shape
    t = torch.linspace(0, 1, points, dtype=a.dtype, device=a.device)  # (N,)
    rows = max(1, SEGMENT_VALUES // max(1, points * p))
    out = []
    for i in range(0, m, rows):
        a_i, b_i = a[i : i + rows], b[i : i + rows]
        v = _on_segments(objective, a_i, b_i, t.expand(len(a_i), -1))  # (m, N)
        top = v.argmax(1)
        lo, hi = t[(top - 1).clamp(min=0)], t[(top + 1).clamp(max=points - 1)]  # (m,)
        fine = lo[:, None] + (hi - lo)[:, None] * t  # (m, N)
        v = torch.maximum(v.amax(1), _on_segments(objective, a_i, b_i, fine).amax(1))
        out.append(v)
    return torch.cat(out) if out else a.new_zeros(0)


def _on_segments(objective: Objective, a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """(m, N) the objective at ``a + t (b - a)`` for a, b (m, P) and t (m, N); nan -> inf."""
    pts = a[:, None] + t[..., None] * (b - a)[:, None]  # (m, N, P)
    v = values_of(objective, pts.reshape(-1, a.shape[1])).view(t.shape)
    return torch.nan_to_num(v, nan=math.inf)


def thresholds(barcode: Barcode, margin: float = MARGIN) -> np.ndarray:
    """(K,) by vertex: the level below which the basin rule certifies a point in minimum k's
    basin, ``s_k - margin (s_k - b_k)`` (``inf`` where s_k is)."""
    levels, values = basin_levels(barcode), np.asarray(barcode.values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(levels), np.inf, levels - margin * (levels - values))


@dataclass(frozen=True)
class Outcomes:
    """Per trajectory (T,): where it started and what became of it."""

    start: np.ndarray  # (T,) int, the start minimum
    stayed: np.ndarray  # (T,) bool, certified in the start's basin
    settled: np.ndarray  # (T,) bool, stayed, arrived, or below the start's threshold
    arrived: np.ndarray  # (T,) int, the other stored basin it is certified in; -1: none
    end_value: np.ndarray  # (T,) the objective at the end point
    back: np.ndarray  # (T,) highest value on the segment from the end point to its start
    diverged: np.ndarray  # (T,) bool, a non-finite end point or value

    @property
    def escaped(self) -> np.ndarray:
        """(T,) bool: settled and not certified in the start's basin."""
        return self.settled & ~self.stayed

    @property
    def unsettled(self) -> np.ndarray:
        """(T,) bool: finite, but not settled (still at or above the start's threshold)."""
        return ~self.settled & ~self.diverged


def classify(
    objective: Objective,
    ends: Tensor,
    start: np.ndarray,
    minima: Tensor,
    below: np.ndarray,
    *,
    points: int = POINTS,
) -> Outcomes:
    """The basin rule (module docstring) for end points ``ends`` (T, P) that started at
    ``minima[start]`` (minima (K, P), start (T,) int): a point is certified in basin k when a
    straight segment from it to theta_k stays below ``below[k]`` (``thresholds``); it settled
    when it is certified in its start's basin or another stored one, or its value is below
    its start's threshold."""
    start = np.asarray(start, dtype=np.int64)
    below = np.asarray(below, dtype=np.float64)
    idx = torch.as_tensor(start, device=minima.device)
    back = segment_maxima(objective, ends, minima[idx], points).double().cpu().numpy()
    end_value = values_of(objective, ends).double().cpu().numpy()
    diverged = ~(torch.isfinite(ends).all(1).cpu().numpy() & np.isfinite(end_value))
    stayed = back < below[start]  # a non-finite value never is
    arrived = np.full(len(start), -1, dtype=np.int64)
    went = np.flatnonzero(~stayed & ~diverged)
    if went.size and len(minima) > 1:
        e = ends[torch.as_tensor(went, device=ends.device)]
        dist = torch.cdist(e.double(), minima.double())  # (E, K)
        dist[torch.arange(len(went)), idx[went]] = math.inf  # not the start
        j = dist.argmin(1)
        there = segment_maxima(objective, e, minima[j], points).double().cpu().numpy()
        j = j.cpu().numpy()
        inside = there < below[j]
        arrived[went[inside]] = j[inside]
    settled = ~diverged & (stayed | (arrived >= 0) | (end_value < below[start]))
    return Outcomes(start, stayed, settled, arrived, end_value, back, diverged)


# ---------------------------------------------------------------------------------------------
# The experiment


@dataclass(frozen=True)
class EscapeResult:
    """Escapes from K minima, R trajectories each; arrays (K,) indexed by minimum (vertex)."""

    settings: dict  # how the trajectories moved (lr, noise or batch size, steps, seed, ...)
    values: np.ndarray  # (K,) each minimum's value: its bar's birth
    lengths: np.ndarray  # (K,) its bar's length, death - birth (inf: the essential bar)
    levels: np.ndarray  # (K,) s_k, the basin's level (its exit barrier is s_k - values)
    escaped: np.ndarray  # (K,) int, settled trajectories not certified in their start's basin
    unsettled: np.ndarray  # (K,) int, finite, still at or above the threshold (not escapes)
    diverged: np.ndarray  # (K,) int, non-finite loss (not escapes)
    arrived: np.ndarray  # (K, K) int, [k, j]: escaped from k, certified in j's basin
    repeats: int  # R
    correlation: RankCorrelation  # bar length vs escape probability over the K minima
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)  # e.g. the run id

    @property
    def settled(self) -> np.ndarray:
        """(K,) int, trajectories that settled: R - unsettled - diverged."""
        return self.repeats - self.unsettled - self.diverged

    @property
    def probability(self) -> np.ndarray:
        """(K,) escaped / settled: unsettled and diverged trajectories are left out of the
        denominator (nan where none settled)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.settled > 0, self.escaped / np.maximum(self.settled, 1), np.nan)

    @property
    def interval(self) -> np.ndarray:
        """(K, 2) Wilson 95% interval of each escape probability (of the settled trials)."""
        return wilson(self.escaped, self.settled)

    @property
    def stored_arrivals(self) -> np.ndarray:
        """(K,) int, escapes certified in another stored minimum's basin."""
        return self.arrived.sum(1)

    @property
    def unsettled_share(self) -> float:
        """Unsettled trajectories over all K * R."""
        return float(self.unsettled.sum()) / max(1, self.repeats * len(self.unsettled))

    @property
    def inconclusive(self) -> bool:
        """Most trajectories had not settled: the probabilities rest on too few."""
        return self.unsettled_share > INCONCLUSIVE

    def scored(self) -> tuple[np.ndarray, np.ndarray]:
        """(lengths, probability) over the minima with at least one settled trajectory: what
        the correlation is computed from."""
        keep = self.settled > 0
        return self.lengths[keep], self.probability[keep]

    @property
    def barriers(self) -> np.ndarray:
        """(K,) the exit barrier s_k - b_k (inf: no stored saddle)."""
        return self.levels - self.values

    def to_dict(self) -> dict:
        d = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in self.__dict__.items()}
        return d | {"correlation": self.correlation.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> EscapeResult:
        """The result ``to_dict`` wrote; ValueError for one judged by another rule version
        (its counts mean something else)."""
        rule = d["settings"].get("rule", 1)
        if rule != RULE:
            raise ValueError(f"judged by escape rule {rule}, not the current {RULE}")
        floats = ("values", "lengths", "levels")
        ints = ("escaped", "unsettled", "diverged", "arrived")
        return cls(
            settings=dict(d["settings"]),
            **{k: np.asarray(d[k], dtype=np.float64) for k in floats},
            **{k: np.asarray(d[k], dtype=np.int64) for k in ints},
            repeats=int(d["repeats"]),
            correlation=RankCorrelation.from_dict(d["correlation"]),
            seconds=float(d["seconds"]),
            extra=dict(d.get("extra", {})),
        )


def summarize(
    out: Outcomes, barcode: Barcode, repeats: int, settings: dict, seconds: float = 0.0
) -> EscapeResult:
    """Per-minimum counts from per-trajectory outcomes, and the correlation of bar length with
    escape probability over the minima with a settled trajectory."""
    k, levels = len(barcode), basin_levels(barcode)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(out.start[mask], minlength=k)

    arrived = np.zeros((k, k), dtype=np.int64)
    hit = out.arrived >= 0
    np.add.at(arrived, (out.start[hit], out.arrived[hit]), 1)
    res = EscapeResult(
        settings=dict(settings),
        values=np.array(barcode.values),
        lengths=barcode.segment_of(),
        levels=levels,
        escaped=count(out.escaped),
        unsettled=count(out.unsettled),
        diverged=count(out.diverged),
        arrived=arrived,
        repeats=repeats,
        correlation=RankCorrelation(math.nan, math.nan, k),
        seconds=seconds,
    )
    corr = rank_correlation(*res.scored(), seed=int(settings.get("seed", 0)))
    return dataclasses.replace(res, correlation=corr)


Move = Callable[[Tensor], Tensor]  # (T, P) start points -> (T, P) end points of the noise


def escape_from(
    objective: Objective,
    minima: Tensor,
    barcode: Barcode,
    move: Move,
    *,
    repeats: int,
    descent_lr: float,
    descent_steps: int,
    points: int = POINTS,
    settings: dict | None = None,
) -> EscapeResult:
    """The experiment with any noisy dynamics ``move``: R trajectories from each of the K
    ``minima`` (K, P) (vertex order of ``barcode``), then ``descent_steps`` full-objective
    gradient steps of size ``descent_lr``, then the basin rule. Escape probabilities count
    settled trajectories only (module docstring); ``settings`` gains the rule's version."""
    check_positive("repeats", repeats, integer=True)
    check_positive("descent_steps", descent_steps, integer=True, zero=True)
    if minima.shape[0] != len(barcode):
        raise ValueError(f"{minima.shape[0]} minima but {len(barcode)} bars")
    t0 = time.perf_counter()
    starts = minima.repeat_interleave(repeats, dim=0)  # (K * R, P), row k * R + r
    ends = descend(objective, move(starts), lr=descent_lr, steps=descent_steps)
    start = np.repeat(np.arange(len(minima)), repeats)
    out = classify(objective, ends, start, minima, thresholds(barcode), points=points)
    settings = (settings or {}) | {
        "repeats": repeats,
        "descent_steps": descent_steps,
        "points": points,
        "margin": MARGIN,
        "rule": RULE,
    }
    return summarize(out, barcode, repeats, settings, time.perf_counter() - t0)


def langevin_escape(
    objective: Objective,
    minima: Tensor,
    barcode: Barcode,
    *,
    noise: float,
    lr: float,
    steps: int,
    repeats: int,
    seed: int = 0,
    descent_steps: int = 500,
    points: int = POINTS,
) -> EscapeResult:
    """``escape_from`` with Gaussian noise of scale ``noise`` (``langevin``): the analytic
    landscapes' version of the experiment, where the noise is a knob."""
    check_positive("noise", noise, zero=True)
    check_positive("lr", lr)
    check_positive("steps", steps, integer=True)
    settings = {"noise": noise, "lr": lr, "steps": steps, "seed": seed}
    return escape_from(
        objective,
        minima,
        barcode,
        lambda x: langevin(objective, x, lr=lr, noise=noise, steps=steps, seed=seed),
        repeats=repeats,
        descent_lr=lr,
        descent_steps=descent_steps,
        points=points,
        settings=settings,
    )


def toy_escape(
    name: str,
    *,
    noise: float,
    lr: float = 0.01,
    steps: int = 500,
    repeats: int = 100,
    seed: int = 0,
    starts: int = 32,
    descent_steps: int = 500,
):
    """``langevin_escape`` on the analytic landscape ``name`` (``core.engine.toy``), from the
    minima, paths and barcode that the engine finds there from ``starts`` spread starts
    (``core.engine.validate`` checks them against the exact barcode). Returns
    ``(Landscape, EscapeResult)``."""
    from core.engine.landscape import landscape_of
    from core.engine.options import ANALYTIC
    from core.engine.toy import get_toy, starts_grid

    toy = get_toy(name)
    land = landscape_of(toy.fn, starts_grid(toy, starts, seed), explore=0, **ANALYTIC)
    res = langevin_escape(
        toy.fn,
        land.minima.thetas,
        land.barcode,
        noise=noise,
        lr=lr,
        steps=steps,
        repeats=repeats,
        seed=seed,
        descent_steps=descent_steps,
    )
    return land, dataclasses.replace(res, extra={"toy": name})
