"""Saddle certificates: at the highest point of each path, the gradient norm and the two
lowest eigenvalues of the Hessian.

An index-1 saddle has a vanishing gradient and exactly one negative Hessian eigenvalue: the
direction along the path, across which both basins meet. The eigenvalues come from Lanczos
iterations on Hessian-vector products (forward-over-reverse: ``torch.func.jvp`` of
``torch.func.grad``), all pairs at once: one batched call of the objective per iteration,
never the P x P Hessian. Lanczos resolves the extreme eigenvalues first; with full
re-orthogonalisation it runs until the residual bounds of the two lowest Ritz values decide
the index at every point (at most ``LANCZOS_STEPS`` iterations).

A pair is *certified* when its path converged by force, the gradient at its climbing point is
below ``grad_tol`` times the pair's gradient scale, the lowest Ritz value is negative by more
than its residual bound (so the Hessian surely has a negative eigenvalue there) and the second
lowest is not (Ritz values are upper bounds of the eigenvalues in order, so Lanczos cannot rule
out a second negative eigenvalue that it has not resolved; ``LANCZOS_STEPS`` makes that
unlikely for the extreme ones). Bounds are widened by ``EIG_TOL`` of the largest eigenvalue,
the rounding of the products. A path whose maximum is at an
endpoint crosses no saddle ("no barrier") and gets no certificate.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from core.engine.evaluate import Objective, values_and_grads
from core.engine.paths import SPLIT, PathOptions, Paths

LANCZOS_STEPS = 300  # most Lanczos iterations (fewer when P is smaller)
CHECK_EVERY = 10  # iterations between checks whether every index is decided
EIG_TOL = 1e-5  # rounding of a Hessian-vector product, relative to the largest |eigenvalue|


def hvp(objective: Objective, x: Tensor, v: Tensor) -> Tensor:
    """(E, P) Hessian-vector products H(x_e) v_e for points x and directions v (E, P).

    Row e of the objective depends on row e of its input only, so the gradient of the sum is
    the stack of per-row gradients and its directional derivative the stack of H_e v_e."""

    def grad_sum(t: Tensor) -> Tensor:
        return torch.func.grad(lambda u: objective(u).sum())(t)

    try:
        return torch.func.jvp(grad_sum, (x,), (v,))[1]
    except (RuntimeError, NotImplementedError):  # an op without forward-mode AD: reverse twice
        with torch.enable_grad():
            xr = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(objective(xr).sum(), xr, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), xr)
        return hv.detach()


def _ritz(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two lowest Ritz values (E, 2), their residual bounds (E, 2) and the largest
    |Ritz value| (E,) of the tridiagonal matrices with diagonals alpha (E, m) and off-diagonals
    beta (E, m) (the last one couples to the next, unbuilt, Lanczos vector)."""
    e, m = alpha.shape
    low, res, top = np.full((e, 2), np.inf), np.zeros((e, 2)), np.zeros(e)
    for i in range(e):
        ritz, vecs = eigh_tridiagonal(alpha[i], beta[i, :-1])
        # Ritz value t with vector s: some eigenvalue lies within beta_m |s_m| of t
        bound = np.abs(beta[i, -1] * vecs[-1])
        two = min(2, m)
        low[i, :two], res[i, :two] = ritz[:two], bound[:two]
        top[i] = np.abs(ritz).max()
    return low, res, top


