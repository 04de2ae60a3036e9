"""High-dimensional analytic landscapes whose H0 barcode is known exactly.

In coordinates ``u`` the landscape is a separable sum ``f(u) = sum_i g_i(u_i)`` of 1-D
polynomials:

- the first ``n_multi`` coordinates are tilted wells, a double well ``s ((t^2 - 1)^2 + c t)``
  or a triple well ``s (t^2 (t^2 - 2)^2 + c t)``, with seeded random scale ``s`` and tilt ``c``;
- the others are quadratics ``q t^2`` with ``q`` spread geometrically over
  ``[condition^-1/2, condition^1/2]``, stiffest last, so the valleys are ill-conditioned.

The H0 sublevel barcode of a 1-D ``g`` is exact from its critical points (the real roots of
``g'``, polished by Newton): one bar per local minimum, born at its value and dying, by the
elder rule, at the local maximum where its basin first joins an older one.

Kunneth formula. The H0 barcode of ``g(x) + h(y)`` on a product space has, for every bar
``[b1, d1)`` of ``g`` and every bar ``[b2, d2)`` of ``h``, the bar
``[b1 + b2, min(b1 + d2, b2 + d1))``, infinite only if both are. Folded over the coordinates,
the minimum that takes the 1-D minimum of bar ``k_i`` in each coordinate ``i`` has the bar
``[sum_i b_i, sum_i b_i + min_i (d_i - b_i))``. It dies at the saddle where the coordinate ``i*``
with the shortest 1-D bar sits at the local maximum that ends that bar and every other
coordinate at its minimum; beyond the saddle lies its partner minimum, coordinate ``i*`` moved
to the neighbouring 1-D minimum.

The engine sees ``F(z) = f(phi(z))`` with ``phi(z) = S(Q z)``: ``Q`` a seeded random orthogonal
matrix (Haar, from the QR factorisation of a Gaussian matrix) and ``S`` a smooth shear that
bends the valleys, ``S(y) = y + warp * V exp(-y_W^2)``, where ``y_W`` are the ``n_multi`` well
coordinates (square and exponential elementwise) and the columns of ``V`` (n, n_multi) are
random orthonormal combinations of the ``n_multi`` stiffest quadratic coordinates. ``S`` leaves
the well coordinates unchanged, so ``phi`` is a diffeomorphism with the explicit inverse
``phi^-1(u) = Q^T (u - warp * V exp(-u_W^2))``. Sublevel persistence is invariant under
diffeomorphisms, so ``F`` has the barcode of ``f``, and its minima and saddles are ``phi^-1`` of
those of ``f``. Between two minima the valley of ``F`` is curved: the straight segment leaves
the valley floor along stiff directions and climbs above the saddle.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import torch
from numpy.polynomial import polynomial as npoly
from torch import Tensor

DEGREE = 6  # highest degree of a g_i (the triple well); coefficients are zero-padded to it
_DOUBLE = (1.0, 0.0, -2.0, 0.0, 1.0, 0.0, 0.0)  # (t^2 - 1)^2, increasing powers
_TRIPLE = (0.0, 0.0, 4.0, 0.0, -4.0, 0.0, 1.0)  # t^2 (t^2 - 2)^2
MAX_MULTI = 8  # at most 3^8 minima


@dataclass(frozen=True)
class WellBars:
    """H0 barcode of a 1-D polynomial: one bar per local minimum, sorted by birth."""

    births: np.ndarray  # (k,) ascending; bar 0 is the essential bar of the global minimum
    deaths: np.ndarray  # (k,) np.inf for bar 0
    minima: np.ndarray  # (k,) position of each bar's local minimum
    saddles: np.ndarray  # (k,) position of the local maximum where the bar dies; nan for bar 0
    across: np.ndarray  # (k,) int64 bar of the minimum beyond that maximum; -1 for bar 0


def well_bars(coef) -> WellBars:
    """Exact H0 sublevel barcode of the polynomial ``sum_p coef[p] t^p``.

    Raises ``ValueError`` unless the polynomial has even degree, a positive leading coefficient
    and non-degenerate critical points (alternating minimum, maximum, ..., minimum).
    """
    coef = np.trim_zeros(np.asarray(coef, dtype=np.float64), "b")
    if coef.ndim != 1 or len(coef) < 3 or len(coef) % 2 == 0 or coef[-1] <= 0:
        raise ValueError(f"coef must be of even degree with a positive top term, got {coef!r}")
    d1, d2 = npoly.polyder(coef), npoly.polyder(coef, 2)
    roots = npoly.polyroots(d1)
    crit = np.sort(roots[np.abs(roots.imag) < 1e-6].real)  # (2k - 1,) critical points
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate points give nan
        for _ in range(3):  # Newton polish to machine precision
            crit = crit - npoly.polyval(crit, d1) / npoly.polyval(crit, d2)
    signs = np.where(np.arange(len(crit)) % 2 == 0, 1.0, -1.0)  # min, max, min, ..., min
    if len(crit) % 2 == 0 or np.any(np.sign(npoly.polyval(crit, d2)) != signs):
        raise ValueError(f"coef has degenerate critical points, got {coef!r}")
    mins, maxs = crit[0::2], crit[1::2]  # (k,), (k - 1,) in positional order
    low, high = npoly.polyval(mins, coef), npoly.polyval(maxs, coef)
    k = len(mins)
    root = list(range(k))  # union-find over minima; a root is its component's lowest minimum
    deaths, saddles = np.full(k, np.inf), np.full(k, np.nan)
    across = np.full(k, -1, dtype=np.int64)

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for m in np.argsort(high, kind="stable"):  # maximum m sits between minima m and m + 1
        left, right = find(m), find(m + 1)
        young, old = (left, right) if low[left] > low[right] else (right, left)
        deaths[young], saddles[young] = high[m], maxs[m]
        across[young] = m + 1 if young == left else m
        root[young] = old
    order = np.lexsort((np.isfinite(deaths), low))  # by birth, the essential bar first
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    across = np.where(across >= 0, rank[np.maximum(across, 0)], -1)[order]
    return WellBars(low[order], deaths[order], mins[order], saddles[order], across)


def sum_bars(bars: list[WellBars]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kunneth: the H0 barcode of ``sum_i g_i(u_i)`` from the 1-D barcodes of the ``g_i``.

    Returns
    -------
    births, deaths : np.ndarray
        (K,) float64 sorted by birth; bar 0 is the essential bar (death ``inf``).
    index : np.ndarray
        (K, n) int64: the 1-D bar of each coordinate whose minima make up each minimum.
    killer : np.ndarray
        (K,) int64 coordinate whose 1-D saddle ends each bar; -1 for the essential bar.
    """
    n = len(bars)
    index = np.array(list(itertools.product(*(range(len(b.births)) for b in bars))))
    index = index.reshape(-1, n).astype(np.int64)  # (K, n)
    born = np.stack([bars[i].births[index[:, i]] for i in range(n)], axis=1)  # (K, n)
    length = np.stack([bars[i].deaths[index[:, i]] for i in range(n)], axis=1) - born  # (K, n)
    births = born.sum(axis=1)
    deaths = births + length.min(axis=1)
    killer = np.where(np.isfinite(deaths), length.argmin(axis=1), -1)
    order = np.lexsort((np.isfinite(deaths), births))
    return births[order], deaths[order], index[order], killer[order]


