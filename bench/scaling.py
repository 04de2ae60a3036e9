"""How the engine scales: minima, parameters, points per path; time, memory, FLOP/s.

    .venv/bin/python bench/scaling.py [--quick] [--repeats R] [--n-train N]

Every configuration runs in its own subprocess (so its peak resident memory is its own) on
digits (``--n-train``: a seeded subset) with a fixed, small budget, and reports wall time per
stage, peak RSS, and how its paths ended (converged, no barrier, step cap; median steps taken
of the cap). Path steps are also timed alone, every pair kept in the batch, to give the
achieved FLOP/s next to a 2048x2048 float32 matmul measured in the same run. FLOPs of a path
step = 3 (forward + backward) x 2 x multiply-adds of one forward pass (FlopCounterMode, one
network, one example) x points x minibatch. Writes the ``bench/scaling.py`` block of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, run_fresh, write_block  # noqa: E402

CHILD = r"""
import json, resource, sys, tempfile, time
import numpy as np
import torch
from core.runs.config import RunConfig
from core.runs.pipeline import objectives, run
from core.runs.store import RunStore
from core.engine.paths import PathOptions, connect
from core.engine.pairs import all_pairs
spec = json.loads(sys.argv[1])
cfg = RunConfig.from_dict(spec["config"])
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    r = run(cfg, store=RunStore(tmp))
    total = time.perf_counter() - t0
# path steps alone: (long - short) steps for the first `npairs` pairs in one batch
_, pa = objectives(cfg)
thetas = r.minima.thetas
pairs = all_pairs(thetas.shape[0])[: spec["npairs"]]
def timed(n):
    o = PathOptions(n_points=spec["points"], max_points=spec["points"], steps=n,
                    check_every=10**6, check_density=4, max_density=8,
                    force_tol=1e-30, grad_tol=1e-30)  # no pair leaves the batch early
    t = time.perf_counter(); connect(pa, thetas, pairs, o, step_objective=pa.minibatch)
    return time.perf_counter() - t
step = (timed(60) - timed(10)) / 50
from torch.utils.flop_counter import FlopCounterMode
with FlopCounterMode(display=False) as counter:  # one network, one example
    pa.model(pa.x_train[:1])
