"""Correlations with honest uncertainty: bootstrap intervals and permutation p-values.

Observation 2 of the paper relates a minimum's segment length to its generalization gap. With
a handful of minima a bare correlation coefficient says little, so ``correlation`` reports
both Pearson's r and Spearman's rho with

- a percentile bootstrap confidence interval (pairs resampled with replacement), and
- a two-sided permutation p-value with the +1 correction,
  ``p = (1 + #{|r_perm| >= |r_obs|}) / (1 + n_perm)``, which is never 0.

All randomness comes from ``np.random.default_rng(seed)``; nothing global is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

__all__ = ["CorrelationResult", "correlation"]


@dataclass(frozen=True)
class CorrelationResult:
    """Pearson and Spearman correlation of n pairs with bootstrap CIs and permutation p-values.

    A coefficient is ``nan`` when one of the inputs is constant (it is undefined); its CI
    and p-value are then ``nan`` too. Bootstrap resamples in which a variable happens to be
    constant are left out of the interval.
    """

    n: int  # number of pairs
    pearson: float  # Pearson's r
    spearman: float  # Spearman's rho (Pearson's r of the ranks, ties averaged)
    pearson_ci: tuple[float, float]  # percentile bootstrap interval at level ``ci``
    spearman_ci: tuple[float, float]
    pearson_p_perm: float  # two-sided permutation p-value, (1 + hits) / (1 + n_perm)
    spearman_p_perm: float
    ci: float = 0.95  # confidence level of the intervals
    n_boot: int = 2000
    n_perm: int = 2000

    def summary(self) -> str:
        """One line: ``n = 12, Pearson r = 0.61 [0.20, 0.87], Spearman rho = ...``."""
        return (
            f"n = {self.n}, Pearson r = {self.pearson:.2f} "
            f"[{self.pearson_ci[0]:.2f}, {self.pearson_ci[1]:.2f}], "
            f"Spearman rho = {self.spearman:.2f} "
            f"[{self.spearman_ci[0]:.2f}, {self.spearman_ci[1]:.2f}], "
            f"permutation p = {self.pearson_p_perm:.3g} (r), {self.spearman_p_perm:.3g} (rho)"
        )


def _check(x, y) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, a in (("x", x), ("y", y)):
        try:
            arr = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be a 1-D array of numbers: {err}") from None
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(f"{name} must be finite, got {name}[{bad[0]}] = {arr[bad[0]]}")
        arrays.append(arr)
    x, y = arrays
    if x.size != y.size:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    if x.size < 3:
        raise ValueError(f"x and y need at least 3 pairs, got {x.size}")
    return x, y


def _rank(a: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties averaged."""
    return rankdata(a, axis=-1)


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row pair: x, y (B, n) -> (B,); nan where a row is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    sxx, syy = (xc * xc).sum(-1), (yc * yc).sum(-1)
    # a constant row has zero spread up to rounding; compare with the values' scale
    tiny_x = sxx <= (1e-13 * np.abs(x).max(axis=-1)) ** 2 * x.shape[-1]
    tiny_y = syy <= (1e-13 * np.abs(y).max(axis=-1)) ** 2 * y.shape[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(-1) / np.sqrt(sxx * syy)
    r = np.clip(r, -1.0, 1.0)
    return np.where(tiny_x | tiny_y, np.nan, r)


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    ok = samples[np.isfinite(samples)]
    if ok.size == 0:
        return (np.nan, np.nan)
    lo, hi = np.quantile(ok, [(1 - ci) / 2, (1 + ci) / 2])
    return (float(lo), float(hi))


def _p_perm(r_obs: float, r_perm: np.ndarray) -> float:
    if not np.isfinite(r_obs):
        return np.nan
    hits = np.sum(np.abs(r_perm) >= abs(r_obs) - 1e-12)  # tolerance: ties with the observed
    return float((1 + hits) / (1 + r_perm.size))


def correlation(
    x, y, *, n_boot: int = 2000, n_perm: int = 2000, seed: int = 0, ci: float = 0.95
) -> CorrelationResult:
    """Pearson and Spearman correlation with bootstrap CIs and permutation p-values.

    Parameters
    ----------
    x, y : array_like
        (n,) finite values, n >= 3.
    n_boot : int
        Bootstrap resamples of the n pairs (with replacement) for the percentile intervals.
    n_perm : int
        Random permutations of ``y`` for the two-sided p-values.
    seed : int
        Seed of the private generator ``np.random.default_rng(seed)``.
    ci : float
        Confidence level of the intervals, in (0, 1).

    Returns
    -------
    CorrelationResult
        Coefficients are ``nan`` (with ``nan`` CI and p) when ``x`` or ``y`` is constant.
    """
    x, y = _check(x, y)
    for name, v in (("n_boot", n_boot), ("n_perm", n_perm)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if not (isinstance(ci, int | float) and 0 < ci < 1):
        raise ValueError(f"ci must be in (0, 1), got {ci!r}")
    rng = np.random.default_rng(seed)
    n = x.size
    rx, ry = _rank(x), _rank(y)
    # 1. point estimates
    pearson = float(_pearson_rows(x[None], y[None])[0])
    spearman = float(_pearson_rows(rx[None], ry[None])[0])
    # 2. bootstrap over pairs: the same resampled indices for both coefficients
    idx = rng.integers(0, n, size=(n_boot, n))  # (B, n)
    xb, yb = x[idx], y[idx]
    boot_p = _pearson_rows(xb, yb)
    boot_s = _pearson_rows(_rank(xb), _rank(yb))
    # 3. permutations of y (its ranks permuted with it)
    perm = rng.permuted(np.broadcast_to(np.arange(n), (n_perm, n)), axis=1)  # (n_perm, n)
    perm_p = _pearson_rows(np.broadcast_to(x, (n_perm, n)), y[perm])
    perm_s = _pearson_rows(np.broadcast_to(rx, (n_perm, n)), ry[perm])
    nan_ci = (np.nan, np.nan)
    return CorrelationResult(
        n=n,
        pearson=pearson,
        spearman=spearman,
        pearson_ci=_interval(boot_p, ci) if np.isfinite(pearson) else nan_ci,
        spearman_ci=_interval(boot_s, ci) if np.isfinite(spearman) else nan_ci,
        pearson_p_perm=_p_perm(pearson, perm_p),
        spearman_p_perm=_p_perm(spearman, perm_s),
        ci=float(ci),
        n_boot=n_boot,
        n_perm=n_perm,
    )
