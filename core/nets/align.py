"""Weight matching: permute a network's hidden units onto a reference network's, keeping
its function.

Permuting hidden units (``core.nets.permutations``) maps a minimum to another minimum of the
same loss; two minima that differ by such a permutation sit in different places of parameter
space, and the straight segment between them can climb over a barrier that is only an
artefact of the unit labelling. Aligning every minimum to a reference first removes it.

The algorithm is the weight matching of Ainsworth et al., "Git Re-Basin: Merging Models
modulo Permutation Symmetries" (ICLR 2023, Algorithm 1). It maximizes the total inner product
sum over tensors <W_ref, pi(W)> over the permutations pi, which is minimizing the distance
||theta_ref - pi(theta)|| (a permutation keeps the norm), by coordinate descent:

1. Start from the identity permutations.
2. Visit the permutations in a random order (seeded). For permutation p of n units, sum over
   every tensor block it acts on the similarity S = A @ B.T (n, n), with A the reference's
   block and B the other network's block with every other permutation applied, each
   flattened to (n, rest) along p's axis; solve the linear assignment max_pi sum_i S[i, pi(i)]
   with ``scipy.optimize.linear_sum_assignment``; keep it if it raises the sum.
3. Repeat until a whole pass changes no permutation (each change raises the objective, so
   this ends).

A permutation ``perm`` (n,) reorders its units: unit i of the aligned network is unit
``perm[i]`` of the original. Where the group is signed (``PermutationSpec.signed``: an odd
nonlinearity such as tanh), ``perms[SIGN + name]`` (n,) of +-1 also negates unit i, and the
assignment maximizes sum_i |S[i, pi(i)]|, with the sign of S[i, pi(i)] (negating a unit
negates its column of S).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from core.engine.chain import straight_chains
from core.engine.evaluate import Objective, values_of
from core.nets.permutations import PermutationSpec, Slot, permutation_spec

log = logging.getLogger(__name__)

Permutations = dict[str, Tensor]  # permutation name -> (n,) int64, on the CPU; SIGN + name
SIGN = "sign:"  # -> (n,) int64 of +-1, for the signed groups only


def _split(theta: Tensor, spec: PermutationSpec) -> dict[str, Tensor]:
    """Views of ``theta`` (P,) per parameter: name -> tensor of its shape."""
    total = sum(int(np.prod(shape)) for _, shape in spec.params)
    if theta.dim() != 1 or theta.shape[0] != total:
        raise ValueError(f"theta must be ({total},) for {spec.arch}, got {tuple(theta.shape)}")
    out, start = {}, 0
    for name, shape in spec.params:
        n = int(np.prod(shape))
        out[name] = theta[start : start + n].view(shape)
        start += n
    return out


def _block(tensors: dict[str, Tensor], slot: Slot) -> Tensor:
    """The slot's block of its tensor, a view."""
    return tensors[slot.name].view(slot.view)[slot.index]


def _permuted(tensors: dict[str, Tensor], slot: Slot, perms: Permutations, skip=None) -> Tensor:
    """The slot's block with every permutation applied, but on axis ``skip``."""
    block = _block(tensors, slot)
    for axis, p in enumerate(slot.axes):
        if p is not None and axis != skip:
            block = block.index_select(axis, perms[p].to(block.device))
            if SIGN + p in perms:
                shape = [1] * block.dim()
                shape[axis] = -1
                block = block * perms[SIGN + p].to(block).view(shape)
    return block


def permute_tensors(
    spec: PermutationSpec, tensors: dict[str, Tensor], perms: Permutations
) -> dict[str, Tensor]:
    """A copy of ``tensors`` (name -> tensor: parameters, and buffers such as BatchNorm running
    statistics, e.g. a ``state_dict``) with the permutations applied to every slot of a tensor
    it holds; tensors that no permutation acts on are copied unchanged."""
    out = {name: t.clone() for name, t in tensors.items()}
    for slot in spec.slots:
        if slot.name in tensors:
            _block(out, slot).copy_(_permuted(tensors, slot, perms))
    return out


def apply_permutation(spec: PermutationSpec, theta: Tensor, perms: Permutations) -> Tensor:
    """``theta`` (P,) with its hidden units permuted (and negated, where signed): a new (P,),
    the same function."""
    out = theta.clone()
    src, dst = _split(theta, spec), _split(out, spec)
    for slot in spec.slots:
        if slot.name in src:  # not the buffers: theta holds the parameters only
            _block(dst, slot).copy_(_permuted(src, slot, perms))
    return out


def random_permutations(spec: PermutationSpec, seed: int) -> Permutations:
    """One uniformly random permutation per group of units, with random signs where the group
    is signed (``torch.Generator(seed)``)."""
    gen = torch.Generator().manual_seed(seed)
    perms = {p: torch.randperm(n, generator=gen) for p, n in spec.sizes.items()}
    for p in spec.signed:
        perms[SIGN + p] = torch.randint(0, 2, (spec.sizes[p],), generator=gen) * 2 - 1
    return perms


