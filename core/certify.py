"""Saddle certificates: at the highest point of each path, the gradient norm and the two
lowest eigenvalues of the Hessian.

An index-1 saddle has a vanishing gradient and exactly one negative Hessian eigenvalue: the
direction along the path, across which both basins meet. The eigenvalues come from Lanczos
iterations on Hessian-vector products (forward-over-reverse: ``torch.func.jvp`` of
``torch.func.grad``), all pairs at once: one batched call of the objective per iteration,
never the P x P Hessian. Lanczos resolves the extreme eigenvalues first; ``LANCZOS_STEPS``
iterations, with full re-orthogonalisation, place the lowest two well enough to tell one
clearly negative eigenvalue from none or two.

A pair is *certified* when its path converged by force, the gradient at its peak is below
``grad_tol`` times the pair's gradient scale, the lowest eigenvalue is below
``-EIG_TOL * |largest|`` and the second lowest above it. A path whose maximum is at an
endpoint crosses no saddle ("no barrier") and gets no certificate.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from core.evaluate import Objective, values_and_grads, values_of
from core.paths import PathOptions, Paths

LANCZOS_STEPS = 40  # Krylov dimension (fewer when P is smaller)
EIG_TOL = 1e-3  # "clearly negative": below -EIG_TOL times the largest |eigenvalue|


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


def lowest_eigenvalues(
    objective: Objective, x: Tensor, steps: int = LANCZOS_STEPS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Lanczos on the Hessians at points x (E, P), all at once.

    Returns (E, 2) the two lowest Ritz values and (E,) the largest |Ritz value|."""
    twin = getattr(objective, "twice_differentiable", None)
    objective = twin() if callable(twin) else objective
    e, p = x.shape
    m = min(steps, p)
    g = torch.Generator(device="cpu").manual_seed(seed)
    q = torch.randn(e, p, generator=g, dtype=torch.float64).to(x.device, x.dtype)
    q = q / q.norm(dim=1, keepdim=True)
    basis = [q]
    alpha, beta = np.zeros((e, m)), np.zeros((e, m))
    for j in range(m):
        w = hvp(objective, x, basis[-1]).detach()
        alpha[:, j] = (w * basis[-1]).sum(1).double().cpu().numpy()
        qs = torch.stack(basis, 1)  # (E, j+1, P)
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            w = w - torch.einsum("ejp,ej->ep", qs, torch.einsum("ejp,ep->ej", qs, w))
        b = w.norm(dim=1)
        # breakdown (the Krylov space is invariant): go on from a fresh orthogonal direction
        scale = torch.as_tensor(np.abs(alpha[:, : j + 1]).max(1), dtype=b.dtype, device=b.device)
        dead = b <= 1e-10 * scale
        beta[:, j] = np.where(dead.cpu().numpy(), 0.0, b.double().cpu().numpy())
        if j + 1 < m:
            if dead.any():
                r = torch.randn(e, p, generator=g, dtype=torch.float64).to(x.device, x.dtype)
                for _ in range(2):
                    r = r - torch.einsum("ejp,ej->ep", qs, torch.einsum("ejp,ep->ej", qs, r))
                w = torch.where(dead[:, None], r, w)
                b = w.norm(dim=1)
            basis.append(w / b.clamp_min(1e-30)[:, None])
    low, top = np.zeros((e, 2)), np.zeros(e)
    for i in range(e):
        ritz = eigh_tridiagonal(alpha[i], beta[i, :-1], eigvals_only=True)
        low[i] = ritz[:2] if ritz.size > 1 else (ritz[0], np.inf)
        top[i] = np.abs(ritz).max()
    return low, top


def certify(objective: Objective, paths: Paths, opts: PathOptions | None = None) -> None:
    """Fill ``paths.certified``, ``paths.eigs`` and ``paths.peak_grad`` in place.

    The peak is each stored path's highest node (the final saddle search puts a node on the
    path's maximum)."""
    opts = opts or PathOptions()
    n = len(paths)
    if n == 0:
        return
    peaks, inner = [], np.zeros(n, dtype=bool)
    for i, pts in enumerate(paths.points):
        v = values_of(objective, pts, opts.chunk).double().cpu().numpy()
        k = int(np.argmax(v))
        peaks.append(pts[k])
        inner[i] = 0 < k < len(v) - 1
    x = torch.stack(peaks)  # (E, P)
    _, g = values_and_grads(objective, x, opts.chunk)
    paths.peak_grad = g.norm(dim=1).double().cpu().numpy() / paths.scale
    eigs, top = lowest_eigenvalues(objective, x)
    paths.eigs = eigs
    tol = EIG_TOL * top
    one_negative = (eigs[:, 0] < -tol) & (eigs[:, 1] > -tol)
    paths.certified = (
        inner & (paths.status == "converged") & (paths.peak_grad <= opts.grad_tol) & one_negative
    )


def certificate_reason(paths: Paths, e: int, opts: PathOptions | None = None) -> str:
    """One line: why pair ``e`` is or is not a certified index-1 saddle."""
    opts = opts or PathOptions()
    if paths.status[e] == "no barrier":
        return "no barrier: no saddle to certify"
    lo1, lo2 = paths.eigs[e]
    words = f"gradient {paths.peak_grad[e]:.2g} x scale, lowest eigenvalues {lo1:.3g}, {lo2:.3g}"
    if paths.certified[e]:
        return f"certified index-1 saddle: {words}"
    if paths.status[e] != "converged":
        return f"not certified: the path did not converge ({words})"
    if paths.peak_grad[e] > opts.grad_tol:
        return f"not certified: the peak is on a slope ({words})"
    return f"not certified: not exactly one clearly negative eigenvalue ({words})"