def index_one(low: np.ndarray, res: np.ndarray, top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(E,) bool twice: exactly one clearly negative eigenvalue (the lowest Ritz value is
    negative beyond its residual bound, the second is non-negative within its own), and whether
    the Ritz values decide the index yet. Bounds are widened by ``EIG_TOL * top``.

    Only a negative lowest Ritz value decides anything: a residual bound says that *some*
    eigenvalue lies near its Ritz value, not that none lies below it, so a positive lowest
    Ritz value proves nothing until the Krylov space is large (Lanczos runs on)."""
    noise = EIG_TOL * top
    first_neg = low[:, 0] + res[:, 0] < -noise
    second_pos = low[:, 1] - res[:, 1] > -noise
    second_neg = low[:, 1] + res[:, 1] < -noise
    return first_neg & second_pos, first_neg & (second_pos | second_neg)


def lowest_eigenvalues(
    objective: Objective,
    x: Tensor,
    steps: int = LANCZOS_STEPS,
    seed: int = 0,
    vectors=False,
    start: Tensor | None = None,
) -> tuple:
    """Lanczos on the Hessians at points x (E, P), all at once, until every point's index
    (one or more negative eigenvalues) is decided or ``steps`` iterations. ``start`` (E, P):
    the first Lanczos vectors (a saddle's path tangent: close to its negative-curvature
    direction); random where not given or zero.

    Returns (E, 2) the two lowest Ritz values, (E, 2) their residual bounds (an eigenvalue
    lies within the bound of its Ritz value) and (E,) the largest |Ritz value|; with
    ``vectors``, also (E, P) the unit Ritz vectors of the lowest values."""
    twin = getattr(objective, "twice_differentiable", None)
    objective = twin() if callable(twin) else objective
    e, p = x.shape
    m = min(steps, p)
    g = torch.Generator(device="cpu").manual_seed(seed)

    def fresh(basis: Tensor) -> Tensor:  # a random unit vector orthogonal to the basis
        r = torch.randn(e, p, generator=g, dtype=torch.float64).to(x.device, x.dtype)
        for _ in range(2):
            r = r - torch.einsum("ejp,ej->ep", basis, torch.einsum("ejp,ep->ej", basis, r))
        return r / r.norm(dim=1, keepdim=True).clamp_min(1e-30)

    first = fresh(x.new_zeros(e, 0, p))  # (E, P)
    if start is not None:
        n = start.norm(dim=1, keepdim=True)
        first = torch.where(n > 0, start / n.clamp_min(1e-30), first)
    basis = first[:, None]  # (E, j+1, P)
    alpha, beta = np.zeros((e, m)), np.zeros((e, m))
    for j in range(m):
        q = basis[:, -1]
        w = hvp(objective, x, q).detach()
        alpha[:, j] = (w * q).sum(1).double().cpu().numpy()
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            w = w - torch.einsum("ejp,ej->ep", basis, torch.einsum("ejp,ep->ej", basis, w))
        b = w.norm(dim=1)
        # breakdown (the Krylov space is invariant): go on from a fresh orthogonal direction
        dead = b.double().cpu().numpy() <= 1e-10 * np.abs(alpha[:, : j + 1]).max(1)
        beta[:, j] = np.where(dead, 0.0, b.double().cpu().numpy())
        if (j + 1) % CHECK_EVERY == 0 and index_one(*_ritz(alpha[:, : j + 1], beta[:, : j + 1]))[
            1
        ].all():
            m = j + 1
            break
        if j + 1 < m:
            nxt = w / b.clamp_min(1e-30)[:, None]
            if dead.any():
                nxt = torch.where(
                    torch.as_tensor(dead, device=x.device)[:, None], fresh(basis), nxt
                )
            basis = torch.cat([basis, nxt[:, None]], 1)
    out = _ritz(alpha[:, :m], beta[:, :m])
    if not vectors:
        return out
    coef = np.stack([eigh_tridiagonal(alpha[i, :m], beta[i, : m - 1])[1][:, 0] for i in range(e)])
    v = torch.einsum(
        "ejp,ej->ep", basis[:, :m], torch.as_tensor(coef, dtype=x.dtype, device=x.device)
    )
    return (*out, v / v.norm(dim=1, keepdim=True).clamp_min(1e-30))


def certify(objective: Objective, paths: Paths, opts: PathOptions | None = None) -> None:
    """Fill ``paths.certified``, ``paths.eigs`` and ``paths.peak_grad`` in place.

    Only converged paths are checked, at the node that climbed (the others have no critical
    point to certify: NaN). A converged path's maximum (``saddles``) can lie a little above the
    climbing node's value (``peak_value``): chords between the nodes cut corners of a curved
    path."""
    opts = opts or PathOptions()
    n = len(paths)
    if n == 0:
        return
    paths.certified = np.zeros(n, dtype=bool)
    paths.eigs, paths.peak_grad = np.full((n, 2), np.nan), np.full(n, np.nan)
    paths.peak_value = np.full(n, np.nan)
    rows = np.flatnonzero((paths.status == "converged") & (paths.climb >= 0))
    if rows.size == 0:
        return
    climbs = [int(paths.climb[i]) for i in rows]
    x = torch.stack([paths.points[i][c] for i, c in zip(rows, climbs, strict=True)])  # (C, P)
    v, g = values_and_grads(objective, x)
    paths.peak_value[rows] = v.double().cpu().numpy()
    paths.peak_grad[rows] = g.norm(dim=1).double().cpu().numpy() / paths.scale[rows]
    tangent = torch.stack(  # along the path at the climbing node
        [
            paths.points[i][min(c + 1, len(paths.points[i]) - 1)] - paths.points[i][max(c - 1, 0)]
            for i, c in zip(rows, climbs, strict=True)
        ]
    )
    eigs, res, top = lowest_eigenvalues(objective, x, start=tangent)
    paths.eigs[rows] = eigs
    one_negative, _ = index_one(eigs, res, top)
    inner = np.array([0 < c < len(paths.points[i]) - 1 for i, c in zip(rows, climbs, strict=True)])
    paths.certified[rows] = inner & (paths.peak_grad[rows] <= opts.grad_tol) & one_negative


def certificate_reason(paths: Paths, e: int, opts: PathOptions | None = None) -> str:
    """One line: why pair ``e`` is or is not a certified index-1 saddle; for a path joined
    at a third minimum, that too."""
    reason = _reason(paths, e, opts or PathOptions())
    if paths.via is not None and paths.via[e] >= 0:
        reason += f"; the path runs through minimum {int(paths.via[e])}, joined from its two legs"
    elif paths.via is not None and paths.via[e] == SPLIT:
        reason += (
            "; the path runs through minima that no start reached (found below dips of its "
            "loss), joined from its legs between them"
        )
    return reason


def _reason(paths: Paths, e: int, opts: PathOptions) -> str:
    if paths.status[e] == "no barrier":
        return "no barrier: no saddle to certify"
    if paths.status[e] != "converged":
        return "not certified: the path did not converge (its saddle is an upper bound)"
    lo1, lo2 = paths.eigs[e]
    words = f"gradient {paths.peak_grad[e]:.2g} x scale, lowest eigenvalues {lo1:.3g}, {lo2:.3g}"
    if paths.certified[e]:
        return f"certified index-1 saddle: {words}"
    if paths.peak_grad[e] > opts.grad_tol:
        return f"not certified: the peak is on a slope ({words})"
    return f"not certified: not exactly one clearly negative eigenvalue ({words})"
