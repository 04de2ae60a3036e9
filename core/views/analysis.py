"""Science the dashboard pages show about one network run: profiles, planes, tables.

Pure functions of a loaded ``Run``; no streamlit. Anything that needs the loss re-evaluates
it through the run's own objective (``core.runs.pipeline.objectives``), built once per run config
and cached by the config's JSON text, never by tensors.

- ``path_profile_of``: the loss along a stored path, re-evaluated densely; its maximum is the
  stored saddle (anyone can recompute it), shown beside the straight segment's profile.
- ``plane_of``: the loss on the plane through three minima, with the stored paths between
  them projected onto that plane and their distance off it.
- ``minima_table``: one row per minimum; ``minima_rows`` the same rows with the headers and
  units that the dashboard shows and its CSV carries.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from core.engine.evaluate import values_of
from core.engine.paths import SPLIT
from core.engine.saddles import path_profile
from core.nets.device import resolve_device
from core.runs.config import RunConfig
from core.runs.pipeline import objectives

if TYPE_CHECKING:
    from core.runs.record import Run

log = logging.getLogger(__name__)

__all__ = [
    "MINIMA_COLUMNS",
    "Plane",
    "Profile",
    "minima_rows",
    "minima_table",
    "path_profile_of",
    "plane_of",
    "run_objective",
]


@functools.lru_cache(maxsize=4)
def _objective_from_json(config_json: str):

    cfg = RunConfig.from_json(config_json)
    # a run computed on a GPU can still be inspected on a machine without one
    device = "cpu" if cfg.device == "cuda" and not torch.cuda.is_available() else cfg.device
    return objectives(cfg, resolve_device(device))[1]  # the objective saddles used


def run_objective(run: Run):
    """The full-data objective that a run's saddles were evaluated on (cached per config;
    on the CPU when the run asked for CUDA and there is none)."""
    return _objective_from_json(run.config.to_json())


def _on_device(obj, t: Tensor) -> Tensor:
    return t.to(getattr(obj, "device", t.device))


@dataclass
class Profile:
    """The loss along one stored path and along the straight segment between its minima.

    Attributes
    ----------
    s, values : ndarray
        (Q,) normalised arc length in [0, 1] and the loss at the path's nodes plus
        ``density - 1`` interpolated points per interval.
    straight_s, straight_values : ndarray
        (Q,) the same for the straight segment, evaluated at Q evenly spaced points.
    nodes_s : ndarray
        (N,) arc length of the path's stored nodes (every ``density``-th point).
    saddle : float
        The saddle stored with the run for this pair.
    saddle_recomputed : float
        ``values.max()``: must equal ``saddle`` (the stored saddle is this maximum).
    straight_saddle : float
        The stored straight-segment maximum.
    density : int
    pair : tuple[int, int]
        The minima (i, j) joined, i < j.
    length, straight_length : float
        Euclidean length of the path (polyline) and of the straight segment.
    via, via_s : int, float
        For a path joined at a third minimum: that minimum, and the position of the node on
        it; for a path split at a minimum that no start reached (``SPLIT``), the position of
        its lowest interior node, where its legs meet; -1 and NaN otherwise.
    """

    s: np.ndarray
    values: np.ndarray
    straight_s: np.ndarray
    straight_values: np.ndarray
    nodes_s: np.ndarray
    saddle: float
    saddle_recomputed: float
    straight_saddle: float
    density: int
    pair: tuple[int, int]
    length: float
    straight_length: float
    via: int = -1
    via_s: float = float("nan")


def _pair_index(run: Run, pair: int) -> int:
    n = len(run.paths) if run.paths else 0
    if not n:
        raise ValueError(f"run {run.run_id} has no stored paths yet")
    if isinstance(pair, bool) or not isinstance(pair, int | np.integer) or not 0 <= pair < n:
        raise ValueError(f"pair must be a path number in [0, {n}), got {pair!r}")
    return int(pair)


def path_profile_of(run: Run, pair: int, *, density: int | None = None) -> Profile:
    """The loss along stored path number ``pair`` of ``run``, re-evaluated densely.

    Parameters
    ----------
    run : Run
        A run with finished paths.
    pair : int
        Index into ``run.paths.pairs`` / ``run.paths.points``.
    density : int, optional
        Interpolated points per interval; the stored density of this pair by default, at
        which ``saddle_recomputed`` reproduces the stored saddle.
    """
    e = _pair_index(run, pair)
    dens = int(run.paths.densities[e]) if density is None else density
    if isinstance(dens, bool) or not isinstance(dens, int) or dens < 1:
        raise ValueError(f"density must be a positive integer, got {density!r}")
    obj = run_objective(run)
    path = _on_device(obj, run.paths.points[e])  # (N, P)
    s, values = path_profile(obj, path, dens)  # (Q,), (Q,)
    q = len(s)
    straight = torch.stack([path[0], path[-1]])  # (2, P)
    s_line, v_line = path_profile(obj, straight, q - 1)
    i, j = (int(x) for x in run.paths.pairs[e])
    seg = (path[1:] - path[:-1]).double().norm(dim=1)
    via = -1 if run.paths.via is None else int(run.paths.via[e])
    via_s = float("nan")
    if via >= 0:  # the node on that minimum
        at = _on_device(obj, run.minima.thetas[via])
        via_s = float(s[dens * int((path - at).norm(dim=1).argmin())])
    elif via == SPLIT:  # the legs meet at a minimum: the lowest interior node
        nodes = values[::dens]
        via_s = float(s[dens * (1 + int(np.argmin(nodes[1:-1])))])
    return Profile(
        s=s,
        values=values,
        straight_s=s_line,
        straight_values=v_line,
        nodes_s=s[::dens].copy(),
        saddle=float(run.paths.saddles[e]),
        saddle_recomputed=float(values.max()),
        straight_saddle=float(run.paths.straight[e]),
        density=dens,
        pair=(i, j),
        length=float(seg.sum()),
        straight_length=float((path[-1] - path[0]).double().norm()),
        via=via,
        via_s=via_s,
    )


@dataclass
class Plane:
    """The loss on the plane through three minima a, b, c.

    Coordinates: ``theta(u, v) = origin + u * basis[0] + v * basis[1]``, with ``origin`` =
    theta_a and ``basis`` the Gram-Schmidt orthonormalisation of (theta_b - theta_a,
    theta_c - theta_a). Grid convention as in ``core.engine.toy``: ``Z[i, j]`` = loss at
    ``(u[j], v[i])``, row = v, column = u.

    Attributes
    ----------
    u, v : ndarray
        (R,) grid coordinates.
    Z : ndarray
        (R, R) loss on the grid.
    minima : tuple[int, int, int]
        The run's indices of a, b, c.
    minima_uv : ndarray
        (3, 2) coordinates of a, b, c: (0, 0), (|b - a|, 0), (c_u, c_v > 0).
    minima_z : ndarray
        (3,) loss evaluated at ``lift(minima_uv)``: the minima's values.
    paths_uv : dict[(i, j), ndarray]
        Stored paths between two of the three minima, nodes projected onto the plane (N, 2).
    off_plane : dict[(i, j), float]
        Largest Euclidean distance of a path's points from the plane.
    origin : Tensor
        (P,) theta_a, float64.
    basis : Tensor
        (2, P) orthonormal rows, float64.
    """

    u: np.ndarray
    v: np.ndarray
    Z: np.ndarray
    minima: tuple[int, int, int]
    minima_uv: np.ndarray
    minima_z: np.ndarray
    paths_uv: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    off_plane: dict[tuple[int, int], float] = field(default_factory=dict)
    origin: Tensor | None = None
    basis: Tensor | None = None

    def lift(self, uv) -> Tensor:
        """Plane coordinates (M, 2) -> parameter vectors (M, P), float64."""
        uv = torch.as_tensor(np.asarray(uv, dtype=np.float64))
        return self.origin + uv @ self.basis


def _evaluate(obj, plane: Plane, uv: np.ndarray, dtype, chunk: int) -> np.ndarray:
    """Loss at plane coordinates uv (M, 2), lifted and evaluated ``chunk`` points at a time."""
    out = []
    for a in range(0, len(uv), chunk):
        pts = _on_device(obj, plane.lift(uv[a : a + chunk]).to(dtype))  # (c, P)
        out.append(values_of(obj, pts).cpu().double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def plane_of(
    run: Run,
    minima: tuple[int, int, int],
    *,
    resolution: int = 41,
    margin: float = 0.2,
    chunk: int = 512,
) -> Plane:
    """The loss on the plane through three minima, and the stored paths between them.

    Parameters
    ----------
    run : Run
    minima : (a, b, c)
        Three distinct minimum indices.
    resolution : int
        R, grid points per axis.
    margin : float
        Extra room around the three minima, as a fraction of the larger extent of their
        coordinates, on every side.
    chunk : int
        Grid points per objective call.
    """
    k = run.minima.thetas.shape[0]
    idx = tuple(int(i) for i in minima)
    if len(idx) != 3 or len(set(idx)) != 3 or not all(0 <= i < k for i in idx):
        raise ValueError(f"minima must be three distinct indices in [0, {k}), got {minima!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
        raise ValueError(f"resolution must be an integer >= 2, got {resolution!r}")
    if not (isinstance(margin, int | float) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    # 1. orthonormal basis of the plane (Gram-Schmidt)
    th = run.minima.thetas.detach().cpu().double()
    a, b, c = th[idx[0]], th[idx[1]], th[idx[2]]
    e1 = b - a
    n1 = float(e1.norm())
    w = (c - a) - ((c - a) @ e1) / n1**2 * e1 if n1 > 0 else c - a
    tol = 100 * torch.finfo(run.minima.thetas.dtype).eps  # rounding of the stored parameters
    if n1 == 0 or float(w.norm()) <= tol * max(n1, float((c - a).norm())):
        raise ValueError(f"minima {idx} are collinear (or equal): they span no plane")
    basis = torch.stack([e1 / n1, w / w.norm()])  # (2, P)
    rel = th[list(idx)] - a  # (3, P)
    uv = (rel @ basis.T).numpy()  # (3, 2)
    # 2. the grid, with a margin, and the loss on it in batched calls
    lo, hi = uv.min(0), uv.max(0)
    pad = margin * float((hi - lo).max())
    u = np.linspace(lo[0] - pad, hi[0] + pad, resolution)
    v = np.linspace(lo[1] - pad, hi[1] + pad, resolution)
    uu, vv = np.meshgrid(u, v)  # (R, R): uu[i, j] = u[j], vv[i, j] = v[i]
    plane = Plane(u, v, np.zeros(0), idx, uv, np.zeros(3), origin=a, basis=basis)
    obj = run_objective(run)
    grid = np.stack([uu.ravel(), vv.ravel()], 1)  # (R * R, 2)
    plane.Z = _evaluate(obj, plane, grid, run.minima.thetas.dtype, chunk).reshape(
        resolution, resolution
    )
    plane.minima_z = _evaluate(obj, plane, uv, run.minima.thetas.dtype, chunk)
    # 3. stored paths between two of the three minima: coordinates and distance off the plane
    for e, (i, j) in enumerate(run.paths.pairs if run.paths else []):
        if int(i) in idx and int(j) in idx:
            pts = run.paths.points[e].detach().cpu().double() - a  # (N, P)
            coords = pts @ basis.T  # (N, 2)
            off = (pts - coords @ basis).norm(dim=1)  # (N,)
            plane.paths_uv[(int(i), int(j))] = coords.numpy()
            plane.off_plane[(int(i), int(j))] = float(off.max())
    return plane


def minima_table(run: Run) -> list[dict[str, Any]]:
    """One row per minimum, in index order, for tables and CSV.

    Keys: index, value (the landscape: train cross-entropy + L2), train_loss, test_loss,
    train_error, test_error, gap_loss, gap_error (test minus train), status, grad_norm,
    segment (death - birth; ``inf`` for the essential bar, ``nan`` before the barcode
    exists), merges_into (None for the essential bar), saddle (the death), via (the pair
    "i-j" whose saddle killed the bar; "" for the essential bar).
    """
    m, metrics = run.minima, run.metrics
    k = len(m)
    bars = run.barcode
    bar_of = {int(v): n for n, v in enumerate(bars.minimum)} if bars is not None else {}
    rows = []
    for i in range(k):
        row: dict[str, Any] = {"index": i}
        row["value"] = float(m.values[i])
        row.update({c: float(v[i]) for c, v in metrics.to_dict().items()})
        row["status"] = m.status[i]
        row["grad_norm"] = float(m.grad_norms[i])
        if i in bar_of:
            n = bar_of[i]
            death = float(bars.deaths[n])
            into = int(bars.merges_into[n])
            edge = bars.saddle_edge[n]
            row["segment"] = death - float(bars.births[n])
            row["merges_into"] = into if into >= 0 else None
            row["saddle"] = death
            row["via"] = f"{edge[0]}-{edge[1]}" if edge[0] >= 0 else ""
        else:
            row.update(segment=math.nan, merges_into=None, saddle=math.nan, via="")
        rows.append(row)
    return rows


# minima_table key -> (the header a reader sees, with its unit; the factor into that unit)
MINIMA_COLUMNS = {
    "index": ("minimum", None),
    "value": ("loss: train CE + L2 (nats)", None),
    "train_loss": ("train loss: CE (nats)", None),
    "test_loss": ("test loss: CE (nats)", None),
    "train_error": ("train error (%)", 100.0),
    "test_error": ("test error (%)", 100.0),
    "gap_loss": ("gap: test \u2212 train loss (nats)", None),
    "gap_error": ("gap: test \u2212 train error (percentage points)", 100.0),
    "status": ("status", None),
    "grad_norm": ("gradient norm (nats per parameter unit)", None),
    "segment": ("segment length: death \u2212 birth (nats; inf = never dies)", None),
    "merges_into": ("merges into minimum", None),
    "saddle": ("death: saddle loss (nats)", None),
    "via": ("through the path between minima", None),
}
STATUS_NAMES = {
    "minimum": "minimum",
    "max_steps": "stopping point (step cap)",
    "stalled": "stopping point (stalled)",
}


def minima_rows(run: Run) -> list[dict[str, Any]]:
    """``minima_table`` as a reader sees it (the page's table and its CSV): every header
    names its unit (``MINIMA_COLUMNS``), errors are in percent, and a status other than
    'minimum' says that the minimum is a stopping point."""
    out = []
    for row in minima_table(run):
        new = {}
        for key, v in row.items():
            name, factor = MINIMA_COLUMNS[key]
            if key == "status":
                v = STATUS_NAMES.get(v, v)
            new[name] = v * factor if factor is not None and v is not None else v
        out.append(new)
    return out
