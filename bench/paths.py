"""Point evaluations per barcode: today's engine against a previous revision, one run.

    .venv/bin/python bench/paths.py [--baseline REV] [--only NAME ...] [--threads 1]

For every landscape (the 2-D toys of ``core.engine.toy`` and the warped separable landscapes of
``core.engine.separable`` in 10, 40 and 100 dimensions), runs ``landscape_of`` with each side's own
toy settings (``core.engine.validate.TOY_MINIMA`` / ``TOY_PATHS``), all pairs, in a fresh process
per side on that side's sources (REV checked out in a temporary worktree), counting every
point the objective is evaluated at (a row of an (M, P) call, with or without gradient).
Prints, per landscape, the evaluations of each side and their ratio, the seconds, and how
far each barcode is from the exact one: the bottleneck distance between the finite bars as a
fraction of the value range, and whether any bar is missing or spurious. Exact bars: a
801 x 801 grid for the toys (``core.engine.toy.exact_barcode``, itself good to ~1e-5 of the range),
the Kunneth formula for the separable landscapes (exact). Writes the ``bench/paths.py``
block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import ROOT, machine, run_fresh, write_block  # noqa: E402

# One landscape through one side's engine; prints a JSON line. argv: {"name", "sep_file"}
ONE = r"""
import importlib.util, json, sys, time
import numpy as np, torch
arg = json.loads(sys.argv[1])
torch.set_num_threads(arg["threads"])
from core import landscape_of
try:  # where each revision keeps them: core/engine/ today, core/ before the layer folders
    from core.engine.validate import TOY_MINIMA, TOY_PATHS
    from core.engine.toy import exact_barcode, get_toy, starts_grid
except ImportError:
    from core.validate import TOY_MINIMA, TOY_PATHS
    from core.toy import exact_barcode, get_toy, starts_grid
name, counts = arg["name"], {"value": 0, "grad": 0}
if name.startswith("sep"):
    spec = importlib.util.spec_from_file_location("separable", arg["sep_file"])
    sep = sys.modules["separable"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sep)
    land = sep.get_separable(name)
    fn, starts = land.fn, land.starts(2 * len(land.exact_births), seed=0)
    births, deaths, vr = land.exact_births, land.exact_deaths, land.value_range
else:
    toy = get_toy(name)
    fn, starts = toy.fn, starts_grid(toy, 32)
    ex = exact_barcode(toy, resolution=801)
    births, deaths, vr = ex.births, ex.deaths, ex.value_range

def counted(x):
    counts["grad" if torch.is_grad_enabled() and x.requires_grad else "value"] += x.shape[0]
    return fn(x)

def run(f):  # the pairs rule: a paths option today, a keyword of landscape_of before
    pairs = arg["pairs"]
    try:
        return landscape_of(f, starts, minima=TOY_MINIMA, paths={**TOY_PATHS, "pairs": pairs})
    except ValueError as exc:  # before: "unknown paths option(s) ['pairs']"
        if "unknown paths option" not in str(exc):
            raise
        return landscape_of(f, starts, minima=TOY_MINIMA, paths=TOY_PATHS, pairs=pairs)

t0 = time.perf_counter()
land = run(counted)
cold = time.perf_counter() - t0
t0 = time.perf_counter()  # again, with the process's one-time imports and set-up done
run(fn)
seconds = time.perf_counter() - t0
b = land.barcode
print(json.dumps({"counts": counts, "seconds": seconds, "cold": cold, "births": b.births.tolist(),
                  "deaths": [float(d) for d in b.deaths], "exact_births": list(map(float, births)),
                  "exact_deaths": [float(d) for d in deaths], "value_range": float(vr),
                  "n_paths": len(land.paths)}))
"""

NAMES = (
    "camel",
    "himmelblau",
    "muller_brown",
    "rastrigin",
    "ring",
    "wells",
    "sep10",
    "sep40",
    "sep100",
)
SIGNIFICANT = 0.005  # bars shorter than this fraction of the range are ties, not compared


def distance(r: dict) -> tuple[float, int]:
    """(bottleneck distance of the significant finite bars / value range, bars missing or
    spurious)."""
    import gudhi
    import numpy as np

    def bars(births, deaths):
        b, d = np.asarray(births), np.asarray(deaths, dtype=float)
        keep = np.isfinite(d) & (d - b > SIGNIFICANT * r["value_range"])
        return np.stack([b[keep], d[keep]], 1)

    got, want = bars(r["births"], r["deaths"]), bars(r["exact_births"], r["exact_deaths"])
    dist = gudhi.bottleneck_distance(got, want) if len(got) or len(want) else 0.0
    return dist / r["value_range"], abs(len(got) - len(want))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default="b413635", help="git revision to compare against")
    ap.add_argument("--only", nargs="*", default=list(NAMES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--pairs", choices=("all", "mst"), default="all", help="both sides' pairs")
    a = ap.parse_args(argv)
    sep_file = str(ROOT / "core" / "engine" / "separable.py")
    rows = [
        "| landscape | evaluations before / after | ratio | seconds before / after "
        "(first call in the process) | "
        "bottleneck / range before / after | bars missing or spurious before / after |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base), a.baseline],
            check=True,
        )
        try:
            for name in a.only:
                arg = json.dumps(
                    {"name": name, "sep_file": sep_file, "threads": a.threads, "pairs": a.pairs}
                )
                old, new = run_fresh(ONE, arg, base), run_fresh(ONE, arg)
                n_old, n_new = (sum(r["counts"].values()) for r in (old, new))
                (d_old, m_old), (d_new, m_new) = distance(old), distance(new)
                rows.append(
                    f"| {name} | {n_old:,} / {n_new:,} | {n_new / n_old:.2f} | "
                    f"{old['seconds']:.1f} / {new['seconds']:.1f} ({old['cold']:.1f} / "
                    f"{new['cold']:.1f}) | {d_old:.1e} / {d_new:.1e} "
                    f"| {m_old} / {m_new} |"
                )
                print(rows[-1], flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True
            )
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    body = "\n".join(
        [
            f"## Point evaluations per barcode, pairs={a.pairs} (`bench/paths.py`)",
            "",
            f"`.venv/bin/python bench/paths.py --baseline {a.baseline} --threads {a.threads} "
            f"--pairs {a.pairs}`: revision {a.baseline} (before) and {rev} (after), each landscape "
            f"in a fresh process per side, pairs={a.pairs}, each side's own toy settings. "
            "Evaluations count every point the objective is evaluated at, with or without "
            "gradient. Seconds: a second call in the same process; in brackets the first, which "
            "pays the process's one-time imports "
            "and set-up (torch.func's for the certificates among them).",
            "",
            f"Machine: {machine()}.",
            "",
            *rows,
        ]
    )
    write_block(f"bench/paths.py {a.pairs}", body)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
