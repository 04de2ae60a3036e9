"""Local minima: descend from M starts at once, then merge duplicates.

Every step evaluates all still-active starts in one batched call. A start stops when
its full-objective gradient norm falls below ``grad_tol`` (a *minimum*), when its loss stops
changing while the gradient is still large (a *stopping point*), when it reaches
``steps`` (also a stopping point, status "max_steps"), or when its loss or gradient is not finite
(*diverged*, left out with the reason). Starts that reach the same minimum are merged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from core.engine.evaluate import Objective, values_and_grads
from core.engine.fire import Fire
from core.engine.lbfgs import Lbfgs
from core.engine.options import MinimaOptions

log = logging.getLogger(__name__)

STATUSES = ("minimum", "stalled", "max_steps", "diverged")
FULL_BATCH = {"fire": Fire, "lbfgs": Lbfgs}  # optimizers of full-objective descents
GROWTH = 100.0  # L-BFGS: the trust radius doubles after each step downhill, to this times lr


@dataclass
class Minima:
    """Distinct minima found from M starts.

    Attributes
    ----------
    thetas : Tensor
        (K, P) the minima, sorted by value.
    values : ndarray
        (K,) full-objective value of each.
    grad_norms : ndarray
        (K,) gradient norm at each.
    status : list[str]
        (K,) "minimum" (gradient below grad_tol), "stalled" or "max_steps" (a stopping
        point, not a certified minimum).
    steps : ndarray
        (K,) descent steps taken.
    start_of : ndarray
        (M,) index of the minimum each start reached; -1 for a diverged start.
    failed : dict[int, str]
        start index -> reason, for starts left out.
    """

    thetas: Tensor
    values: np.ndarray
    grad_norms: np.ndarray
    status: list[str]
    steps: np.ndarray
    start_of: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.thetas.shape[0])

    @property
    def converged(self) -> np.ndarray:
        """(K,) True where the minimum meets the gradient criterion."""
        return np.array([s == "minimum" for s in self.status], dtype=bool)

    def to_dict(self) -> dict:
        """Everything but ``thetas`` (stored as a tensor) as plain lists; the gradient norms
        under their stored name ``grad_norm``."""
        return {
            "values": self.values.tolist(),
            "grad_norm": self.grad_norms.tolist(),
            "status": list(self.status),
            "steps": self.steps.tolist(),
            "start_of": self.start_of.tolist(),
            "failed": {str(k): v for k, v in self.failed.items()},
        }

    @classmethod
    def from_dict(cls, d: dict, thetas: Tensor) -> Minima:
        """Inverse of ``to_dict`` with the (K, P) ``thetas``; ValueError if they disagree."""
        values = np.asarray(d["values"], dtype=np.float64)
        if thetas.ndim != 2 or thetas.shape[0] != values.size:
            raise ValueError(f"{values.size} minima but thetas of shape {tuple(thetas.shape)}")
        return cls(
            thetas=thetas,
            values=values,
            grad_norms=np.asarray(d["grad_norm"], dtype=np.float64),
            status=[str(s) for s in d["status"]],
            steps=np.asarray(d["steps"], dtype=np.int64),
            start_of=np.asarray(d["start_of"], dtype=np.int64),
            failed={int(k): str(v) for k, v in d["failed"].items()},
        )


def _lr_at(opts: MinimaOptions, step: int) -> float:
    frac = min(step / max(opts.steps - 1, 1), 1.0)
    lo = opts.final_lr
    return lo + 0.5 * (opts.lr - lo) * (1 + math.cos(math.pi * frac))


def descend(
    objective: Objective,
    starts: Tensor,
    options: MinimaOptions | None = None,
    *,
    step_objective: Callable[[int], Objective] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Run the batched descent without merging.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,), the full objective used for convergence checks.
    starts : Tensor
        (M, P) starting points.
    options : MinimaOptions
    step_objective : callable, optional
        ``step_objective(step)`` gives the objective for one step (a minibatch); the full
        objective when None.
    on_progress : callable, optional
        ``on_progress(step, steps)``, called at every check.

    Returns
    -------
    thetas (M, P), values (M,), grad_norms (M,), status (M,), steps (M,)
    """
    opts = options or MinimaOptions()
    if opts.optimizer in FULL_BATCH and step_objective is None:
        return _descend_full(objective, starts, opts, on_progress)
    m = starts.shape[0]
    x = starts.detach().clone()
    mom = torch.zeros_like(x)
    sq = torch.zeros_like(x)
    active = torch.ones(m, dtype=torch.bool, device=x.device)
    status = ["max_steps"] * m
    steps = np.zeros(m, dtype=np.int64)
    last_check = torch.full((m,), float("inf"), dtype=x.dtype, device=x.device)
    beta1, beta2, eps = 0.9, 0.999, 1e-12

    for step in range(opts.steps):
        if step % opts.check_every == 0:
            _check(objective, x, active, last_check, status, opts)
            if on_progress:
                on_progress(step, opts.steps)
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        f = step_objective(step) if step_objective else objective
        _, g = values_and_grads(f, x[idx])  # (A, P)
        bad = ~torch.isfinite(g).all(1)
        if bad.any():
            for i in idx[bad].tolist():
                status[i] = "diverged"
            active[idx[bad]] = False
            idx, g = idx[~bad], g[~bad]
        lr = _lr_at(opts, step)
        if opts.optimizer == "gd":
            x[idx] -= lr * g
        elif opts.optimizer == "momentum":
            mom[idx] = 0.9 * mom[idx] + g
            x[idx] -= lr * mom[idx]
        else:  # Adam, elementwise, so every row is its own optimizer
            t = steps[idx.cpu().numpy()] + 1
            tt = torch.as_tensor(t, dtype=x.dtype, device=x.device)[:, None]
            mom[idx] = beta1 * mom[idx] + (1 - beta1) * g
            sq[idx] = beta2 * sq[idx] + (1 - beta2) * g * g
            mhat = mom[idx] / (1 - beta1**tt)
            vhat = sq[idx] / (1 - beta2**tt)
            x[idx] -= lr * mhat / (vhat.sqrt() + eps)
        steps[idx.cpu().numpy()] += 1
    else:
        _check(objective, x, active, last_check, status, opts)

    return _final(objective, x, status, steps, opts)


