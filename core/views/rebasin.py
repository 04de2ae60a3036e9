"""A run's landscape modulo permutation symmetry, as the pages show it beside the raw one.

A run computed with ``paths.align = "weight-matching"`` stores, beside its raw minima, paths
and barcode, the same minima with their hidden units permuted onto the lowest minimum's
(Git Re-Basin weight matching, ``core.nets.align``) and the paths and barcode between those
(``Run.aligned``). Each aligned minimum is the same function as its raw one, so what alignment
removes from a barrier is only an artefact of how the hidden units happen to be numbered.

- ``rebasin_barriers``: per pair, the straight segment's barrier before and after alignment.
- ``landscape_points``: the minima, paths and values that a projection draws, raw or aligned.
- ``same_functions``: the minima that are one function once aligned (copies of each other
  under the symmetry, found by separate trainings): the lowest route between them crosses
  from one copy of the function to another.

Nothing here imports streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from core.runs.record import Run

__all__ = [
    "ALIGN_HINT",
    "Barriers",
    "landscape_points",
    "rebasin_barriers",
    "same_function_notes",
    "same_functions",
]

ONE_FUNCTION = 0.01  # aligned / raw distance under which two minima are one function

ALIGN_HINT = (
    "This run has no aligned landscape: compute it with `--align weight-matching` on the "
    "command line, or tick **Align minima** on the Run page."
)
ALIGN_WORDS = (
    "Weight matching (Git Re-Basin) permutes the hidden units of every minimum onto those of "
    "the lowest one; each aligned minimum computes the same function as its raw one, so a "
    "barrier that alignment removes was only an artefact of how the units are numbered. The "
    "aligned barcode takes each pair's lower route, its raw path or the path between the "
    "aligned minima: both join copies of the same two functions, so either bounds the "
    "barrier between them."
)


@dataclass(frozen=True)
class Barriers:
    """Straight-segment barriers of the E pairs that have a path in both landscapes.

    Attributes
    ----------
    pairs : ndarray
        (E, 2) minima (i, j), i < j, in the raw paths' order.
    before, after : ndarray
        (E,) the straight segment's maximum minus its higher end's value, between the raw
        minima and between the aligned minima (loss units).
    """

    pairs: np.ndarray
    before: np.ndarray
    after: np.ndarray

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def lowered(self) -> int:
        """How many pairs have a lower straight barrier after alignment."""
        return int(np.sum(self.after < self.before))


def _barriers(paths, values: np.ndarray) -> dict[tuple[int, int], float]:
    """(i, j) -> straight maximum minus the higher end's value, for every stored path."""
    top = np.maximum(values[paths.pairs[:, 0]], values[paths.pairs[:, 1]])  # (E,)
    return {
        (int(i), int(j)): float(b)
        for (i, j), b in zip(paths.pairs, paths.straight - top, strict=True)
    }


def rebasin_barriers(run: Run) -> Barriers:
    """The straight-segment barrier of every pair before and after alignment.

    Raw: ``run.paths.straight`` minus the higher of ``run.minima.values`` at the pair's ends;
    aligned: the same from ``run.aligned.paths`` and ``run.aligned.values``. Only pairs with a
    path in both landscapes (with ``paths.pairs = "mst"`` the two may differ) are kept.
    ValueError when the run has no aligned landscape or no paths.
    """
    if run.aligned is None or run.paths is None:
        raise ValueError(
            f"run {run.run_id} has no aligned landscape (paths.align={run.config.paths.align!r})"
        )
    raw = _barriers(run.paths, run.minima.values)
    al = _barriers(run.aligned.paths, run.aligned.values)
    both = [p for p in raw if p in al]
    return Barriers(
        np.array(both, dtype=np.int64).reshape(-1, 2),
        np.array([raw[p] for p in both]),
        np.array([al[p] for p in both]),
    )


def landscape_points(run: Run, aligned: bool = False):
    """What a projection of the run draws: ``(thetas (K, P), path points (E tensors (N_e, P)),
    values (K,), pairs (E, 2))``, of the raw minima or (``aligned``) of the aligned ones."""
    if not aligned:
        return run.minima.thetas, run.paths.points, run.minima.values, run.paths.pairs
    if run.aligned is None:
        raise ValueError(f"run {run.run_id} has no aligned minima: aligned must be False")
    a = run.aligned
    return a.thetas, a.paths.points, a.values, a.paths.pairs


def same_functions(run: Run) -> list[tuple[int, int, float, float]]:
    """``(i, j, aligned distance, raw distance)``, i < j, for every two minima that alignment
    brings within ``ONE_FUNCTION`` of their raw distance: the same function with its hidden
    units permuted (and, in a tanh MLP, negated), up to the training's tolerance. (Copies
    trained to a gradient of 1e-5 lie a few 1e-3 apart once aligned against 5-15 before;
    distinct minima stay about half as far apart as before.) Empty without an aligned
    landscape."""
    if run.aligned is None:
        return []
    a, raw = run.aligned.thetas.double(), run.minima.thetas.double()
    near, far = torch.cdist(a, a).numpy(), torch.cdist(raw, raw).numpy()
    i, j = np.nonzero(np.triu(near <= ONE_FUNCTION * far, 1))
    return [
        (int(p), int(q), float(near[p, q]), float(far[p, q])) for p, q in zip(i, j, strict=True)
    ]


def same_function_notes(run: Run) -> list[str]:
    """One sentence per pair of ``same_functions``."""
    return [
        f"Minima {i} and {j} are one function, its hidden units relabelled ({near:.2g} apart "
        f"once aligned, {far:.3g} before): the lowest route between them crosses from one copy "
        "of it to another."
        for i, j, near, far in same_functions(run)
    ]
