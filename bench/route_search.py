"""Does the barcode stop falling as the route search widens?

    .venv/bin/python bench/route_search.py [--threads 1] [--preset first] [--seeds 0,1]
        [--neighbours 0,8,16] [--restarts 0,2] [--set model.width=2 ...] [--quick]

A certified saddle is exact for the route its path found; a lower route between the same two
minima may cross basins that no chain entered. Neighbour legs (``paths.neighbours`` = n) join
every minimum met (the run's and those found below dips) to its n nearest others and let each
pair take the lowest route through them; restarts (``paths.restarts`` = r) search every pair
r more times with other trust radii and pool what every search met. For each seed, this trains
the preset's minima once, then computes the paths and the barcode of those minima with each
n and r, and prints the TO-score
(sum, max), how the pairs finished, the size of the database (minima, legs), the point
evaluations and seconds. Where the TO-score no longer moves as the search widens, the barcode is the
landscape's for these minima as far as this search can tell. Writes the
``bench/route_search.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
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
from core.runs.pipeline import objectives, run  # noqa: E402
from core.runs.presets import get_preset  # noqa: E402
from core.runs.store import RunStore  # noqa: E402
from core.views.dashboard import narrow_to_score  # noqa: E402

ROUTES = re.compile(r"(\d+) of \d+ paths replaced by routes through (\d+) minima \((\d+) neighbour")


class _Routes(logging.Handler):
    """Keeps the last line of ``core.engine.splits.neighbour_routes``: replaced, minima, legs."""

    def __init__(self):
        super().__init__()
        self.last = ("-", "-", "-")

    def emit(self, record):
        m = ROUTES.match(record.getMessage())
        if m:
            self.last = m.groups()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--preset", default="first")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--neighbours", default="0,8,16")
    ap.add_argument("--restarts", default="0")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="change the preset's config, e.g. model.width=2 (repeatable)",
    )
    ap.add_argument("--quick", action="store_true", help="short caps, a smoke test")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = [int(s) for s in a.seeds.split(",")]
    counts = [int(n) for n in a.neighbours.split(",")]
    restarts = [int(r) for r in a.restarts.split(",")]
    routes = _Routes()
    logging.getLogger("core.engine.splits").addHandler(routes)
    logging.getLogger("core.engine.splits").setLevel(logging.INFO)
    try:
        base_cfg = overrides(get_preset(a.preset).first, a.set)
    except ValueError as e:
        ap.error(str(e))
    rows = []
    for seed in seeds:
        cfg = base_cfg.replace(seed=seed, paths={"neighbours": 0, "steps": 2, "splits": 0})
        with tempfile.TemporaryDirectory() as tmp:  # the minima; 2 path steps, not read
            first = run(cfg, store=RunStore(tmp))
        thetas = first.minima.thetas
        values = np.asarray(first.minima.values, dtype=np.float64)
        _, path_obj = objectives(cfg)
        base = base_cfg.paths
        if base.batch_size is None:
            base = dataclasses.replace(base, noisy_steps=0)
        for n, r in ((n, r) for r in restarts for n in counts):
            opts = dataclasses.replace(base, neighbours=n, restarts=r)
            if a.quick:
                opts = dataclasses.replace(opts, steps=50)
            tally: dict[str, tuple[int, float]] = {}
            routes.last = ("-", "-", "-")
            t0 = time.perf_counter()
            p = select_and_connect(
                Counted(path_obj, tally, "paths"), thetas, values, opts, minima_options=cfg.train
            )
            seconds = time.perf_counter() - t0
            bars = barcode_from_graph(
                values, graph_matrix(values, p.pairs, p.saddles), tol=rounding_tol(values)
            )
            k = {s: int((p.status == s).sum()) for s in ("converged", "no barrier", "step cap")}
            replaced, pool, legs = routes.last if n or r else ("-", "-", "-")
            score = narrow_to_score(values, p) if n or r else None
            half = "-" if score is None else f"{score:.4g}"
            rows.append(
                f"| {seed} | {n} | {r} | {bars.to_score('sum'):.4g} | {half} | "
                f"{bars.to_score('max'):.4g} | "
                f"{k['converged']} / {k['no barrier']} / {k['step cap']} | "
                f"{int(p.certified.sum())} | {pool} / {legs} | {replaced} | "
                f"{tally['paths'][0]:,} | {seconds:.0f} |"
            )
            print(rows[-1], flush=True)
    flag = f" --preset {a.preset} --seeds {a.seeds} --neighbours {a.neighbours}"
    flag += f" --restarts {a.restarts}" if a.restarts != "0" else ""
    flag += "".join(f" --set {s}" for s in a.set)
    body = "\n".join(
        [
            f"## Route search: TO-score against neighbour legs and restarts, preset `{a.preset}`"
            + "".join(f", {s}" for s in a.set)
            + " (`bench/route_search.py`)",
            "",
            f"`.venv/bin/python bench/route_search.py --threads {a.threads}{flag}`. Machine: "
            f"{machine()}.",
            "",
            "Per seed, the same minima; the paths and barcode computed with n neighbour legs "
            "and r restarts (0, 0: the routes the chains of one search found alone). "
            "Database: the minima met (the run's and those found below dips, pooled over the "
            "searches) and the neighbour legs relaxed; replaced: the pairs whose lowest route "
            "through it is lower than their own path. The search one step narrower (without "
            "the last restart, else through the nearer half of each minimum's legs) is what "
            "the run compares its own with (the route-search line of `show`).",
            "",
            "| seed | neighbours | restarts | TO sum | TO sum, one step narrower | TO max | "
            "converged / no barrier / step cap | certified | database minima / legs | "
            "replaced | point evaluations | seconds |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(body)
    if not a.quick:
        write_block("bench/route_search.py" + flag, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
