"""Statistics of escapes: Wilson intervals of escape probabilities, and Spearman's rho between
bar length and escape probability with a permutation p-value, within a run or pooled over
runs (``core.engine.escape`` uses them). Randomness comes from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, permutation_test, rankdata

CONFIDENCE = 0.95  # level of the per-minimum intervals
N_RESAMPLES = 9999  # random permutations of a correlation's null (exact when fewer exist)


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho with a two-sided permutation p-value (nan when a variable is constant)."""

    rho: float
    p: float
    n: int  # points (minima) that entered
    groups: int = 1  # runs pooled (rho: their n-weighted mean; permutations within each)
    n_resamples: int = N_RESAMPLES

    def summary(self) -> str:
        if not math.isfinite(self.rho):
            return f"Spearman rho undefined (n = {self.n}: a variable is constant)"
        pooled = f", pooled over {self.groups} runs" if self.groups > 1 else ""
        return (
            f"Spearman rho = {self.rho:+.2f}, permutation p = {self.p:.3g} (n = {self.n}{pooled})"
        )

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict) -> RankCorrelation:
        return cls(
            float(d["rho"]), float(d["p"]), int(d["n"]), int(d["groups"]), int(d["n_resamples"])
        )


def _rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho of x (n,) with each row of y (..., n), ties averaged; nan for a
    constant row (``inf`` ranks highest)."""
    rx, ry = rankdata(x), rankdata(y, axis=-1)
    rx, ry = rx - rx.mean(), ry - ry.mean(axis=-1, keepdims=True)
    sxx, syy = (rx * rx).sum(), (ry * ry).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((sxx > 0) & (syy > 0), (rx * ry).sum(-1) / np.sqrt(sxx * syy), np.nan)


def pooled_rank_correlation(
    groups: Sequence[tuple[np.ndarray, np.ndarray]], *, seed: int = 0, n_resamples=N_RESAMPLES
) -> RankCorrelation:
    """Spearman's rho of x with y within each group (a run), pooled as their mean weighted by
    the group sizes, with a two-sided permutation p-value whose null permutes y within each
    group. One group: scipy's ``permutation_test`` (exact when there are at most
    ``n_resamples`` orderings). Several (of any sizes, which scipy's paired permutations do
    not take): ``n_resamples`` random within-group permutations, p as scipy defines it,
    ``min(1, 2 min(P(null <= rho), P(null >= rho)))`` with the +1 correction. Groups in which
    x or y is constant say nothing about the order and are left out."""
    kept = []
    for x, y in groups:
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        if len(x) >= 2 and np.isfinite(_rho(x, y)):
            kept.append((x, y))
    n = sum(len(x) for x, _ in kept)
    if not kept:
        return RankCorrelation(math.nan, math.nan, sum(len(x) for x, _ in groups), 0, n_resamples)
    rng = np.random.default_rng(seed)
    if len(kept) == 1:
        ((x, y),) = kept
        res = permutation_test(
            (y,),
            lambda y, axis=-1: _rho(x, np.moveaxis(y, axis, -1)),
            permutation_type="pairings",
            vectorized=True,
            n_resamples=n_resamples,
            alternative="two-sided",
            rng=rng,
        )
        return RankCorrelation(float(res.statistic), float(res.pvalue), n, 1, n_resamples)
    weights = [len(x) / n for x, _ in kept]
    rho = float(sum(w * _rho(x, y) for w, (x, y) in zip(weights, kept, strict=True)))
    null = sum(
        w * _rho(x, rng.permuted(np.broadcast_to(y, (n_resamples, len(y))), axis=1))
        for w, (x, y) in zip(weights, kept, strict=True)
    )  # (n_resamples,)
    tol = 1e-12  # ties with the observed value count as at least as extreme
    tails = [(1 + np.sum(null <= rho + tol)), (1 + np.sum(null >= rho - tol))]
    p = min(1.0, 2 * min(tails) / (1 + n_resamples))
    return RankCorrelation(rho, float(p), n, len(kept), n_resamples)


def rank_correlation(x, y, *, seed: int = 0, n_resamples: int = N_RESAMPLES) -> RankCorrelation:
    """Spearman's rho of x and y (``scipy.stats.spearmanr``'s) with a permutation p-value."""
    return pooled_rank_correlation([(x, y)], seed=seed, n_resamples=n_resamples)


def wilson(k: np.ndarray, n, level: float = CONFIDENCE) -> np.ndarray:
    """(K, 2) Wilson score intervals of k successes out of n, per entry of ``k``; ``n`` is one
    int or (K,) ints (nan where an entry has no trials)."""
    k = np.asarray(k)
    n = np.broadcast_to(np.asarray(n), k.shape)
    return np.array(
        [
            tuple(binomtest(int(ki), int(ni)).proportion_ci(level, method="wilson"))
            if ni > 0
            else (np.nan, np.nan)
            for ki, ni in zip(k, n, strict=True)
        ]
    ).reshape(-1, 2)
