"""``python -m core escape RUN_ID``: how often SGD leaves each minimum of a stored run, against
its bar length (``core.runs.escape``).

    python -m core escape 1a2b3c4d5e6f --lr 0.05 0.2 --batch-size 32 --steps 500 --repeats 16

Prints, per learning rate, the per-minimum table (escape probability with a Wilson 95%
interval, bar length, exit barrier) and Spearman's rho between bar length and escape
probability with its permutation p-value. The probability is escaped / settled: trajectories
still unsettled after the full-batch descent (``--descent-steps``) and diverged ones are
columns of their own, left out of it; when most are unsettled the verdict says the result is
inconclusive. Results are saved next to the run
(``runs/<id>/escape-<key>.json``) and read back when the same settings are asked for again.
"""

from __future__ import annotations

import sys

import numpy as np

from core.runs.escape import DEFAULTS, DESCENT_STEPS, check_settings, escape_saved
from core.views.escape import format_escape, sweep_rows


def add_command(sub) -> None:
    """Add ``escape`` to the subparsers ``sub``."""
    e = sub.add_parser("escape", help="escape probability from each minimum vs its bar length")
    e.add_argument("run_id")
    e.add_argument(
        "--lr",
        type=float,
        nargs="+",
        default=[DEFAULTS["lr"]],
        metavar="X",
        help=f"SGD learning rate(s); several make a sweep (default {DEFAULTS['lr']})",
    )
    for flag, what in (
        ("batch_size", "examples per minibatch"),
        ("steps", "SGD steps"),
        ("repeats", "trajectories per minimum"),
        ("seed", "seed of the minibatch draws"),
    ):
        e.add_argument(
            "--" + flag.replace("_", "-"),
            type=int,
            default=DEFAULTS[flag],
            metavar="N",
            help=f"{what} (default {DEFAULTS[flag]})",
        )
    e.add_argument(
        "--descent-steps",
        type=int,
        default=DESCENT_STEPS,
        metavar="N",
        help=f"full-batch gradient steps after the SGD; trajectories still above their "
        f"basin threshold after them are unsettled (default {DESCENT_STEPS})",
    )
    e.add_argument("--recompute", action="store_true", help="compute even if saved")
    e.add_argument("--device", help="where to compute (default: the run's device)")


def cmd_escape(a, store) -> int:
    settings = dict(
        batch_size=a.batch_size,
        steps=a.steps,
        repeats=a.repeats,
        seed=a.seed,
        descent_steps=a.descent_steps,
    )
    for lr in a.lr:  # every bad value before anything is computed
        check_settings(lr=lr, **settings)
    store.config(a.run_id)  # an unknown run: one line, before the data are loaded
    results = []
    for lr in a.lr:
        res, saved = escape_saved(
            store,
            a.run_id,
            lr=lr,
            recompute=a.recompute,
            device=a.device,
            on_progress=_progress(lr) if sys.stderr.isatty() else None,
            **settings,
        )
        if not saved and sys.stderr.isatty():
            print(file=sys.stderr)
        print(format_escape(res, from_store=saved))
        print()
        results.append(res)
    if len(results) > 1:
        print("learning-rate sweep:")
        print("  lr        escaped/settled  unsettled  diverged  Spearman rho  p (perm.)")
        for r in sweep_rows(results):
            rho, p = r["Spearman rho"], r["p (perm.)"]
            rho_p = f"{rho:+12.2f}  {p:.3g}" if np.isfinite(rho) else f"{'undefined':>12}  -"
            print(
                f"  {r['lr']:<8g}  {r['escaped']:7d}/{r['settled']:<7d}  {r['unsettled']:9d}"
                f"  {r['diverged']:8d}  {rho_p}"
            )
    return 0


def _progress(lr: float):
    def show(done: int, total: int) -> None:
        print(f"\rlr {lr:g}: SGD step {done}/{total}", end="", file=sys.stderr, flush=True)

    return show
