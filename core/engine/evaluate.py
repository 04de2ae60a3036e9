"""Batched evaluation of an objective, chunked so memory stays bounded.

Every stage of the engine evaluates many parameter vectors at once: starts while they
descend, interior points of every path while the paths relax, dense points along every path
for the saddle. They all go through the two functions here, so the chunk size is set in one
place.

The objective contract: ``objective(thetas)`` maps a float tensor of shape (M, P) to (M,),
row ``m`` of the output depending on row ``m`` of the input only, differentiable by autograd.
An objective may also offer ``objective.block_size(m) -> int``, the vectors per call it runs
fastest at (``core.nets.objective.NetworkObjective`` sizes it to the CPU cache or the GPU memory
budget); it is the chunk wherever the caller gives none; ``objective.value_block_size(m)``,
if offered, is the chunk of evaluations without gradients. And it may offer
``objective.values_and_grads(thetas) -> (values (M,), grads (M, P))`` for one chunk, computed
without autograd (``NetworkObjective`` does, for the MLP's hand-written gradient);
``values_and_grads`` here uses it instead of differentiating ``objective(thetas).sum()``. It
returns fresh tensors: callers (the path steps) update the gradients in place.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

Objective = Callable[[Tensor], Tensor]


def check_objective_output(values: Tensor, m: int) -> None:
    """Raise ValueError unless ``values`` is a tensor of shape (m,)."""
    if not isinstance(values, Tensor):
        raise ValueError(f"objective must return a torch.Tensor, got {type(values).__name__}")
    if values.shape != (m,):
        raise ValueError(
            f"objective must map thetas (M, P) to (M,): got output shape {tuple(values.shape)} "
            f"for M={m}"
        )


def _chunks(
    objective: Objective, m: int, chunk: int | None, hint: str = "block_size"
) -> list[slice]:
    """Slices of m vectors, at most ``chunk`` each (else the objective's ``hint``)."""
    if chunk is None and m and callable(size := getattr(objective, hint, None)):
        chunk = size(m)
    if not m:
        return []
    n = 1 if not chunk or chunk >= m else -(-m // chunk)
    # n calls of sizes that differ by at most one: no small last call
    return [slice(i * m // n, (i + 1) * m // n) for i in range(n)]


def values_of(objective: Objective, thetas: Tensor, chunk: int | None = None) -> Tensor:
    """Objective values without gradients.

    Parameters
    ----------
    objective : callable
        (M, P) -> (M,).
    thetas : Tensor
        (M, P) parameter vectors.
    chunk : int, optional
        Most vectors per call; when None, ``objective.value_block_size(M)`` or else
        ``objective.block_size(M)`` if the objective has one, else all at once.

    Returns
    -------
    Tensor
        (M,) values, detached, on the device of ``thetas``.
    """
    out = []
    hint = "value_block_size" if hasattr(objective, "value_block_size") else "block_size"
    with torch.no_grad():
        for sl in _chunks(objective, thetas.shape[0], chunk, hint):
            v = objective(thetas[sl])
            check_objective_output(v, sl.stop - sl.start)
            out.append(v.detach())
    return torch.cat(out) if out else thetas.new_zeros(0)


def autograd_values_and_grads(objective: Objective, thetas: Tensor) -> tuple[Tensor, Tensor]:
    """Values (M,) and per-row gradients (M, P) of one call, by autograd of the sum.

    Because row ``m`` of the output depends on row ``m`` of the input only, the gradient
    of the sum is the stack of the per-row gradients.
    """
    x = thetas.detach().requires_grad_(True)
    with torch.enable_grad():
        v = objective(x)
        check_objective_output(v, x.shape[0])
        (g,) = torch.autograd.grad(v.sum(), x)
    # contiguous: a gradient can come back expanded (the gradient of a plain sum), and the
    # callers may update it in place
    return v.detach(), g.detach().contiguous()


def values_and_grads(
    objective: Objective, thetas: Tensor, chunk: int | None = None
) -> tuple[Tensor, Tensor]:
    """Objective values and per-row gradients in one batched pass per chunk: the objective's
    own ``values_and_grads`` where it has one, else ``autograd_values_and_grads``.

    Returns
    -------
    values : Tensor
        (M,) detached.
    grads : Tensor
        (M, P) detached.
    """
    direct = getattr(objective, "values_and_grads", None)
    vals, grads = [], []
    for sl in _chunks(objective, thetas.shape[0], chunk):
        if callable(direct):
            v, g = direct(thetas[sl].detach())
            check_objective_output(v, sl.stop - sl.start)
        else:
            v, g = autograd_values_and_grads(objective, thetas[sl])
        vals.append(v.detach())
        grads.append(g.detach())
    if not vals:
        return thetas.new_zeros(0), thetas.new_zeros(thetas.shape)
    if len(vals) == 1:  # one chunk: no copy (fresh tensors, which the caller may update)
        return vals[0], grads[0]
    return torch.cat(vals), torch.cat(grads)
