"""The cost model of a run: parameters, evaluations and floating-point work, expected and bounded.

``run_cost`` counts parameters per network, objective evaluations per step, and the
floating-point work of a run; ``core.runs.presets.estimate_cost`` adds up a sweep and turns
it into GPU minutes at an assumed sustained rate (``GPU_FLOPS``). The work counts

- training: minima x steps x batch examples (forward + backward = 3 forward passes), plus a
  full-data gradient check of every start each 50 steps;
- paths, per pair (``pair_work``): a value and gradient at every interior point each step
  (3 forward passes), the first ``noisy_steps`` on minibatches and the rest on the run's whole
  training subset; a dense evaluation each ``check_every`` steps at ``check_density`` points
  per interval; the final saddle (peak search, then densities ``final_density`` and its
  double); the certificate of a converged pair (at most ``min(LANCZOS_STEPS, P)``
  Hessian-vector products, ~5 forward passes each);
- forward FLOPs per example from ``torch.utils.flop_counter`` on the ``meta`` device.

Two numbers come out. The *bound* counts every pair up to the step cap and certifies every
pair. The *estimate* counts the steps and certificates that finished runs used: a pair leaves
the batch when it converges or meets no barrier, so the work adds up over pairs, and
``PATH_USAGE`` holds, per dataset and architecture, the mean share of the step cap that a pair used
and the share of pairs that converged (``measured_usage`` recomputes it from a run store). It
depends on the landscape more than on the network: on digits most pairs meet no barrier within a
sixth of the cap, on MNIST-1D pairs run to it. A path split at its dips (``core.engine.splits``)
counts its legs' steps too, so a pair's share can exceed 1, and the bound, one cap per pair, is no
bound where paths split. Neighbour legs (``paths.neighbours``) count only where a route takes them;
the rest, often most, are not counted, and the measured runs have none. Restarts
(``paths.restarts``) search every pair again: the cap and the shares are per search. The probe
(``paths.probe``) searches the pairs across the passes that end bars once per probe radius, counted
as every pair (on the first experiment's minima every pair crossed one: ``searches``). An aligned
landscape (``paths.align``) joins every pair a second time, between the aligned minima: twice the
path FLOPs. A dataset and architecture with no measured runs (so far every GPU preset's) is
estimated at its bound. Both ignore the time the GPU waits for Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.engine.certify import LANCZOS_STEPS
from core.engine.options import PROBE_TRUST
from core.nets.data import TEXT_DATASETS
from core.nets.models import build_model, n_params
from core.runs.config import PathConfig, RunConfig
from core.runs.store import RunStore, read_run

__all__ = [
    "AT_CAP",
    "GPU_FLOPS",
    "PATH_USAGE",
    "PairWork",
    "PathUsage",
    "measured_usage",
    "pair_work",
    "run_cost",
    "usage_of",
]

GPU_FLOPS = 10e12  # assumed sustained FLOP/s of the batched fp32 objective on one GPU

# dataset -> (input shape, classes, training examples in the full split)
DATASET_SHAPES = {
    "digits": ((1, 8, 8), 10, 1437),
    "mnist1d": ((1, 40), 10, 4000),
    "mnist": ((1, 28, 28), 10, 60000),
    "fashion_mnist": ((1, 28, 28), 10, 60000),
    "cifar10": ((3, 32, 32), 10, 50000),
    "cifar100": ((3, 32, 32), 100, 50000),
    "svhn": ((3, 32, 32), 10, 73257),
    "pydoc": ((32,), 103, 12681),  # the shape is (data.context,)
}


def _forward_flops(c: RunConfig) -> tuple[int, int]:
    """(parameters, forward FLOPs per example) counted on the meta device."""
    shape, classes, _ = DATASET_SHAPES[c.data.name]
    text = c.data.name in TEXT_DATASETS
    shape = (c.data.context,) if text else shape
    with torch.device("meta"):
        m = c.model
        model = build_model(m.arch, m.width, m.depth, shape, classes, m.activation)
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *shape, dtype=torch.int64 if text else torch.float32))
    return n_params(model), int(counter.get_total_flops())


@dataclass(frozen=True)
class PathUsage:
    """What the pairs of finished runs used of their budget (``measured_usage``)."""

    step_share: float  # mean over pairs of steps taken / the run's step cap
    converged_share: float  # share of pairs converged by force: they get a certificate
    runs: int = 0  # finished runs measured (0: none; the bound)
    pairs: int = 0  # optimised pairs measured


AT_CAP = PathUsage(1.0, 1.0)  # no measurement: every pair to its cap, every pair certified

# measured_usage(RunStore("runs")) on the 74 finished runs of the cpu-reproduction and
# cpu-resolution sweeps (CPU, 2026-12-07; 300 examples, 5 minima, caps 800-2000, paths split at
# dips, 2 rounds, whose legs' steps count): digits pairs mostly end with no barrier after a
# sixth of the cap; MNIST-1D pairs run to it and beyond with their legs (MNIST-1D CNNs: 7 of
# 9 runs, the two slowest of depth 2-3 missing). Few pairs converged by force.
PATH_USAGE: dict[tuple[str, str], PathUsage] = {
    ("digits", "cnn"): PathUsage(step_share=0.155407, converged_share=0.033333, runs=9, pairs=90),
    ("digits", "mlp"): PathUsage(step_share=0.158998, converged_share=0.002703, runs=37, pairs=370),
    ("mnist1d", "cnn"): PathUsage(step_share=0.623276, converged_share=0.142857, runs=7, pairs=70),
    ("mnist1d", "mlp"): PathUsage(step_share=0.728125, converged_share=0.0, runs=21, pairs=210),
}


def measured_usage(store: RunStore) -> dict[tuple[str, str], PathUsage]:
    """``PathUsage`` per (dataset, architecture) over the finished runs in ``store``."""
    runs = [read_run(store, r.run_id) for r in store.list()[0] if r.stage == "results"]
    return usage_of((r.config, r.paths.steps, r.paths.status) for r in runs)


def usage_of(
    runs: Iterable[tuple[RunConfig, np.ndarray, np.ndarray]],
) -> dict[tuple[str, str], PathUsage]:
    """``PathUsage`` per (dataset, architecture) from (config, steps (E,), status (E,)) of each
    run: the mean share of the cap over pairs (the cost adds up over pairs: the mean, not the
    median)."""
    shares: dict[tuple[str, str], list[np.ndarray]] = {}
    converged: dict[tuple[str, str], list[np.ndarray]] = {}
    for c, steps, status in runs:
        key = (c.data.name, c.model.arch)
        cap = c.paths.steps * searches(c)  # every search of a pair has the cap
        shares.setdefault(key, []).append(np.asarray(steps) / cap)
        converged.setdefault(key, []).append(np.asarray(status) == "converged")
    return {
        key: PathUsage(
            float(np.concatenate(s).mean()),
            float(np.concatenate(converged[key]).mean()),
            len(s),
            int(sum(x.size for x in s)),
        )
        for key, s in shares.items()
    }


@dataclass(frozen=True)
class PairWork:
    """Evaluations of one pair's path, each one parameter vector on its examples."""

    steps: float  # path steps
    gradients: float  # value and gradient at an interior point, on all examples
    minibatch_gradients: float  # the same on a minibatch (the first ``noisy_steps``)
    checks: float  # values at the dense checks
    final: float  # values of the final saddle: peak search, then dense until stable
    hvps: float  # Hessian-vector products of the certificate

    @property
    def evaluations(self) -> float:
        """Point evaluations: a gradient, a value and a Hessian-vector product count one."""
        return self.gradients + self.minibatch_gradients + self.checks + self.final + self.hvps


