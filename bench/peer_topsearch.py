"""TopSearch (IBM, PyPI ``topsearch`` 0.0.3) on the engine's test landscapes: a peer baseline.

Run it with the PEER virtual environment (TopSearch pins numpy < 2 and pulls in rdkit and ase,
so it stays out of the project's requirements)::

    python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install topsearch==0.0.3
    /work/peer-venv/bin/python bench/peer_topsearch.py --out peer.json [--starts starts.json]

``bench/peer.py`` (project venv) runs this script and the engine on the same landscapes and
prints both. TopSearch's standard workflow, as in its examples: local minima from the starts
(``NetworkSampling.get_minima``, which is basin-hopping; ``--bh-steps 0`` = one L-BFGS descent
per start, like the engine), then transition states between each minimum and its 8 nearest
(``ClosestEnumeration``: a nudged elastic band whose maxima are refined by hybrid
eigenvector-following, each saddle's two minima found by descent from it), then
``ConnectUnconnected`` rounds until the network is connected. The H0 barcode follows from the
network of minima and transition states by the elder rule.

Every call of the landscape is counted: a value alone is one value evaluation, a gradient
(with or without its value) one gradient evaluation, both at a single point.

Only numpy and scipy are imported here at module level, so the project's venv can import the
landscapes, exact barcodes and bar matching from this file; topsearch is imported in
``run_topsearch``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from pathlib import Path

import numpy as np
from scipy import optimize

INF = float("inf")
WELLS_DIM, WELLS_TILT = 12, (0.2, 0.3, 0.25)  # 3 tilted double wells + 9 quadratic directions
MB = np.array(
    [  # Müller-Brown A, a, b, c, x0, y0 (rows) of its 4 terms, as in core/engine/toy.py
        [-200.0, -100.0, -170.0, 15.0],
        [-1.0, -1.0, -6.5, 0.7],
        [0.0, 0.0, 11.0, 0.6],
        [-10.0, -10.0, -6.5, 0.7],
        [1.0, 0.0, -0.5, -1.0],
        [0.0, 0.5, 1.5, 1.0],
    ]
)
# Exact bars of the 2-D toys on the project's 801 x 801 grid, printed in the project venv by
#   .venv/bin/python -c "from core.engine.toy import TOYS, exact_barcode as e; b = e(TOYS['camel']);
#   print(b.value_range, b.minima, b.saddles, b.births, b.deaths)"   (likewise for each toy)
# Per toy: value range over the box, then per bar: minimum (x, y), saddle (x, y) or None for
# the essential bar, grid birth, grid death. ``exact_bars`` refines every point to the true
# critical point (scipy.optimize.root on the analytic gradient, float64).
GRID = {
    "camel": (
        9.699347,
        [
            ((-0.09, 0.714), None, -1.031614, INF),
            ((0.09, -0.714), (0.0, 0.0), -1.031614, 0.0),
            ((1.705, -0.795), (1.11, -0.768), -0.215431, 0.543717),
            ((-1.705, 0.795), (-1.11, 0.768), -0.215431, 0.543717),
            ((-1.605, -0.57), (-1.64, -0.228), 2.104276, 2.229378),
            ((1.605, 0.57), (1.64, 0.228), 2.104276, 2.229378),
        ],
    ),
    "himmelblau": (
        8.9439,
        [
            ((-3.7875, -3.2875), None, -0.0189, INF),
            ((-2.8125, 3.1375), (-3.075, -0.075), -0.01403, 1.024772),
            ((2.9875, 2.0125), (0.1, 2.8875), 0.014991, 0.677674),
            ((3.575, -1.85), (3.3875, 0.0625), 0.017923, 0.150048),
        ],
    ),
    "muller_brown": (
        10.700032,
        [
            ((-0.558, 1.44075), None, -1.46698, INF),
            ((0.624, 0.02725), (-0.822, 0.62125), -1.081658, -0.40665),
            ((-0.051, 0.46725), (0.21, 0.294), -0.807676, -0.722499),
        ],
    ),
    "rastrigin": (
        3.633057,
        [
            ((0.0, 0.0), None, 0.0, INF),
            ((0.9715, 0.0), (0.51475, 0.0), 0.291139, 1.077345),
            ((-0.9715, 0.0), (-0.51475, 0.0), 0.291139, 1.077345),
            ((0.0, 0.94975), (0.0, 0.525625), 0.475728, 1.131674),
            ((0.0, -0.94975), (0.0, -0.525625), 0.475728, 1.131674),
            ((-0.9715, 0.94975), (-0.9715, 0.525625), 0.766866, 1.422813),
            ((0.9715, 0.94975), (0.9715, 0.525625), 0.766866, 1.422813),
            ((-0.9715, -0.94975), (-0.9715, -0.525625), 0.766866, 1.422813),
            ((0.9715, -0.94975), (0.9715, -0.525625), 0.766866, 1.422813),
        ],
    ),
}


@dataclass(frozen=True)
class Landscape:
    """A smooth function of one point (P,) with its analytic gradient and a box."""

    name: str
    fn: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    bounds: list[tuple[float, float]]  # TopSearch's box; starts are drawn inside it
    scale: float  # typical distance between neighbouring minima: sets TopSearch's steps


def _camel(p):
    x, y = p
    return (4 - 2.1 * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2


def _camel_grad(p):
    x, y = p
    return np.array([8 * x - 8.4 * x**3 + 2 * x**5 + y, x - 8 * y + 16 * y**3])


def _himmelblau(p):
    x, y = p
    return ((x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2 + 0.5 * x) / 100


def _himmelblau_grad(p):
    x, y = p
    a, b = x**2 + y - 11, x + y**2 - 7
    return np.array([4 * x * a + 2 * b + 0.5, 2 * a + 4 * y * b]) / 100


def _mb_terms(p):
    dx, dy = p[0] - MB[4], p[1] - MB[5]  # (4,) each
    return MB[0] * np.exp(MB[1] * dx**2 + MB[2] * dx * dy + MB[3] * dy**2), dx, dy


def _muller_brown(p):
    return float(_mb_terms(p)[0].sum()) / 100


def _muller_brown_grad(p):
    e, dx, dy = _mb_terms(p)
    return np.array([e @ (2 * MB[1] * dx + MB[2] * dy), e @ (MB[2] * dx + 2 * MB[3] * dy)]) / 100


def _rastrigin(p):
    x, y = p
    return 0.3 * x**2 + 0.5 * y**2 + 0.5 * (2 - np.cos(2 * np.pi * x) - np.cos(2 * np.pi * y))


def _rastrigin_grad(p):
    x, y = p
    s = np.pi * np.sin(2 * np.pi * np.asarray(p))
    return np.array([0.6 * x + s[0], y + s[1]])


@cache
def wells_spec() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q (12, 12) orthogonal, tilts c (3,), curvatures a (9,)) of the rotated double wells.

    ``f(z) = sum_{i<3} (u_i^2 - 1)^2 + c_i u_i + sum_{i>=3} a_i u_i^2`` with ``u = Q z``.
    """
    q, r = np.linalg.qr(np.random.default_rng(0).standard_normal((WELLS_DIM, WELLS_DIM)))
    q = q * np.sign(np.diag(r))  # the unique QR with a positive diagonal of R
    return q, np.array(WELLS_TILT), np.linspace(0.5, 5.0, WELLS_DIM - 3)