def _final(objective, x, status, steps, opts):
    """``descend``'s result: values and gradient norms of every row, non-finite ones marked
    diverged."""
    vals, grads = values_and_grads(objective, x)
    gn = grads.norm(dim=1)
    for i in range(x.shape[0]):
        if status[i] != "diverged" and not (torch.isfinite(vals[i]) and torch.isfinite(gn[i])):
            status[i] = "diverged"
    return x, vals.cpu().double().numpy(), gn.cpu().double().numpy(), status, steps


def _descend_full(objective, starts, opts, on_progress):
    """``descend`` by FIRE or L-BFGS on the full objective: every step's gradient is also the
    convergence check, and a start that converged leaves the batch at once. No start moves
    more than its trust radius in one step: ``opts.lr`` (for L-BFGS: at first; it doubles
    after a step downhill, up to ``GROWTH`` times; a step uphill is taken back, clears that
    start's memory and sets its radius to half that step's length)."""
    m = starts.shape[0]
    x = starts.detach().clone()
    status, steps = ["max_steps"] * m, np.zeros(m, dtype=np.int64)
    rows = np.arange(m)
    opt = FULL_BATCH[opts.optimizer](m, x.dtype, x.device)
    cap = torch.full((m,), opts.lr, dtype=x.dtype, device=x.device)  # per active row
    back = None  # L-BFGS: (x, v, g, step length) of the active rows before their last step
    for step in range(opts.steps):
        if on_progress and step % opts.check_every == 0:
            on_progress(step, opts.steps)
        if rows.size == 0:
            break
        rt = torch.as_tensor(rows, device=x.device)
        v, g = values_and_grads(objective, x[rt])  # (A,), (A, P)
        if back is not None:
            up = v > back[1] + 64 * torch.finfo(v.dtype).eps * back[1].abs().clamp_min(1)
            up &= torch.isfinite(back[1])
            if up.any():
                x[rt[up]], v[up], g[up] = back[0][up], back[1][up], back[2][up]
                opt.forget(up)
            cap = torch.where(up, 0.5 * back[3], torch.clamp(2 * cap, max=GROWTH * opts.lr))
        bad = (~torch.isfinite(g).all(1) | ~torch.isfinite(v)).cpu().numpy()
        done = (g.norm(dim=1) <= opts.grad_tol).cpu().numpy() & ~bad
        for i in rows[bad]:
            status[i] = "diverged"
        for i in rows[done]:
            status[i] = "minimum"
        keep = ~(bad | done)
        if not keep.all():
            kt = torch.as_tensor(np.flatnonzero(keep), device=x.device)
            opt.select(kt)
            rows, rt, g, v, cap = rows[keep], rt[kt], g[kt], v[kt], cap[kt]
            if rows.size == 0:
                break
        move = opt.step(-g[:, None, :], cap)[:, 0]
        if opts.optimizer == "lbfgs":
            back = (x[rt].clone(), v, g, move.norm(dim=1))
        x[rt] += move
        steps[rows] += 1
    return _final(objective, x, status, steps, opts)


