"""L-BFGS on the forces of many systems at once (each a path's chain of points), with a trust
radius per point.

The force on a chain is not the gradient of one function (its tangential part is projected
out, and the climbing point's reversed), but near a converged path it behaves like one; the
global L-BFGS of Sheppard, Terrell & Henkelman (J. Chem. Phys. 128, 134106, 2008) treats a
whole chain as one vector and keeps a curvature pair only while it has positive curvature.
Each system has its own memory; a pair with ``s . y <= 0``, or a direction that is not
downhill, clears that system's memory and it takes a short steepest-descent step. Why not
FIRE: on a network's flat, badly conditioned valleys its time step stays near the stability
limit of the stiffest direction, while L-BFGS scales each direction by its curvature
(BENCHMARKS.md, the default run).
"""

from __future__ import annotations

import torch
from torch import Tensor

MEMORY = 8  # curvature pairs kept per system
FIRST = 0.1  # a step with no memory moves the fastest point this fraction of its trust radius


class Lbfgs:
    """L-BFGS state of A systems: the last ``MEMORY`` steps ``s`` and force changes ``y``,
    each (A, D), and which of them each system may use."""

    def __init__(self, a: int, dtype, device) -> None:
        self.s: list[Tensor] = []
        self.y: list[Tensor] = []
        self.ok = torch.zeros(0, a, dtype=torch.bool, device=device)  # (m, A)
        self.last: tuple[Tensor, Tensor] | None = None  # (force, move) of the last step

    def select(self, keep: Tensor) -> None:
        self.s, self.y = [t[keep] for t in self.s], [t[keep] for t in self.y]
        self.ok = self.ok[:, keep]
        self.last = None if self.last is None else (self.last[0][keep], self.last[1][keep])

    def forget(self, rows: Tensor) -> None:
        """Systems ``rows`` (A,) bool took their last step back: their memory is cleared and
        that step forms no curvature pair."""
        self.ok[:, rows] = False
        if self.last is not None:
            self.last[1][rows] = 0.0  # s = 0: s . y = 0, not a usable pair

    @staticmethod
    def joined(parts: list[Lbfgs]) -> Lbfgs:
        """The systems of ``parts``, in order, as one state; each keeps its own memory (a
        shorter memory is padded at its old end with pairs that no system uses)."""
        sizes = [p.ok.shape[1] for p in parts]
        out = Lbfgs(sum(sizes), None, parts[0].ok.device)
        held = [t for p in parts for t in [*p.s, *(p.last or ())]]
        if not held:
            return out
        m = max(len(p.s) for p in parts)

        def padded(p: Lbfgs, a: int):  # p's memory in m slots, the newest last
            z, pad = held[0].new_zeros(a, held[0].shape[1]), m - len(p.s)
            ok = torch.cat([p.ok.new_zeros(pad, a), p.ok])
            last = (p.last[0], p.last[1].flatten(1)) if p.last else (z, z)  # s = 0: no pair
            return [z] * pad + p.s, [z] * pad + p.y, ok, last

        cols = [padded(p, a) for p, a in zip(parts, sizes, strict=True)]
        out.s = [torch.cat(slot) for slot in zip(*(c[0] for c in cols), strict=True)]
        out.y = [torch.cat(slot) for slot in zip(*(c[1] for c in cols), strict=True)]
        out.ok = torch.cat([c[2] for c in cols], 1)
        if any(p.last is not None for p in parts):
            out.last = (torch.cat([c[3][0] for c in cols]), torch.cat([c[3][1] for c in cols]))
        return out

    def step(self, force: Tensor, cap: Tensor) -> Tensor:
        """(A, N, P) moves for ``force`` (A, N, P); no point moves more than ``cap`` (A,)."""
        f = force.flatten(1)  # (A, D); the gradient of the two-loop recursion is -f
        if self.last is not None:
            s, y = self.last[1].flatten(1), self.last[0] - f
            good = (s * y).sum(1) > 0
            self.s, self.y = [*self.s, s][-MEMORY:], [*self.y, y][-MEMORY:]
            self.ok = torch.cat([self.ok & good, good[None]])[-MEMORY:]  # bad: clear all
        alphas = []
        q = f.clone()
        for s, y, ok in zip(self.s[::-1], self.y[::-1], self.ok.flip(0), strict=True):
            rho = torch.where(ok, 1 / (s * y).sum(1).clamp_min(1e-30), 0.0)
            alpha = rho * (s * q).sum(1)
            q -= alpha[:, None] * y
            alphas.append((alpha, rho))
        fmax = force.norm(dim=2).amax(1).clamp_min(1e-30)
        first = FIRST * cap / fmax  # (A,) the step length without memory
        gamma = first
        if self.s:  # the usual initial Hessian s.y / y.y of the newest pair
            s, y, ok = self.s[-1], self.y[-1], self.ok[-1]
            gamma = torch.where(ok, (s * y).sum(1) / (y * y).sum(1).clamp_min(1e-30), first)
        d = gamma[:, None] * q
        for (alpha, rho), s, y in zip(alphas[::-1], self.s, self.y, strict=True):
            d += (alpha - rho * (y * d).sum(1))[:, None] * s
        down = (d * f).sum(1) > 0
        if not down.all():
            self.ok &= down
            d = torch.where(down[:, None], d, first[:, None] * f)
        move = d.view_as(force)
        norm = move.norm(dim=2, keepdim=True)  # (A, N, 1)
        c = cap[:, None, None]
        move = move * torch.where(norm > c, c / norm.clamp_min(1e-30), 1.0)
        self.last = (f, move)
        return move
