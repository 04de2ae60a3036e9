"""L-BFGS of many systems: a joined state steps each system as its own state would."""

import torch

from core.engine.lbfgs import MEMORY, Lbfgs


def test_a_joined_state_steps_every_system_as_its_part_alone():
    """Systems with a full memory, a short one and none (fresh, no last step) joined into one
    state take the moves that their own states take, step after step, on quadratics."""
    g = torch.Generator().manual_seed(0)
    n_sys, n, p = 6, 4, 3
    q = torch.randn(n_sys, n * p, n * p, generator=g, dtype=torch.float64)
    h = q @ q.mT / (n * p) + 0.1 * torch.eye(n * p, dtype=torch.float64)  # (S, D, D) SPD
    x = torch.randn(n_sys, n, p, generator=g, dtype=torch.float64)

    def force(rows):
        return -(h[rows] @ x[rows].flatten(1)[..., None]).view(len(rows), n, p)

    cap = torch.full((n_sys,), 0.3, dtype=torch.float64)
    groups = [[0, 1], [2, 3, 4], [5]]
    parts = [Lbfgs(len(r), torch.float64, "cpu") for r in groups]
    for steps, (rows, opt) in zip([MEMORY + 3, 2, 0], zip(groups, parts, strict=True), strict=True):
        for _ in range(steps):
            x[rows] += opt.step(force(rows), cap[rows])
    assert [len(o.s) for o in parts] == [MEMORY, 1, 0]

    whole = Lbfgs.joined(parts)
    for _ in range(MEMORY + 2):
        moves = whole.step(force(list(range(n_sys))), cap)
        alone = torch.cat([o.step(force(r), cap[r]) for r, o in zip(groups, parts, strict=True)])
        torch.testing.assert_close(moves, alone, rtol=1e-12, atol=1e-14)
        x += moves
