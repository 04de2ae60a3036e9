"""Chains that run through a third minimum, and the paths joined from their two legs.

A min-max chain from i to j that relaxes into the basin of another minimum k becomes two
min-max paths, i -> k and k -> j, joined at k (AutoNEB splits its bands there; Kolsbjerg et
al. 2016). Its highest point is the higher of the two legs' saddles, so once the legs have
their own paths, relaxing the chain further only finds them again. ``through`` spots such
chains at a dense check; ``core.engine.paths.connect`` retires them and joins their legs'
final paths (``joined``) instead.

        i ---- s_ik ---- k ---- s_kj ---- j        saddle(i, j) = max(s_ik, s_kj)

A chain is *through* k when one of its interior nodes is a dip of the chain's loss profile
(no higher than either neighbour) lying within half its longer adjacent interval of k, k is
lower than the pair's higher minimum (so the joined path's top is a leg's saddle, never k
itself), and both legs are shorter than the pair (Euclidean distance between the minima), so
that joining never goes in circles.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from core.engine.saddles import dense_max


def through(
    x: Tensor,
    nodes: np.ndarray,
    minima: Tensor,
    values: np.ndarray,
    pairs: np.ndarray,
    joinable: set,
) -> np.ndarray:
    """(A,) the minimum each chain runs through, -1 for none.

    x (A, N, P) chains; nodes (A, N) the objective at their nodes; minima (K, P) and their
    values (K,); pairs (A, 2) the pair of each chain; joinable: the pairs (i < j) whose final
    paths can be legs."""
    a_n, n, _ = x.shape
    via = np.full(a_n, -1, dtype=np.int64)
    if n < 3 or minima.shape[0] < 3:
        return via
    inner = x[:, 1:-1]
    dist = torch.cdist(inner, minima.to(x.dtype)[None].expand(a_n, -1, -1))  # (A, N-2, K)
    seg = (x[:, 1:] - x[:, :-1]).norm(dim=2)  # (A, N-1)
    reach = 0.5 * torch.maximum(seg[:, :-1], seg[:, 1:])  # (A, N-2)
    v = torch.as_tensor(nodes)
    dip = ((v[:, 1:-1] <= v[:, :-2]) & (v[:, 1:-1] <= v[:, 2:])).to(dist.device)
    near = (dist <= reach[..., None]) & dip[..., None]  # (A, N-2, K)
    cand = near.any(1).cpu().numpy()  # (A, K)
    if not cand.any():
        return via
    span = torch.cdist(minima[None], minima[None])[0].cpu().numpy()  # (K, K)
    closest = dist.amin(1).cpu().numpy()  # (A, K)
    for a in np.flatnonzero(cand.any(1)):
        i, j = (int(t) for t in pairs[a])
        ks = [
            k
            for k in np.flatnonzero(cand[a])
            if k not in (i, j)
            and values[k] < max(values[i], values[j])
            and span[i, k] < span[i, j]
            and span[k, j] < span[i, j]
            and (min(i, k), max(i, k)) in joinable
            and (min(k, j), max(k, j)) in joinable
        ]
        if ks:
            via[a] = min(ks, key=lambda k: closest[a, k])
    return via


def oriented(points: Tensor, pair, start: int) -> Tensor:
    """A stored path (N, P) of ``pair`` run from minimum ``start``."""
    return points if int(pair[0]) == start else points.flip(0)


def joined(objective, leg_a: dict, leg_b: dict) -> dict:
    """The path i -> k -> j from two final legs, each a dict with ``points`` (run from i to k,
    and from k to j), ``saddle``, ``density``, ``climb`` (node in that orientation, -1: none),
    ``status``, ``force``, ``climb_grad`` and ``scale``.

    Its saddle is the maximum over both legs' dense points at the higher of their densities:
    the legs' own saddles where they are at that density, else that leg evaluated there. The
    rest (status, forces, climbing node, gradient scale) are those of the higher leg."""
    d = max(leg_a["density"], leg_b["density"])
    sad = [
        leg["saddle"] if leg["density"] == d else float(dense_max(objective, [leg["points"]], d)[0])
        for leg in (leg_a, leg_b)
    ]
    top = 0 if sad[0] >= sad[1] else 1
    high = (leg_a, leg_b)[top]
    offset = 0 if top == 0 else leg_a["points"].shape[0] - 1
    return {
        "points": torch.cat([leg_a["points"], leg_b["points"][1:]]),
        "saddle": max(sad),
        "density": d,
        "climb": high["climb"] + offset if high["climb"] >= 0 else -1,
        "status": high["status"],
        "force": max(leg_a["force"], leg_b["force"]),
        "climb_grad": high["climb_grad"],
        "scale": high["scale"],
    }
