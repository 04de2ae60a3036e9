"""The engine against a peer, IBM's TopSearch, on the same landscapes from the same starts.

    .venv/bin/python bench/peer.py [--peer-python PATH] [--only NAME ...] [--threads N]

TopSearch lives in its own virtual environment (it pins numpy < 2 and pulls in rdkit); this
script (project venv) runs ``bench/peer_topsearch.py`` there as a subprocess, then runs the
engine (``core.landscape_of`` with ``core.engine.validate``'s TOY_MINIMA and TOY_PATHS, as
``compare_engine_to_exact`` does) on the same landscapes and starts, and prints one markdown
table. Landscapes: four 2-D toys of ``core.engine.toy`` (32 starts from ``starts_grid``) and a 12-D
sum of three rotated tilted double wells and nine quadratic directions (8 minima; 64 starts
uniform in [-2, 2]^12). Exact barcodes: ``bench.peer_topsearch.exact_bars`` (the project's
grid bars refined to the true critical points; Kunneth for the 12-D landscape).

Evaluations count points: each row of an (M, P) objective call is one, a gradient row when
the call is differentiated (``torch.is_grad_enabled()`` and ``thetas.requires_grad``), a value
row otherwise; TopSearch's calls are counted the same way (one point each). Saddle error: the
largest |death - exact death| over finite bars matched to the exact ones by birth, also as a
fraction of the landscape's value range (the grid range over the box for the toys, the
barcode's span for the 12-D one); missed or spurious bars are listed beside it.

Both sides run on one thread by default (``--threads`` for the engine; TopSearch's BLAS is
always limited to one): the landscapes are tiny, and on a busy 2-core machine threads waiting
on each other made either side 3-35x slower, which says nothing about the algorithms. Wall
seconds still depend on other load; CPU seconds are printed too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peer_topsearch import (  # noqa: E402
    GRID,
    LANDSCAPES,
    bar_errors,
    default_starts,
    exact_bars,
    wells_spec,
)
from bench.report import machine, write_block  # noqa: E402
from core import landscape_of  # noqa: E402
from core.engine.toy import TOYS, exact_barcode, starts_grid  # noqa: E402
from core.engine.validate import TOY_MINIMA, TOY_PATHS  # noqa: E402

PEER_PYTHON = "/work/peer-venv/bin/python"
PEER_SCRIPT = ROOT / "bench" / "peer_topsearch.py"
TOY_STARTS, WELLS_STARTS = 32, 64


class Counted:
    """An objective (M, P) -> (M,) that counts the points it is evaluated at."""

    def __init__(self, fn):
        self.fn = fn
        self.values = self.grads = 0

    def __call__(self, thetas: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and thetas.requires_grad:
            self.grads += thetas.shape[0]
        else:
            self.values += thetas.shape[0]
        return self.fn(thetas)


def wells_objective():
    """The 12-D rotated double wells of ``bench.peer_topsearch`` in torch: (M, 12) -> (M,)."""
    q, c, a = (torch.from_numpy(v) for v in wells_spec())

    def f(z: torch.Tensor) -> torch.Tensor:
        u = z @ q.to(z).T  # (M, 12)
        w = u[:, :3]
        return ((w**2 - 1) ** 2 + c.to(z) * w).sum(1) + (a.to(z) * u[:, 3:] ** 2).sum(1)

    return f


def problem(name: str, seed: int) -> tuple:
    """(objective, starts (S, P) float64) of landscape ``name``."""
    if name == "wells12":
        return wells_objective(), torch.from_numpy(default_starts(name, WELLS_STARTS, seed))
    return TOYS[name].fn, starts_grid(TOYS[name], TOY_STARTS, seed=seed)


def check_grid(name: str) -> None:
    """Warn if core.engine.toy's grid bars moved away from the constants the peer script keeps."""
    if name not in GRID:
        return
    ex = exact_barcode(TOYS[name])
    kept = np.array([bar[2:] for bar in GRID[name][1]])
    same = len(kept) == len(ex.births) and np.allclose(kept[:, 0], ex.births, atol=1e-5)
    fin = np.isfinite(ex.deaths)
    if not (same and np.allclose(kept[fin, 1], ex.deaths[fin], atol=1e-5)):
        print(
            f"warning: {name}: core.engine.toy.exact_barcode no longer matches GRID",
            file=sys.stderr,
        )