def _similarity(spec, a, b, perms, p: str) -> Tensor:
    """S (n, n) float64: S[i, j] the inner product of reference unit i and unit j over every
    block permutation ``p`` acts on, with the other permutations applied."""
    n = spec.sizes[p]
    sim = torch.zeros(n, n, dtype=torch.float64, device=next(iter(a.values())).device)
    for slot, axis in spec.acting(p):
        if slot.name not in a:  # a buffer (running statistics): not part of theta
            continue
        wa = _block(a, slot).movedim(axis, 0).reshape(n, -1)
        wb = _permuted(b, slot, perms, skip=axis).movedim(axis, 0).reshape(n, -1)
        sim += wa @ wb.T
    return sim


def weight_matching(
    spec: PermutationSpec,
    reference: Tensor,
    theta: Tensor,
    *,
    max_passes: int = 100,
    seed: int = 0,
) -> Permutations:
    """The permutations that bring ``theta`` closest to ``reference`` (module docstring).

    Parameters
    ----------
    spec : PermutationSpec
        ``permutation_spec(model)``.
    reference, theta : Tensor
        (P,) flat parameters; the similarities are computed in float64 on their device.
    max_passes : int
        Most passes over all permutations; a warning is logged if the last still changed one.
    seed : int
        Seeds the order in which each pass visits the permutations.

    Returns
    -------
    dict of str -> Tensor
        Permutation name -> (n,) int64 on the CPU, and ``SIGN`` + name -> (n,) +-1 for the
        signed groups; ``apply_permutation(spec, theta, perms)``.
    """
    a, b = _split(reference.detach().double(), spec), _split(theta.detach().double(), spec)
    perms = {p: torch.arange(n) for p, n in spec.sizes.items()}
    perms |= {SIGN + p: torch.ones(spec.sizes[p], dtype=torch.int64) for p in spec.signed}
    names, rng = sorted(spec.sizes), np.random.default_rng(seed)
    for _ in range(max_passes):
        changed = False
        for p in rng.permutation(names):
            sim = _similarity(spec, a, b, perms, p).cpu()
            signed = p in spec.signed
            _, cols = linear_sum_assignment((sim.abs() if signed else sim).numpy(), maximize=True)
            new = torch.as_tensor(cols, dtype=torch.int64)
            rows = torch.arange(len(new))
            old_score, new_score = sim[rows, perms[p]], sim[rows, new]
            if signed:
                old_score, sign = old_score * perms[SIGN + p], torch.where(new_score < 0, -1, 1)
                new_score = new_score.abs()
            old_score, new_score = old_score.sum(), new_score.sum()
            if new_score > old_score + 1e-12 * max(1.0, abs(float(old_score))):
                perms[p], changed = new, True
                if signed:
                    perms[SIGN + p] = sign
        if not changed:
            return perms
    log.warning("weight matching (%s): still changing after %d passes", spec.arch, max_passes)
    return perms


def align_minima(
    model: nn.Module | PermutationSpec,
    thetas: Tensor,
    reference: int = 0,
    *,
    max_passes: int = 100,
    seed: int = 0,
) -> Tensor:
    """Every minimum of ``thetas`` (K, P) permuted onto ``thetas[reference]`` by weight
    matching: (K, P), each row the same function as before, the reference row unchanged.

    The default reference, row 0, is the global minimum of ``core.engine.minima.Minima``
    (sorted by value). ``model`` is the template network or its ``permutation_spec``.
    """
    spec = model if isinstance(model, PermutationSpec) else permutation_spec(model)
    if thetas.dim() != 2:
        raise ValueError(f"thetas must be (K, P), got shape {tuple(thetas.shape)}")
    if not (isinstance(reference, int) and -len(thetas) <= reference < len(thetas)):
        raise ValueError(f"reference must be a row of thetas (K={len(thetas)}), got {reference!r}")
    ref = thetas[reference]
    rows = []
    for k, theta in enumerate(thetas):
        if k == reference % len(thetas):
            rows.append(theta.clone())
            continue
        perms = weight_matching(spec, ref, theta, max_passes=max_passes, seed=seed)
        rows.append(apply_permutation(spec, theta, perms))
    return torch.stack(rows)


def straight_barriers(objective: Objective, thetas: Tensor, reference: int = 0, n: int = 25):
    """(K,) ndarray: the loss barrier on the straight segment from ``thetas[reference]`` to
    each row of ``thetas`` (K, P): the maximum of ``objective`` over ``n`` evenly spaced points,
    ends included, minus the higher end's value (0 for the reference itself). All K segments
    in one batched evaluation."""
    if n < 2:
        raise ValueError(f"n must be at least 2, got {n!r}")
    pairs = np.stack([np.full(len(thetas), reference % len(thetas)), np.arange(len(thetas))], 1)
    chains = straight_chains(thetas, pairs, n)  # (K, n, P)
    vals = values_of(objective, chains.flatten(0, 1)).view(len(thetas), n).double()
    return (vals.amax(1) - vals[:, [0, -1]].amax(1)).cpu().numpy()