def _check(objective, x, active, last_check, status, opts) -> None:
    """Full-objective check: retire rows that converged, stalled or diverged."""
    idx = active.nonzero().squeeze(1)
    if idx.numel() == 0:
        return
    v, g = values_and_grads(objective, x[idx])
    gn = g.norm(dim=1)
    for j, i in enumerate(idx.tolist()):
        if not (torch.isfinite(v[j]) and torch.isfinite(gn[j])):
            status[i], active[i] = "diverged", False
        elif gn[j] <= opts.grad_tol:
            status[i], active[i] = "minimum", False
        elif abs(float(last_check[i] - v[j])) <= opts.loss_tol:
            status[i], active[i] = "stalled", False
        last_check[i] = v[j]


def merge(
    thetas: Tensor, values: np.ndarray, status: list[str], merge_distance: float
) -> tuple[list[int], np.ndarray]:
    """Group rows that reached the same minimum.

    Rows are visited from the lowest value up; a row joins the first kept row within
    ``merge_distance`` (Euclidean), else it is kept as a new minimum. Diverged rows map to -1.

    Returns
    -------
    keep : list[int]
        Row index of each distinct minimum, by increasing value.
    start_of : ndarray
        (M,) position in ``keep`` that each row maps to, -1 for diverged rows.
    """
    m = thetas.shape[0]
    start_of = np.full(m, -1, dtype=np.int64)
    keep: list[int] = []
    order = [i for i in np.argsort(values, kind="stable") if status[i] != "diverged"]
    for i in order:
        if keep:
            d = (thetas[keep] - thetas[i]).norm(dim=1)
            j = int(d.argmin())
            if float(d[j]) <= merge_distance:
                start_of[i] = j
                continue
        start_of[i] = len(keep)
        keep.append(int(i))
    return keep, start_of


def find_minima(
    objective: Objective,
    starts: Tensor,
    options: MinimaOptions | None = None,
    *,
    step_objective: Callable[[int], Objective] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Minima:
    """Descend from every start at once and return the distinct minima.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,).
    starts : Tensor
        (M, P) floating point.

    Returns
    -------
    Minima
        Sorted by value. Raises ValueError when every start diverged.
    """
    if not isinstance(starts, Tensor) or starts.ndim != 2 or not starts.is_floating_point():
        raise ValueError(f"starts must be a float tensor of shape (M, P), got {starts!r:.80}")
    if starts.shape[0] == 0:
        raise ValueError("starts is empty: need at least one starting point")
    opts = options or MinimaOptions()
    x, vals, gn, status, steps = descend(
        objective, starts, opts, step_objective=step_objective, on_progress=on_progress
    )
    failed = {i: _reason(vals[i], gn[i]) for i, s in enumerate(status) if s == "diverged"}
    for i, why in failed.items():
        log.warning("start %d diverged: %s; it is left out", i, why)
    keep, start_of = merge(x, vals, status, opts.merge_distance)
    if not keep:
        raise ValueError(f"all {len(status)} starts diverged; first reason: {failed[0]}")
    return Minima(
        thetas=x[keep].clone(),
        values=vals[keep],
        grad_norms=gn[keep],
        status=[status[i] for i in keep],
        steps=steps[keep],
        start_of=start_of,
        failed=failed,
    )


def _reason(value: float, grad_norm: float) -> str:
    return f"non-finite loss or gradient (loss={value}, grad norm={grad_norm})"