def _wells(z):
    q, c, a = wells_spec()
    u = q @ z
    return float(np.sum((u[:3] ** 2 - 1) ** 2 + c * u[:3]) + np.sum(a * u[3:] ** 2))


def _wells_grad(z):
    q, c, a = wells_spec()
    u = q @ z
    return q.T @ np.concatenate([4 * u[:3] * (u[:3] ** 2 - 1) + c, 2 * a * u[3:]])


# boxes as core.engine.toy.TOYS[name].box; scale: the typical distance between neighbouring minima
LANDSCAPES = {
    name: Landscape(name, fn, grad, [(x0, x1), (y0, y1)], scale)
    for name, fn, grad, (x0, x1, y0, y1), scale in (
        ("camel", _camel, _camel_grad, (-2.0, 2.0, -1.2, 1.2), 1.0),
        ("himmelblau", _himmelblau, _himmelblau_grad, (-5.0, 5.0, -5.0, 5.0), 3.0),
        ("muller_brown", _muller_brown, _muller_brown_grad, (-1.5, 0.9, -0.3, 1.9), 0.5),
        ("rastrigin", _rastrigin, _rastrigin_grad, (-1.45, 1.45, -1.45, 1.45), 1.0),
    )
}
LANDSCAPES["wells12"] = Landscape("wells12", _wells, _wells_grad, [(-3.0, 3.0)] * WELLS_DIM, 1.5)
WELLS_START_BOX = 2.0  # 12-D starts are uniform in [-2, 2]^12 (the minima have |z_j| < 1.2)


