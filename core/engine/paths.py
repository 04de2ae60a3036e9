"""Min-max paths between minima: a batched climbing-image string method relaxed by L-BFGS.

Each pair of minima gets a chain of N points, endpoints fixed. One step of all chains at
once (every interior point of every chain with the same number of points in one batched
call; each chain grows, and keeps its L-BFGS memory, on its own, so a pair's path does not
depend on the other pairs beside it):

1. Tangent at each interior point: toward its higher neighbour (upwind, Henkelman &
   Jonsson 2000), a blend of both at a local extremum of the path.
2. Force on each interior point: minus the gradient with its tangent component removed.
   After ``climb_after`` steps the highest interior point *climbs*: its tangent component is
   reversed, so it walks up the path to the saddle while still descending across it.
3. Each chain moves by L-BFGS on its forces, the whole chain one vector (``core.engine.lbfgs``;
   global L-BFGS, Sheppard, Terrell & Henkelman 2008). No step size to tune: the curvature
   pairs give the step, and no point moves more than ``max_move`` of its chain's mean
   spacing in one step (a trust radius).
4. Points are re-spread along the polyline by a weighted arc length (``core.engine.chain``); the
   climbing point stays where it is. (String method, E, Ren & Vanden-Eijnden 2007; climbing
   image, Henkelman et al. 2000.)

A pair is done, and leaves the batch, when

- *converged*: on the full objective, the largest force perpendicular to the path is below
  ``force_tol * scale`` and the gradient at the climbing point below ``grad_tol * scale``,
  where ``scale`` is the pair's own gradient scale (root-mean-square gradient norm along its
  straight segment). The climbing point then sits on a critical point: the saddle;
- *no barrier*: a dense evaluation of the path finds no point more than ``saddle_tol`` (the
  stated resolution of a saddle) above its higher endpoint, and neither does its final
  evaluation (peak search, then density until stable: a peak between nodes cannot hide): a
  route with no climb at that resolution (the minimax value is at least that endpoint's, and
  the path's maximum, at most ``saddle_tol`` more, is what is reported);
- or it reaches the step cap, and says so with its forces (an upper bound, not a saddle).

The first ``noisy_steps`` steps may use ``step_objective`` (minibatches) to get near the
valley cheaply; every later step, every convergence test and every reported value uses the
full objective. Every ``check_every`` steps each path is evaluated densely (nodes plus
``check_density`` interpolated points per interval); a chain grows where its interpolated points
peak above its nodes. The reported saddle is the dense maximum of the stored path at a density
where doubling it changes no saddle by more than ``saddle_tol`` (``finish``), so anyone can
recompute it from the stored path; once the climbing point is on the saddle, the maximum
cannot read below it.

With ``precision="bfloat16"`` the steps run under ``torch.autocast``; every evaluation that
decides or reports a saddle stays in float32.

        loss
         |        x  <- climbing point (saddle)
         |      o   o
         |    o       o
         |  o           o
         | A             B        A, B fixed minima; o interior points
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from core.engine.chain import (
    dense_points,
    reparametrize,
    resample,
    straight_chains,
    upwind_tangents,
)
from core.engine.evaluate import Objective, values_and_grads, values_of
from core.engine.joins import joined, oriented, through
from core.engine.lbfgs import Lbfgs
from core.engine.options import PathOptions
from core.engine.saddles import dense_max, final_saddles, refine_peaks, values_over

log = logging.getLogger(__name__)

STATUSES = ("converged", "no barrier", "step cap")
ARRAYS = (  # what Paths.to_dict stores, beside the points
    "pairs",
    "saddles",
    "straight",
    "densities",
    "status",
    "force",
    "climb_grad",
    "scale",
    "steps",
    "history_steps",
    "history",
    "climb",
    "certified",
    "eigs",
    "peak_grad",
    "peak_value",
    "via",
    "narrow",
)
SPLIT = -2  # Paths.via of a path joined at a minimum that no start reached (core.engine.splits)
# arrays that records written before them lack, and their fill value
OPTIONAL = {"via": -1, "narrow": np.nan}
_TYPES = {
    "pairs": np.int64,
    "densities": np.int64,
    "steps": np.int64,
    "history_steps": np.int64,
    "status": object,
    "certified": bool,
    "climb": np.int64,
    "via": np.int64,
}


def _listed(a):
    return a.tolist() if isinstance(a, np.ndarray) else a


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
        (E,) the straight segment's maximum: final (as ``saddles``) where it could compete
        with the path's saddle, else a lower bound already above the path's saddle (its
        maximum at ``PathOptions.check_density`` points per interval, or its peak).
    densities : ndarray
        (E,) interpolated points per interval used for ``saddles``.
    status : ndarray
        (E,) str, one of ``STATUSES``: "converged" (by force: the climbing point is on a
        saddle), "no barrier" (the path never rises more than ``saddle_tol`` above its higher
        endpoint) or "step cap"
        (stopped unconverged: the saddle is an upper bound).
    force : ndarray
        (E,) largest force perpendicular to the path at the last full-objective step, over
        ``scale`` (NaN if none was taken).
    climb_grad : ndarray
        (E,) gradient norm at the climbing point at that step, over ``scale``.
    scale : ndarray
        (E,) the pair's gradient scale: RMS gradient norm along its straight segment.
    steps : ndarray
        (E,) steps taken; a split path's include its legs' (``core.engine.splits``).
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
    status: np.ndarray
    force: np.ndarray
    climb_grad: np.ndarray
    scale: np.ndarray
    steps: np.ndarray
    history_steps: np.ndarray
    history: np.ndarray
    climb: np.ndarray | None = None  # (E,) node of the stored path that climbed; -1: none
    certified: np.ndarray | None = None  # (E,) bool, from core.engine.certify (None: not checked)
    peak_value: np.ndarray | None = None  # (E,) objective at the certified point
    eigs: np.ndarray | None = None  # (E, 2) lowest Hessian eigenvalues at the path's peak
    peak_grad: np.ndarray | None = None  # (E,) gradient norm at the peak over ``scale``
    # (E,) the minimum a joined path runs through; -1: none; SPLIT: one no start reached
    via: np.ndarray | None = None
    # (E,) the pair's saddle through the route search one step narrower: without the probe,
    # else without the last restart, else through the nearer half of the neighbour legs
    # (core.engine.splits.neighbour_routes); NaN: neither
    narrow: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.pairs.shape[0])

    def to_dict(self) -> dict:
        """Every array but ``points`` (stored as tensors) as plain lists, and ``converged``."""
        fill = {n: np.full(len(self), v) for n, v in OPTIONAL.items() if getattr(self, n) is None}
        return {name: _listed(fill.get(name, getattr(self, name))) for name in ARRAYS} | {
            "converged": self.converged.tolist()
        }

    @classmethod
    def from_dict(cls, d: dict, points: list[Tensor]) -> Paths:
        """Inverse of ``to_dict`` with the stored ``points`` (E tensors (N_e, P), or [])."""
        e = len(d["pairs"])
        arrays = {
            n: np.asarray(d[n] if n in d else [OPTIONAL[n]] * e, dtype=_TYPES.get(n, np.float64))
            for n in ARRAYS
        }
        arrays["pairs"] = arrays["pairs"].reshape(-1, 2)
        arrays["eigs"] = arrays["eigs"].reshape(-1, 2)
        if points and len(points) != len(arrays["pairs"]):
            raise ValueError(f"{len(arrays['pairs'])} paths but {len(points)} stored point sets")
        return cls(points=points, **arrays)

    @property
    def converged(self) -> np.ndarray:
        """(E,) bool: done by force or with no barrier (not stopped by the step cap)."""
        return self.status != "step cap"

    def narrowed(self) -> Paths | None:
        """These paths with each pair's saddle through the route search one step narrower
        (``narrow``, never below ``saddles``: a narrower search finds no lower route); None
        where the search had no narrower step."""
        if self.narrow is None or not np.isfinite(self.narrow).any():
            return None
        return dataclasses.replace(self, saddles=np.fmax(self.narrow, self.saddles))


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
    joinable: set | None = None,
) -> Paths:
    """Optimise a min-max path for every pair, all chains in one batch per number of points.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,), the full objective: convergence and saddles are judged on it.
    minima : Tensor
        (K, P) path endpoints.
    pairs : ndarray
        (E, 2) integer pairs of indices into ``minima``.
    step_objective : callable, optional
        ``step_objective(step)`` gives the objective of one of the first
        ``options.noisy_steps`` steps (a minibatch).
    on_progress : callable, optional
        ``on_progress(step, steps, n_done)`` at every dense evaluation.
    straight : bool
        Evaluate the straight segments (their saddles, and the cap that no path reports more
        than its straight segment). False for a quick estimate (``core.engine.pairs``' screen):
        ``Paths.straight`` is NaN and a path's saddle is its own maximum.
    final : bool
        Evaluate the final saddles (``finish``). False leaves every saddle at its maximum over
        the dense points at ``opts.check_density`` (a lower bound of the final one, recomputable
        from the stored path); ``finish`` can take them further later, pair by pair.
    joinable : set, optional
        With ``final``, a chain that runs through a third minimum stops and is joined from
        the final paths of its two legs (``core.engine.joins``). Without ``joinable`` the legs
        must be pairs of this batch, and the joins are made here; with it, the legs may also
        be these pairs (i < j), the chain is left with status "via" and the caller joins it
        (``join_through``) once it holds the final paths of every leg.
    """
    opts = options or PathOptions()
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    k = minima.shape[0]
    if pairs.size and (pairs.min() < 0 or pairs.max() >= k or (pairs[:, 0] == pairs[:, 1]).any()):
        raise ValueError(f"pairs must be distinct indices in [0, {k}), got {pairs.tolist()}")
    e = pairs.shape[0]
    if e == 0:
        z = np.zeros(0)
        return Paths(
            pairs,
            [],
            z,
            z,
            z.astype(int),
            z.astype(str),
            z,
            z,
            z,
            z.astype(int),
            z.astype(int),
            np.zeros((0, 0)),
            climb=z.astype(int),
            certified=z.astype(bool),
            eigs=np.zeros((0, 2)),
            peak_grad=z,
            peak_value=z,
            via=z.astype(int),
        )
    endpoint_vals = values_of(objective, minima).to(minima.dtype)  # (K,)

    # 1. Straight chains, their honest saddles (the first candidate of every pair), and each
    #    pair's gradient scale on the full objective.
    x = straight_chains(minima, pairs, opts.n_points)  # (E, N, P)
    run = _Run(e, x, opts)
    if straight:
        run.best = dense_max(objective, run.paths, opts.check_density)
    straight_known, run.hist = run.best.copy(), [run.best.copy()]
    _, g0 = values_and_grads(objective, x[:, 1:-1].reshape(-1, x.shape[2]))
    run.scale = g0.view(e, -1).double().pow(2).sum(1).div(opts.n_points - 2).sqrt().cpu().numpy()
    ev = endpoint_vals.cpu().double().numpy()
    high = np.maximum(ev[pairs[:, 0]], ev[pairs[:, 1]])  # (E,) the higher endpoint
    rounding = 64 * torch.finfo(minima.dtype).eps * np.maximum(1.0, np.abs(high))
    ends = torch.stack([endpoint_vals[pairs[:, 0]], endpoint_vals[pairs[:, 1]]], 1)  # (E, 2)
    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16)
        if opts.precision == "bfloat16"
        else contextlib.nullcontext()
    )

    # Pairs whose final paths a chain through a third minimum can be joined from.
    legs = None
    if final and k > 2:
        legs = {(int(i), int(j)) for i, j in pairs} | (joinable or set())

    # The active chains only, compacted (a finished pair leaves them at once), in batches of
    # one number of points: a chain grows on its own peaks, never on another pair's.
    batches = [_Batch(x, ends, np.arange(e), Lbfgs(e, x.dtype, x.device))]

    def relax(b: _Batch, f, noisy: bool, step: int) -> _Batch:
        """One step of the chains of ``b`` on ``f``; the converged ones leave it."""
        (a_n, n, p), inner = b.x.shape, b.x[:, 1:-1]
        with autocast:
            v, g = values_and_grads(f, inner.reshape(-1, p))
        v, g = v.to(x.dtype).view(a_n, n - 2), g.to(x.dtype).view(a_n, n - 2, p)
        e_nodes = torch.cat([b.ends[:, :1], v, b.ends[:, 1:]], 1)  # (A, N)
        tau = upwind_tangents(b.x, e_nodes)  # (A, N-2, P)
        gpar = (g * tau).sum(2, keepdim=True)  # (A, N-2, 1)
        force = g.addcmul_(gpar, tau, value=-1).neg_()  # -(g - gpar tau), in g's memory
        fperp = force.norm(dim=2)  # (A, N-2)
        climb, r = None, torch.arange(a_n, device=x.device)
        peak = torch.zeros(a_n, dtype=torch.bool, device=x.device)
        if step > opts.climb_after:
            ci = v.argmax(1)  # (A,) interior index of the highest point
            # it climbs only above both ends: past an end that is no minimum it would not stop
            peak = v[r, ci] > b.ends.amax(1)
            up = gpar[r, ci] * tau[r, ci] * peak[:, None].to(x.dtype)
            force[r, ci] += up  # -g + 2 gpar tau: climbs along the path
            climb = ci + 1  # as a node index
        run.steps[b.rows] += 1
        if not noisy:
            done = run.judge(b.rows, fperp, force, climb, peak, opts)
            if done.any():
                # ``finish`` evaluates their saddles densely; until then their node maximum
                top = e_nodes.amax(1).double().cpu().numpy() if final else None
                run.retire(objective, b.rows, b.x, done, "converged", opts, top, climb=climb)
                kt = torch.as_tensor(np.flatnonzero(~done), device=x.device)
                b = b.keep(~done)
                force, e_nodes = force[kt], e_nodes[kt]
                climb = None if climb is None else climb[kt]
                if not b.rows.size:
                    return b
        move = b.opt.step(force, _spacing(b.x) * opts.max_move)
        b.x[:, 1:-1] += move
        b.x = reparametrize(b.x, e_nodes, climb, opts.weight)
        return b

    def check(b: _Batch) -> list[_Batch]:
        """Evaluate the chains of ``b`` densely: keep each pair's best path, retire those with
        no barrier or through a third minimum, grow the others where they peak between nodes."""
        vals = values_over(objective, [dense_points(q, opts.check_density) for q in b.x])
        est = np.array([q.max() for q in vals])
        top = np.array([int(np.argmax(q)) for q in vals])  # dense index of each peak
        nodes = np.stack([q[:: opts.check_density] for q in vals])  # (A, N): nodes are dense
        run.record(b.rows, b.x, est)
        rows = b.rows
        flat = est <= high[rows] + np.maximum(rounding[rows], opts.saddle_tol)
        if flat.any():  # a sampled maximum can read low: the final saddle must agree
            cand = np.flatnonzero(flat)
            pts, after = refine_peaks(objective, [b.x[j] for j in cand], opts.check_density)
            fine, dens = final_saddles(objective, pts, opts)
            late = fine > high[rows[cand]] + np.maximum(rounding[rows[cand]], opts.saddle_tol)
            flat[cand[late]] = False
            est[cand[late]] = fine[late]  # a peak between nodes: the chain grows
            for k in np.flatnonzero(~late):  # retiring now: ``finish`` need not redo these
                run.finals[int(rows[cand[k]])] = (pts[k], fine[k], dens[k], after[k])
        if flat.any():
            run.retire(objective, rows, b.x, flat, "no barrier", opts, est)
            b, est, nodes, top = b.keep(~flat), est[~flat], nodes[~flat], top[~flat]
        if legs is not None and b.rows.size:
            via = through(b.x, nodes, minima, ev, pairs[b.rows], legs)
            hit = via >= 0
            if hit.any():
                run.via[b.rows[hit]] = via[hit]
                run.retire(objective, b.rows, b.x, hit, "via", opts, est)
                b, est, nodes, top = b.keep(~hit), est[~hit], nodes[~hit], top[~hit]
        return _grow(b, est, nodes, top, opts)

    for step in range(1, opts.steps + 1):
        if not batches:
            break
        noisy = step_objective is not None and step <= opts.noisy_steps
        f = step_objective(step) if noisy else objective
        batches = [b for b in (relax(b, f, noisy, step) for b in batches) if b.rows.size]
        if batches and (step % opts.check_every == 0 or step == opts.steps):
            seen = np.concatenate([b.rows for b in batches])
            batches = _Batch.merged([c for b in batches for c in check(b)])
            run.mark(seen)
            if on_progress:
                on_progress(step, opts.steps, int((run.status != "step cap").sum()))

    paths = Paths(
        pairs=pairs,
        points=[q.detach() for q in run.paths],
        saddles=run.best,
        straight=straight_known if straight else np.full(e, np.nan),
        densities=np.full(e, opts.check_density, dtype=np.int64),
        status=run.status,
        force=run.force,
        climb_grad=run.climb_grad,
        scale=run.scale,
        steps=run.steps,
        history_steps=np.asarray(run.hist_steps, dtype=np.int64),
        history=np.stack(run.hist, 1),
        climb=run.climb,
        via=run.via,
    )
    if final:
        finish(objective, minima, paths, np.flatnonzero(run.via < 0), opts, known=run.finals)
        if joinable is None:
            join_through(objective, minima, ev, paths, opts)
    return paths


def finish(
    objective: Objective,
    minima: Tensor,
    paths: Paths,
    idx: np.ndarray,
    opts: PathOptions,
    known: dict[int, tuple] | None = None,
) -> np.ndarray:
    """Final honest saddles of paths ``idx``, in place: a node on each path's peak
    (``refine_peaks``), then dense until stable on the full objective (``final_saddles``),
    and never above the straight segment's, whose path replaces the optimised one where it is
    lower (for a converged path: by more than ``saddle_tol``). Paths already final are left
    alone. Returns the (len(idx),) final saddles. ``known``: path -> (refined points, final
    saddle, density, inserted-after node) already computed from its stored points (``connect``
    has them for the pairs it retired with no barrier), used instead of computing them again.

    ``connect(..., final=False)`` then ``finish`` of every pair computes what ``connect``
    computes, to the bit: every point's value is the same whichever block it comes in.
    """
    idx = np.asarray(idx, dtype=np.int64).reshape(-1)
    todo = idx[paths.densities[idx] < opts.final_density]
    if todo.size:
        pts, saddles, dens, after = _finals(objective, paths, todo, opts, known or {})
        if paths.climb is not None:  # a node inserted before the climbing node shifts it
            shift = (after >= 0) & (paths.climb[todo] > after)
            paths.climb[todo[shift]] += 1
        # the straight segment's sampled maximum is a lower bound of its maximum: where it is
        # above the path's final saddle already, the segment cannot win and keeps it
        near = np.flatnonzero(paths.straight[todo] <= saddles)  # NaN (no straight): never
        if near.size:
            line = list(straight_chains(minima, paths.pairs[todo[near]], opts.n_points))
            line, _, peaks = refine_peaks(objective, line, opts.check_density, values=True)
            # within saddle_tol a converged path (its climbing node on the saddle, which the
            # certificate checks) is kept; the segment wins where it is lower beyond that
            tie = np.where(paths.status[todo[near]] == "converged", opts.saddle_tol, 0.0)
            # the segment's peak is a point on it, so its final maximum is at least that: it
            # can win only where the peak is lower than the path's saddle (less the tie)
            open_ = np.flatnonzero(peaks < saddles[near] - tie)
            paths.straight[todo[near]] = np.maximum(paths.straight[todo[near]], peaks)
            straight_s, sdens = (
                final_saddles(objective, [line[k] for k in open_], opts) if open_.size else ((), ())
            )
            for k, s_k, d_k in zip(open_, straight_s, sdens, strict=True):
                j = near[k]
                paths.straight[todo[j]] = s_k
                if saddles[j] > s_k + tie[k]:
                    pts[j], saddles[j], dens[j] = line[k], s_k, d_k
                    if paths.climb is not None:
                        paths.climb[todo[j]] = -1
        for j, i in enumerate(todo):
            paths.points[i] = pts[j].detach()
        paths.saddles[todo], paths.densities[todo] = saddles, dens
    return paths.saddles[idx]


def _finals(objective, paths: Paths, todo: np.ndarray, opts: PathOptions, known: dict):
    """Refined points, final saddles, densities and inserted-after nodes of paths ``todo``:
    from ``known`` where given, the others computed in one batch."""
    new = [int(i) for i in todo if int(i) not in known]
    got = dict(known)
    if new:
        pts, after = refine_peaks(objective, [paths.points[i] for i in new], opts.check_density)
        saddles, dens = final_saddles(objective, pts, opts)
        got |= {i: v for i, v in zip(new, zip(pts, saddles, dens, after, strict=True), strict=True)}
    rows = [got[int(i)] for i in todo]
    return (
        [r[0] for r in rows],
        np.array([r[1] for r in rows], dtype=np.float64),
        np.array([r[2] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.int64),
    )


def join_through(objective, minima, values: np.ndarray, paths: Paths, opts: PathOptions) -> None:
    """Give every chain that stopped in a third minimum (status "via") the path joined from
    its two legs' final paths (``core.engine.joins``), finished as any path is (never above
    the straight segment), in place. Shorter pairs first: a leg that is itself joined is
    final before it is used. A chain whose own maximum was below the joined path's by more
    than half that path's barrier found another route: it keeps its own path, unconverged.
    ``values``: (K,) the objective at ``minima``."""
    rows = np.flatnonzero(paths.status == "via")
    if rows.size == 0:
        return
    where = {(int(i), int(j)): r for r, (i, j) in enumerate(paths.pairs)}
    ends = minima[paths.pairs[rows]]
    order = np.argsort((ends[:, 0] - ends[:, 1]).norm(dim=1).cpu().numpy(), kind="stable")
    for e in rows[order]:
        i, j, k = (int(t) for t in (*paths.pairs[e], paths.via[e]))
        path = joined(
            objective, *(leg(paths, where[min(a, b), max(a, b)], a) for a, b in ((i, k), (k, j)))
        )
        high = max(values[i], values[j])
        if paths.saddles[e] < path["saddle"] - 0.5 * (path["saddle"] - high):
            log.warning("pair %s: its own chain is well below the path through %d", (i, j), k)
            paths.status[e], paths.via[e] = "step cap", -1
            finish(objective, minima, paths, np.array([e]), opts)
            continue
        paths.status[e], paths.climb[e] = path["status"], path["climb"]
        paths.force[e], paths.climb_grad[e] = path["force"], path["climb_grad"]
        paths.scale[e] = path["scale"]
        known = {int(e): (path["points"], path["saddle"], path["density"], -1)}
        finish(objective, minima, paths, np.array([e]), opts, known=known)


def leg(paths: Paths, r: int, start: int) -> dict:
    """Final path ``r`` of ``paths``, run from minimum ``start``, as ``joins.joined`` takes it."""
    pts = oriented(paths.points[r], paths.pairs[r], start)
    c = int(paths.climb[r]) if paths.climb is not None else -1
    if pts is not paths.points[r] and c >= 0:
        c = pts.shape[0] - 1 - c
    return {
        "points": pts,
        "saddle": float(paths.saddles[r]),
        "density": int(paths.densities[r]),
        "climb": c,
        "status": paths.status[r],
        "force": float(paths.force[r]),
        "climb_grad": float(paths.climb_grad[r]),
        "scale": float(paths.scale[r]),
    }


@dataclass
class _Batch:
    """Active chains with one number of points, relaxed together: ``x`` (A, N, P), the
    objective at their ends ``ends`` (A, 2), their pairs' indices ``rows`` (A,) and their
    L-BFGS state. Every chain has its own memory and grows on its own peaks, so a pair's
    path is the same whatever other pairs are relaxed beside it."""

    x: Tensor
    ends: Tensor
    rows: np.ndarray
    opt: Lbfgs

    def keep(self, keep: np.ndarray) -> _Batch:
        """The batch without the chains that just finished (``keep`` (A,) bool)."""
        kt = torch.as_tensor(np.flatnonzero(keep), device=self.x.device)
        self.opt.select(kt)
        return _Batch(self.x[kt], self.ends[kt], self.rows[keep], self.opt)

    @staticmethod
    def merged(batches: list[_Batch]) -> list[_Batch]:
        """One batch per number of points."""
        by_n: dict[int, list[_Batch]] = {}
        for b in batches:
            by_n.setdefault(b.x.shape[1], []).append(b)
        return [
            bs[0]
            if len(bs) == 1
            else _Batch(
                torch.cat([b.x for b in bs]),
                torch.cat([b.ends for b in bs]),
                np.concatenate([b.rows for b in bs]),
                Lbfgs.joined([b.opt for b in bs]),
            )
            for bs in by_n.values()
        ]


class _Run:
    """What ``connect`` keeps per pair while the chains relax: best path and its dense
    maximum, status, forces, steps, and the history of best estimates."""

    def __init__(self, e: int, x: Tensor, opts: PathOptions) -> None:
        self.paths = [x[i].clone() for i in range(e)]
        self.best = np.full(e, np.inf)
        self.status = np.full(e, "step cap", dtype=object)
        self.force = np.full(e, np.nan)
        self.climb_grad = np.full(e, np.nan)
        self.scale = np.ones(e)
        self.steps = np.zeros(e, dtype=np.int64)
        self.climb = np.full(e, -1, dtype=np.int64)
        self.via = np.full(e, -1, dtype=np.int64)  # the minimum a retired chain ran through
        self.hist_steps: list[int] = [0]
        self.hist: list[np.ndarray] = []
        self.finals: dict[int, tuple] = {}  # pair -> what ``finish`` computes, where known

    def judge(self, rows, fperp, force, climb, peak, opts) -> np.ndarray:
        """Record the forces of a full-objective step; (A,) bool: converged by force. A chain
        with no climbing point (none yet, or no interior point above both ends) cannot
        converge by force; it finishes with no barrier or at the step cap."""
        a_n = fperp.shape[0]
        if climb is None:
            fmax, gclimb = fperp.amax(1), torch.full((a_n,), math.inf, dtype=fperp.dtype)
        else:
            r = torch.arange(a_n, device=fperp.device)
            gclimb = force[r, climb - 1].norm(dim=1)  # |force| = |gradient| at the climber
            gclimb = torch.where(peak, gclimb, math.inf)
            fmax = fperp.index_put((r, climb - 1), fperp.new_zeros(a_n)).amax(1)
        s = self.scale[rows]
        self.force[rows] = fmax.double().cpu().numpy() / s
        self.climb_grad[rows] = gclimb.double().cpu().numpy() / s
        return (self.force[rows] <= opts.force_tol) & (self.climb_grad[rows] <= opts.grad_tol)

    def record(self, rows, xa, est) -> None:
        """Keep the lowest dense maximum seen of every pair ``rows``, with its path."""
        for j, i in enumerate(rows):
            if est[j] < self.best[i]:
                self.best[i], self.paths[i] = est[j], xa[j].clone()

    def mark(self, rows) -> None:
        """One history entry: the best estimates of the pairs ``rows`` evaluated at it."""
        row = np.full(self.best.size, np.nan)
        row[rows] = self.best[rows]
        self.hist_steps.append(int(self.steps[rows].max()))
        self.hist.append(row)

    def retire(self, objective, rows, xa, done, status, opts, est=None, climb=None) -> None:
        """Pairs ``rows[done]`` stop with their current chains as their paths; ``climb`` (A,)
        the node that climbed in each chain, if any."""
        idx = np.flatnonzero(done)
        chains = [xa[j].detach().clone() for j in idx]
        if est is None:
            est = np.full(len(done), np.nan)
            est[idx] = dense_max(objective, chains, opts.check_density)
        for j, q in zip(idx, chains, strict=True):
            i = rows[j]
            self.paths[i], self.best[i], self.status[i] = q, est[j], status
            if climb is not None:
                self.climb[i] = int(climb[j])


def _spacing(x: Tensor) -> Tensor:
    """(A,) mean distance between neighbouring points of each chain."""
    return (x[:, 1:] - x[:, :-1]).norm(dim=2).mean(1)


def _onto_peaks(x, opt, est, nodes, top, opts) -> None:
    """Chains at ``max_points`` with no interior node above their higher end and a dense
    maximum between their nodes (by more than ``saddle_tol``): the interior node nearer that
    dense point moves onto it, in place, and the chain's L-BFGS memory is cleared. Without it
    such a chain stalls: no point climbs, and it can never converge by force.

    x (A, N, P) active chains; est (A,), nodes (A, N) and top (A,) (the dense index of each
    maximum) from the same evaluation at ``opts.check_density``."""
    a, n = x.shape[:2]
    if n < opts.max_points or not a:
        return  # chains that can still grow do (``_grow``)
    hidden = est - nodes.max(1) > opts.saddle_tol
    d = opts.check_density
    hidden &= top % d != 0  # (a peak found only by the final evaluation has no dense point)
    hidden &= nodes[:, 1:-1].max(1) <= nodes[:, [0, -1]].max(1)  # and no node can climb
    for j in np.flatnonzero(hidden):
        k, r = divmod(int(top[j]), d)  # in interval k -> k + 1, r of d along
        node = min(max(k + 1 if 2 * r > d else k, 1), n - 2)
        x[j, node] = x[j, k] + (r / d) * (x[j, k + 1] - x[j, k])
    if hidden.any():
        opt.forget(torch.as_tensor(hidden, device=x.device))


def _grow(b: _Batch, est, nodes, top, opts) -> list[_Batch]:
    """The chains of ``b`` that peak between their nodes (by more than ``saddle_tol``) get
    half as many points again, as a batch of their own with fresh L-BFGS memory; the others
    stay as they were (at ``max_points``, a node moves onto such a peak: ``_onto_peaks``).

    est (A,) the dense maxima of b's chains at this evaluation, nodes (A, N) the objective at
    their nodes and top (A,) the dense index of each maximum, from the same evaluation.
    """
    a, n = b.x.shape[:2]
    if not a:
        return []
    grow = (est - nodes.max(1) > opts.saddle_tol) & (n < opts.max_points)
    out = []
    if grow.any():
        n_new = min(opts.max_points, n + max(n // 2, 1))
        log.debug("growing %d chains from %d to %d points", grow.sum(), n, n_new)
        g = torch.as_tensor(np.flatnonzero(grow), device=b.x.device)
        e = torch.as_tensor(nodes[grow], dtype=b.x.dtype, device=b.x.device)
        x = resample(b.x[g], e, n_new, opts.weight)
        out.append(_Batch(x, b.ends[g], b.rows[grow], Lbfgs(x.shape[0], x.dtype, x.device)))
        b, est, nodes, top = b.keep(~grow), est[~grow], nodes[~grow], top[~grow]
    if b.rows.size:
        _onto_peaks(b.x, b.opt, est, nodes, top, opts)
        out.append(b)
    return out
