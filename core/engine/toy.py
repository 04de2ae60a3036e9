"""Analytic 2-D landscapes and their exact H0 barcodes.

Each ``Toy`` is a smooth function of two parameters, written in torch so that the engine can
descend it and optimize paths on it exactly as it does on a network's loss. Its exact barcode
comes from a fine grid: sublevel-set persistence of the grid values (a cubical complex in
gudhi), which is what the engine's estimate from sampled minima and min-max paths should match.

Grid convention (used everywhere here and by the teaching page): ``Z[i, j] = f(xs[j], ys[i])``,
row = y, column = x. Each grid value is one top-dimensional cell (a pixel) of the cubical
complex; a pixel's closure contains its edges and corners, so two pixels that share only a
corner touch. The sublevel set ``{Z <= c}`` is therefore connected in the 8-neighbour sense, and
``sublevel_components`` labels it with the same 8-connectivity.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import gudhi
import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

logger = logging.getLogger(__name__)

MIN_BAR_LENGTH = 1e-12  # bars no longer than this are ties on the grid, not minima


@dataclass(frozen=True)
class Toy:
    """An analytic 2-D landscape."""

    name: str  # key in TOYS
    title: str  # human title
    formula: str  # plain-text formula shown on the teaching page
    fn: Callable[[Tensor], Tensor]  # thetas (M, 2) -> (M,), differentiable, any float dtype
    box: tuple[float, float, float, float]  # (xmin, xmax, ymin, ymax)
    description: str  # one or two sentences a student can follow


@dataclass(frozen=True)
class ExactBars:
    """H0 barcode of a toy's grid values; one bar per grid local minimum, sorted by birth."""

    births: np.ndarray  # (K,) ascending
    deaths: np.ndarray  # (K,) np.inf for the essential bar (the global minimum, index 0)
    minima: np.ndarray  # (K, 2) grid (x, y) of each bar's birth cell
    saddles: np.ndarray  # (K, 2) grid (x, y) of each bar's death cell; nan for the essential bar
    resolution: int  # grid points per axis
    value_range: float  # max - min of the grid values over the box


# ---------------------------------------------------------------------------------------------
# The landscapes. Each takes thetas (M, 2) and returns (M,); torch only, so autograd works.


def _wells(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    f = 0.08 * (x**2 + y**2)  # (M,) the bowl
    for cx, cy, depth in _WELLS:
        f = f - depth * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 0.6**2))
    return f


_WELLS = ((-1.5, -1.0, 1.0), (1.3, -1.2, 0.8), (1.1, 1.3, 0.6), (-1.2, 1.4, 0.4))


def _himmelblau(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    return ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2 + 0.5 * x) / 100


