"""Min-max paths between minima: a batched climbing-image string method.

Each pair of minima gets a chain of N points, endpoints fixed. One step of all chains at
once (every interior point of every chain in one batched call):

1. Tangent at each interior point: the direction from its left to its right neighbour.
2. Interior points move against the gradient with its tangent component removed; after a
   warm-up the highest interior point *climbs*: its tangent component is reversed, so it
   walks up the path to the saddle while still descending across it.
3. Points are re-spread along the polyline by a weighted arc length: the density of points
   grows with the loss, so points gather where the loss between neighbours peaks; the
   climbing point stays where it is. (String method, E, Ren & Vanden-Eijnden 2007; climbing
   image, Henkelman et al. 2000.)

Every ``eval_every`` steps each path is evaluated densely (nodes plus ``density``
interpolated points per interval) on the full objective; the lowest such maximum seen is
kept with its path (so a path never reports more than the straight segment it started
from), recorded in a history, and used for the stopping rule. Chains grow when the
interpolated points peak above the nodes. The reported saddle is the dense maximum at a
density where doubling the density changes no saddle by more than ``saddle_tol``.

With ``precision="bfloat16"`` the steps run under ``torch.autocast`` (matmuls and
convolutions in bfloat16, the loss and the updates in float32); every evaluation that decides
or reports a saddle (checks, growth, the final dense maxima) stays in float32.

        loss
         |        x  <- climbing point (saddle)
         |      o   o
         |    o       o
         |  o           o
         | A             B        A, B fixed minima; o interior points
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.evaluate import Objective, values_and_grads, values_of

log = logging.getLogger(__name__)

PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class PathOptions:
    n_points: int = 12  # points per chain at the start, endpoints included
    max_points: int = 32  # chains grow up to this many points where under-resolved
    steps: int = 2000  # step cap per pair
    lr: float = 1e-2  # step size
    momentum: float = 0.9  # heavy-ball momentum of interior points
    climb_after: float = 0.1  # fraction of steps before the highest point starts climbing
    weight: float = 2.0  # point density grows by (1 + weight * normalised loss) along a path
    max_move: float = 0.5  # a point moves at most this fraction of its chain's mean spacing
    eval_every: int = 50  # dense full-objective evaluation of every active path this often
    density: int = 4  # interpolated points per interval at those evaluations
    final_density: int = 8  # first density of the final evaluation; doubled until stable
    max_density: int = 64  # the final evaluation stops doubling here
    saddle_tol: float = 1e-4  # doubling the final density moves no saddle more than this
    rtol: float = 1e-3  # converged: saddle fell less than atol + rtol * barrier ...
    atol: float = 1e-6
    patience: int = 3  # ... over this many evaluations
    chunk: int | None = None  # most parameter vectors per objective call
    precision: str = "float32"  # "bfloat16": steps under autocast; saddles stay float32

    def __post_init__(self) -> None:
        ints = ("n_points", "max_points", "steps", "eval_every", "density", "final_density")
        for name in (*ints, "max_density", "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.n_points < 3:
            raise ValueError(f"n_points must be at least 3, got {self.n_points}")
        if self.max_points < self.n_points:
            raise ValueError(f"max_points ({self.max_points}) < n_points ({self.n_points})")
        if self.max_density < self.final_density:
            raise ValueError(f"max_density ({self.max_density}) < final_density")
        for name in ("lr", "max_move", "saddle_tol"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number, got {v!r}")
        for name in ("momentum", "climb_after", "weight", "rtol", "atol"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.momentum >= 1 or self.climb_after > 1:
            raise ValueError("momentum must be < 1 and climb_after <= 1")


@dataclass
class Paths:
    """Optimised paths for E pairs of minima.

    Attributes
    ----------
    pairs : ndarray
        (E, 2) indices into the minima, i < j.
    points : list[Tensor]
        E tensors (N_e, P): the stored path, endpoints included.
    saddles : ndarray
        (E,) max of the objective along the stored path at ``densities``.
    straight : ndarray
        (E,) the same for the straight segment between the two minima.
    densities : ndarray
        (E,) interpolated points per interval used for ``saddles``.
    converged : ndarray
        (E,) whether the stopping rule was met before the step cap.
    steps : ndarray
        (E,) steps taken.
    history_steps : ndarray
        (T,) the steps at which paths were evaluated.
    history : ndarray
        (E, T) best saddle estimate of each pair at each evaluation; NaN after it stopped.
    """

    pairs: np.ndarray
    points: list[Tensor]
    saddles: np.ndarray
    straight: np.ndarray
    densities: np.ndarray
    converged: np.ndarray
    steps: np.ndarray
    history_steps: np.ndarray
    history: np.ndarray

    def __len__(self) -> int:
        return int(self.pairs.shape[0])


def dense_points(path: Tensor, density: int) -> Tensor:
    """Nodes of ``path`` (N, P) plus ``density - 1`` evenly spaced points inside each
    interval: ((N - 1) * density + 1, P)."""
    t = torch.arange(density, dtype=path.dtype, device=path.device) / density  # (d,)
    a, b = path[:-1], path[1:]  # (N-1, P)
    inner = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]  # (N-1, d, P)
    return torch.cat([inner.reshape(-1, path.shape[1]), path[-1:]])


def path_profile(
    objective: Objective, path: Tensor, density: int, chunk: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
    return s.cpu().numpy(), values_of(objective, pts, chunk).cpu().double().numpy()


def _values_over(objective: Objective, pts: list[Tensor], chunk) -> list[np.ndarray]:
    """The objective at each of E point sets, in one batched pass."""
    vals = values_of(objective, torch.cat(pts), chunk).cpu().double().numpy()
    return np.split(vals, np.cumsum([p.shape[0] for p in pts])[:-1])


def max_over(objective: Objective, pts: list[Tensor], chunk: int | None = None) -> np.ndarray:
    """(E,) max of the objective over each of E point sets (M_e, P), in one batched pass."""
    return np.array([v.max() for v in _values_over(objective, pts, chunk)])


def _dense_max(objective: Objective, paths: list[Tensor], density: int, chunk) -> np.ndarray:
    """(E,) max of the objective over each path's dense points."""
    return max_over(objective, [dense_points(p, density) for p in paths], chunk)


