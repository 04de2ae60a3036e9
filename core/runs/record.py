"""The typed run record: what a network run computed, as the engine's own objects.

``Run`` holds the engine's ``Minima``, ``Paths`` and ``Barcode`` (each with ``to_dict`` /
``from_dict``), the per-minimum ``Metrics`` that only a network has (train and test loss and
error), the ``Summary`` of a finished run, and the seconds each stage took.
``core.runs.store`` writes and reads them (``write_stage``, ``read_run``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from core.engine.barcode import Barcode, barcode_from_graph, graph_matrix
from core.engine.landscape import rounding_tol
from core.engine.minima import Minima
from core.engine.paths import Paths
from core.runs.config import RunConfig


@dataclass
class Metrics:
    """(K,) per-minimum numbers on the data: losses are cross-entropy without the L2 term,
    errors are fractions of examples misclassified; gaps are test minus train."""

    train_loss: np.ndarray
    test_loss: np.ndarray
    train_error: np.ndarray
    test_error: np.ndarray

    @property
    def gap_loss(self) -> np.ndarray:
        return self.test_loss - self.train_loss

    @property
    def gap_error(self) -> np.ndarray:
        return self.test_error - self.train_error

    def gap(self, kind: str) -> np.ndarray:
        """The generalisation gap in ``kind``: "loss" or "error"."""
        if kind not in ("loss", "error"):
            raise ValueError(f"gap kind must be 'loss' or 'error', got {kind!r}")
        return self.gap_loss if kind == "loss" else self.gap_error

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name).tolist() for f in dataclasses.fields(self)}
        return d | {"gap_loss": self.gap_loss.tolist(), "gap_error": self.gap_error.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Metrics:
        return cls(
            **{f.name: np.asarray(d[f.name], dtype=np.float64) for f in dataclasses.fields(cls)}
        )


@dataclass
class Summary:
    """A finished run in numbers: its TO-scores and counts (what run lists and sweeps show)."""

    to_score_sum: float
    to_score_max: float
    n_minima: int
    n_true_minima: int  # minima with gradient below train.grad_tol; the rest are stopping points
    n_failed: int  # starts left out (non-finite loss or gradient)
    n_pairs_total: int
    n_paths: int
    n_paths_converged: int
    n_paths_no_barrier: int
    n_paths_step_cap: int
    n_saddles_certified: int
    n_paths_final: int  # paths with final saddles (with pairs="mst", the barcode's tree)
    seconds_minima: float
    seconds_paths: float
    finished: float  # seconds since the epoch
    aligned_to_score_sum: float | None = None  # the aligned barcode's (paths.align)
    aligned_to_score_max: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Summary:
        """Inverse of ``to_dict``; ValueError naming a missing or unknown key."""
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(d, dict):
            raise ValueError(f"summary must be a JSON object, got {type(d).__name__}")
        for key in d:
            if key not in names:
                raise ValueError(f"unknown key {key!r} in the summary")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [n for n in required if n not in d]
        if missing:
            raise ValueError(f"missing key {missing[0]!r} in the summary")
        return cls(**d)

    @classmethod
    def of(cls, minima: Minima, paths: Paths, barcode: Barcode, final_density: int, seconds):
        k = len(minima)
        return cls(
            to_score_sum=barcode.to_score("sum"),
            to_score_max=barcode.to_score("max"),
            n_minima=k,
            n_true_minima=int(minima.converged.sum()),
            n_failed=len(minima.failed),
            n_pairs_total=k * (k - 1) // 2,
            n_paths=len(paths),
            n_paths_converged=int(np.sum(paths.status == "converged")),
            n_paths_no_barrier=int(np.sum(paths.status == "no barrier")),
            n_paths_step_cap=int(np.sum(paths.status == "step cap")),
            n_saddles_certified=int(np.sum(paths.certified)),
            n_paths_final=int(np.sum(paths.densities >= final_density)),
            seconds_minima=float(seconds["minima"]),
            seconds_paths=float(seconds["paths"]),
            finished=time.time(),
        )


@dataclass
class Aligned:
    """The run's minima with their hidden units permuted onto the lowest minimum's (weight
    matching, ``core.nets.align``; each the same function as its raw minimum), the paths
    computed between them, and the barcode modulo the symmetry: read off, per pair, the lower
    of its raw and its aligned path (``lower_routes``). The raw minima, paths and barcode are
    kept as they were."""

    thetas: Tensor  # (K, P), row k the aligned minimum k (row 0, the reference, unchanged)
    values: np.ndarray  # (K,) the objective at the aligned minima (equal up to rounding)
    paths: Paths
    barcode: Barcode
    seconds: float

    def to_dict(self) -> dict:
        return {
            "values": self.values.tolist(),
            "paths": self.paths.to_dict(),
            "barcode": self.barcode.to_dict(),
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict, thetas: Tensor, points: list[Tensor]) -> Aligned:
        return cls(
            thetas,
            np.asarray(d["values"], dtype=np.float64),
            Paths.from_dict(d["paths"], points),
            Barcode.from_dict(d["barcode"]),
            float(d["seconds"]),
        )


def lower_routes(*sets: Paths) -> tuple[np.ndarray, np.ndarray, list]:
    """Per pair of minima, the lowest of its paths in ``sets`` (the raw paths, then the
    aligned ones; or several searches of the same minima). The raw and the aligned path join
    copies of the same two functions (the hidden units relabelled, which leaves the loss
    unchanged), so a route between one pair of copies carries over to every other pair, and
    the lower saddle bounds the barrier between the two functions from above. Returns pairs
    (E, 2) with i < j, sorted; their saddles (E,); per pair, the ``(paths, row)`` whose saddle
    it is (the earlier set on a tie)."""
    best: dict[tuple[int, int], tuple[Paths, int]] = {}
    for paths in sets:
        for r, (i, j) in enumerate(paths.pairs):
            key = (min(int(i), int(j)), max(int(i), int(j)))
            held = best.get(key)
            if held is None or paths.saddles[r] < held[0].saddles[held[1]]:
                best[key] = (paths, r)
    keys = sorted(best)
    pairs = np.array(keys, dtype=np.int64).reshape(-1, 2)
    saddles = np.array([p.saddles[r] for p, r in (best[k] for k in keys)], dtype=np.float64)
    return pairs, saddles, [best[k] for k in keys]


def modulo_barcode(
    raw: Paths, aligned: Paths, values: np.ndarray, dtype: torch.dtype = torch.float32
) -> Barcode:
    """The barcode modulo the symmetry: of the minima's ``values`` (K,) through each pair's
    lower route (``lower_routes``), within the rounding of ``dtype`` evaluations."""
    return lowest_barcode([raw, aligned], values, dtype)


def lowest_barcode(
    sets: list[Paths], values: np.ndarray, dtype: torch.dtype = torch.float32
) -> Barcode:
    """The barcode of the minima's ``values`` (K,) through each pair's lowest path in
    ``sets`` (``lower_routes``), within the rounding of ``dtype`` evaluations."""
    pairs, saddles, _ = lower_routes(*sets)
    return barcode_from_graph(
        values, graph_matrix(values, pairs, saddles), tol=rounding_tol(values, dtype)
    )


@dataclass
class Run:
    """A finished (or partly finished) network run."""

    run_id: str
    config: RunConfig
    minima: Minima
    metrics: Metrics
    paths: Paths | None = None  # None until the paths stage is finished
    barcode: Barcode | None = None  # None until the run is finished
    summary: Summary | None = None
    aligned: Aligned | None = None  # with paths.align: the aligned landscape, beside the raw
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def stage(self) -> str:
        """The last finished stage: "minima", "paths" or "results"."""
        return "results" if self.barcode else "paths" if self.paths is not None else "minima"
