"""Does the default run's barcode depend on the path optimiser's settings?

    .venv/bin/python bench/invariance.py [--threads 2] [--quick] [--preset first] [--seed N]
        [--neighbours N] [--restarts N] [--probe] [--set model.width=2 ...]
        [--variants "default,trust radius 0.05"]

Trains the default run's minima once (digits, MLP 32x2, 8 minima; or the first run of a
preset, such as the Home page's ``first``), then computes the paths
and the barcode of those same minima with the default path settings and with each setting
changed: twice the points and the step cap, a smaller and a larger trust radius, tighter
force tolerances, a finer saddle resolution. Prints per variant the TO-score (sum, max),
how the pairs finished (converged by force / no barrier / step cap), certified saddles,
point evaluations and seconds, the largest TO-score difference against the stated
resolution (``saddle_tol`` times the number of finite bars), and the TO-score pooled over the
settings (each pair through the lowest saddle any of them found: every saddle is a relaxed
path's, so the pooled barcode is an upper bound too, no higher than any reading) with each
reading's excess over it. Writes the
``bench/invariance.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.default_run import Counted  # noqa: E402
from bench.report import machine, overrides, write_block  # noqa: E402
from core.engine.barcode import barcode_from_graph, graph_matrix  # noqa: E402
from core.engine.landscape import rounding_tol  # noqa: E402
from core.engine.pairs import select_and_connect  # noqa: E402
from core.runs.config import RunConfig  # noqa: E402
from core.runs.pipeline import objectives, run  # noqa: E402
from core.runs.presets import get_preset  # noqa: E402
from core.runs.record import lowest_barcode, modulo_barcode  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from core.views.dashboard import resolution, route_search, widening  # noqa: E402

# each variant: the fields it changes, given the run's path options
VARIANTS = {
    "default": lambda o: {},
    "2x points and steps": lambda o: {
        "n_points": 2 * o.n_points,
        "max_points": 2 * o.max_points,
        "steps": 2 * o.steps,
    },
    "trust radius 0.05": lambda o: {"max_move": 0.05},
    "trust radius 0.5": lambda o: {"max_move": 0.5},
    "tolerances / 3": lambda o: {"force_tol": o.force_tol / 3, "grad_tol": o.grad_tol / 3},
    "saddle resolution / 10": lambda o: {"saddle_tol": o.saddle_tol / 10},
}


def above(floor: float, readings: list[float]) -> str:
    """The pooled TO-score ``floor`` and how far above it the ``readings`` lie."""
    if floor <= 0:
        return f"{floor:.4g}"
    return (
        f"{floor:.4g}, the readings {min(readings) / floor - 1:.1%}-"
        f"{max(readings) / floor - 1:.1%} above it"
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="short caps, a smoke test")
    ap.add_argument("--preset", help="the first run of this preset instead of the MLP 32x2")
    ap.add_argument("--seed", type=int, help="the run's seed instead of its config's")
    ap.add_argument("--neighbours", type=int, help="paths.neighbours for every variant")
    ap.add_argument("--restarts", type=int, help="paths.restarts for every variant")
    ap.add_argument("--probe", action="store_true", help="paths.probe for every variant")
    ap.add_argument("--variants", help=f"comma-separated subset of {list(VARIANTS)}")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="change the run's config, e.g. model.width=2 (repeatable)",
    )
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = RunConfig().replace(model={"width": 32, "depth": 2})
    what = "The default run (digits, MLP 32x2, 8 minima)"
    if a.preset:
        cfg = get_preset(a.preset).first
    try:
        cfg = overrides(cfg, a.set)
    except ValueError as e:
        ap.error(str(e))
    if a.preset:
        what = f"The first run of preset `{a.preset}` ({cfg.data.name}, {cfg.model.network})"
    what += "".join(f", {s}" for s in a.set)
    if a.seed is not None:
        cfg = cfg.replace(seed=a.seed)
        what += f", seed {a.seed}"
    if a.neighbours is not None:
        cfg = cfg.replace(paths={"neighbours": a.neighbours})
        what += f", {a.neighbours} neighbour legs"
    if a.restarts is not None:
        cfg = cfg.replace(paths={"restarts": a.restarts})
        what += f", {a.restarts} route-search restarts"
    if a.probe:
        cfg = cfg.replace(paths={"probe": True})
        what += ", the bars' ends probed"
    names = a.variants.split(",") if a.variants else list(VARIANTS)
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        ap.error(f"--variants: unknown {unknown}; known: {list(VARIANTS)}")
    if a.quick:
        cfg = cfg.replace(train={"steps": 200}, paths={"steps": 50})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        first = run(cfg, store=RunStore(tmp))
        total = time.perf_counter() - t0
    thetas = first.minima.thetas
    values = np.asarray(first.minima.values, dtype=np.float64)
    _, path_obj = objectives(cfg)
    base = cfg.paths  # the run's path options (a PathOptions); minibatch steps only with a batch
    if cfg.paths.batch_size is None:
        base = dataclasses.replace(base, noisy_steps=0)
    flag = (
        (f" --preset {a.preset}" if a.preset else "")
        + (f" --seed {a.seed}" if a.seed is not None else "")
        + (f" --neighbours {a.neighbours}" if a.neighbours is not None else "")
        + (f" --restarts {a.restarts}" if a.restarts is not None else "")
        + (" --probe" if a.probe else "")
        + (f' --variants "{a.variants}"' if a.variants else "")
        + "".join(f" --set {s}" for s in a.set)
    )
    rows, scores = [], [first.summary.to_score_sum]  # the run itself: the default settings
    aligned = first.aligned  # paths.align: the barcode modulo the symmetry, compared as well
    # every setting's paths, raw and aligned: the barcode through each pair's lowest saddle
    raws = [first.paths]
    both = [first.paths] + ([] if aligned is None else [aligned.paths])
    sym = [] if aligned is None else [first.summary.aligned_to_score_sum]
    # with restarts, neighbour legs or the probe, whether each reading's own check says it settled
    checked = bool(cfg.paths.restarts or cfg.paths.neighbours or cfg.paths.probe)
    settled = [route_search(first, aligned is not None)[2]] if checked else []

    def said(check) -> str:
        settled.append(check[2])
        return " settled |" if check[2] else " not settled |"

    for name, change in ((n, VARIANTS[n]) for n in names):
        opts = dataclasses.replace(base, **change(base))
        if a.quick:
            opts = dataclasses.replace(opts, steps=min(opts.steps, 50))
        tally: dict[str, tuple[int, float]] = {}
        obj = Counted(path_obj, tally, "paths")
        t0 = time.perf_counter()
        p = select_and_connect(obj, thetas, values, opts, minima_options=cfg.train)
        bars = barcode_from_graph(
            values, graph_matrix(values, p.pairs, p.saddles), tol=rounding_tol(values)
        )
        n = {s: int((p.status == s).sum()) for s in ("converged", "no barrier", "step cap")}
        scores.append(bars.to_score("sum"))
        raws.append(p)
        modulo = ""
        if aligned is not None:
            q = select_and_connect(
                obj, aligned.thetas, aligned.values, opts, minima_options=cfg.train
            )
            lower = modulo_barcode(p, q, aligned.values)
            both += [p, q]
            sym.append(lower.to_score("sum"))
            modulo = f" {sym[-1]:.4g} | {lower.to_score('max'):.4g} |"
            if checked:
                modulo += said(widening(aligned.values, p, q, opts.saddle_tol))
        elif checked:
            modulo = said(widening(values, p, saddle_tol=opts.saddle_tol))
        seconds = time.perf_counter() - t0
        rows.append(
            f"| {name} | {bars.to_score('sum'):.3g} | {bars.to_score('max'):.3g} |{modulo} "
            f"{n['converged']} / {n['no barrier']} / {n['step cap']} | {int(p.certified.sum())} "
            f"| {tally['paths'][0]:,} | {seconds:.0f} |"
        )
        print(rows[-1], flush=True)
    finite = max(int(np.isfinite(bars.deaths).sum()), 1)  # finite bars

    def verdict(scores: list[float]) -> str:
        spread = max(scores) - min(scores)
        allowed = resolution(scores, base.saddle_tol, finite)
        return (
            f"{spread:.2g}, {'within' if spread <= allowed else '**outside**'} the stated "
            f"resolution ({allowed:.2g}: 3% of the largest score, or saddle_tol "
            f"{base.saddle_tol:g} times the {finite} finite bars, whichever is larger)"
        )

    head, rule = "| path settings | TO sum | TO max |", "|---|---|---|"
    if aligned is not None:
        head += " TO sum modulo symmetry | TO max modulo symmetry |"
        rule += "---|---|"
    if checked:
        head += " its own check (route search) |"
        rule += "---|"
    read = sym if aligned is not None else scores
    own = ""
    if checked:
        kept = [x for x, ok in zip(read, settled, strict=True) if ok]
        own = (
            f" Among the readings whose own check says settled ({len(kept)} of {len(read)}): "
            + (verdict(kept) if kept else "none")
            + "."
        )
    pooled = (
        " Pooled over the settings (each pair through the lowest saddle that any of them found, "
        "the end-to-end run's included): TO-score sum "
        + above(lowest_barcode(raws, values).to_score("sum"), scores)
        + (
            ""
            if aligned is None
            else "; modulo the symmetry "
            + above(lowest_barcode(both, np.asarray(aligned.values)).to_score("sum"), sym)
        )
        + "."
    )
    body = "\n".join(
        [
            f"## Settings invariance: {what[4:]} (`bench/invariance.py`)",
            "",
            f"`.venv/bin/python bench/invariance.py --threads {a.threads}{flag}`. Machine: "
            f"{machine()}.",
            "",
            f"{what} end to end: {total:.0f} s "
            f"(minima {first.summary.seconds_minima:.0f} s, paths "
            f"{first.summary.seconds_paths:.0f} s), TO-score sum "
            f"{first.summary.to_score_sum:.3g}"
            + (
                ""
                if aligned is None
                else f", modulo the symmetry {first.summary.aligned_to_score_sum:.4g} (each "
                "pair's lower route: its raw path or the path between the minima aligned to "
                "the lowest by weight matching, aligned once; both paths computed again per "
                "setting, the evaluations and seconds of both counted)"
            )
            + ". Then the paths of the same minima again, with each setting changed:",
            "",
            head + " converged / no barrier / step cap | certified | point evaluations | seconds |",
            rule + "---|---|---|---|",
            *rows,
            "",
            "Largest TO-score difference between settings (the end-to-end run's among them): "
            f"{verdict(scores)}."
            + ("" if aligned is None else f" Modulo the symmetry: {verdict(sym)}.")
            + own
            + pooled,
        ]
    )
    print(body)
    if not a.quick:
        write_block("bench/invariance.py" + flag, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
