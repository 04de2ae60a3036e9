"""Chains of points in parameter space: straight starts, dense sampling, re-spreading.

A chain is N points from one minimum to another, endpoints included; ``connect`` holds A
chains at once as one tensor (A, N, P). Everything here is geometry: no objective is called.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def straight_chains(minima: Tensor, pairs: np.ndarray, n: int) -> Tensor:
    """(E, n, P) evenly spaced points on the straight segment of every pair, ends included:
    the first chains of ``connect``, rebuilt the same to the bit by ``finish``."""
    t = torch.linspace(0, 1, n, dtype=minima.dtype, device=minima.device)
    a, b = minima[pairs[:, 0]], minima[pairs[:, 1]]  # (E, P)
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


def dense_points(path: Tensor, density: int) -> Tensor:
    """Nodes of ``path`` (N, P) plus ``density - 1`` evenly spaced points inside each
    interval: ((N - 1) * density + 1, P)."""
    t = torch.arange(density, dtype=path.dtype, device=path.device) / density  # (d,)
    a, b = path[:-1], path[1:]  # (N-1, P)
    inner = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]  # (N-1, d, P)
    return torch.cat([inner.reshape(-1, path.shape[1]), path[-1:]])


def midpoints(path: Tensor, density: int) -> Tensor:
    """The points that density ``2 * density`` adds to density ``density``: t = (2k+1)/(2d).

    They are computed exactly as ``dense_points(path, 2 * density)`` computes them, so the
    union of both sets is bit for bit the dense point set at the doubled density.
    """
    d2 = 2 * density
    t = torch.arange(1, d2, 2, dtype=path.dtype, device=path.device) / d2  # (d,)
    a, b = path[:-1], path[1:]
    return (a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]).reshape(-1, path.shape[1])


def reparametrize(x: Tensor, e: Tensor, climb: Tensor | None, weight: float) -> Tensor:
    """Re-spread points along each polyline by loss-weighted arc length.

    x (A, N, P) chains; e (A, N) node values; climb (A,) index kept in place or None.
    The density of points grows by (1 + weight * normalised loss), so points gather where
    the loss peaks (string method, E, Ren & Vanden-Eijnden 2007).
    """
    a, n, _ = x.shape
    seg = (x[:, 1:] - x[:, :-1]).norm(dim=2)  # (A, N-1)
    lo, hi = e.amin(1, keepdim=True), e.amax(1, keepdim=True)
    en = (e - lo) / (hi - lo).clamp_min(1e-30)
    w = 1 + weight * 0.5 * (en[:, 1:] + en[:, :-1])  # (A, N-1)
    m = torch.cat([seg.new_zeros(a, 1), (seg * w).cumsum(1)], 1)  # (A, N)
    i = torch.arange(n, dtype=x.dtype, device=x.device)[None, :]  # (1, N)
    total = m[:, -1:]
    if climb is None:
        u = total * i / (n - 1)
    else:
        c = climb[:, None].to(x.dtype)
        mc = m.gather(1, climb[:, None])
        u = torch.where(i <= c, mc * i / c, mc + (total - mc) * (i - c) / (n - 1 - c))
    j = (torch.searchsorted(m.contiguous(), u.contiguous(), right=True) - 1).clamp(0, n - 2)
    m0, m1 = m.gather(1, j), m.gather(1, j + 1)
    frac = ((u - m0) / (m1 - m0).clamp_min(1e-30)).clamp(0, 1)[..., None]  # (A, N, 1)
    flat = x.reshape(a * n, -1)  # whole rows by index: no (A, N, P) index tensor
    at = (j + n * torch.arange(a, device=x.device)[:, None]).flatten()
    # index_select and lerp in place: faster than indexing and lerp, the same numbers
    new = flat.index_select(0, at).view_as(x)
    new.lerp_(flat.index_select(0, at + 1).view_as(x), frac)
    new[:, 0], new[:, -1] = x[:, 0], x[:, -1]
    if climb is not None:
        rows = torch.arange(a, device=x.device)
        new[rows, climb] = x[rows, climb]
    return new


def resample(x: Tensor, e: Tensor, n_new: int, weight: float) -> Tensor:
    """Chains (A, N, P) -> (A, n_new, P) on the same polylines, loss-weighted spacing."""
    n = x.shape[1]
    # Insert evenly in parameter, then let the weighted re-spreading place the points.
    t = torch.linspace(0, n - 1, n_new, dtype=x.dtype, device=x.device)
    j = t.floor().long().clamp(max=n - 2)
    f = (t - j)[None, :, None]
    y = x[:, j] + f * (x[:, j + 1] - x[:, j])
    ey = e[:, j] + f[..., 0] * (e[:, j + 1] - e[:, j])
    return reparametrize(y, ey, None, weight)


def upwind_tangents(x: Tensor, e: Tensor) -> Tensor:
    """(A, N-2, P) unit tangents at the interior points, pointing toward the higher neighbour
    (Henkelman & Jonsson 2000): kinks where the path turns at a minimum do not leak into the
    perpendicular force. x (A, N, P) chains; e (A, N) node values."""
    fwd, back = x[:, 2:] - x[:, 1:-1], x[:, 1:-1] - x[:, :-2]  # (A, N-2, P)
    dp, dm = e[:, 2:] - e[:, 1:-1], e[:, 1:-1] - e[:, :-2]  # (A, N-2)
    up = (dp > 0) & (dm > 0)
    down = (dp < 0) & (dm < 0)
    lo = torch.minimum(dp.abs(), dm.abs())
    hi = torch.maximum(dp.abs(), dm.abs())
    right_higher = e[:, 2:] > e[:, :-2]
    wf = torch.where(right_higher, hi, lo)  # extremum: weight the higher side more
    wb = torch.where(right_higher, lo, hi)
    wf = torch.where(up, 1.0, torch.where(down, 0.0, wf))
    wb = torch.where(up, 0.0, torch.where(down, 1.0, wb))
    tau = wf[..., None] * fwd + wb[..., None] * back
    # flat neighbourhood (all weights 0): the central difference
    tau = torch.where((wf + wb)[..., None] > 0, tau, fwd + back)
    return tau / tau.norm(dim=2, keepdim=True).clamp_min(1e-30)


def on_polyline(a: Tensor, k: Tensor, b: Tensor, s: Tensor) -> Tensor:
    """Points at parameter s in [0, 2] on the two-segment polylines a -> k -> b.

    a, k, b (E, P); s (E,) -> (E, P)."""
    t = torch.where(s < 1, s, s - 1)[:, None].to(a.dtype)  # (E, 1)
    return torch.where((s < 1)[:, None], a + t * (k - a), k + t * (b - k))


def insert_node(path: Tensor, point: Tensor, after: int) -> Tensor:
    """``path`` (N, P) with ``point`` (P,) inserted after node ``after``: (N + 1, P)."""
    return torch.cat([path[: after + 1], point[None], path[after + 1 :]])
