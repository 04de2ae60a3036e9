"""FIRE, the fast inertial relaxation engine (Bitzek et al. 2006), for many systems at once.

Each system (a set of points that move together; ``core.engine.minima`` makes each
descending start one) has its own velocity, time step and mixing factor: velocity is mixed
toward the force while the system keeps going downhill, and the time step grows; an uphill
step (power F . v <= 0) zeroes the velocity and halves the time step. No step size to tune:
the first time step follows from the system's force and its trust radius, and no point moves
more than the trust radius in one step.
"""

from __future__ import annotations

import torch
from torch import Tensor

# FIRE's constants, as in ASE: steps downhill before the time step grows, its growth and cut,
# the initial mixing and its decay; the first step of the fastest point moves FIRE_START of
# its trust radius, and the time step grows at most to DT_GROWTH times the first.
N_MIN, F_INC, F_DEC, ALPHA0, F_ALPHA = 5, 1.1, 0.5, 0.1, 0.99
FIRE_START, DT_GROWTH = 0.1, 100.0


class Fire:
    """FIRE state of A systems of points: velocities (A, N, P), and per system the time
    step, the mixing factor and the count of steps since the last uphill one."""

    def __init__(self, a: int, dtype, device) -> None:
        self.v: Tensor | None = None
        self.dt = torch.zeros(a, dtype=dtype, device=device)  # 0: not started
        self.dt_max = torch.zeros(a, dtype=dtype, device=device)
        self.alpha = torch.full((a,), ALPHA0, dtype=dtype, device=device)
        self.streak = torch.zeros(a, dtype=torch.long, device=device)

    def select(self, keep: Tensor) -> None:
        self.v = None if self.v is None else self.v[keep]
        self.dt, self.dt_max = self.dt[keep], self.dt_max[keep]
        self.alpha, self.streak = self.alpha[keep], self.streak[keep]

    def step(self, force: Tensor, cap: Tensor) -> Tensor:
        """(A, N, P) moves for ``force`` (A, N, P); no point moves more than ``cap`` (A,)."""
        fn = force.flatten(1).norm(dim=1)  # (A,)
        fresh = self.dt == 0
        if fresh.any():  # first step: the fastest point moves FIRE_START of its trust radius
            fmax = force.norm(dim=2).amax(1).clamp_min(1e-30)
            dt0 = (FIRE_START * cap / fmax).sqrt()
            self.dt = torch.where(fresh, dt0, self.dt)
            self.dt_max = torch.where(fresh, DT_GROWTH * dt0, self.dt_max)
        if self.v is None:
            self.v = torch.zeros_like(force)
        power = (force * self.v).sum((1, 2))  # (A,)
        up = power > 0
        vn = self.v.flatten(1).norm(dim=1)
        mix = (self.alpha * vn / fn.clamp_min(1e-30))[:, None, None]
        keep = (1 - self.alpha)[:, None, None]
        self.v = torch.where(up[:, None, None], keep * self.v + mix * force, 0.0)
        self.streak = torch.where(up, self.streak + 1, 0)
        grow = up & (self.streak > N_MIN)
        self.dt = torch.where(grow, torch.minimum(self.dt * F_INC, self.dt_max), self.dt)
        self.dt = torch.where(up, self.dt, self.dt * F_DEC)
        self.alpha = torch.where(grow, self.alpha * F_ALPHA, self.alpha)
        self.alpha = torch.where(up, self.alpha, torch.full_like(self.alpha, ALPHA0))
        self.v += self.dt[:, None, None] * force
        move = self.dt[:, None, None] * self.v
        norm = move.norm(dim=2, keepdim=True)  # (A, N, 1)
        c = cap[:, None, None]
        return move * torch.where(norm > c, c / norm.clamp_min(1e-30), 1.0)
