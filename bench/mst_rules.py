"""How many paths a pair-selection rule needs to give the all-pairs barcode.

    .venv/bin/python bench/mst_rules.py [--quick]

For K = 8, 16, 32 minima and seeds 0 and 1 (MLP width 8 depth 1 on all of digits, 600 train
steps, 300 path steps, as ``bench/scaling.py`` without ``--n-train``) it computes every pair
once (the reference: the all-pairs barcode; ``pairs="all"`` joins a pair through the lowest
minimum, with no path steps, where that route has no barrier) and screens every pair
(``core.engine.pairs.screened_saddles``), then replays rules on those numbers: a rule chooses
which pairs to optimise, round by round, and each pair it opens gets its saddle from the
all-pairs run. ``"mst"`` is the engine's own ``core.engine.pairs.mst_rounds``; chain growth is
batch-wide, so a pair optimised in a smaller batch can end slightly differently, and the
replay is checked against a real ``pairs="mst"`` run in the same script.
``"mst, 12-point screen"`` is the engine rule on the screen the engine had before (twice the
points, 2.5x its gradient work): today vs the last version, on the same saddles.

Reports, per rule: paths optimised, rounds, the largest difference of a death from the
all-pairs barcode (also as a fraction of the spread of the optimised saddles and of the
toy-landscape tolerance, 0.5% of the straight segments' range), and the TO-score sum.
Writes the ``bench/mst_rules.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_block  # noqa: E402
from core.engine.barcode import barcode_from_graph, graph_matrix  # noqa: E402
from core.engine.pairs import mst_rounds, screened_saddles, spanning_tree_edges  # noqa: E402
from core.engine.validate import SIGNIFICANT  # noqa: E402
from core.runs.config import RunConfig  # noqa: E402
from core.runs.pipeline import _stepper, objectives, run  # noqa: E402
from core.runs.store import RunStore  # noqa: E402


def config(k: int, pairs: str, train_steps: int, path_steps: int, seed: int = 0) -> RunConfig:
    return RunConfig.from_dict(
        {
            "model": {"arch": "mlp", "width": 8, "depth": 1},
            "seed": seed,
            "train": {"minima": k, "steps": train_steps},
            "paths": {"pairs": pairs, "steps": path_steps},
        }
    )


def tree_only(guess, values, optimise) -> np.ndarray:
    """Optimise the minimum spanning tree of the best-known saddles until all its edges are
    optimised; no other pair (the rule the engine had before the margin test)."""
    k = len(values)
    known = np.full((k, k), np.inf)
    np.fill_diagonal(known, values)
    while True:
        tree = spanning_tree_edges(np.where(np.isfinite(known), known, guess))
        tree = tree[~np.isfinite(known[tree[:, 0], tree[:, 1]])]
        if not len(tree):
            return known
        known[tree[:, 0], tree[:, 1]] = known[tree[:, 1], tree[:, 0]] = optimise(tree)


def finite_deaths(bars) -> np.ndarray:
    d = np.sort(np.asarray(bars.deaths, dtype=float))
    return d[np.isfinite(d)]


def replay(rule, guess, values, saddles) -> tuple[np.ndarray, list[int]]:
    rounds = []

    def optimise(batch):
        rounds.append(len(batch))
        return saddles[batch[:, 0], batch[:, 1]]

    return rule(guess, values, optimise), rounds


def measure(k: int, seed: int, train_steps: int, path_steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(k, "all", train_steps, path_steps, seed)
        t0 = time.perf_counter()
        full = run(cfg, store=RunStore(tmp))
        seconds_all = time.perf_counter() - t0
        t0 = time.perf_counter()
        live = run(config(k, "mst", train_steps, path_steps, seed), store=RunStore(tmp))
        seconds_mst = time.perf_counter() - t0
    _, path_obj = objectives(cfg)
    pairs = np.asarray(full.paths.pairs)
    opts, stepper = cfg.paths, _stepper(path_obj, cfg.paths.batch_size)  # PathOptions
    if cfg.paths.batch_size is None:  # minibatch steps only with a minibatch
        opts = dataclasses.replace(opts, noisy_steps=0)
    values = np.asarray(full.minima.values)
    thetas = full.minima.thetas

    def guess_of(o):  # the screened saddles as a (K, K) matrix
        return graph_matrix(values, pairs, screened_saddles(path_obj, thetas, pairs, o, stepper))

    guess = guess_of(opts)
    n = 2 * opts.n_points  # the screen halves it: 12 points, as before
    guess_before = guess_of(
        dataclasses.replace(opts, n_points=n, max_points=max(n, opts.max_points))
    )
    saddles = graph_matrix(values, pairs, full.paths.saddles)
    reference = full.barcode
    scale = float(np.ptp(full.paths.straight))
    spread = float(np.ptp(full.paths.saddles))
    rules = {
        "tree only": (tree_only, guess),
        "mst (engine rule)": (mst_rounds, guess),
        "mst, 12-point screen": (mst_rounds, guess_before),
        "mst, drop x 1.5": (lambda g, v, o: mst_rounds(g, v, o, drop_factor=1.5), guess),
    }
    rows = []
    for name, (rule, g) in rules.items():
        known, rounds = replay(rule, g, values, saddles)
        bars = barcode_from_graph(values, known, tol=1e-6)
        err = float(np.max(np.abs(finite_deaths(bars) - finite_deaths(reference)), initial=0))
        rows.append(
            dict(rule=name, paths=sum(rounds), rounds=rounds, err=err, to=bars.to_score("sum"))
        )
    rows.append(
        dict(
            rule="all pairs",
            paths=len(pairs),
            rounds=[len(pairs)],
            err=0.0,
            to=reference.to_score("sum"),
        )
    )
    return dict(
        k=k,
        seed=seed,
        rows=rows,
        scale=scale,
        spread=spread,
        seconds_all=seconds_all,
        seconds_mst=seconds_mst,
        live_paths=live.summary.n_paths,
        # pairs that took path steps: pairs="all" joins a pair through the lowest minimum,
        # with no steps, where that route has no barrier (core.engine.pairs.connect_all)
        stepped=(int((full.paths.steps > 0).sum()), int((live.paths.steps > 0).sum())),
        live_to=live.summary.to_score_sum,
        status=(
            full.summary.n_paths_converged,
            full.summary.n_paths_no_barrier,
            full.summary.n_paths_step_cap,
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="K = 6, 8; 150 train / 60 path steps")
    a = ap.parse_args()
    ks, train_steps, path_steps = ((6, 8), 150, 60) if a.quick else ((8, 16, 32), 600, 300)
    seeds = (0,) if a.quick else (0, 1)
    lines = [
        f"Machine: {machine()}",
        f"Command: `.venv/bin/python bench/mst_rules.py {' '.join(sys.argv[1:])}` (MLP 8x1 on "
        f"all 1437 digits, {train_steps} train steps, {path_steps} path steps)",
        "",
        "Error = largest difference of a death from the all-pairs barcode; as a fraction of the "
        "spread of the optimised saddles, and of the toy-landscape tolerance (0.5% of the "
        "straight segments' range, the bound tests/engine/test_landscape.py uses).",
        "",
        "| minima | seed | rule | paths | rounds | error | of saddle spread | of tolerance "
        "| TO sum |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    for k, seed in ((k, s) for k in ks for s in seeds):
        r = measure(k, seed, train_steps, path_steps)
        for row in r["rows"]:
            lines.append(
                f"| {k} | {seed} | {row['rule']} | {row['paths']} | {row['rounds']} | "
                f"{row['err']:.2g} | "
                f"{row['err'] / r['spread']:.1%} | {row['err'] / (SIGNIFICANT * r['scale']):.2f} "
                f"| {row['to']:.4f} |"
            )
        replayed = next(x for x in r["rows"] if x["rule"] == "mst (engine rule)")
        checks.append(
            f'- {k} minima, seed {seed}: a real `pairs="mst"` run optimised {r["live_paths"]} '
            f"paths, TO sum "
            f"{r['live_to']:.4f} (replay: {replayed['paths']}, {replayed['to']:.4f}); end to "
            f"end {r['seconds_mst']:.1f} s, all pairs {r['seconds_all']:.1f} s (their paths: "
            "{} converged, {} with no barrier, {} at the step cap). Pairs that took path "
            "steps: all pairs {}, mst {}.".format(*r["status"], *r["stepped"])
        )
        print("\n".join(lines[-len(r["rows"]) :] + checks[-1:]), flush=True)
    text = "\n".join(lines + ["", "Replay against the engine:", "", *checks])
    print(text)
    if a.quick:  # a smoke test: BENCHMARKS.md keeps the real numbers
        return
    write_block(
        "bench/mst_rules.py", "## Pair selection: paths needed for the all-pairs barcode\n\n" + text
    )


if __name__ == "__main__":
    main()