def default_starts(name: str, n: int, seed: int = 0) -> np.ndarray:
    """(n, P) starts uniform in the landscape's box ([-2, 2]^12 for wells12)."""
    lo, hi = np.array(LANDSCAPES[name].bounds).T
    if name == "wells12":
        lo, hi = np.clip(lo, -WELLS_START_BOX, None), np.clip(hi, None, WELLS_START_BOX)
    return np.random.default_rng(seed).uniform(lo, hi, size=(n, len(lo)))


# --- exact barcodes ----------------------------------------------------------------------------


def _critical_value(land: Landscape, x0, index: int) -> float:
    """Value at the critical point of Hessian index ``index`` next to ``x0`` (Newton, float64)."""
    sol = optimize.root(land.grad, np.asarray(x0, float), tol=1e-13)
    h = np.array([(land.grad(sol.x + e) - land.grad(sol.x - e)) / 2e-6 for e in 1e-6 * np.eye(2)])
    n_neg = int(np.sum(np.linalg.eigvalsh((h + h.T) / 2) < 0))
    far = np.linalg.norm(sol.x - x0) > 0.02 * land.scale
    if np.abs(land.grad(sol.x)).max() > 1e-10 or n_neg != index or far:
        raise RuntimeError(f"{land.name}: no critical point of index {index} next to {x0}")
    return float(land.fn(sol.x))


def _kunneth(bars1: list, bars2: list) -> list:
    """H0 bars of f1(x) + f2(y) from those of f1 and f2: [b1+b2, min(b1+d2, b2+d1))."""
    return [(b1 + b2, min(b1 + d2, b2 + d1)) for b1, d1 in bars1 for b2, d2 in bars2]