macs = counter.get_total_flops() // 2
print(json.dumps({"total": total, "minima_s": r.summary.seconds_minima,
    "paths_s": r.summary.seconds_paths, "n_paths": r.summary.n_paths,
    "status": [r.summary.n_paths_converged, r.summary.n_paths_no_barrier,
               r.summary.n_paths_step_cap],
    "steps_med": float(np.median(r.paths.steps)), "cap": cfg.paths.steps,
    "to": r.summary.to_score_sum, "P": thetas.shape[1], "step_s": step,
    "points": len(pairs) * (spec["points"] - 2), "macs": macs,
    "batch": cfg.paths.batch_size or pa.n_train,  # examples per path step (None: all of them)
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


RUN_ONLY = r"""
import contextlib, json, sys, tempfile, time
import core.runs.pipeline
from core.runs.config import RunConfig
from core.runs.store import RunStore
from torch.utils.flop_counter import FlopCounterMode
spec = json.loads(sys.argv[1])
cfg = RunConfig.from_dict(spec["config"])
counter = FlopCounterMode(display=False)
landscape_of, minima = core.runs.pipeline.landscape_of, [0]
def counted_minima(*args, on_stage, **kwargs):  # the matmul FLOPs of the minima stage alone
    before = counter.get_total_flops()
    def staged(stage, value):  # the minima found, then their train/test metrics and writing
        on_stage(stage, value)
        if stage == "minima":
            minima[0] = counter.get_total_flops() - before
    return landscape_of(*args, on_stage=staged, **kwargs)
core.runs.pipeline.landscape_of = counted_minima
with tempfile.TemporaryDirectory() as tmp, counter if spec["count"] else contextlib.nullcontext():
    t0 = time.perf_counter()
    r = core.runs.pipeline.run(cfg, store=RunStore(tmp))
    total = time.perf_counter() - t0
print(json.dumps({"total": total, "n_paths": r.summary.n_paths,
                  "flops": counter.get_total_flops(), "minima_flops": minima[0]}))
"""


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, all cores (0 where /proc/stat lacks it)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_only(k: int, steps: int, path_steps: int, n_train, count: bool = False) -> dict:
    """One end-to-end MLP 8x1 run with ``pairs="mst"`` in its own process: wall seconds,
    paths, the hypervisor's steal meanwhile; with ``count``, the matmul FLOPs of the whole
    run and of its minima stage (FlopCounterMode, which slows the run: its time is not used)."""
    spec = json.dumps(
        {"config": config(k, 8, 1, "mst", steps, path_steps, n_train=n_train), "count": count}
    )
    stolen = steal_seconds()
    out = run_fresh(RUN_ONLY, spec)
    return {**out, "steal": steal_seconds() - stolen}


def minima_ratio(steps: int, path_steps: int, n_train, repeats: int) -> tuple[list[dict], dict]:
    """8 vs 32 minima, end to end, ``repeats`` times interleaved (the ratio is read from the
    same moment on a machine whose speed drifts), then once more each counting matmul FLOPs
    (the same computation every time: deterministic)."""
    timed = []
    for _ in range(repeats):
        timed.append({k: run_only(k, steps, path_steps, n_train) for k in (8, 32)})
        print("8 vs 32 minima (mst):", json.dumps(timed[-1]), flush=True)
    work = {k: run_only(k, steps, path_steps, n_train, count=True) for k in (8, 32)}
    print("8 vs 32 minima (mst), counted:", json.dumps(work), flush=True)
    return timed, work


def ratio_lines(timed: list[dict], work: dict) -> list[str]:
    """The 32-vs-8 result: wall-time ratios (median, range) and the counted work ratio."""
    r = sorted(x[32]["total"] / x[8]["total"] for x in timed)
    pairs = ", ".join(f"({x[8]['total']:.1f}, {x[32]['total']:.1f})" for x in timed)
    steal = sum(x[k]["steal"] for x in timed for k in x)

    def gflop(k: int, part: str) -> float:
        w = work[k]
        return (w["minima_flops"] if part == "minima" else w["flops"] - w["minima_flops"]) / 1e9

    parts = "; ".join(
        f"{part} {gflop(8, part):.0f} vs {gflop(32, part):.0f} "
        f"({gflop(32, part) / gflop(8, part):.1f}x)"
        for part in ("minima", "paths")
    )
    return [
        f"32 vs 8 minima (MLP 8x1, `pairs=mst`, end to end, {work[8]['n_paths']} and "
        f"{work[32]['n_paths']} paths), {len(timed)} interleaved pairs of runs: wall time median "
        f"**{r[len(r) // 2]:.2f}x** (range {r[0]:.2f}-{r[-1]:.2f}x); wall seconds (8, 32): "
        f"{pairs}; hypervisor steal during them {steal:.1f} s. Matmul work counted "
        f"(FlopCounterMode, the same in every run): "
        f"{work[8]['flops'] / 1e9:.0f} vs {work[32]['flops'] / 1e9:.0f} GFLOP "
        f"(**{work[32]['flops'] / work[8]['flops']:.1f}x**); {parts}.",
    ]


def child(config: dict, npairs: int, points: int) -> dict:
    return run_fresh(CHILD, json.dumps({"config": config, "npairs": npairs, "points": points}))


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def config(k, width, depth, pairs, steps, path_steps, arch="mlp", n_train=None) -> dict:
    return {
        "data": {"name": "digits", "n_train": n_train},
        "model": {"arch": arch, "width": width, "depth": depth},
        "train": {"minima": k, "steps": steps},
        "paths": {"pairs": pairs, "steps": path_steps},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--repeats", type=int, default=5, help="interleaved pairs of 8- and 32-minima runs"
    )
    ap.add_argument(
        "--n-train", type=int, default=None, help="a seeded subset of digits (default: all 1437)"
    )
    a = ap.parse_args()
    steps, path_steps = (150, 60) if a.quick else (600, 300)
    peak = matmul_flops()
    rows = []
    grid = [("mlp", 8, 8, 1, "all"), ("mlp", 8, 8, 1, "mst"), ("mlp", 16, 8, 1, "mst")]
    grid += [("mlp", 32, 8, 1, "mst"), ("mlp", 8, 32, 2, "all"), ("mlp", 8, 128, 2, "all")]
    grid += [("cnn", 8, 8, 1, "mst"), ("cnn", 8, 8, 2, "mst"), ("cnn", 8, 8, 3, "mst")]
    for arch, k, w, d, pairs in grid:
        r = child(config(k, w, d, pairs, steps, path_steps, arch, a.n_train), npairs=28, points=12)
        flops = 6 * r["macs"] * r["points"] * r["batch"]  # forward + backward, a minibatch
        rows.append((arch, k, w, d, pairs, r, flops / r["step_s"]))
        print(arch, k, w, d, pairs, json.dumps(r), flush=True)
    timed, work = minima_ratio(steps, path_steps, a.n_train, repeats=1 if a.quick else a.repeats)
    pts = []
    for n in (8, 16, 32):
        r = child(
            config(8, 32, 2, "all", steps, path_steps, n_train=a.n_train), npairs=28, points=n
        )
        pts.append((n, r))
        print("points", n, json.dumps(r), flush=True)

    lines = [
        f"Machine: {machine()}",
        f"Command: `.venv/bin/python bench/scaling.py {' '.join(sys.argv[1:])}` "
        f"(train steps {steps}, path steps {path_steps}, digits "
        f"{f'(a subset of {a.n_train} examples)' if a.n_train else '(all 1437 examples)'})",
        f"Measured float32 matmul (2048x2048): {peak / 1e9:.1f} GFLOP/s",
        "",
        "| arch | minima | width | depth | pairs | P | paths | converged / no barrier / cap "
        "| median steps | minima s | paths s | total s | peak RSS MB | path step GFLOP/s "
        "| of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, k, w, d, pairs, r, rate in rows:
        lines.append(
            f"| {arch} | {k} | {w} | {d} | {pairs} | {r['P']:,} | {r['n_paths']} | "
            f"{' / '.join(map(str, r['status']))} | {r['steps_med']:.0f} of {r['cap']} | "
            f"{r['minima_s']:.1f} | "
            f"{r['paths_s']:.1f} | {r['total']:.1f} | "
            f"{r['rss_mb']:.0f} | {rate / 1e9:.2f} | {rate / peak:.0%} |"
        )
    lines += ["", *ratio_lines(timed, work)]
    lines += [
        "",
        "Points per path (8 minima, width 32, depth 2, all pairs): one path step, 28 pairs",
        "",
        "| points | step ms | GFLOP/s |",
        "|---|---|---|",
    ]
    for n, r in pts:
        rate = 6 * r["macs"] * r["points"] * r["batch"] / r["step_s"]
        lines.append(f"| {n} | {1000 * r['step_s']:.1f} | {rate / 1e9:.2f} |")
    text = "\n".join(lines)
    print(text)
    if a.quick:  # a smoke test: BENCHMARKS.md keeps the real numbers
        return
    write_block("bench/scaling.py", "## Scaling\n\n" + text)


if __name__ == "__main__":
    main()