def _midpoints(path: Tensor, density: int) -> Tensor:
    """The points that density ``2 * density`` adds to density ``density``: t = (2k+1)/(2d).

    They are computed exactly as ``dense_points(path, 2 * density)`` computes them, so the
    union of both sets is bit for bit the dense point set at the doubled density.
    """
    d2 = 2 * density
    t = torch.arange(1, d2, 2, dtype=path.dtype, device=path.device) / d2  # (d,)
    a, b = path[:-1], path[1:]
    return (a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]).reshape(-1, path.shape[1])


def final_saddles(
    objective: Objective, paths: list[Tensor], opts: PathOptions, known: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Dense maxima at a density where doubling it moves no saddle beyond ``saddle_tol``.

    Each doubling evaluates only the points it adds. ``known`` (E,), the dense maxima at
    ``opts.density`` when the caller has them, is a subset of the points of every density
    ``opts.density * 2**j``: from there only the added points are evaluated (the screen of
    ``core.pairs``, whose final density is its density, evaluates nothing). Returns saddles
    (E,), densities (E,).
    """
    e = len(paths)
    saddles = np.full(e, np.nan)
    dens = np.full(e, opts.final_density, dtype=np.int64)
    todo = np.arange(e)
    d = opts.final_density
    ratio = d // opts.density
    if known is not None and d % opts.density == 0 and ratio & (ratio - 1) == 0:
        cur, d = np.asarray(known, dtype=np.float64), opts.density
        while d < opts.final_density:
            cur = np.maximum(
                cur, max_over(objective, [_midpoints(p, d) for p in paths], opts.chunk)
            )
            d *= 2
    else:
        cur = _dense_max(objective, paths, d, opts.chunk)
    while todo.size:
        if 2 * d > opts.max_density:
            saddles[todo] = cur
            log.info("%d paths did not settle below max_density=%d", todo.size, d)
            break
        new = max_over(objective, [_midpoints(paths[i], d) for i in todo], opts.chunk)
        nxt = np.maximum(cur, new)
        ok = nxt - cur <= opts.saddle_tol
        saddles[todo[ok]], dens[todo[ok]] = cur[ok], d
        todo, cur, d = todo[~ok], nxt[~ok], 2 * d
        dens[todo] = d
    return saddles, dens


def _reparametrize(x: Tensor, e: Tensor, climb: Tensor | None, weight: float) -> Tensor:
    """Re-spread points along each polyline by loss-weighted arc length.

    x (A, N, P) chains; e (A, N) node values; climb (A,) index kept in place or None.
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
    # index_select and lerp in place: 2-3x faster than indexing and lerp, the same numbers
    new = flat.index_select(0, at).view_as(x)
    new.lerp_(flat.index_select(0, at + 1).view_as(x), frac)
    new[:, 0], new[:, -1] = x[:, 0], x[:, -1]
    if climb is not None:
        rows = torch.arange(a, device=x.device)
        new[rows, climb] = x[rows, climb]
    return new


def _resample(x: Tensor, e: Tensor, n_new: int, weight: float) -> Tensor:
    """Chains (A, N, P) -> (A, n_new, P) on the same polylines, loss-weighted spacing."""
    a, n, p = x.shape
    # Insert evenly in parameter, then let the weighted re-spreading place the points.
    t = torch.linspace(0, n - 1, n_new, dtype=x.dtype, device=x.device)
    j = t.floor().long().clamp(max=n - 2)
    f = (t - j)[None, :, None]
    y = x[:, j] + f * (x[:, j + 1] - x[:, j])
    ey = e[:, j] + f[..., 0] * (e[:, j + 1] - e[:, j])
    return _reparametrize(y, ey, None, weight)


def connect(
    objective: Objective,
    minima: Tensor,
    pairs: np.ndarray,
    options: PathOptions | None = None,
    *,
    step_objective: Callable[[int], Objective] | None = None,
    on_progress: Callable[[int, int, int], None] | None = None,
    straight: bool = True,
    final: bool = True,
) -> Paths:
    """Optimise a min-max path for every pair, all chains in one batch.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,), the full objective; saddles are evaluated on it.
    minima : Tensor
        (K, P) path endpoints.
    pairs : ndarray
        (E, 2) integer pairs of indices into ``minima``.
    step_objective : callable, optional
        ``step_objective(step)`` gives the objective for one step (a minibatch).
    on_progress : callable, optional
        ``on_progress(step, steps, n_converged)`` at every evaluation.
    straight : bool
        Evaluate the straight segments (their saddles, and the cap that no path reports more
        than its straight segment). False for a quick estimate (``core.pairs``' screen):
        ``Paths.straight`` is NaN and a path's saddle is its own maximum.
    final : bool
        Evaluate the final saddles (``finish``). False leaves every saddle at its maximum over
        the dense points at ``opts.density`` (a lower bound of the final one, recomputable
        from the stored path); ``finish`` can take them further later, pair by pair
        (``core.pairs`` does so only where the barcode depends on them).
    """
    opts = options or PathOptions()
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    k = minima.shape[0]
    if pairs.size and (pairs.min() < 0 or pairs.max() >= k or (pairs[:, 0] == pairs[:, 1]).any()):
        raise ValueError(f"pairs must be distinct indices in [0, {k}), got {pairs.tolist()}")
    e = pairs.shape[0]
    if e == 0:
        empty = np.zeros(0)
        return Paths(pairs, [], empty, empty, empty.astype(int), empty.astype(bool),
                     empty.astype(int), empty, np.zeros((0, 0)))  # fmt: skip
    endpoint_vals = values_of(objective, minima, opts.chunk).to(minima.dtype)  # (K,)

    # 1. Straight chains, and their honest saddles: the first candidate of every pair.
    x = straight_chains(minima, pairs, opts.n_points)  # (E, N, P)
    straight_paths = [x[i].clone() for i in range(e)]
    best_paths = list(straight_paths)
    if straight:
        best = _dense_max(objective, straight_paths, opts.density, opts.chunk)
    else:  # no cap: the first evaluation of the chains sets their saddles
        best = np.full(e, np.inf)
    straight_known = best.copy()
    ev = endpoint_vals.cpu().double().numpy()
    low = np.maximum(ev[pairs[:, 0]], ev[pairs[:, 1]])  # (E,) the higher endpoint
    hist_steps, hist = [0], [best.copy()]
    active = np.ones(e, dtype=bool)
    converged = np.zeros(e, dtype=bool)
    steps = np.zeros(e, dtype=np.int64)
    vel = torch.zeros_like(x[:, 1:-1])
    ends = torch.stack([endpoint_vals[pairs[:, 0]], endpoint_vals[pairs[:, 1]]], 1)  # (E, 2)
    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16)
        if opts.precision == "bfloat16"
        else contextlib.nullcontext()
    )

    # The active chains only, compacted: a retired pair leaves these tensors at once, so a
    # step touches no retired chain and needs no indexed copies.
    rows = np.arange(e)  # pair index of each active chain
    xa, va, ends_a = x, vel, ends
    for step in range(1, opts.steps + 1):
        if rows.size == 0:
            break
        (a_n, n, _), inner = xa.shape, xa[:, 1:-1]
        f = step_objective(step) if step_objective else objective
        with autocast:
            v, g = values_and_grads(f, inner.reshape(-1, xa.shape[2]), opts.chunk)
        v, g = v.to(x.dtype).view(a_n, n - 2), g.to(x.dtype).view(a_n, n - 2, -1)
        tau = xa[:, 2:] - xa[:, :-2]  # (A, N-2, P)
        tau /= tau.norm(dim=2, keepdim=True).clamp_min(1e-30)
        gpar = (g * tau).sum(2, keepdim=True)  # (A, N-2, 1)
        g_perp = g.addcmul_(gpar, tau, value=-1)  # g - gpar * tau = -force, in g's memory
        climb = None
        if step > opts.climb_after * opts.steps:
            climb = v.argmax(1)  # (A,) interior index of the highest point
            r = torch.arange(a_n, device=x.device)
            g_perp[r, climb] -= gpar[r, climb] * tau[r, climb]  # tangent component reversed
            climb = climb + 1  # as a node index
        # velocity += force; the move goes into g's memory (free now): no temporaries
        move = torch.mul(va.mul_(opts.momentum).sub_(g_perp), opts.lr, out=g_perp)
        spacing = (xa[:, 1:] - xa[:, :-1]).norm(dim=2).mean(1)  # (A,)
        cap = (opts.max_move * spacing)[:, None, None]
        norm = move.norm(dim=2, keepdim=True)
        move *= torch.where(norm > cap, cap / norm.clamp_min(1e-30), 1.0)
        inner += move
        e_nodes = torch.cat([ends_a[:, :1], v, ends_a[:, 1:]], 1)
        xa = _reparametrize(xa, e_nodes, climb, opts.weight)
        steps[rows] += 1

        if step % opts.eval_every == 0 or step == opts.steps:
            vals = _values_over(objective, [dense_points(p, opts.density) for p in xa], opts.chunk)
            est = np.array([v.max() for v in vals])
            nodes = np.stack([v[:: opts.density] for v in vals])  # (A, N): nodes are dense points
            for j, i in enumerate(rows):
                if est[j] < best[i]:
                    best[i], best_paths[i] = est[j], xa[j].clone()
            row = np.full(e, np.nan)
            row[rows] = best[rows]
            hist_steps.append(step)
            hist.append(row)
            _stop_converged(hist, rows, low, opts, active, converged)
            if on_progress:
                on_progress(step, opts.steps, int(converged.sum()))
            keep = active[rows]
            if not keep.all():
                kt = torch.as_tensor(np.flatnonzero(keep), device=x.device)
                xa, va, ends_a, rows = xa[kt], va[kt], ends_a[kt], rows[keep]
                est, nodes = est[keep], nodes[keep]
            xa, va = _grow(xa, va, est, nodes, opts)

    paths = Paths(
        pairs=pairs,
        points=[p.detach() for p in best_paths],
        saddles=best,
        straight=straight_known if straight else np.full(e, np.nan),
        densities=np.full(e, opts.density, dtype=np.int64),
        converged=converged,
        steps=steps,
        history_steps=np.asarray(hist_steps, dtype=np.int64),
        history=np.stack(hist, 1),
    )
    if final:
        finish(objective, minima, paths, np.arange(e), opts)
    return paths


