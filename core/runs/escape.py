"""Escapability of a stored network run: SGD from its minima, set against their bars.

``escape(run, lr=..., batch_size=..., steps=..., repeats=..., seed=...)`` starts R plain SGD
trajectories from each of the run's K minima, all in one (K * R, P) tensor. Every trajectory
draws its own minibatches (``batch_size`` training examples without replacement, afresh at
every step, from a private generator seeded with ``seed``), so the R trajectories of a minimum
see independent noise; its loss is the run's objective (mean cross-entropy + the L2 term) on
them. Each is finished by a full-batch gradient descent (``DESCENT_STEPS``) and judged by the
basin rule of ``core.engine.escape`` against the run's stored minima and saddles. The escape
probability counts settled trajectories only: escaped / settled, with the unsettled (loss still
above the basin threshold after the descent) and diverged ones reported apart.

Results are saved next to the run, ``runs/<id>/escape-<key>.json`` (``key``: a hash of the
settings; written atomically), and ``escape_saved`` reads them back instead of computing again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, grad, vmap

from core.engine.escape import MARGIN, POINTS, RULE, EscapeResult, check_positive, escape_from
from core.engine.escape_stats import RankCorrelation, pooled_rank_correlation
from core.nets.models import unflatten
from core.nets.objective import NetworkObjective
from core.runs.files import read_json, write_json
from core.runs.pipeline import objectives
from core.runs.record import Run
from core.runs.store import RunStore, read_run

log = logging.getLogger(__name__)

FORMAT = 1  # of the saved results; part of their key
DEFAULTS = {"lr": 0.05, "batch_size": 32, "steps": 500, "repeats": 16, "seed": 0}
# Full-batch gradient steps after the noise, at the same lr. Measured (lr 0.05 and 0.1, batch
# 32, 500 SGD steps, 16 repeats): on the MNIST-1D run of 8 minima, MLP 16x1, 200 steps left
# 17 and 93 of 128 trajectories unsettled, 500 left 0 and 1, 1000 none; the test suite's tiny
# runs (3 minima, lr 0.05 to 0.5) had up to 56% unsettled with no descent and none from 200.
DESCENT_STEPS = 1000

Progress = Callable[[int, int], None]  # (SGD steps done, total)


def minibatch_grads(obj: NetworkObjective, thetas: Tensor, idx: Tensor) -> Tensor:
    """(M, P) gradients of each row's loss on its own minibatch: row m on the training
    examples ``idx[m]`` (idx (M, B)), mean cross-entropy + ``l2 ||theta||^2 / 2``; one vmapped
    call of ``torch.func.grad`` per block of rows."""
    model, fwd = obj.model, obj.forward

    def loss(theta: Tensor, x: Tensor, y: Tensor) -> Tensor:  # (P,), (B, ...), (B,) -> ()
        params = unflatten(theta, model)
        x = x.to(theta.dtype) if x.is_floating_point() else x
        logits = fwd(params, x) if fwd is not None else functional_call(model, params, (x,))
        if logits.dim() == 3:  # text (B, L, C): every position weighs the same
            logits = logits.transpose(1, 2)
        return F.cross_entropy(logits, y) + 0.5 * obj.l2 * theta.pow(2).sum()

    batched = vmap(grad(loss))
    block = max(1, obj.block_size(len(thetas), idx.shape[1]))
    out = [
        batched(
            thetas[i : i + block], obj.x_train[idx[i : i + block]], obj.y_train[idx[i : i + block]]
        )
        for i in range(0, len(thetas), block)
    ]
    return torch.cat(out)


def sgd(
    obj: NetworkObjective,
    thetas: Tensor,
    *,
    lr: float,
    batch_size: int,
    steps: int,
    seed: int,
    on_progress: Progress | None = None,
) -> Tensor:
    """``steps`` plain SGD steps of size ``lr`` on every row, each row with its own minibatches
    (module docstring). (M, P) -> (M, P)."""
    gen = torch.Generator().manual_seed(seed)
    x, m, n = thetas.detach().clone(), thetas.shape[0], obj.n_train
    for step in range(steps):
        idx = torch.rand(m, n, generator=gen).argsort(1)[:, :batch_size]  # (M, B)
        x = x - lr * minibatch_grads(obj, x, idx.to(obj.device))
        if on_progress and ((step + 1) % 10 == 0 or step + 1 == steps):
            on_progress(step + 1, steps)
    return x


def check_settings(*, lr, batch_size, steps, repeats, seed, descent_steps=DESCENT_STEPS) -> dict:
    """The settings as saved (with the rule's, its version and the format's: a result judged
    by an older rule has another key and is computed again); ValueError naming a bad one."""
    check_positive("lr", lr)
    for name, v in (("batch_size", batch_size), ("steps", steps), ("repeats", repeats)):
        check_positive(name, v, integer=True)
    check_positive("descent_steps", descent_steps, integer=True, zero=True)
    check_positive("seed", seed, integer=True, zero=True)
    return {
        "format": FORMAT,
        "lr": float(lr),
        "batch_size": int(batch_size),
        "steps": int(steps),
        "repeats": int(repeats),
        "seed": int(seed),
        "descent_steps": int(descent_steps),
        "points": POINTS,
        "margin": MARGIN,
        "rule": RULE,
    }


def escape(
    run: Run,
    *,
    lr: float = DEFAULTS["lr"],
    batch_size: int = DEFAULTS["batch_size"],
    steps: int = DEFAULTS["steps"],
    repeats: int = DEFAULTS["repeats"],
    seed: int = DEFAULTS["seed"],
    descent_steps: int = DESCENT_STEPS,
    device=None,
    on_progress: Progress | None = None,
) -> EscapeResult:
    """SGD escapes from the minima of a finished run (module docstring).

    Parameters
    ----------
    run : Run
        A finished run (``core.runs.store.read_run``): minima, paths and barcode.
    lr, batch_size, steps : float, int, int
        The SGD: step size, examples per minibatch (at most the training set), steps.
    repeats : int
        R, trajectories per minimum.
    seed : int
        Seeds the minibatch draws.
    descent_steps : int
        Full-batch gradient steps of size ``lr`` after the SGD.
    device : str or torch.device, optional
        Where to compute; the run's device by default.

    Returns
    -------
    EscapeResult
        ``extra["run_id"]`` is the run's id.
    """
    settings = check_settings(
        lr=lr,
        batch_size=batch_size,
        steps=steps,
        repeats=repeats,
        seed=seed,
        descent_steps=descent_steps,
    )
    if run.barcode is None:
        raise ValueError(f"run {run.run_id} is not finished: it has no barcode yet")
    obj, _ = objectives(run.config, torch.device(device) if device else None)
    if batch_size > obj.n_train:
        raise ValueError(
            f"batch_size must be at most {obj.n_train} (the training set), got {batch_size}"
        )
    minima = run.minima.thetas.to(obj.device)

    def move(x: Tensor) -> Tensor:
        return sgd(
            obj, x, lr=lr, batch_size=batch_size, steps=steps, seed=seed, on_progress=on_progress
        )

    res = escape_from(
        obj,
        minima,
        run.barcode,
        move,
        repeats=repeats,
        descent_lr=lr,
        descent_steps=descent_steps,
        settings=settings,
    )
    log.info(
        "run %s, lr %g: %d of %d settled trajectories escaped (%d unsettled, %d diverged)",
        run.run_id,
        lr,
        res.escaped.sum(),
        res.settled.sum(),
        res.unsettled.sum(),
        res.diverged.sum(),
    )
    return dataclasses.replace(res, extra={"run_id": run.run_id})


# ---------------------------------------------------------------------------------------------
# Saved results


def result_path(store: RunStore, run_id: str, settings: dict) -> Path:
    """``runs/<id>/escape-<key>.json``: key, the first 12 hex digits of the settings' hash."""
    text = json.dumps(settings, sort_keys=True)
    return store.dir(run_id) / f"escape-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"


