"""Benchmark: loss + gradient of M networks at once, per architecture and strategy.

    .venv/bin/python bench/engine.py [--device cpu|cuda] [--quick] [--no-write]

For every architecture at a small default size, on the digits train split (1437 examples),
times ``NetworkObjective(...)(thetas)`` plus the backward pass w.r.t. the (M, P) ``thetas``
for each evaluation strategy (``loop``, ``vmap``, ``fused``, ``auto``), all in this one run
and interleaved (one repeat of every strategy, then the next repeat), so that a machine that
gets busier or quieter part-way through affects all of them alike. Prints the median wall
and CPU time, the speed-up over the loop, and the achieved FLOP/s as a fraction of a large
float32 matmul measured in the same run. FLOPs = 3 x (forward multiply-adds x 2) x M x B,
the forward counted by ``torch.utils.flop_counter.FlopCounterMode`` on one network.

Writes the table into BENCHMARKS.md between ``<!-- bench/engine.py start -->`` and
``<!-- bench/engine.py end -->``; ``AUTO_STRATEGY`` in core/objective.py is read from it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_block  # noqa: E402
from core.data import load_dataset  # noqa: E402
from core.models import ARCHITECTURES, build_model, n_params  # noqa: E402
from core.objective import NetworkObjective  # noqa: E402

BLOCK = "bench/engine.py"
SIZES = {"mlp": (32, 2), "cnn": (32, 2), "resnet": (16, 2), "transformer": (32, 2)}  # width, depth
STRATEGIES = ("loop", "vmap", "fused", "auto")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def matmul_flops(device: torch.device, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n float32 matmul: 1 warm-up, median of ``repeats``."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    a @ b
    walls = [timed(lambda: a @ b, device)[0] for _ in range(repeats)]
    return 2 * n**3 / statistics.median(walls)


def forward_flops(model: torch.nn.Module, input_shape: tuple) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass of one network on one example."""
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    return counter.get_total_flops()


def loss_and_grad(objective: NetworkObjective, thetas: torch.Tensor):
    def run() -> None:
        th = thetas.detach().requires_grad_(True)
        torch.autograd.grad(objective(th).sum(), th)

    return run


def bench_arch(arch, data, device, m, repeats) -> list[dict]:
    """Time every strategy on one architecture; one row per strategy."""
    width, depth = SIZES[arch]
    model = build_model(arch, width, depth, data.input_shape, data.n_classes)
    objectives = {s: NetworkObjective(model, data, strategy=s, device=device) for s in STRATEGIES}
    thetas = objectives["loop"].init(m, seed=0)
    runs = {s: loss_and_grad(obj, thetas) for s, obj in objectives.items()}
    times = {s: [] for s in STRATEGIES}
    for s in STRATEGIES:  # warm-up
        runs[s]()
    for _ in range(repeats):
        for s in STRATEGIES:
            times[s].append(timed(runs[s], device))
    flops = 3 * forward_flops(model, data.input_shape) * m * data.x_train.shape[0]
    rows = []
    for s in STRATEGIES:
        wall = statistics.median(t[0] for t in times[s])
        cpu = statistics.median(t[1] for t in times[s])
        chosen = objectives[s].strategy
        rows.append(dict(arch=arch, size=f"{width}x{depth}", P=n_params(model), strategy=s,
                         chosen=chosen, wall=wall, cpu=cpu, flops=flops))  # fmt: skip
    loop = rows[0]
    for r in rows:
        r["speedup"], r["cpu_speedup"] = loop["wall"] / r["wall"], loop["cpu"] / r["cpu"]
    return rows


def table(rows: list[dict], peak: float) -> str:
    head = (
        "| arch | width x depth | P | strategy | wall s | CPU s | speed-up vs loop (wall / CPU) "
        "| GFLOP/s | % of matmul |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        name = f"auto ({r['chosen']})" if r["strategy"] == "auto" else r["strategy"]
        rate = r["flops"] / r["wall"]
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['P']:,} | {name} | {r['wall']:.3f} | "
            f"{r['cpu']:.3f} | {r['speedup']:.2f}x / {r['cpu_speedup']:.2f}x | "
            f"{rate / 1e9:.1f} | {100 * rate / peak:.0f}% |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="M=8, 256 examples, 1 repeat")
    parser.add_argument("--m", type=int, default=64, help="parameter vectors per call")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: untouched)")
    parser.add_argument("--no-write", action="store_true", help="leave BENCHMARKS.md alone")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("CUDA is not available on this machine; nothing to benchmark with --device cuda.")
        return 0
    device = torch.device(args.device)
    m, repeats, n_train = (8, 1, 256) if args.quick else (args.m, args.repeats, None)
    data = load_dataset("digits", n_train=n_train, device=device)
    load_before = os.getloadavg()
    peak = matmul_flops(device)
    print(f"{machine()}\nfloat32 2048x2048 matmul: {peak / 1e9:.1f} GFLOP/s")
    rows = []
    for arch in ARCHITECTURES:
        rows += bench_arch(arch, data, device, m, repeats)
        print(table(rows[-len(STRATEGIES) :], peak), flush=True)
    load_after = os.getloadavg()
    body = "\n".join([
        f"## Batched loss + gradient, {device.type} (`bench/engine.py`{' --quick' if args.quick else ''})",  # noqa: E501
        "",
        f"- Machine: {machine()}; {platform.platform()}.",
        f"- Load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f}"
        f" on {os.cpu_count()} cores (other processes share this machine).",
        f"- Task: digits train split, B = {data.x_train.shape[0]} examples, M = {m} parameter "
        f"vectors, objective value + gradient w.r.t. thetas (M, P); 1 warm-up, median of "
        f"{repeats} interleaved repeats.",
        f"- float32 2048x2048 matmul in the same run: {peak / 1e9:.1f} GFLOP/s.",
        "- FLOPs = 3 x forward (2 x multiply-adds, FlopCounterMode) x M x B; speed-up = loop "
        "time / strategy time (> 1: faster than the loop).",
        "",
        table(rows, peak),
    ])  # fmt: skip
    print(f"load average before / after: {load_before[0]:.1f} / {load_after[0]:.1f}")
    if not args.no_write:
        write_block(BLOCK, body)
        print(f"wrote the {BLOCK} block of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