def run_peer(peer_python: str, starts: dict, bh_steps: int) -> dict:
    """Run bench/peer_topsearch.py in the peer venv on ``starts`` {name: (S, P)}; its JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        sfile, ofile = Path(tmp) / "starts.json", Path(tmp) / "peer.json"
        sfile.write_text(json.dumps({k: v.tolist() for k, v in starts.items()}))
        cmd = [peer_python, str(PEER_SCRIPT), "--out", str(ofile), "--starts", str(sfile)]
        cmd += ["--bh-steps", str(bh_steps), "--only", *starts]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        return json.loads(ofile.read_text())


def run_engine(name: str, seed: int, pairs: str = "all") -> dict:
    """The engine on landscape ``name``: counts, seconds, minima, barcode error."""
    fn, starts = problem(name, seed)
    obj = Counted(fn)
    t0, c0 = time.perf_counter(), time.process_time()
    land = landscape_of(obj, starts, minima=TOY_MINIMA, paths={**TOY_PATHS, "pairs": pairs})
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    eb, ed, vrange = exact_bars(name)
    err = bar_errors(land.barcode.births, land.barcode.deaths, eb, ed, vrange)
    return {
        "value_evals": obj.values,
        "grad_evals": obj.grads,
        "evaluations": obj.values + obj.grads,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "n_minima": len(land.minima),
        "n_paths": len(land.paths),
        "error": err,
    }


def fmt_error(e: dict) -> str:
    """'1.2e-05 (1.3e-06)' plus any missed, broken or spurious bars."""
    out = f"{e['death_error']:.1e} ({e['death_error_rel']:.1e})"
    flags = [f"{e[k]} {k}" for k in ("broken", "missing", "spurious") if e[k]]
    return out + (f" [{', '.join(flags)}]" if flags else "")


def table(engine: dict, peer: dict) -> str:
    """The markdown table, engine / TopSearch in every cell."""
    rows = [
        "| landscape | evaluations engine / TopSearch | saddle error (fraction of range) "
        "engine / TopSearch | seconds engine / TopSearch | minima engine / TopSearch |",
        "|---|---|---|---|---|",
    ]
    for name, e in engine.items():
        p = peer[name]
        rows.append(
            f"| {name} | {e['evaluations']:,} / {p['evaluations']:,} "
            f"| {fmt_error(e['error'])} / {fmt_error(p['error'])} "
            f"| {e['seconds']:.2f} / {p['seconds']:.2f} | {e['n_minima']} / {p['n_minima']} |"
        )
    rows.append("")
    rows.append(
        "Engine / TopSearch: gradient evaluations (of the totals); CPU seconds; paths / "
        "transition states (TopSearch's connection attempts, failed TS searches)"
    )
    for name, e in engine.items():
        p = peer[name]
        rows.append(
            f"- {name}: {e['grad_evals']:,} / {p['grad_evals']:,}; "
            f"{e['cpu_seconds']:.2f} / {p['cpu_seconds']:.2f}; {e['n_paths']} / {p['n_ts']} "
            f"({p['connection_attempts']} attempts, {p['ts_failures']} failed)"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--peer-python", default=PEER_PYTHON, help="python of the TopSearch venv")
    ap.add_argument("--only", nargs="*", choices=sorted(LANDSCAPES), help="landscapes to run")
    ap.add_argument("--bh-steps", type=int, default=0, help="TopSearch basin-hopping per start")
    ap.add_argument("--seed", type=int, default=0, help="seed of the starts")
    ap.add_argument("--out", help="also write both sides' results to this JSON file")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the engine")
    ap.add_argument("--pairs", choices=("all", "mst"), default="all", help="the engine's pairs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not Path(args.peer_python).exists():
        print(
            f"no peer python at {args.peer_python}; create the TopSearch venv with\n"
            "  python3 -m venv /work/peer-venv && "
            "/work/peer-venv/bin/pip install topsearch==0.0.3",
            file=sys.stderr,
        )
        sys.exit(2)
    names = args.only or list(LANDSCAPES)
    starts = {name: problem(name, args.seed)[1].numpy() for name in names}
    peer = run_peer(args.peer_python, starts, args.bh_steps)["landscapes"]
    landscape_of(lambda t: (t**2).sum(1), torch.randn(2, 2, dtype=torch.float64))  # warm-up
    engine = {}
    for name in names:
        check_grid(name)
        engine[name] = run_engine(name, args.seed, args.pairs)
        print(f"engine {name}: {engine[name]['seconds']:.2f} s", file=sys.stderr)
    rev = ["git", "-C", str(ROOT), "describe", "--always", "--dirty"]
    at = subprocess.run(rev, capture_output=True, text=True).stdout.strip()
    body = "\n".join(
        [
            f"## Against a peer: TopSearch 0.0.3 (`bench/peer.py`, engine pairs={args.pairs})",
            "",
            f"`.venv/bin/python bench/peer.py --pairs {args.pairs}` (engine at {at}; TopSearch in "
            "its own venv). Machine: " + machine() + ".",
            "",
            table(engine, peer),
        ]
    )
    print(body)
    write_block(f"bench/peer.py {args.pairs}", body)
    if args.out:
        Path(args.out).write_text(json.dumps({"engine": engine, "topsearch": peer}, indent=1))


if __name__ == "__main__":
    main()
