"""The Learn page's science: flooding a landscape from below, pool by pool.

Fill a landscape with water: at level c the flooded region {f <= c} falls into pools
(connected components). A ``Flood`` holds everything needed to draw any level of that story
for a curve (1-D) or a grid (2-D, the grid convention of ``core.engine.toy``): the exact H0
barcode of the grid values (``core.engine.toy.cubical_h0``, the project's exact barcode) and,
for every level, which minimum owns each pool.

Naming and colouring by the elder rule: bars are numbered by age (0 = the global minimum,
then by birth; a tie goes to the bar that lives longer, the one the elder rule kept). A pool
is named after its oldest minimum, so a minimum keeps its name and colour from the birth of
its pool until the pool merges into an older one, and a merged pool has the elder's name.

How any level is drawn without labelling the grid again: between two consecutive event
levels (births and deaths) the pools only grow, so each grid point gets, once, the minimum
that owns its pool when the water first reaches it (``entry``); a table ``owners`` says, for
every interval between events, which minimum owns the pool of each minimum. The pool owner
of a point at level c is ``owners[interval of c][entry[point]]``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from core.engine.landscape import Landscape
from core.engine.toy import (
    ExactBars,
    cubical_h0,
    exact_barcode,
    get_toy,
    grid_values,
    sublevel_components,
)
from core.engine.validate import ToyComparison, compare_engine_to_exact

EVERY = 4  # a toy's exact barcode comes from an 801-point grid; every 4th point is drawn


def minimum_name(k: int) -> str:
    """The name of minimum ``k`` (by age): A, B, ..., Z, A2, B2, ..."""
    letter, lap = string.ascii_uppercase[k % 26], k // 26
    return letter if lap == 0 else f"{letter}{lap + 1}"


@dataclass(frozen=True)
class Event:
    """A birth (a new pool appears) or a death (a pool merges into an older one)."""

    level: float  # the water level where it happens
    kind: str  # "birth" or "death"
    minimum: int  # the bar born or ending
    into: int  # for a death, the minimum whose pool it merges into; -1 for a birth
    length: float  # the bar's length, death - birth (inf for the global minimum)


@dataclass(frozen=True)
class Flood:
    """A landscape flooded from below: its exact barcode and its pools at every level.

    Bars are in age order (see the module docstring). A curve is a grid of one row.
    """

    xs: np.ndarray  # (W,) x of the drawn grid columns
    ys: np.ndarray | None  # (H,) y of the drawn grid rows; None for a curve (H = 1)
    Z: np.ndarray  # (H, W) values on the drawn grid
    births: np.ndarray  # (K,) level where bar k's pool appears
    deaths: np.ndarray  # (K,) level where it merges into an older pool; inf for bar 0
    minima: np.ndarray  # (K, 2) (x, y) of each minimum (y = 0 for a curve)
    saddles: np.ndarray  # (K, 2) (x, y) where bar k's pool merges; nan for bar 0
    into: np.ndarray  # (K,) int64 the minimum whose pool bar k's merges into; -1 for bar 0
    marks: np.ndarray  # (E,) the distinct event levels, ascending
    owners: np.ndarray  # (E + 1, K) int64 owner of bar k's pool below marks[0], between
    #                     marks[e - 1] and marks[e], above marks[-1]; -1 before its birth
    entry: np.ndarray  # (H, W) int64 the minimum owning each point's pool when first flooded
    resolution: int  # points per axis of the grid the barcode was computed on

    def __len__(self) -> int:
        return len(self.births)

    @property
    def names(self) -> list[str]:
        return [minimum_name(k) for k in range(len(self))]

    def owner_of(self, level: float) -> np.ndarray:
        """(K,) int64: the minimum that owns bar k's pool at ``level``; -1 before its birth."""
        return self.owners[int(np.searchsorted(self.marks, level, side="right"))]

    def pools(self, level: float) -> np.ndarray:
        """(H, W) int64: the minimum naming each flooded point's pool; -1 above ``level``."""
        flooded = (self.Z <= level) & (self.entry >= 0)
        return np.where(flooded, self.owner_of(level)[self.entry], -1)

    def alive(self, level: float) -> np.ndarray:
        """(K,) bool: bars born at or below ``level`` that have not died yet."""
        return (self.births <= level) & (level < self.deaths)

    def events(self) -> list[Event]:
        """Every birth and death, by level; births first at equal levels."""
        out = [
            Event(float(b), "birth", k, -1, float(self.deaths[k] - b))
            for k, b in enumerate(self.births)
        ]
        out += [
            Event(float(d), "death", k, int(self.into[k]), float(d - self.births[k]))
            for k, d in enumerate(self.deaths)
            if np.isfinite(d)
        ]
        return sorted(out, key=lambda e: (e.level, e.kind == "death", e.minimum))

    def levels(self, n: int = 100) -> np.ndarray:
        """(L,) ascending levels for a slider: ``n`` even steps from just below the deepest
        minimum to a little above the last merge, and every event level exactly."""
        lo, top = float(self.births.min()), float(self.Z.max())
        finite = self.deaths[np.isfinite(self.deaths)]
        last = float(finite.max()) if finite.size else top
        span = max(last - lo, 1e-12)
        hi = min(top, last + 0.15 * span)
        even = np.linspace(lo - 0.03 * span, hi, n)
        return np.unique(np.concatenate([even, self.marks]))


