"""Low-dimensional pictures of minima and the paths between them: PCA and UMAP.

Both projections are fitted on the minima AND the path points together, so that paths are
drawn in the same coordinates as the minima they join (a path's endpoints land exactly on
its minima). PCA is linear and exact on the subspace it keeps: distances between points that
lie in a d-dimensional affine plane are preserved. UMAP is non-linear; it shows neighbourhoods,
not distances.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["Projection", "pca_project", "umap_project"]


@dataclass
class Projection:
    """Minima and paths in d projected coordinates.

    Attributes
    ----------
    minima : ndarray
        (K, d) projected minima.
    paths : list[ndarray]
        E arrays (N_e, d), the projected path points.
    explained : ndarray
        (d,) fraction of the total variance along each component (PCA); ``nan`` for UMAP.
    method : str
        "pca" or "umap".
    """

    minima: np.ndarray
    paths: list[np.ndarray] = field(default_factory=list)
    explained: np.ndarray = field(default_factory=lambda: np.zeros(0))
    method: str = "pca"

    def axis_titles(self) -> list[str]:
        """Axis titles: "PC1 (63.2% var)" for PCA, "UMAP 1" for UMAP."""
        d = self.minima.shape[1]
        if self.method == "pca":
            return [f"PC{i + 1} ({100 * self.explained[i]:.1f}% var)" for i in range(d)]
        return [f"{self.method.upper()} {i + 1}" for i in range(d)]


def _stack(thetas, paths, n_components) -> tuple[np.ndarray, list[int]]:
    """All points as one float64 array (K + sum N_e, P) and the size of each block."""
    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ValueError(f"n_components must be a positive integer, got {n_components!r}")
    t = torch.as_tensor(thetas).detach().cpu().double()
    if t.ndim != 2 or t.shape[0] < 1:
        raise ValueError(f"thetas must have shape (K, P) with K >= 1, got {tuple(t.shape)}")
    blocks = [t]
    for e, p in enumerate(paths):
        p = torch.as_tensor(p).detach().cpu().double()
        if p.ndim != 2 or p.shape[1] != t.shape[1]:
            raise ValueError(f"paths[{e}] must have shape (N, {t.shape[1]}), got {tuple(p.shape)}")
        blocks.append(p)
    x = torch.cat(blocks).numpy()
    if not np.isfinite(x).all():
        raise ValueError("thetas and paths must be finite")
    return x, [b.shape[0] for b in blocks]


def _split(y: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    parts = np.split(y, np.cumsum(sizes)[:-1])
    return parts[0], list(parts[1:])


def pca_project(thetas, paths: Sequence = (), n_components: int = 2) -> Projection:
    """Project minima and paths onto the principal axes of all their points.

    Parameters
    ----------
    thetas : Tensor or ndarray
        (K, P) minima.
    paths : sequence of Tensor or ndarray
        E arrays (N_e, P) of path points; they take part in the fit.
    n_components : int
        d, the number of coordinates kept.

    Returns
    -------
    Projection
        When the points span fewer than d directions (e.g. K = 2 minima and no paths, or
        P < d), the missing coordinates are zero and their explained ratio is 0: the points
        have no spread there. Coordinates are centred on the mean of all points; each
        axis' sign is fixed so that the first minimum has a coordinate >= 0.
    """
    x, sizes = _stack(thetas, paths, n_components)
    d = n_components
    xc = x - x.mean(axis=0)  # (M, P) centred
    # SVD of the centred points: rows of vt are the principal axes
    _, s, vt = np.linalg.svd(xc, full_matrices=False)  # s (r,), vt (r, P), r = min(M, P)
    total = float((s**2).sum())
    keep = min(d, vt.shape[0])
    y = np.zeros((x.shape[0], d))
    y[:, :keep] = xc @ vt[:keep].T
    explained = np.zeros(d)
    if total > 0:
        explained[:keep] = s[:keep] ** 2 / total
    # numerically zero directions are noise: drop them rather than show rounding errors
    scale = s[0] if s.size else 0.0
    null = np.zeros(d, dtype=bool)
    null[:keep] = s[:keep] <= 1e-12 * max(scale, 1e-300)
    null[keep:] = True
    y[:, null] = 0.0
    explained[null] = 0.0
    flip = np.where(y[0] < 0, -1.0, 1.0)  # deterministic signs
    y = y * flip
    if null.any():
        log.info("PCA: the points span %d of %d requested directions", int((~null).sum()), d)
    minima, projected = _split(y, sizes)
    return Projection(minima=minima, paths=projected, explained=explained, method="pca")


def umap_project(
    thetas, paths: Sequence = (), n_components: int = 2, seed: int = 0, n_neighbors: int = 15
) -> Projection:
    """Embed minima and paths with UMAP, fitted on all points together.

    umap-learn is imported here, not at ``import core``: its import and first fit cost
    about 20 s of JIT compilation in a new process.

    Parameters
    ----------
    thetas : Tensor or ndarray
        (K, P) minima.
    paths : sequence of Tensor or ndarray
        E arrays (N_e, P) of path points; they take part in the fit.
    n_components : int
        d, the embedding dimension.
    seed : int
        UMAP's ``random_state`` (this also makes UMAP run single-threaded, hence reproducible).
    n_neighbors : int
        Neighbourhood size, capped at (number of points - 1).

    Returns
    -------
    Projection
        ``explained`` is all ``nan``: UMAP has no explained variance.
    """
    x, sizes = _stack(thetas, paths, n_components)
    m = x.shape[0]
    if m < n_components + 2:
        raise ValueError(
            f"UMAP needs at least n_components + 2 = {n_components + 2} points "
            f"(minima plus path points), got {m}"
        )
    import umap  # lazy on purpose: slow import and JIT

    k = max(2, min(n_neighbors, m - 1))
    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=k,
        random_state=seed,
        init="spectral" if m > n_components + 1 + 8 else "random",
        min_dist=0.1,
        n_jobs=1,  # a fixed random_state runs single-threaded anyway; say so to avoid a warning
    )
    y = np.asarray(reducer.fit_transform(x), dtype=np.float64)  # (M, d)
    minima, projected = _split(y, sizes)
    return Projection(
        minima=minima, paths=projected, explained=np.full(n_components, np.nan), method="umap"
    )