def _camel(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


def _rastrigin(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    ripple = 2 - torch.cos(2 * math.pi * x) - torch.cos(2 * math.pi * y)
    return 0.3 * x**2 + 0.5 * y**2 + 0.5 * ripple


def _ring(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    r2 = x**2 + y**2
    # x^3 - 3 x y^2 = r^3 cos(3 phi): a three-fold ripple that is smooth at the origin
    return (r2 - 1) ** 2 + 0.15 * x + 0.05 * y + 0.3 * (x**3 - 3 * x * y**2)


_MB_A = (-200.0, -100.0, -170.0, 15.0)
_MB_a = (-1.0, -1.0, -6.5, 0.7)
_MB_b = (0.0, 0.0, 11.0, 0.6)
_MB_c = (-10.0, -10.0, -6.5, 0.7)
_MB_X = (1.0, 0.0, -0.5, -1.0)
_MB_Y = (0.0, 0.5, 1.5, 1.0)


def _muller_brown(t: Tensor) -> Tensor:
    x, y = t[:, 0], t[:, 1]
    f = torch.zeros_like(x)  # (M,)
    for A, a, b, c, x0, y0 in zip(_MB_A, _MB_a, _MB_b, _MB_c, _MB_X, _MB_Y, strict=True):
        dx, dy = x - x0, y - y0
        f = f + A * torch.exp(a * dx**2 + b * dx * dy + c * dy**2)
    return f / 100


TOYS: dict[str, Toy] = {
    toy.name: toy
    for toy in (
        Toy(
            name="wells",
            title="Four wells in a bowl",
            formula="f = 0.08 (x^2 + y^2) - sum_k d_k exp(-|p - c_k|^2 / (2 * 0.6^2)),"
            "  d = 1.0, 0.8, 0.6, 0.4",
            fn=_wells,
            box=(-3.0, 3.0, -3.0, 3.0),
            description="Four Gaussian wells of different depths sit in a shallow bowl. Each well "
            "is a minimum; a shallower one dies at the level where its basin spills into a deeper "
            "one.",
        ),
        Toy(
            name="himmelblau",
            title="Himmelblau's function, tilted",
            formula="f = ((x^2 + y - 11)^2 + (x + y^2 - 7)^2 + 0.5 x) / 100",
            fn=_himmelblau,
            box=(-5.0, 5.0, -5.0, 5.0),
            description="Himmelblau's function has four minima, all at height 0; the small tilt "
            "+0.5 x moves them to different heights so that the four bars are distinct, and "
            "dividing by 100 keeps the values of order one.",
        ),
        Toy(
            name="camel",
            title="Six-hump camel",
            formula="f = (4 - 2.1 x^2 + x^4 / 3) x^2 + x y + (4 y^2 - 4) y^2",
            fn=_camel,
            box=(-2.0, 2.0, -1.2, 1.2),
            description="Six minima in mirror-image pairs (the function is symmetric under "
            "(x, y) -> (-x, -y)): two global ones at -1.0316, two at -0.2155 and two shallow ones "
            "at 2.1043. Mirror-image minima have bars of equal length.",
        ),
        Toy(
            name="rastrigin",
            title="Rastrigin-like egg crate",
            formula="f = 0.3 x^2 + 0.5 y^2 + 0.5 (2 - cos(2 pi x) - cos(2 pi y))",
            fn=_rastrigin,
            box=(-1.45, 1.45, -1.45, 1.45),
            description="Cosine ripples on a bowl make nine minima near the integer points of "
            "the box, the global one at 0 at the origin. The bowl is steeper in y than in x, so "
            "the minima come at three heights besides the global one.",
        ),
        Toy(
            name="ring",
            title="Lumpy tilted ring",
            formula="f = (x^2 + y^2 - 1)^2 + 0.15 x + 0.05 y + 0.3 (x^3 - 3 x y^2)",
            fn=_ring,
            box=(-1.4, 1.4, -1.4, 1.4),
            description="A circular valley on the unit circle with a three-fold ripple "
            "(x^3 - 3 x y^2 = r^3 cos 3phi) makes three minima; the tilt gives them different "
            "depths. Routes between minima go round the valley, not over the hill in the middle.",
        ),
        Toy(
            name="muller_brown",
            title="Müller-Brown potential",
            formula="f = sum_k A_k exp(a_k (x - x_k)^2 + b_k (x - x_k)(y - y_k) + c_k (y - y_k)^2)"
            " / 100",
            fn=_muller_brown,
            box=(-1.5, 0.9, -0.3, 1.9),
            description="A classic model of a chemical reaction, divided by 100: three minima "
            "joined by two saddles. The middle minimum is shallow, so its bar is short.",
        ),
    )
}


def get_toy(name: str) -> Toy:
    """Return the toy called ``name``; ``ValueError`` lists the valid names."""
    if name not in TOYS:
        raise ValueError(f"unknown toy name {name!r}; valid names: {', '.join(sorted(TOYS))}")
    return TOYS[name]


def grid_values(toy: Toy, resolution: int = 401) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate a toy on a regular grid over its box.

    Parameters
    ----------
    toy : Toy
    resolution : int
        Grid points per axis (R), at least 3.

    Returns
    -------
    xs, ys : np.ndarray
        (R,) grid coordinates, box edges included.
    Z : np.ndarray
        (R, R) float64, ``Z[i, j] = f(xs[j], ys[i])``: row = y, column = x (plotly's contour
        convention).
    """
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 3:
        raise ValueError(f"resolution must be an integer >= 3, got {resolution!r}")
    xmin, xmax, ymin, ymax = toy.box
    xs = np.linspace(xmin, xmax, resolution)
    ys = np.linspace(ymin, ymax, resolution)
    X, Y = np.meshgrid(xs, ys)  # (R, R) each: X[i, j] = xs[j], Y[i, j] = ys[i]
    thetas = torch.from_numpy(np.stack([X.ravel(), Y.ravel()], axis=1))  # (R * R, 2) float64
    with torch.no_grad():
        Z = toy.fn(thetas).numpy().reshape(resolution, resolution)  # (R, R)
    return xs, ys, Z


def cubical_h0(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """H0 sublevel persistence of a 2-D array, each value one pixel (8-connectivity).

    This is the one place that reads gudhi's output. gudhi numbers top-dimensional cells in
    Fortran (column-major) order and reports the essential bar apart from the finite ones;
    here every index is a C-order flat index into ``Z`` (``Z.ravel()[idx]``), the essential
    bar has death ``inf`` and death index -1, and births and deaths are read from ``Z`` itself.
    Bars no longer than ``MIN_BAR_LENGTH`` (ties between neighbouring pixels) are dropped.

    Parameters
    ----------
    Z : np.ndarray
        (H, W) finite values.

    Returns
    -------
    births, deaths : np.ndarray
        (K,) float64, sorted by birth; bar 0 is the essential bar (death ``inf``).
    birth_idx, death_idx : np.ndarray
        (K,) int64 flat indices of the birth pixel (a local minimum) and of the death pixel
        (where the bar's component merges into an older one), -1 for the essential bar.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2 or Z.size == 0 or not np.all(np.isfinite(Z)):
        raise ValueError(f"Z must be a non-empty 2-D array of finite values, got shape {Z.shape}")
    # 1. persistence of the pixel filtration; min_persistence=0 drops zero-length pairs
    complex_ = gudhi.CubicalComplex(top_dimensional_cells=Z)
    complex_.compute_persistence(min_persistence=0)
    regular, essential = complex_.cofaces_of_persistence_pairs()
    pairs = regular[0] if len(regular) > 0 else np.zeros((0, 2), dtype=np.int64)  # (K-1, 2)
    ess = essential[0] if len(essential) > 0 else np.zeros(0, dtype=np.int64)  # (1,)
    # 2. gudhi's Fortran-order indices -> C-order flat indices; the essential bar gets -1
    to_c = np.ravel_multi_index(np.unravel_index(np.arange(Z.size), Z.shape, order="F"), Z.shape)
    birth_idx = np.concatenate([to_c[pairs[:, 0]], to_c[ess]]).astype(np.int64)
    death_idx = np.concatenate([to_c[pairs[:, 1]], np.full(len(ess), -1)]).astype(np.int64)
    # 3. values from Z; keep bars longer than the tie tolerance; sort by birth, the essential
    #    bar first among equal births (so it is bar 0), then by death
    flat = Z.ravel()
    births = flat[birth_idx]
    deaths = np.where(death_idx >= 0, flat[np.maximum(death_idx, 0)], np.inf)
    keep = deaths - births > MIN_BAR_LENGTH
    births, deaths = births[keep], deaths[keep]
    order = np.lexsort((deaths, np.isfinite(deaths), births))
    return births[order], deaths[order], birth_idx[keep][order], death_idx[keep][order]


def exact_barcode(toy: Toy, resolution: int = 801) -> ExactBars:
    """Exact H0 barcode of a toy: cubical sublevel persistence of its grid values.

    Parameters
    ----------
    toy : Toy
    resolution : int
        Grid points per axis; the bars converge as it grows (the error in a bar end is of
        the order of the value change across one grid step).

    Returns
    -------
    ExactBars
        Bars sorted by birth; bar 0 is the essential bar of the global minimum.
    """
    xs, ys, Z = grid_values(toy, resolution)
    births, deaths, birth_idx, death_idx = cubical_h0(Z)
    rows, cols = np.unravel_index(birth_idx, Z.shape)
    minima = np.stack([xs[cols], ys[rows]], axis=1)  # (K, 2)
    saddles = np.full_like(minima, np.nan)  # (K, 2)
    finite = death_idx >= 0
    rows, cols = np.unravel_index(death_idx[finite], Z.shape)
    saddles[finite] = np.stack([xs[cols], ys[rows]], axis=1)
    logger.debug("%s at resolution %d: %d bars", toy.name, resolution, len(births))
    return ExactBars(
        births=births,
        deaths=deaths,
        minima=minima,
        saddles=saddles,
        resolution=resolution,
        value_range=float(Z.max() - Z.min()),
    )


def starts_grid(toy: Toy, n: int, seed: int = 0, jitter: float = 0.8) -> Tensor:
    """Deterministic, well-spread starting points in a toy's box.

    The box is cut into a k x k lattice (k = ceil(sqrt(n))); n of its cells are drawn without
    replacement and each gives one point, moved from the cell centre by up to ``jitter / 2``
    of a cell in each direction. The random numbers come from a private generator seeded
    with ``seed``.

    Returns
    -------
    Tensor
        (n, 2) float64, strictly inside the box for ``jitter < 1``.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter!r}")
    gen = torch.Generator().manual_seed(seed)
    k = math.ceil(math.sqrt(n))
    cells = torch.randperm(k * k, generator=gen)[:n].sort().values  # (n,)
    offsets = jitter * (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5)  # (n, 2)
    unit = (torch.stack([cells % k, cells // k], dim=1) + 0.5 + offsets) / k  # (n, 2) in (0, 1)
    xmin, xmax, ymin, ymax = toy.box
    lo = torch.tensor([xmin, ymin], dtype=torch.float64)
    hi = torch.tensor([xmax, ymax], dtype=torch.float64)
    return lo + (hi - lo) * unit


def sublevel_components(Z: np.ndarray, level: float) -> np.ndarray:
    """Label the connected components of the sublevel set ``{Z <= level}``.

    Uses 8-connectivity, the connectivity of ``cubical_h0``, so the number of components at
    any level equals the number of bars alive there (birth <= level < death).

    Returns
    -------
    np.ndarray
        (H, W) int64: -1 above ``level``, otherwise a component id in 0 .. n - 1.
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array, got shape {Z.shape}")
    labels, _ = ndimage.label(Z <= level, structure=np.ones((3, 3), dtype=int))
    return labels.astype(np.int64) - 1