def flood_of(xs, ys, Z, *, every: int = 1) -> Flood:
    """Flood the grid values ``Z`` and keep every ``every``-th point for drawing.

    Parameters
    ----------
    xs, ys : array_like
        (W,) and (H,) grid coordinates; ``ys`` None for a curve.
    Z : array_like
        (H, W) values, ``Z[i, j] = f(xs[j], ys[i])``; (W,) for a curve.
    every : int
        Keep rows and columns 0, every, 2 * every, ... for drawing; the barcode, the events
        and the pool owners are those of the full grid.
    """
    Z = np.asarray(Z, np.float64)
    Z = Z[None, :] if ys is None else Z  # (H, W)
    xs = np.asarray(xs, np.float64)
    ys_ = np.zeros(1) if ys is None else np.asarray(ys, np.float64)
    if Z.shape != (len(ys_), len(xs)):
        raise ValueError(f"Z must have shape (len(ys), len(xs)), got {Z.shape}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be a positive integer, got {every!r}")
    # 1. the exact barcode, its bars in age order: by birth, then the longer-lived first
    births, deaths, birth_idx, death_idx = cubical_h0(Z)
    age = np.lexsort((-deaths, births))
    births, deaths, birth_idx, death_idx = (a[age] for a in (births, deaths, birth_idx, death_idx))
    # 2. between consecutive events the pools only grow: label each interval's pools once
    marks = np.unique(np.concatenate([births, deaths[np.isfinite(deaths)]]))  # (E,)
    owners = np.full((len(marks) + 1, len(births)), -1, dtype=np.int64)
    entry = np.full(Z.shape, -1, dtype=np.int64)
    interval = np.searchsorted(marks, Z, side="right")  # (H, W) the interval where flooded
    flat_labels = np.zeros(Z.size, dtype=np.int64)
    for e in range(1, len(marks) + 1):
        below = Z < marks[e] if e < len(marks) else np.ones(Z.shape, dtype=bool)
        labels, n = ndimage.label(below, structure=np.ones((3, 3), dtype=int))
        flat_labels[:] = labels.ravel()
        oldest = np.full(n + 1, -1, dtype=np.int64)  # component -> its oldest minimum
        comp = flat_labels[birth_idx]  # (K,) 0 for a minimum not yet flooded
        for k in range(len(births) - 1, -1, -1):  # oldest last, so it wins
            if comp[k] > 0:
                oldest[comp[k]] = k
        owners[e] = np.where(comp > 0, oldest[comp], -1)
        now = interval == e
        entry[now] = oldest[labels[now]]
    # 3. whom each bar merges into: the owner of its pool at its death
    into = np.array(
        [
            owners[np.searchsorted(marks, d, side="right")][k] if np.isfinite(d) else -1
            for k, d in enumerate(deaths)
        ],
        dtype=np.int64,
    )
    rows, cols = np.unravel_index(birth_idx, Z.shape)
    minima = np.stack([xs[cols], ys_[rows]], axis=1)  # (K, 2)
    saddles = np.full_like(minima, np.nan)
    finite = death_idx >= 0
    rows, cols = np.unravel_index(death_idx[finite], Z.shape)
    saddles[finite] = np.stack([xs[cols], ys_[rows]], axis=1)
    keep = (slice(None, None, every), slice(None, None, every))
    return Flood(
        xs=xs[keep[1]],
        ys=None if ys is None else ys_[keep[0]],
        Z=Z[keep],
        births=births,
        deaths=deaths,
        minima=minima,
        saddles=saddles,
        into=into,
        marks=marks,
        owners=owners,
        entry=entry[keep],
        resolution=len(xs),
    )