def searches(c: RunConfig) -> float:
    """Searches per pair: the first, the restarts, and the probe's, one per radius (the pairs
    across the passes that end bars, at most every pair)."""
    return 1 + c.paths.restarts + (len(PROBE_TRUST) if c.paths.probe else 0)


def pair_work(q: PathConfig, p: int, steps: float, certified: float) -> PairWork:
    """The evaluations of one pair that takes ``steps`` path steps and is certified with
    probability ``certified``, on chains of the mean of ``n_points`` and ``max_points``
    points; ``p`` parameters bound the Lanczos iterations."""
    n = (q.n_points + q.max_points) / 2  # points per chain, endpoints included
    dense = (n - 1) * q.check_density + 1  # a path's points at a dense check
    noisy = min(q.noisy_steps, steps) if q.batch_size else 0
    return PairWork(
        steps=steps,
        gradients=(n - 2) * (steps - noisy),
        minibatch_gradients=(n - 2) * noisy,
        checks=steps / q.check_every * dense,
        # refine_peaks (dense, then 2 + 48 golden-section points) and final_saddles (density
        # final_density, then the points its double adds)
        final=dense + 50 + (n - 1) * 2 * q.final_density + 1,
        hvps=certified * min(LANCZOS_STEPS, p),
    )


def _path_flops(w: PairWork, f: int, n: int, batch: int) -> tuple[float, float]:
    """FLOPs of one pair's path steps (with their checks) and of its final saddle and
    certificate: 3 forward passes per gradient, 5 per Hessian-vector product."""
    steps = f * (3 * (w.gradients * n + w.minibatch_gradients * batch) + w.checks * n)
    return steps, f * n * (w.final + 5 * w.hvps)