def escape_saved(
    store: RunStore,
    run_id: str,
    *,
    recompute: bool = False,
    device=None,
    on_progress: Progress | None = None,
    **settings,
) -> tuple[EscapeResult, bool]:
    """(the result of ``escape`` for the stored run with ``settings`` (``escape``'s keywords;
    ``DEFAULTS`` for the ones not given), whether it was read from the store); computed and
    saved when it is not there (or with ``recompute``)."""
    kw = {**DEFAULTS, "descent_steps": DESCENT_STEPS, **settings}
    key = check_settings(**kw)
    run = read_run(store, run_id)
    if run.barcode is None:
        raise ValueError(f"run {run_id} is not finished (last stage: {store.stage(run_id)})")
    path = result_path(store, run_id, key)
    if path.exists() and not recompute:
        try:
            return EscapeResult.from_dict(read_json(path)), True
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s is unreadable (%s); computing it again", path, exc)
    res = escape(run, **kw, device=device, on_progress=on_progress)
    write_json(path, res.to_dict())
    return res, False


def saved_results(store: RunStore, run_id: str) -> list[EscapeResult]:
    """Every escape result saved for a run, by learning rate then settings (unreadable files,
    and results judged by an older escape rule, are skipped with a warning in the log)."""
    out = []
    for path in sorted(store.dir(run_id).glob("escape-*.json")):
        try:
            out.append(EscapeResult.from_dict(read_json(path)))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("skipping %s: %s", path, exc)
    return sorted(
        out, key=lambda r: (r.settings.get("lr", 0.0), json.dumps(r.settings, sort_keys=True))
    )


def lr_sweep(
    store: RunStore, run_id: str, lrs: Sequence[float], **kw
) -> list[tuple[float, EscapeResult]]:
    """``escape_saved`` at each learning rate: [(lr, result)], in the order given."""
    return [(lr, escape_saved(store, run_id, lr=lr, **kw)[0]) for lr in lrs]


def pooled(results: Sequence[EscapeResult], seed: int = 0) -> RankCorrelation:
    """Bar length vs escape probability over several runs' results (one per run): Spearman's
    rho within each run over its minima with a settled trajectory, pooled
    (``core.engine.escape.pooled_rank_correlation``)."""
    return pooled_rank_correlation([r.scored() for r in results], seed=seed)


def same_settings(result: EscapeResult) -> str:
    """The settings that make results comparable across runs, as one hashable string."""
    s = {k: v for k, v in result.settings.items() if k != "seed"}
    return json.dumps(s, sort_keys=True)


__all__ = [
    "DEFAULTS",
    "escape",
    "escape_saved",
    "lr_sweep",
    "minibatch_grads",
    "pooled",
    "result_path",
    "saved_results",
    "sgd",
]