def toy_flood(name: str, resolution: int = 801, every: int = EVERY) -> Flood:
    """The flood of toy ``name``; its barcode is ``core.engine.toy.exact_barcode(toy,
    resolution)``'s, and every ``every``-th grid point is kept for drawing."""
    xs, ys, Z = grid_values(get_toy(name), resolution)
    return flood_of(xs, ys, Z, every=every)


# ---------------------------------------------------------------------------------------------
# Words


def pool_words(owner: np.ndarray, alive: np.ndarray, names: list[str]) -> str:
    """ "3 pools: A, B, D" from the alive bars."""
    live = [names[k] for k in np.flatnonzero(alive)]
    if not live:
        return "no pool yet"
    return f"{len(live)} pool{'s' if len(live) > 1 else ''}: {', '.join(live)}"


def event_words(event: Event, names: list[str]) -> str:
    """What happens at an event, in one sentence with its level."""
    m = names[event.minimum]
    if event.kind == "birth":
        if event.minimum == 0:
            return (
                f"level {event.level:.4g}: the water reaches the deepest point, minimum {m}; "
                f"its pool appears and {m}'s bar is born (it never ends: ∞)"
            )
        return f"level {event.level:.4g}: a new pool appears at minimum {m}; {m}'s bar is born"
    return (
        f"level {event.level:.4g}: the pool of minimum {m} merges into {names[event.into]}'s "
        f"at the saddle between them; {m}'s bar ends (length {event.length:.4g})"
    )


def event_tags(flood: Flood, level: float) -> list[str]:
    """Short names of the events at exactly ``level``: 'B born', 'C→B' (C merges into B)."""
    names = flood.names
    return [
        f"{names[e.minimum]} born" if e.kind == "birth" else f"{names[e.minimum]}→{names[e.into]}"
        for e in flood.events()
        if e.level == level
    ]


def mark_label(flood: Flood, level: float) -> str:
    """'level 0.42: C→B' for a control's option; 'level -1.5 (dry)' below every event."""
    tags = event_tags(flood, level)
    return f"level {level:.4g}" + (f": {', '.join(tags)}" if tags else " (dry)")


def mark_words(flood: Flood, level: float) -> str:
    """Everything that happens at ``level`` (one sentence per event there), then the pools;
    below the first birth, that the landscape is still dry."""
    names = flood.names
    here = [e for e in flood.events() if e.level == level]
    pools = pool_words(flood.owner_of(level), flood.alive(level), names)
    if not here:
        return f"level {level:.4g}: {pools}; the water has not reached the deepest point yet."
    said = "; ".join(event_words(e, names).split(": ", 1)[1] for e in here)
    return f"level {level:.4g}: {said}. Now {pools}."


def level_words(flood: Flood, level: float) -> str:
    """The state at ``level`` and the last event at or below it."""
    names = flood.names
    state = f"level {level:.4g}: " + pool_words(flood.owner_of(level), flood.alive(level), names)
    past = [e for e in flood.events() if e.level <= level]
    if not past:
        return state + ". The water has not reached the deepest point yet."
    return f"{state}. Last event at {event_words(past[-1], names)}."


# ---------------------------------------------------------------------------------------------
# The 1-D landscape: a polynomial whose exact barcode core.engine.separable.well_bars knows

CURVE_CRITICAL = (-2.0, -1.4, -0.8, -0.1, 0.8, 1.4, 1.8)  # minimum, maximum, ..., minimum
CURVE_BOX = (-2.25, 2.05)  # the drawn interval; its grid (step 0.005) holds every critical point


def curve_coef() -> np.ndarray:
    """Coefficients (increasing powers) of the 1-D landscape f(t) = integral of
    prod_i (t - r_i) dt over the critical points r_i of ``CURVE_CRITICAL``."""
    return np.polynomial.polynomial.polyint(np.polynomial.polynomial.polyfromroots(CURVE_CRITICAL))


def curve_flood(points: int = 861, every: int = 3) -> Flood:
    """The flood of the 1-D landscape on ``points`` evenly spaced t in ``CURVE_BOX``."""
    ts = np.linspace(*CURVE_BOX, points)
    return flood_of(ts, None, np.polynomial.polynomial.polyval(ts, curve_coef()), every=every)


# ---------------------------------------------------------------------------------------------
# Your own landscape: Gaussian wells in a bowl, the wells toy's formula with wells of your choice

OWN_BOX = 3.0  # the box is [-3, 3] x [-3, 3], as for the wells toy
MAX_WELLS = 6


