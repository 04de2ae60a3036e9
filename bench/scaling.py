"""How the engine scales: minima, parameters, points per path; time, memory, FLOP/s.

    .venv/bin/python bench/scaling.py [--quick]

Every configuration runs in its own subprocess (so its peak resident memory is its own) on
digits with a fixed, small budget, and reports wall time per stage and peak RSS. Path steps
are also timed alone to give the achieved FLOP/s next to a 2048x2048 float32 matmul measured
in the same run. FLOPs of a path step = 3 (forward + backward) x 2 x multiply-adds of one
forward pass (FlopCounterMode, one network, one example) x points x minibatch. Writes the
``bench/scaling.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_block  # noqa: E402

CHILD = r"""
import json, resource, sys, tempfile, time
import torch
from core.config import RunConfig
from core.pipeline import objectives, run
from core.runs import RunStore
from core.paths import PathOptions, connect
from core.pairs import all_pairs
spec = json.loads(sys.argv[1])
cfg = RunConfig.from_dict(spec["config"])
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    r = run(cfg, store=RunStore(tmp))
    total = time.perf_counter() - t0
# path steps alone: (long - short) steps for the first `npairs` pairs in one batch
_, pa = objectives(cfg)
pairs = all_pairs(r.thetas.shape[0])[: spec["npairs"]]
def timed(n):
    o = PathOptions(n_points=spec["points"], max_points=spec["points"], steps=n,
                    eval_every=10**6, max_density=8)
    t = time.perf_counter(); connect(pa, r.thetas, pairs, o, step_objective=pa.minibatch)
    return time.perf_counter() - t
step = (timed(60) - timed(10)) / 50
from torch.utils.flop_counter import FlopCounterMode
with FlopCounterMode(display=False) as counter:  # one network, one example
    pa.model(pa.x_train[:1])
macs = counter.get_total_flops() // 2
print(json.dumps({"total": total, "minima_s": r.summary["seconds_minima"],
    "paths_s": r.summary["seconds_paths"], "n_paths": r.summary["n_paths"],
    "to": r.summary["to_score_sum"], "P": r.thetas.shape[1], "step_s": step,
    "points": len(pairs) * (spec["points"] - 2), "macs": macs, "batch": cfg.paths.batch_size,
    "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


RUN_ONLY = r"""
import json, resource, sys, tempfile, time
from core.config import RunConfig
from core.pipeline import run
from core.runs import RunStore
cfg = RunConfig.from_dict(json.loads(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    r = run(cfg, store=RunStore(tmp))
    total = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime
print(json.dumps({"total": total, "cpu": cpu, "n_paths": r.summary["n_paths"]}))
"""


def steal_seconds() -> float:
    """CPU time the hypervisor gave to other guests, all cores (0 where /proc/stat lacks it)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def minima_ratio(steps: int, path_steps: int, repeats: int) -> list[dict]:
    """8 vs 32 minima with ``pairs="mst"``, end to end, ``repeats`` times, interleaved, each
    run in its own process: the ratio is read from the same moment on a machine whose speed
    drifts. Each entry: wall seconds, CPU seconds (all threads) and steal seconds per K."""
    out = []
    for _ in range(repeats):
        runs = {}
        for k in (8, 32):
            spec = json.dumps(config(k, 8, 1, "mst", steps, path_steps))
            stolen = steal_seconds()
            res = subprocess.run(
                [sys.executable, "-c", RUN_ONLY, spec], capture_output=True, text=True,
                check=True, cwd=Path(__file__).resolve().parent.parent,
            )  # fmt: skip
            runs[k] = json.loads(res.stdout.strip().splitlines()[-1])
            runs[k]["steal"] = steal_seconds() - stolen
        out.append(runs)
        print("8 vs 32 minima (mst):", json.dumps(runs), flush=True)
    return out


def ratio_lines(ratios: list[dict]) -> list[str]:
    """The 32-vs-8 result: median and range of the wall-time and CPU-time ratios."""

    def summary(key: str) -> str:
        r = sorted(x[32][key] / x[8][key] for x in ratios)
        return f"median **{r[len(r) // 2]:.2f}x** (range {r[0]:.2f}-{r[-1]:.2f}x)"

    pairs = ", ".join(f"({x[8]['total']:.1f}, {x[32]['total']:.1f})" for x in ratios)
    steal = sum(x[k]["steal"] for x in ratios for k in x)
    return [
        f"32 vs 8 minima (MLP 8x1, `pairs=mst`, end to end, {len(ratios)} interleaved pairs of "
        f"runs, {ratios[0][8]['n_paths']} and {ratios[0][32]['n_paths']} paths): wall time "
        f"{summary('total')}; CPU time (both threads) {summary('cpu')}; wall seconds (8, 32): "
        f"{pairs}; hypervisor steal during them: {steal:.1f} s",
    ]


def child(config: dict, npairs: int, points: int) -> dict:
    spec = json.dumps({"config": config, "npairs": npairs, "points": points})
    out = subprocess.run(
        [sys.executable, "-c", CHILD, spec], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def config(k, width, depth, pairs, steps, path_steps, arch="mlp") -> dict:
    return {
        "model": {"arch": arch, "width": width, "depth": depth},
        "train": {"minima": k, "steps": steps},
        "paths": {"pairs": pairs, "steps": path_steps},
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    steps, path_steps = (150, 60) if a.quick else (600, 300)
    peak = matmul_flops()
    rows = []
    grid = [("mlp", 8, 8, 1, "all"), ("mlp", 8, 8, 1, "mst"), ("mlp", 16, 8, 1, "mst")]
    grid += [("mlp", 32, 8, 1, "mst"), ("mlp", 8, 32, 2, "all"), ("mlp", 8, 128, 2, "all")]
    grid += [("cnn", 8, 8, 1, "mst"), ("cnn", 8, 8, 2, "mst"), ("cnn", 8, 8, 3, "mst")]
    for arch, k, w, d, pairs in grid:
        r = child(config(k, w, d, pairs, steps, path_steps, arch), npairs=28, points=12)
        flops = 6 * r["macs"] * r["points"] * r["batch"]  # forward + backward, a minibatch
        rows.append((arch, k, w, d, pairs, r, flops / r["step_s"]))
        print(arch, k, w, d, pairs, json.dumps(r), flush=True)
    ratios = minima_ratio(steps, path_steps, repeats=1 if a.quick else 5)
    pts = []
    for n in (8, 16, 32):
        r = child(config(8, 32, 2, "all", steps, path_steps), npairs=28, points=n)
        pts.append((n, r))
        print("points", n, json.dumps(r), flush=True)

    base = rows[1][5]["total"]
    lines = [
        f"Machine: {machine()}",
        f"Command: `.venv/bin/python bench/scaling.py {' '.join(sys.argv[1:])}` "
        f"(train steps {steps}, path steps {path_steps}, digits, MLP)",
        f"Measured float32 matmul (2048x2048): {peak / 1e9:.1f} GFLOP/s",
        "",
        "| arch | minima | width | depth | pairs | P | paths | minima s | paths s | total s | "
        "vs 8 (mst) | peak RSS MB | path step GFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, k, w, d, pairs, r, rate in rows:
        lines.append(
            f"| {arch} | {k} | {w} | {d} | {pairs} | {r['P']:,} | {r['n_paths']} | "
            f"{r['minima_s']:.1f} | "
            f"{r['paths_s']:.1f} | {r['total']:.1f} | {r['total'] / base:.2f}x | "
            f"{r['rss_mb']:.0f} | {rate / 1e9:.2f} | {rate / peak:.0%} |"
        )
    lines += ["", *ratio_lines(ratios)]
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