def straight_chains(minima: Tensor, pairs: np.ndarray, n: int) -> Tensor:
    """(E, n, P) evenly spaced points on the straight segment of every pair, ends included:
    the first chains of ``connect``, rebuilt the same to the bit by ``finish``."""
    t = torch.linspace(0, 1, n, dtype=minima.dtype, device=minima.device)
    a, b = minima[pairs[:, 0]], minima[pairs[:, 1]]  # (E, P)
    return a[:, None] + t[None, :, None] * (b - a)[:, None]


def finish(
    objective: Objective, minima: Tensor, paths: Paths, idx: np.ndarray, opts: PathOptions
) -> np.ndarray:
    """Final honest saddles of paths ``idx``, in place: dense until stable on the full
    objective (``final_saddles``, from the maxima at ``opts.density`` that ``connect`` left),
    and never above the straight segment's, whose path replaces the optimised one where it is
    lower. Paths already final are left alone. Returns the (len(idx),) final saddles.

    ``connect(..., final=False)`` then ``finish`` of every pair computes what ``connect``
    computes, to the bit: every point's value is the same whichever block it comes in.
    """
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    todo = idx[paths.densities[idx] < opts.final_density]
    if todo.size:
        pts = [paths.points[i] for i in todo]
        saddles, dens = final_saddles(objective, pts, opts, known=paths.saddles[todo])
        if np.isfinite(paths.straight[todo]).all():  # connect(..., straight=True)
            line = list(straight_chains(minima, paths.pairs[todo], opts.n_points))
            known = paths.straight[todo]
            straight_s, sdens = final_saddles(objective, line, opts, known=known)
            for j in np.flatnonzero(saddles > straight_s):
                pts[j], saddles[j], dens[j] = line[j], straight_s[j], sdens[j]
            paths.straight[todo] = straight_s
        for j, i in enumerate(todo):
            paths.points[i] = pts[j].detach()
        paths.saddles[todo], paths.densities[todo] = saddles, dens
    return paths.saddles[idx]


def _stop_converged(hist, idx, low, opts, active, converged) -> None:
    """Retire pairs whose best saddle fell by less than atol + rtol * barrier lately."""
    if len(hist) <= opts.patience:
        return
    now, then = hist[-1][idx], hist[-1 - opts.patience][idx]
    barrier = np.maximum(now - low[idx], 0)
    done = (then - now) <= opts.atol + opts.rtol * barrier
    converged[idx[done]] = True
    active[idx[done]] = False


def _grow(x, vel, est, nodes, opts):
    """Add points to every active chain when one of them peaks between its nodes.

    x (A, N, P) active chains; est (A,) their dense maxima at this evaluation and nodes
    (A, N) the objective at their nodes, from the same evaluation.
    """
    a, n = x.shape[:2]
    if n >= opts.max_points or not a:
        return x, vel
    gap = est - nodes.max(1)
    if not (gap > opts.saddle_tol).any():
        return x, vel
    n_new = min(opts.max_points, n + max(n // 2, 1))
    log.debug("growing chains from %d to %d points", n, n_new)
    x = _resample(x, torch.as_tensor(nodes, dtype=x.dtype, device=x.device), n_new, opts.weight)
    return x, torch.zeros_like(x[:, 1:-1])
