"""Minima that no start reached, found from the saddles.

An index-1 saddle joins two basins. Descending from it both ways along its one direction of
negative curvature (the lowest Hessian eigenvector) ends in the minima of those two basins:
usually the pair whose path found it, but where the path ran through a basin that no start
had reached, one descent ends in a new minimum. ``minima_from_saddles`` returns those, and
``add_minima`` puts them among the known ones (by value), so that the engine can connect them
and complete the barcode.

        saddle
          x              descend both ways along the negative eigenvector v:
         / \\              x + h v  ->  one basin's minimum
        /   \\             x - h v  ->  the other's
"""

from __future__ import annotations

import numpy as np
import torch

from core.engine.certify import lowest_eigenvalues
from core.engine.evaluate import Objective
from core.engine.minima import Minima, MinimaOptions, find_minima
from core.engine.paths import Paths

STEP = 0.05  # the first step off the saddle, as a fraction of the distance between its minima


def minima_from_saddles(
    objective: Objective, minima: Minima, paths: Paths, options: MinimaOptions
) -> Minima | None:
    """Descend both ways from every certified saddle of ``paths``; the true minima (status
    "minimum") so reached that lie farther than ``options.merge_distance`` from every minimum
    in ``minima``, or None when there are none."""
    rows = np.flatnonzero(paths.certified) if paths.certified is not None else np.zeros(0, int)
    if rows.size == 0:
        return None
    x = torch.stack([paths.points[e][paths.climb[e]] for e in rows])  # (S, P)
    *_, v = lowest_eigenvalues(objective, x, vectors=True)
    ends = minima.thetas[paths.pairs[rows]]  # (S, 2, P)
    h = STEP * (ends[:, 0] - ends[:, 1]).norm(dim=1, keepdim=True)  # (S, 1)
    found = find_minima(objective, torch.cat([x + h * v, x - h * v]), options)
    far = torch.cdist(found.thetas, minima.thetas).amin(1) > options.merge_distance  # (F,)
    new = [k for k in np.flatnonzero(far.cpu().numpy()) if found.status[k] == "minimum"]
    if not new:
        return None
    return Minima(
        thetas=found.thetas[new],
        values=found.values[new],
        grad_norms=found.grad_norms[new],
        status=[found.status[k] for k in new],
        steps=found.steps[new],
        start_of=np.zeros(0, dtype=np.int64),
    )


def add_minima(minima: Minima, extra: Minima) -> Minima:
    """``minima`` and ``extra`` as one set sorted by value; ``start_of`` keeps pointing at the
    minimum each start reached."""
    values = np.concatenate([minima.values, extra.values])
    order = np.argsort(values, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(order.size)  # old index -> new index
    start_of = np.where(minima.start_of >= 0, where[np.maximum(minima.start_of, 0)], -1)
    return Minima(
        thetas=torch.cat([minima.thetas, extra.thetas])[torch.as_tensor(order)],
        values=values[order],
        grad_norms=np.concatenate([minima.grad_norms, extra.grad_norms])[order],
        status=[(minima.status + extra.status)[i] for i in order],
        steps=np.concatenate([minima.steps, extra.steps])[order],
        start_of=start_of,
        failed=minima.failed,
    )
