"""The engine's options, declared once: ``MinimaOptions`` and ``PathOptions``.

Every field is a ``knob``: its default, its label and help text, its bounds (``lo``/``hi`` or
``choices``), its command-line flag and whether the dashboard tucks it away. The engine
validates from these declarations; the run config (``core.runs.config``) extends the two
classes with the network's own fields, and the CLI's flags and the Run page's form are
generated from the same declarations, so a default lives in exactly one place. The defaults
are those of a network run; ``ANALYTIC`` holds those of smooth functions of a few coordinates
of order one (the analytic landscapes): ``barcode_of(f, starts, **ANALYTIC)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

OPTIMIZERS = ("adam", "momentum", "gd", "fire", "lbfgs")
REGIMES = ("anneal", "constant")
PAIR_STRATEGIES = ("all", "mst")
PRECISIONS = ("float32", "bfloat16")
# restart r of the route search relaxes the paths again with the trust radius times the r-th
# of these: smaller and larger steps settle the chains in other valleys
RESTART_TRUST = (0.25, 2.5, 0.5, 1.5)
# the probe relaxes the pairs across the passes that end bars again with the trust radius
# times each of these: a decade below to four times above, where the restarts' radii rarely go
PROBE_TRUST = (0.1, 0.4, 4.0)


def knob(
    default: Any,
    label: str,
    help: str,
    *,
    flag: str | None = None,
    choices: tuple | None = None,
    lo: float | None = None,
    hi: float | None = None,
    zero_is_none: bool = False,
    advanced: bool = False,
) -> Any:
    """An option, declared once: its default, its name in the dashboard (``label``) and what
    it means (``help``), its bounds (``lo``/``hi``, or ``choices``), its command-line flag
    (``--name-with-dashes`` unless ``flag`` says otherwise; ``zero_is_none``: the flag's 0
    stands for None), and whether the Run page tucks it away (``advanced``)."""
    md = {
        "help": help,
        "flag": flag,
        "choices": choices,
        "lo": lo,
        "hi": hi,
        "zero_is_none": zero_is_none,
        "label": label,
        "advanced": advanced,
    }
    return field(default=default, metadata=md)


def coerce_floats(options: Any) -> None:
    """Store an int given for a float field as a float (and -0.0 as 0.0), so ``lr=1`` and
    ``lr=1.0`` are the same options (the same run id, the same JSON); anything else is left
    for ``check_fields`` to judge."""
    for f in dataclasses.fields(options):
        v = getattr(options, f.name)
        if "float" in str(f.type) and isinstance(v, int | float) and not isinstance(v, bool):
            try:
                object.__setattr__(options, f.name, float(v) + 0.0)
            except OverflowError:  # an int too large for a float; check_fields rejects it
                pass


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check(ok: bool, name: str, value: Any, want: str) -> None:
    """ValueError ``name=value: must be want`` unless ``ok``."""
    if not ok:
        text = repr(value)
        text = text if len(text) <= 60 else f"{text[:40]}...({len(text)} characters)"
        raise ValueError(f"{name}={text}: must be {want}")


def check_int(name: str, v: Any, lo: int = 1, hi: int | None = None) -> None:
    want = f"an integer >= {lo}" + (f" and <= {hi}" if hi else "")
    check(is_int(v) and v >= lo and (hi is None or v <= hi), name, v, want)


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond the float range
        return False


def check_field(where: str, f: dataclasses.Field, v: Any) -> None:
    """ValueError naming ``where`` unless ``v`` is what the declaration of ``f`` allows."""
    md, kind = f.metadata, str(f.type)
    if md.get("choices"):
        check(v in md["choices"], where, v, f"one of {md['choices']}")
    elif kind == "bool":
        check(isinstance(v, bool), where, v, "true or false")
    elif kind.startswith("str"):
        if not (kind.endswith("None") and v is None):
            check(isinstance(v, str) and v.strip() != "", where, v, "a non-empty text")
    elif kind.startswith("int"):
        if not (kind.endswith("None") and v is None):
            lo = md.get("lo")
            check_int(where, v, lo=1 if lo is None else int(lo), hi=md.get("hi"))
    elif kind == "float":
        ok = isinstance(v, int | float) and not isinstance(v, bool) and _finite(v)
        zero = md.get("lo") == 0
        check(
            ok and (v > 0 or (zero and v == 0)),
            where,
            v,
            f"a finite number {'>=' if zero else '>'} 0",
        )


def check_fields(options: Any, prefix: str = "") -> None:
    """Check every declared field of ``options`` and the bounds between fields; the message
    names the field as ``prefix + name`` (``paths.max_points``)."""
    for f in dataclasses.fields(options):
        if f.metadata:
            check_field(prefix + f.name, f, getattr(options, f.name))
    for low, high in getattr(options, "ORDERED", ()):
        lo_v = getattr(options, low)
        check_int(prefix + high, getattr(options, high), lo=lo_v, hi=_declared(options, high, "hi"))


def _declared(options: Any, name: str, key: str) -> Any:
    return next(f.metadata.get(key) for f in dataclasses.fields(options) if f.name == name)


@dataclass(frozen=True)
class MinimaOptions:
    """How minima are found: a batched descent from every start, then merging."""

    regime: str = knob(
        "anneal",
        "Learning-rate regime",
        "learning rate: 'anneal' (cosine, lr -> lr_final) or 'constant'",
        choices=REGIMES,
    )
    lr: float = knob(
        0.02,
        "Learning rate",
        "step size at the start of the descent (for 'fire' and 'lbfgs': the most a start moves "
        "in a step, at first)",
    )
    lr_final: float = knob(1e-4, "Final learning rate", "step size at the end of the anneal")
    steps: int = knob(3000, "Training steps (cap)", "step cap per start", hi=10_000_000)
    grad_tol: float = knob(
        1e-3, "Gradient tolerance", "a start is a minimum once ||grad|| is below this"
    )
    optimizer: str = knob(
        "adam",
        "Optimizer",
        "descent: 'adam', 'momentum', 'gd' (on minibatches where given), or 'fire' or 'lbfgs' "
        "(full batch)",
        choices=OPTIMIZERS,
        advanced=True,
    )
    loss_tol: float = knob(
        0.0,
        "Stall tolerance",
        "a start stalls (a stopping point) when its loss moves less than this between checks",
        lo=0,
        advanced=True,
    )
    check_every: int = knob(
        50,
        "Descent check interval (steps)",
        "full-objective checks (gradient norm, loss change) this often",
        flag="--train-check-every",
        hi=1_000_000,
        advanced=True,
    )
    merge_distance: float = knob(
        1e-3,
        "Merge distance",
        "starts that end closer than this (Euclidean, in parameters) are one minimum",
        advanced=True,
    )

    def __post_init__(self) -> None:
        coerce_floats(self)
        check_fields(self)

    @property
    def final_lr(self) -> float:
        """The step size at the last step: ``lr_final``, or ``lr`` for a constant rate."""
        return self.lr if self.regime == "constant" else self.lr_final


@dataclass(frozen=True)
class PathOptions:
    """How pairs of minima are connected: chains relaxed to min-max paths, then saddles."""

    pairs: str = knob(
        "all",
        "Pairs",
        "which pairs get a path: 'all', or 'mst' refinement (fewer paths; an empirical rule)",
        choices=PAIR_STRATEGIES,
    )
    groups: int = knob(
        1,
        "Path batches",
        "pairs are relaxed in this many independent batches of near-equal size, which can run "
        "on separate workers (Ray tasks); a pair's path is the same in any batch, so this "
        "number changes where the work runs, not the paths",
        flag="--path-groups",
        lo=1,
        hi=4096,
        advanced=True,
    )
    n_points: int = knob(
        10,
        "Points per path",
        "points per path at the start, endpoints included",
        flag="--path-points",
        lo=3,
        hi=1024,
    )
    max_points: int = knob(
        16,
        "Max points per path",
        "points a path may grow to where under-resolved",
        flag="--path-max-points",
        lo=3,
        hi=4096,
    )
    steps: int = knob(
        3000,
        "Path steps (cap)",
        "step cap per path (a finished path stops costing anything)",
        flag="--path-steps",
        hi=10_000_000,
    )
    force_tol: float = knob(
        1e-3,
        "Force tolerance (x gradient scale)",
        "converged: largest perpendicular force below this times the pair's gradient scale",
    )
    grad_tol: float = knob(
        1e-4,
        "Climbing tolerance (x gradient scale)",
        "converged: the climbing point's gradient below this times the scale",
        flag="--climb-tol",
    )
    noisy_steps: int = knob(
        0,
        "Minibatch steps first",
        "path steps on minibatches before the full-data steps",
        lo=0,
        hi=10_000_000,
        advanced=True,
    )
    saddle_tol: float = knob(
        1e-4,
        "Saddle tolerance",
        "resolution of a saddle: doubling the final density moves none more; 'no barrier' below it",
    )
    precision: str = knob(
        "float32",
        "Path-step precision",
        "path steps' precision ('bfloat16': autocast); saddles are always float32",
        flag="--path-precision",
        choices=PRECISIONS,
        advanced=True,
    )
    check_every: int = knob(
        25,
        "Path check interval (steps)",
        "every this many steps each path is evaluated densely: its saddle estimate, the "
        "'no barrier' test and chain growth",
        hi=1_000_000,
        advanced=True,
    )
    check_density: int = knob(
        2,
        "Points per interval at checks",
        "interpolated points between neighbours at those checks (the final saddles are denser, "
        "until stable)",
        hi=1024,
        advanced=True,
    )
    max_move: float = knob(
        0.2,
        "Trust radius (x spacing)",
        "most a path point moves in one step, in its chain's mean spacings",
        advanced=True,
    )
    climb_after: int = knob(
        10,
        "Steps before climbing",
        "steps before the highest interior point starts climbing to the saddle",
        lo=0,
        hi=1_000_000,
        advanced=True,
    )
    splits: int = knob(
        2,
        "Splits at dips (rounds)",
        "a path stopped at the step cap whose loss dips between two peaks is replaced by the "
        "route through the minima below its dips, where that is no higher; legs stopped at "
        "the cap are split again, this many rounds (0: never)",
        flag="--path-splits",
        lo=0,
        hi=8,
    )
    neighbours: int = knob(
        0,
        "Neighbour legs",
        "after splitting, every minimum met (the run's and those below the dips) is joined to "
        "this many nearest others, and a pair takes the lowest route through all legs where "
        "that is lower than its own path (0: none)",
        flag="--path-neighbours",
        lo=0,
        hi=64,
    )
    restarts: int = knob(
        0,
        "Route-search restarts",
        "the paths are relaxed this many more times, each with another trust radius (x 1/4, "
        "5/2, 1/2, 3/2); the minima, legs and paths of every search are pooled, and a pair "
        "takes the lowest route through them all (0: one search)",
        flag="--path-restarts",
        lo=0,
        hi=len(RESTART_TRUST),
    )
    probe: bool = knob(
        False,
        "Probe the bars' ends",
        "after the searches, every pair across a pass that ends a bar longer than the saddle "
        "tolerance (from the bar's basin to the rest, as high as the bar's death) is relaxed "
        "again with the trust radius x 1/10, 2/5 and 4, pooled like a restart; where one "
        "chain settles on a pass that another trust radius misses, this finds the lower pass "
        "around the bars' ends",
        flag="--path-probe",
    )
    weight: float = knob(
        2.0,
        "Point-density weight",
        "points crowd where the loss is high: density grows by (1 + weight x normalised loss)",
        flag="--path-weight",
        lo=0,
        advanced=True,
    )
    final_density: int = knob(
        8,
        "First final density",
        "interpolated points per interval where the final saddles start; doubled until stable",
        hi=4096,
        advanced=True,
    )
    max_density: int = knob(
        64,
        "Most final density",
        "the final saddles stop doubling here",
        hi=65_536,
        advanced=True,
    )

    ORDERED = (("n_points", "max_points"), ("final_density", "max_density"))  # lo <= hi

    def __post_init__(self) -> None:
        coerce_floats(self)
        check_fields(self)


# Smooth functions of a few coordinates of order one: full-batch L-BFGS (trust radius from 0.1) to
# a tight gradient, duplicates merged within 0.01; chains of 8 points (they grow where a peak
# hides between them) moving up to half their spacing per step; saddles resolved to 1e-5.
ANALYTIC = {
    "minima": {
        "optimizer": "lbfgs",
        "lr": 0.1,
        "steps": 3000,
        "grad_tol": 1e-6,
        "merge_distance": 1e-2,
    },
    "paths": {
        "saddle_tol": 1e-5,
        "grad_tol": 1e-5,
        "check_density": 4,
        "n_points": 8,
        "max_move": 0.5,
    },
}

__all__ = [
    "ANALYTIC",
    "OPTIMIZERS",
    "PAIR_STRATEGIES",
    "PRECISIONS",
    "REGIMES",
    "PROBE_TRUST",
    "RESTART_TRUST",
    "MinimaOptions",
    "PathOptions",
    "check_fields",
    "knob",
]