def own_values(wells, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(H, W) f = 0.08 (x^2 + y^2) - sum_k d_k exp(-|p - c_k|^2 / (2 * 0.6^2)) on the grid,
    ``wells`` a sequence of (x_k, y_k, d_k)."""
    X, Y = np.meshgrid(xs, ys)  # (H, W) each
    Z = 0.08 * (X**2 + Y**2)
    for cx, cy, depth in wells:
        Z = Z - depth * np.exp(-((X - cx) ** 2 + (Y - cy) ** 2) / (2 * 0.6**2))
    return Z


def own_flood(wells, resolution: int = 201) -> Flood:
    """The flood of your own landscape (``own_values``) on a ``resolution``-point grid; its
    barcode is the exact one of that grid (``cubical_h0``).

    Raises ``ValueError`` unless there are 1 to ``MAX_WELLS`` wells, each inside the box
    with a depth between 0 and 3."""
    wells = [tuple(float(v) for v in w) for w in wells]
    if not 1 <= len(wells) <= MAX_WELLS or any(len(w) != 3 for w in wells):
        raise ValueError(f"wells must be 1 to {MAX_WELLS} triples (x, y, depth), got {wells!r}")
    for x, y, depth in wells:
        if max(abs(x), abs(y)) > OWN_BOX or not 0 <= depth <= 3:
            raise ValueError(
                f"a well must lie in [-{OWN_BOX}, {OWN_BOX}]^2 with depth in [0, 3], "
                f"got {(x, y, depth)}"
            )
    xs = ys = np.linspace(-OWN_BOX, OWN_BOX, resolution)
    return flood_of(xs, ys, own_values(wells, xs, ys))


# ---------------------------------------------------------------------------------------------
# The 2-D toys: their grid pictures and the engine next to the exact barcode


@dataclass
class ToyView:
    """Everything the teaching page draws for one toy."""

    name: str
    xs: np.ndarray  # (R,) grid x
    ys: np.ndarray  # (R,) grid y
    Z: np.ndarray  # (R, R) Z[i, j] = f(xs[j], ys[i])
    comparison: ToyComparison  # the engine's landscape, the exact barcode and their distance

    @property
    def exact(self) -> ExactBars:
        return self.comparison.exact

    @property
    def engine(self) -> Landscape:
        return self.comparison.landscape


def toy_view(name: str, *, resolution: int = 201, n_starts: int = 32) -> ToyView:
    """Grid values, exact barcode and the engine's landscape of toy ``name`` (a few seconds).

    ``resolution`` is the grid drawn and cut into sublevel components; the exact barcode
    comes from the finer grid of ``core.engine.validate.compare_engine_to_exact``.
    """
    xs, ys, Z = grid_values(get_toy(name), resolution)
    return ToyView(name, xs, ys, Z, compare_engine_to_exact(name, n_starts=n_starts))


def toy_picture(
    name: str, resolution: int = 201
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ExactBars]:
    """Grid and exact barcode of toy ``name`` on one coarse grid: a quick picture (< 1 s)."""
    toy = get_toy(name)
    xs, ys, Z = grid_values(toy, resolution)
    return xs, ys, Z, exact_barcode(toy, resolution)


def sublevel(Z: np.ndarray, level: float) -> tuple[np.ndarray, int]:
    """Component labels of ``{Z <= level}`` (-1 above the level) and how many there are."""
    labels = sublevel_components(Z, level)
    return labels, int(labels.max() + 1) if labels.size else 0


def alive_bars(births: np.ndarray, deaths: np.ndarray, level: float) -> int:
    """Bars alive at ``level`` (born at or below it, not yet dead)."""
    births, deaths = np.asarray(births), np.asarray(deaths)
    return int(np.sum((births <= level) & (level < deaths)))


def level_range(Z: np.ndarray, exact: ExactBars) -> tuple[float, float, float]:
    """(lowest, highest, start) levels for a level slider over a toy.

    The top is a little above the last merge (nothing changes higher up); the start lies
    half-way between two merges near the middle, so some pools have merged and some not.
    """
    lo, hi = float(Z.min()), float(Z.max())
    deaths = np.unique(exact.deaths[np.isfinite(exact.deaths)])  # sorted, distinct
    if not deaths.size:
        return lo, hi, 0.5 * (lo + hi)
    hi = min(hi, float(deaths[-1] + 0.25 * (deaths[-1] - lo)))
    m = (len(deaths) - 1) // 2
    below = deaths[m - 1] if m > 0 else float(np.max(exact.births[exact.births < deaths[0]]))
    return lo, hi, float(0.5 * (below + deaths[m]))
