"""The saddle of a stored path: the objective's maximum along it, evaluated so that it
cannot read low.

A path is a polyline of nodes (N, P). Its maximum is evaluated at the nodes and at points
evenly spaced inside every interval (``density`` per interval, ``core.engine.chain.dense_points``),
doubling the density until the maximum moves by less than ``saddle_tol``
(``final_saddles``), after a golden-section search has put a node on the peak
(``refine_peaks``). Every function here evaluates all paths in one batched call per step.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from core.engine.chain import dense_points, insert_node, midpoints, on_polyline
from core.engine.evaluate import Objective, values_of

if TYPE_CHECKING:
    from core.engine.options import PathOptions

log = logging.getLogger(__name__)


def path_profile(objective: Objective, path: Tensor, density: int) -> tuple[np.ndarray, np.ndarray]:
    """Loss along a path, evaluated densely.

    Returns
    -------
    s : ndarray
        (Q,) arc-length position of each evaluated point, from 0 to 1.
    values : ndarray
        (Q,) objective values; ``values.max()`` is the path's saddle estimate.
    """
    pts = dense_points(path, density)
    seg = (pts[1:] - pts[:-1]).norm(dim=1).double()
    s = torch.cat([seg.new_zeros(1), seg.cumsum(0)])
    s = s / s[-1] if float(s[-1]) > 0 else s
    return s.cpu().numpy(), values_of(objective, pts).cpu().double().numpy()


def values_over(objective: Objective, pts: list[Tensor]) -> list[np.ndarray]:
    """The objective at each of E point sets, in one batched pass."""
    vals = values_of(objective, torch.cat(pts)).cpu().double().numpy()
    return np.split(vals, np.cumsum([p.shape[0] for p in pts])[:-1])


def max_over(objective: Objective, pts: list[Tensor]) -> np.ndarray:
    """(E,) max of the objective over each of E point sets (M_e, P), in one batched pass."""
    return np.array([v.max() for v in values_over(objective, pts)])


def dense_max(objective: Objective, paths: list[Tensor], density: int) -> np.ndarray:
    """(E,) max of the objective over each path's dense points."""
    return max_over(objective, [dense_points(p, density) for p in paths])


def refine_peaks(
    objective: Objective, paths: list[Tensor], density: int, iters: int = 48, values: bool = False
) -> tuple:
    """Each path (N_e, P) with a node added at the maximum of the objective along it next to
    its highest dense point (golden-section search over the two intervals around that point,
    all paths at once), so a dense evaluation of the result cannot read below that peak.

    A sampled maximum reads low by up to the curvature times the squared sampling step; this
    puts a node on the peak to about 1e-10 of the bracket instead. Returns the paths and (E,)
    the node each new node was inserted after (-1: the peak was a node already); with
    ``values``, also (E,) the objective at each peak."""
    dense = [dense_points(p, density) for p in paths]
    vals = values_over(objective, dense)
    top = [int(np.argmax(v)) for v in vals]
    lo_i = [max(k - 1, 0) for k in top]
    hi_i = [min(k + 1, d.shape[0] - 1) for k, d in zip(top, dense, strict=True)]
    a = torch.stack([d[i] for d, i in zip(dense, lo_i, strict=True)])  # (E, P)
    k = torch.stack([d[i] for d, i in zip(dense, top, strict=True)])
    b = torch.stack([d[i] for d, i in zip(dense, hi_i, strict=True)])
    g = (math.sqrt(5) - 1) / 2
    lo, hi = torch.zeros(len(paths), dtype=torch.float64), torch.full((len(paths),), 2.0)
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)

    def f(s):
        return values_of(objective, on_polyline(a, k, b, s.to(a.device))).cpu().double()

    f1, f2 = f(x1), f(x2)
    for _ in range(iters):  # keep the bracket that holds the larger value: a maximum
        right = f2 > f1
        lo, hi = torch.where(right, x1, lo), torch.where(right, hi, x2)
        x1, x2 = (
            torch.where(right, x2, hi - g * (hi - lo)),
            torch.where(right, lo + g * (hi - lo), x1),
        )
        new = f(torch.where(right, x2, x1))
        f1, f2 = torch.where(right, f2, new), torch.where(right, new, f1)
    s = torch.where(f2 > f1, x2, x1)
    top_value = torch.maximum(f1, f2).numpy()
    peak = on_polyline(a, k, b, s.to(a.device))
    out, where = [], np.full(len(paths), -1, dtype=np.int64)
    for e, p in enumerate(paths):
        seg = lo_i[e] if float(s[e]) < 1 else top[e]  # dense segment seg -> seg + 1 holds it
        if float((p - peak[e]).norm(dim=1).min()) <= 1e-12 * float(p.norm()):
            out.append(p)
            continue
        where[e] = seg // density
        out.append(insert_node(p, peak[e], int(where[e])))
    return (out, where, top_value) if values else (out, where)


def final_saddles(
    objective: Objective, paths: list[Tensor], opts: PathOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Dense maxima at a density where doubling it moves no saddle beyond ``saddle_tol``,
    from ``opts.final_density`` up to ``opts.max_density``; each doubling evaluates only the
    points it adds (``core.engine.chain.midpoints``). Returns saddles (E,), densities (E,).
    """
    e = len(paths)
    saddles = np.full(e, np.nan)
    dens = np.full(e, opts.final_density, dtype=np.int64)
    todo = np.arange(e)
    d = opts.final_density
    cur = dense_max(objective, paths, d)
    while todo.size:
        if 2 * d > opts.max_density:
            saddles[todo] = cur
            log.info("%d paths did not settle below max_density=%d", todo.size, d)
            break
        new = max_over(objective, [midpoints(paths[i], d) for i in todo])
        nxt = np.maximum(cur, new)
        ok = nxt - cur <= opts.saddle_tol
        saddles[todo[ok]], dens[todo[ok]] = cur[ok], d
        todo, cur, d = todo[~ok], nxt[~ok], 2 * d
        dens[todo] = d
    return saddles, dens