def _shear(u: Tensor, push: Tensor, n_multi: int, warp: float) -> Tensor:
    """(M, n) ``warp * V exp(-u_W^2)``, the displacement of the shear ``S``."""
    return warp * torch.exp(-(u[:, :n_multi] ** 2)) @ push.T


@dataclass(frozen=True, eq=False)
class Separable:
    """A rotated, sheared separable landscape ``F(z) = f(phi(z))`` with its exact barcode."""

    coef: Tensor  # (n, DEGREE + 1) float64: g_i(t) = sum_p coef[i, p] t^p
    rotation: Tensor  # (n, n) float64 orthogonal Q
    push: Tensor  # (n, n_multi) float64 V, orthonormal columns on the stiffest quadratics
    n_multi: int  # the well coordinates are u_0 .. u_{n_multi - 1}
    warp: float  # amplitude of the shear
    minima: Tensor  # (K, n) float64 z of each bar's minimum, sorted by birth
    saddles: Tensor  # (K, n) float64 z of each bar's death saddle; nan row for bar 0
    partners: np.ndarray  # (K,) int64 minimum beyond each bar's saddle; -1 for bar 0
    exact_births: np.ndarray  # (K,) ascending, the values of the minima
    exact_deaths: np.ndarray  # (K,) np.inf for bar 0 (the global minimum)
    _like: dict = field(default_factory=dict, repr=False)  # (device, dtype) -> cast tensors

    @property
    def dim(self) -> int:
        return self.coef.shape[0]

    @property
    def values(self) -> Tensor:
        """(K,) float64 ``F`` at each minimum (= its bar's birth)."""
        return torch.from_numpy(self.exact_births)

    @property
    def value_range(self) -> float:
        """Highest finite death minus the global minimum: the span of the barcode."""
        return float(self.exact_deaths[1:].max() - self.exact_births[0])

    def _cast(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._like:
            self._like[key] = tuple(t.to(like) for t in (self.coef, self.rotation, self.push))
        return self._like[key]

    def phi(self, z: Tensor) -> Tensor:
        """(M, n) -> (M, n): ``u = S(Q z)``, row by row, differentiable."""
        _, rotation, push = self._cast(z)
        y = z @ rotation.T  # (M, n)
        return y + _shear(y, push, self.n_multi, self.warp)

    def phi_inverse(self, u: Tensor) -> Tensor:
        """(M, n) -> (M, n): ``z = Q^T (u - warp V exp(-u_W^2))``, exact."""
        _, rotation, push = self._cast(u)
        return (u - _shear(u, push, self.n_multi, self.warp)) @ rotation

    def fn(self, thetas: Tensor) -> Tensor:
        """(M, n) -> (M,) ``F(thetas)``, differentiable, in the dtype and device of ``thetas``."""
        coef = self._cast(thetas)[0]
        u = self.phi(thetas)  # (M, n)
        g = coef[:, DEGREE] * u + coef[:, DEGREE - 1]  # (M, n) Horner, every coordinate at once
        for p in range(DEGREE - 2, -1, -1):
            g = g * u + coef[:, p]
        return g.sum(dim=1)

    def starts(self, n_starts: int, seed: int = 0, noise: float = 0.3) -> Tensor:
        """(n_starts, n) float64 seeded starts: start m is minimum ``m % K`` plus Gaussian noise
        of standard deviation ``noise`` in every coordinate (z-space)."""
        _check_int("n_starts", n_starts, 1)
        _check_int("seed", seed, 0)
        if not (math.isfinite(noise) and noise >= 0):
            raise ValueError(f"noise must be finite and >= 0, got {noise!r}")
        gen = torch.Generator().manual_seed(seed)
        jitter = torch.randn(n_starts, self.dim, generator=gen, dtype=torch.float64)
        return self.minima[torch.arange(n_starts) % len(self.minima)] + noise * jitter


def _check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")


def make_separable(
    dim: int,
    n_multi: int = 3,
    *,
    n_triple: int = 0,
    seed: int = 0,
    warp: float = 0.5,
    condition: float = 1e2,
) -> Separable:
    """A seeded rotated, sheared separable landscape and its exact barcode.

    Parameters
    ----------
    dim : int
        Dimension n, at least 2.
    n_multi : int
        Well coordinates (1 .. min(8, dim // 2)); the first ``n_triple`` are triple wells, the
        rest double wells, so there are ``3^n_triple * 2^(n_multi - n_triple)`` minima.
    n_triple : int
        Triple wells among them, 0 .. n_multi.
    seed : int
        Seeds the rotation, the wells' scales (in [0.5, 1.5)) and tilts (|c| in [0.1, 0.4)),
        and the shear's directions, through a private ``torch.Generator``.
    warp : float
        Amplitude of the shear, >= 0; 0 gives a purely rotated landscape.
    condition : float
        Ratio of the stiffest to the flattest quadratic coefficient, >= 1.
    """
    _check_int("dim", dim, 2)
    _check_int("n_multi", n_multi, 1, min(MAX_MULTI, dim // 2))
    _check_int("n_triple", n_triple, 0, n_multi)
    _check_int("seed", seed, 0)
    if not (math.isfinite(warp) and warp >= 0):
        raise ValueError(f"warp must be finite and >= 0, got {warp!r}")
    if not (math.isfinite(condition) and condition >= 1):
        raise ValueError(f"condition must be finite and >= 1, got {condition!r}")
    f64 = torch.float64
    gen = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=f64))
    rotation = q * torch.sign(torch.diagonal(r))  # (n, n) Haar-distributed
    scale = 0.5 + torch.rand(n_multi, generator=gen, dtype=f64)  # (n_multi,)
    sign = torch.where(torch.rand(n_multi, generator=gen) < 0.5, -1.0, 1.0).to(f64)
    tilt = sign * (0.1 + 0.3 * torch.rand(n_multi, generator=gen, dtype=f64))
    coef = torch.zeros(dim, DEGREE + 1, dtype=f64)  # (n, DEGREE + 1)
    for i in range(n_multi):
        coef[i] = scale[i] * torch.tensor(_TRIPLE if i < n_triple else _DOUBLE, dtype=f64)
        coef[i, 1] = scale[i] * tilt[i]
    spread = torch.linspace(-0.5, 0.5, dim - n_multi, dtype=f64)
    coef[n_multi:, 2] = condition**spread
    mix, _ = torch.linalg.qr(torch.randn(n_multi, n_multi, generator=gen, dtype=f64))
    push = torch.zeros(dim, n_multi, dtype=f64)  # (n, n_multi)
    push[dim - n_multi :] = mix

    # exact barcode in u, then minima and saddles mapped back through phi^-1
    bars = [well_bars(c) for c in coef.numpy()]
    births, deaths, index, killer = sum_bars(bars)
    mins_u = np.stack([bars[i].minima[index[:, i]] for i in range(dim)], axis=1)  # (K, n)
    saddles_u = np.full_like(mins_u, np.nan)  # (K, n)
    lookup = {tuple(row): k for k, row in enumerate(index[:, :n_multi].tolist())}
    partners = np.full(len(births), -1, dtype=np.int64)
    for k in np.flatnonzero(killer >= 0):
        i, j = killer[k], index[k, killer[k]]
        saddles_u[k] = mins_u[k]
        saddles_u[k, i] = bars[i].saddles[j]
        beyond = index[k, :n_multi].copy()
        beyond[i] = bars[i].across[j]
        partners[k] = lookup[tuple(beyond.tolist())]

    def back(u: np.ndarray) -> Tensor:  # phi^-1
        return (torch.from_numpy(u) - _shear(torch.from_numpy(u), push, n_multi, warp)) @ rotation

    return Separable(
        coef=coef,
        rotation=rotation,
        push=push,
        n_multi=n_multi,
        warp=float(warp),
        minima=back(mins_u),
        saddles=back(saddles_u),
        partners=partners,
        exact_births=births,
        exact_deaths=deaths,
    )


SEPARABLES: dict[str, dict] = {
    "sep10": {"dim": 10, "n_multi": 2},  # 4 minima
    "sep40": {"dim": 40, "n_multi": 3},  # 8 minima
    "sep100": {"dim": 100, "n_multi": 3, "n_triple": 1},  # 12 minima
}


@cache
def get_separable(name: str) -> Separable:
    """The named instance (built once, then cached); ``ValueError`` lists the valid names."""
    if name not in SEPARABLES:
        raise ValueError(f"unknown separable name {name!r}; valid names: {', '.join(SEPARABLES)}")
    return make_separable(**SEPARABLES[name])