def run_cost(c: RunConfig, usage: PathUsage | None = None) -> dict[str, Any]:
    """Parameters, evaluations and FLOPs of one run (see the module docstring).

    "FLOPs" and the stages' FLOPs ("minima", "path step", "path final") are the bound, every
    pair to its step cap; "expected FLOPs" counts the path steps of ``usage`` (by default
    ``PATH_USAGE`` of the run's dataset and architecture; the bound where none is measured). Point
    evaluations are per pair."""
    p, f = _forward_flops(c)
    t, q = c.train, c.paths
    n = min(c.data.n_train or DATASET_SHAPES[c.data.name][2], DATASET_SHAPES[c.data.name][2])
    usage = usage or PATH_USAGE.get((c.data.name, c.model.arch), AT_CAP)
    pairs = t.minima * (t.minima - 1) // 2
    pairs *= 1 if q.align == "none" else 2  # the aligned minima's paths as well
    batch = q.batch_size or n
    train_step = t.minima * (t.batch_size or n)
    checks_train = t.minima * n * t.steps / 50
    minima = 3 * f * (train_step * t.steps + checks_train)
    cap = q.steps * searches(c)  # every search of a pair has the cap
    bound = pair_work(q, p, cap, 1.0)
    expected = pair_work(q, p, usage.step_share * cap, usage.converged_share)
    steps_b, final_b = _path_flops(bound, f, n, batch)
    steps_e, final_e = _path_flops(expected, f, n, batch)
    checks = 3 * f * checks_train + pairs * f * n * (expected.checks + expected.final)
    return {
        "parameters": p,
        "forward FLOPs per example": f,
        "examples per training step": train_step,
        "examples per path step": int(pairs * ((q.n_points + q.max_points) / 2 - 2) * batch),
        "usage": usage,
        "path step cap": q.steps,
        "expected path steps": expected.steps,
        "point evaluations per pair": bound.evaluations,
        "expected point evaluations per pair": expected.evaluations,
        "FLOPs": minima + pairs * (steps_b + final_b),
        "expected FLOPs": minima + pairs * (steps_e + final_e),
        "expected check FLOPs": checks + 5 * pairs * f * n * expected.hvps,
        # by stage, at the bound (they add up to FLOPs): training the minima, the path steps
        # with their dense checks, and the paths' final saddles and certificates
        "minima FLOPs": minima,
        "path step FLOPs": pairs * steps_b,
        "path final FLOPs": pairs * final_b,
    }