@cache
def exact_bars(name: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(births, deaths, value range) of the exact H0 barcode, sorted by birth.

    2-D toys: the project's grid bars with each minimum and saddle refined to the true critical
    point. wells12: the 1-D bars of each rotated coordinate combined by the Kunneth formula;
    its value range is the span of the barcode (max finite death - global minimum).
    """
    land = LANDSCAPES[name]
    if name == "wells12":
        _, tilts, _ = wells_spec()
        bars = [(0.0, INF)]
        for c in tilts:  # (u^2 - 1)^2 + c u: minima at the outer roots, maximum at the middle
            g = np.polynomial.Polynomial([1.0, c, -2.0, 0.0, 1.0])
            r = np.sort(np.real(np.roots([4.0, 0.0, -4.0, c])))
            lo, hi = sorted(g(r[[0, 2]]))
            bars = _kunneth(bars, [(lo, INF), (hi, g(r[1]))])
        b, d = np.array(bars).T
        order = np.argsort(b, kind="stable")
        return b[order], d[order], float(d[np.isfinite(d)].max() - b.min())
    vrange, grid = GRID[name]
    births = np.array([_critical_value(land, m, 0) for m, _, _, _ in grid])
    deaths = np.array([INF if s is None else _critical_value(land, s, 1) for _, s, _, _ in grid])
    gb, gd = np.array([g[2:] for g in grid]).T
    fin = np.isfinite(gd)
    if max(np.abs(births - gb).max(), np.abs(deaths[fin] - gd[fin]).max()) > 1e-3 * vrange:
        raise RuntimeError(f"{name}: refined bars moved too far from the grid bars")
    return births, deaths, vrange


def elder_barcode(values, edges) -> tuple[np.ndarray, np.ndarray]:
    """H0 barcode of a graph of minima (``values`` (K,)) and saddles ``edges`` [(i, j, h)].

    Kruskal's minimum spanning tree with the elder rule: when a saddle joins two components
    the one with the higher minimum dies there. Components never joined keep an infinite bar.

    Returns
    -------
    births, deaths : np.ndarray
        (K,) one bar per minimum, sorted by birth; ``inf`` for unjoined components.
    """
    values = np.asarray(values, float)
    parent, deaths = list(range(len(values))), np.full(len(values), INF)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, h in sorted(edges, key=lambda e: e[2]):
        ri, rj = root(i), root(j)
        if ri != rj:
            old, young = sorted((ri, rj), key=lambda k: (values[k], k))
            deaths[young], parent[young] = max(h, values[young]), old
    order = np.argsort(values, kind="stable")
    return values[order], deaths[order]


def bar_errors(births, deaths, exact_b, exact_d, value_range: float, tol: float = 1e-3) -> dict:
    """Match bars to the exact ones by birth and measure the deaths.

    Bars are paired by an optimal assignment on |birth difference|; pairs further apart than
    ``tol * value_range`` are not matched. ``death_error`` is the largest |death difference|
    over matched pairs with both deaths finite (``nan`` if there is none); ``broken`` counts
    matched pairs where only one death is finite (a saddle missed or invented); ``missing`` and
    ``spurious`` count unmatched exact and found bars.

    Parameters
    ----------
    births, deaths : array_like
        (K,) the bars found; ``inf`` deaths for essential bars.
    exact_b, exact_d : array_like
        (K',) the exact bars.
    value_range : float
        Scale of the landscape; errors are also given as a fraction of it.
    """
    b, d, eb, ed = (np.asarray(v, float) for v in (births, deaths, exact_b, exact_d))
    cost = np.abs(b[:, None] - eb[None, :])  # (found, exact)
    rows, cols = optimize.linear_sum_assignment(cost)
    ok = cost[rows, cols] <= tol * value_range
    rows, cols = rows[ok], cols[ok]
    both = np.isfinite(d[rows]) & np.isfinite(ed[cols])
    err = np.abs(d[rows][both] - ed[cols][both])
    max_err = float(err.max()) if err.size else float("nan")
    return {
        "death_error": max_err,
        "death_error_rel": max_err / value_range,
        "birth_error": float(cost[rows, cols].max()) if rows.size else float("nan"),
        "broken": int(np.sum(np.isfinite(d[rows]) != np.isfinite(ed[cols]))),
        "missing": int(len(eb) - len(cols)),
        "spurious": int(len(b) - len(rows)),
    }


# --- TopSearch ---------------------------------------------------------------------------------


def topsearch_settings(land: Landscape) -> dict:
    """TopSearch's parameters for one landscape: its examples' values, lengths scaled to it."""
    s = land.scale
    return {
        # same minimum: within 1% of the box range per coordinate and 1e-3 in value
        "similarity": {"distance_criterion": 0.01, "energy_criterion": 1e-3},
        "minima": {"conv_crit": 1e-6},  # L-BFGS max |projected gradient|, as engine grad_tol
        "basin_hopping": {"temperature": 0.5, "max_displacement": 0.5},  # only if bh_steps > 0
        "hef": {
            "ts_conv_crit": 1e-5,  # max |gradient| at a transition state
            "ts_steps": 100,
            "pushoff": 0.05 * s,
            "steepest_descent_conv_crit": 1e-6,
            "max_uphill_step_size": 0.2 * s,
            "positive_eigenvalue_step": 0.1 * s,
            "eigenvalue_conv_crit": 1e-5,
        },
        "neb": {"force_constant": 10.0, "image_density": 10.0 / s, "max_images": 50},
        "neb_conv_crit": 1e-2,
        "pairs": {"closest": 8, "connect_unconnected": 8, "rounds": 3},
    }


def run_topsearch(land: Landscape, starts: np.ndarray, bh_steps: int, seed: int) -> dict:
    """TopSearch's workflow on ``land`` from ``starts``; counts, timing and barcode.

    Parameters
    ----------
    land : Landscape
    starts : np.ndarray
        (S, P) start points of the local minimisations.
    bh_steps : int
        Basin-hopping steps from each start after its descent (0: the descent only).
    seed : int
        Seed of the Generator behind TopSearch's random draws.

    Returns
    -------
    dict
        Evaluation counts, seconds, minima and transition states found, the barcode
        (``None`` for an infinite death) and the settings used.
    """
    import networkx as nx
    from threadpoolctl import threadpool_limits
    from topsearch.analysis.minima_properties import get_invalid_minima
    from topsearch.data.coordinates import StandardCoordinates
    from topsearch.data.kinetic_transition_network import KineticTransitionNetwork as KTN
    from topsearch.global_optimisation.basin_hopping import BasinHopping
    from topsearch.global_optimisation.perturbations import StandardPerturbation
    from topsearch.potentials.potential import Potential
    from topsearch.sampling.exploration import NetworkSampling
    from topsearch.similarity.similarity import StandardSimilarity
    from topsearch.transition_states import hybrid_eigenvector_following as hef_module
    from topsearch.transition_states.nudged_elastic_band import NudgedElasticBand

    class Counted(Potential):
        """The landscape, counting calls; TopSearch's numerical Hessian goes via gradient."""

        values = grads = 0

        def function(self, position):
            self.values += 1
            return float(land.fn(position))

        def gradient(self, position):
            self.grads += 1
            return land.grad(position)

        def function_gradient(self, position):
            self.grads += 1
            return float(land.fn(position)), land.grad(position)

    cfg, rng, pot = topsearch_settings(land), np.random.default_rng(seed), Counted()
    coords = StandardCoordinates(ndim=starts.shape[1], bounds=land.bounds)
    similarity = StandardSimilarity(**cfg["similarity"], proportional_distance=True)
    bh_cfg = cfg["basin_hopping"]
    steps = StandardPerturbation(bh_cfg["max_displacement"], proportional_distance=True)
    hef = hef_module.HybridEigenvectorFollowing(potential=pot, **cfg["hef"])
    neb = NudgedElasticBand(potential=pot, neb_conv_crit=cfg["neb_conv_crit"], **cfg["neb"])
    # TopSearch draws from numpy's global random state; give its three draws a Generator
    steps.perturb = lambda c: _perturb(c, steps.set_step_sizes(c), rng)
    hef.generate_random_vector = lambda n: (v := rng.random(n) - 0.5) / np.linalg.norm(v)
    pairs, cwd = cfg["pairs"], os.getcwd()
    # one BLAS thread: scipy's L-BFGS-B calls BLAS on (P,) vectors, and threads waiting on a
    # busy 2-core machine made it up to 35x slower; TopSearch is serial, one point at a time
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
        os.chdir(tmp)  # TopSearch writes a 'logfile' into the working directory
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            ktn = KTN()
            bh = BasinHopping(ktn=ktn, potential=pot, similarity=similarity, step_taking=steps)
            bh.metropolis = lambda e1, e2, t: e2 < e1 or np.exp((e1 - e2) / t) > rng.random()
            explorer = NetworkSampling(ktn, coords, bh, hef, neb, similarity)
            for start in starts:  # basin-hopping from each start (0 steps: one descent)
                coords.position = np.array(start, float)
                explorer.get_minima(
                    coords, bh_steps, cfg["minima"]["conv_crit"], bh_cfg["temperature"], False
                )
            ktn.remove_minima(get_invalid_minima(ktn, pot, coords))  # Hessian check, once
            minima_evals = pot.values + pot.grads
            for _ in range(pairs["rounds"]):  # again while TS searches turn up new minima
                n_before = ktn.n_minima
                explorer.get_transition_states("ClosestEnumeration", pairs["closest"], True)
                if ktn.n_minima == n_before:
                    break
            for _ in range(pairs["rounds"]):  # then join what is still apart
                if ktn.n_minima < 2 or nx.is_connected(ktn.G):
                    break
                explorer.get_transition_states(
                    "ConnectUnconnected", pairs["connect_unconnected"], True
                )
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            log = open("logfile").read()
        finally:
            os.chdir(cwd)
    values = [ktn.get_minimum_energy(i) for i in range(ktn.n_minima)]
    births, deaths = elder_barcode(values, [(*e, ktn.get_ts_energy(*e)) for e in ktn.G.edges()])
    return {
        "value_evals": pot.values,
        "grad_evals": pot.grads,
        "evaluations": pot.values + pot.grads,
        "minima_evals": minima_evals,  # of which in the descents from the starts
        "seconds": seconds,
        "cpu_seconds": cpu,
        "n_minima": ktn.n_minima,
        "n_ts": ktn.n_ts,
        "connection_attempts": log.count("Connection attempt between"),
        "ts_failures": log.count("TS search did not converge"),
        "births": births.tolist(),
        "deaths": [None if np.isinf(d) else d for d in deaths.tolist()],
        "settings": cfg,
    }


def _perturb(coords, step_sizes: np.ndarray, rng: np.random.Generator) -> None:
    """``StandardPerturbation.perturb`` with a numpy Generator instead of the global state."""
    coords.position = coords.position + (rng.random(coords.ndim) - 0.5) * step_sizes
    coords.move_to_bounds()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--starts", help="JSON {landscape: [[...], ...]}; else --n-starts uniform")
    ap.add_argument("--n-starts", type=int, default=32)
    ap.add_argument("--bh-steps", type=int, default=0, help="basin-hopping steps per start")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=sorted(LANDSCAPES), help="landscapes to run")
    args = ap.parse_args()
    given = json.loads(Path(args.starts).read_text()) if args.starts else {}
    out = {"topsearch": version("topsearch"), "bh_steps": args.bh_steps, "landscapes": {}}
    for name in args.only or LANDSCAPES:
        starts = np.array(given.get(name) or default_starts(name, args.n_starts, args.seed))
        res = run_topsearch(LANDSCAPES[name], starts, args.bh_steps, args.seed)
        eb, ed, vrange = exact_bars(name)
        deaths = [INF if d is None else d for d in res["deaths"]]
        res["error"] = bar_errors(res["births"], deaths, eb, ed, vrange)
        res["exact"] = {"births": eb.tolist(), "value_range": vrange}
        res["exact"]["deaths"] = [None if np.isinf(d) else d for d in ed.tolist()]
        res["n_starts"] = len(starts)
        out["landscapes"][name] = res
        e = res["error"]
        print(
            f"{name:13} {res['evaluations']:8d} evals ({res['grad_evals']} grad) "
            f"{res['seconds']:6.2f} s  {res['n_minima']} minima {res['n_ts']} TS  "
            f"death error {e['death_error']:.1e} ({e['death_error_rel']:.1e} of range), "
            f"broken {e['broken']} missing {e['missing']} spurious {e['spurious']}",
            flush=True,
        )
    with open(args.out, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
