"""Barcodes modulo permutation symmetry on a width sweep: raw TO-scores against those modulo
the symmetry, and straight-segment barriers before and after alignment.

    .venv/bin/python bench/rebasin.py [--dataset digits] [--widths 4,8,16,32] [--depth 2]
                                      [--runs-dir runs]

Runs (or re-uses from the run store) one run per width with ``paths.align =
"weight-matching"``: the default settings otherwise (8 minima, all pairs). For each run it
prints the raw TO-scores (sum, max) and those modulo the symmetry (each pair's lower route,
raw or between the aligned minima) and the straight segment's barrier (its
maximum minus the higher endpoint) over all pairs, before and after alignment: median and
largest. Writes the ``bench/rebasin.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from bench.report import machine, write_block  # noqa: E402
from core.runs.config import RunConfig  # noqa: E402
from core.runs.store import (
    RunStore,  # noqa: E402
    read_run,  # noqa: E402
)
from core.runs.sweep import SweepSpec, run_sweep  # noqa: E402


def barriers(values: np.ndarray, paths) -> np.ndarray:
    """(E,) straight-segment maximum minus the higher endpoint, per pair."""
    i, j = paths.pairs[:, 0], paths.pairs[:, 1]
    return paths.straight - np.maximum(values[i], values[j])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--widths", default="4,8,16,32")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--runs-dir", default="runs")
    a = ap.parse_args()
    widths = tuple(int(w) for w in a.widths.split(","))
    base = RunConfig().replace(data={"name": a.dataset}, paths={"align": "weight-matching"})
    spec = SweepSpec(base=base, widths=widths, depths=(a.depth,))
    store = RunStore(a.runs_dir)
    t = time.perf_counter()
    res = run_sweep(spec, store)
    seconds = time.perf_counter() - t
    rows = []
    for rid in res.run_ids:
        r = read_run(store, rid)
        raw, al = barriers(r.minima.values, r.paths), barriers(r.aligned.values, r.aligned.paths)
        rows.append(
            f"| {r.config.model.width} | {r.summary.to_score_sum:.4g} / "
            f"{r.summary.to_score_max:.4g} | {r.aligned.barcode.to_score('sum'):.4g} / "
            f"{r.aligned.barcode.to_score('max'):.4g} | {np.median(raw):.3g} / {raw.max():.3g} | "
            f"{np.median(al):.3g} / {al.max():.3g} | {rid} |"
        )
        print(rows[-1], flush=True)
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python bench/rebasin.py " + " ".join(sys.argv[1:])
    body = "\n".join(
        [
            "## Barcodes modulo permutation symmetry (`bench/rebasin.py`)",
            "",
            f"Machine: {machine()}. Command: `{cmd.strip()}` ({seconds:.0f} s for the runs "
            f"computed, {len(res.new)} of {len(res.run_ids)}). {a.dataset}, MLP depth "
            f"{a.depth}, 8 minima, all pairs, `--align weight-matching` (every minimum aligned "
            "to the lowest by weight matching; modulo the symmetry, each pair's lower route, its "
            "raw path or the path between the aligned minima); barriers are the straight "
            "segment's maximum minus the higher endpoint, over all 28 pairs.",
            "",
            "| width | TO raw (sum / max) | TO modulo symmetry (sum / max) | straight barrier raw "
            "(median / max) | straight barrier aligned (median / max) | run |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    write_block("bench/rebasin.py", body)


if __name__ == "__main__":
    main()
