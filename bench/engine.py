"""Benchmark: loss + gradient of M networks at once, per architecture and strategy.

    .venv/bin/python bench/engine.py [--device cpu|cuda] [--quick] [--threads N] [--no-write]

For every architecture at a small default size, on the digits train split (1437 examples),
times ``NetworkObjective(...)(thetas)`` plus the backward pass w.r.t. the (M, P) ``thetas``
for each evaluation strategy (``loop``, ``vmap``, ``fused``, ``auto``), all in this one run
and interleaved (one repeat of every strategy, then the next repeat), so that a machine that
gets busier or quieter part-way through affects all of them alike. Prints the median wall
and CPU time, the speed-up over the loop, and the achieved FLOP/s as a fraction of a large
float32 matmul measured in the same run. FLOPs = 3 x (forward multiply-adds x 2) x M x B,
the forward counted by ``torch.utils.flop_counter.FlopCounterMode`` on one network. For the
MLP it also times the fused strategy's matrix products alone (``mlp_products``): how far
the MLP's rate is from the matmul's because of its thin matrix shapes, and how far because
of everything else.

On a CPU with several threads it then repeats the table with one intra-op thread (one
round), the other CPU row of ``AUTO_STRATEGY`` in core/nets/device.py, which is chosen from
these tables. Writes them into BENCHMARKS.md between ``<!-- bench/engine.py start -->`` and
``<!-- bench/engine.py end -->``, leaving the rest of the file alone.
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
from core.engine.evaluate import _chunks, values_and_grads  # noqa: E402
from core.nets.data import load_dataset  # noqa: E402
from core.nets.models import ARCHITECTURES, build_model, n_params  # noqa: E402
from core.nets.objective import NetworkObjective  # noqa: E402

BLOCK = "bench/engine.py"
# (width, depth): the resnet is narrower so that every architecture costs about the same per
# example (1e5 .. 2e5 multiply-adds); at width 16 one resnet call took a minute here.
SIZES = {"mlp": (32, 2), "cnn": (32, 2), "resnet": (8, 2), "transformer": (32, 2)}
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


def matmul(device: torch.device, n: int = 2048):
    """A float32 n x n matmul as a timed task, and its FLOPs."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    return (lambda: a @ b), 2 * n**3


def forward_flops(model: torch.nn.Module, input_shape: tuple) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass of one network on one example."""
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    return counter.get_total_flops()


def mlp_products(model: torch.nn.Module, sizes: list[int], b: int, device: torch.device):
    """The matrix products of the fused MLP's loss + gradient (``MLP.ce_and_grad_many``) and
    nothing else, as a timed task: for each block of ``sizes[i]`` networks on ``b`` examples,
    on random operands of the same shapes and memory layouts, the first layer's one wide
    forward and weight-gradient products, and every later layer's batched forward,
    weight-gradient and input-gradient products. No biases, ReLU, softmax or copies: the
    rate that these shapes allow on the device, the ceiling of the fused MLP's own rate."""
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    layers = [*model.hidden, model.head]
    products = []
    for m in sizes:
        x0 = rand(b, layers[0].in_features).T  # (D, B), a view, as x.flatten(1).T
        w0, g0 = rand(m * layers[0].out_features, x0.shape[0]), rand(m * layers[0].out_features, b)
        products += [lambda w=w0, x=x0: w @ x, lambda g=g0, x=x0: g @ x.T]
        for layer in layers[1:]:
            o, i = layer.out_features, layer.in_features
            w, h, gr = rand(m, o, i), rand(m, i, b), rand(m, o, b)
            products += [
                lambda w=w, h=h: torch.bmm(w, h),  # forward
                lambda g=gr, h=h: torch.bmm(g, h.transpose(1, 2)),  # weight gradient
                lambda w=w, g=gr: torch.bmm(w.transpose(1, 2), g),  # input gradient
            ]

    def task():
        for product in products:
            product()

    return task


def loss_and_grad(objective: NetworkObjective, thetas: torch.Tensor, chunk: int | None = None):
    """The engine's own call (``core.engine.evaluate.values_and_grads``): in
    ``objective.block_size`` chunks unless ``chunk`` is given."""
    return lambda: values_and_grads(objective, thetas, chunk)


def bench_arch(arch, data, device, m, repeats, batch=None) -> list[dict]:
    """Time every strategy on one architecture, and the matmul, in interleaved rounds, on the
    whole train set (``batch`` None) or on its first minibatch of ``batch`` examples."""
    width, depth = SIZES[arch]
    model = build_model(arch, width, depth, data.input_shape, data.n_classes)
    objectives = {
        s: NetworkObjective(model, data, strategy=s, device=device, batch_size=batch)
        for s in STRATEGIES
    }
    on = {s: obj.minibatch(0) if batch else obj for s, obj in objectives.items()}
    b = batch or data.x_train.shape[0]
    thetas = objectives["loop"].init(m, seed=0)
    tasks = {s: loss_and_grad(f, thetas) for s, f in on.items()}
    tasks["fused, one block"] = loss_and_grad(on["fused"], thetas, chunk=m)
    if callable(getattr(model, "ce_and_grad_many", None)):  # the same, backward by autograd
        graph = NetworkObjective(model, data, strategy="fused", device=device, batch_size=batch)
        graph._hand_grad = lambda m: False
        tasks["fused, autograd"] = loss_and_grad(graph.minibatch(0) if batch else graph, thetas)
        sizes = [s.stop - s.start for s in _chunks(on["fused"], m, None)]
        tasks["fused, its products alone"] = mlp_products(model, sizes, b, device)
    tasks["matmul"], matmul_flops = matmul(device)
    warm = sum(timed(task, device)[0] for task in tasks.values())  # warm-up round
    repeats = min(repeats, 3) if warm > 30 else repeats  # slow machine: fewer rounds
    times = {name: [] for name in tasks}
    for _ in range(repeats):
        for name, task in tasks.items():
            times[name].append(timed(task, device))
    peak = matmul_flops / statistics.median(t[0] for t in times["matmul"])
    flops = 3 * forward_flops(model, data.input_shape) * m * b
    loop = [statistics.median(t[i] for t in times["loop"]) for i in (0, 1)]
    rows = []
    extra = ("fused, one block", "fused, autograd", "fused, its products alone")
    for s in (*STRATEGIES, *extra):
        if s not in times:
            continue
        wall, cpu = (statistics.median(t[i] for t in times[s]) for i in (0, 1))
        obj = objectives.get(s, objectives["fused"])
        block = m if s == "fused, one block" else obj.block_size(m, b)
        rows.append(
            dict(
                arch=arch,
                size=f"{width}x{depth}",
                P=n_params(model),
                strategy=s,
                chosen=obj.strategy_for(block),
                block=block,
                wall=wall,
                cpu=cpu,
                speedup=loop[0] / wall,
                cpu_speedup=loop[1] / cpu,
                rate=flops / wall,
                peak=peak,
                repeats=repeats,
            )
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| arch | width x depth | P | strategy | wall s | CPU s | speed-up vs loop (wall / CPU) "
        "| GFLOP/s | matmul GFLOP/s | % of matmul | vectors per block | rounds |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = f"auto ({r['chosen']})" if r["strategy"] == "auto" else r["strategy"]
        lines.append(
            f"| {r['arch']} | {r['size']} | {r['P']:,} | {name} | {r['wall']:.3f} | "
            f"{r['cpu']:.3f} | {r['speedup']:.2f}x / {r['cpu_speedup']:.2f}x | "
            f"{r['rate'] / 1e9:.1f} | {r['peak'] / 1e9:.1f} | {100 * r['rate'] / r['peak']:.0f}% | "
            f"{r['block']} | {r['repeats']} |"
        )
    return "\n".join(lines)


def run_all(data, device, m, repeats, batch=None) -> list[dict]:
    rows = []
    for arch in ARCHITECTURES:
        mine = bench_arch(arch, data, device, m, repeats, batch)
        print(table(mine), flush=True)
        rows += mine
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="M=8, 256 examples, 1 round")
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
    load_before = os.getloadavg()[0]
    print(machine())
    threads = torch.get_num_threads()
    # (threads, examples per evaluation, rounds): the whole train set (checks, saddles) and a
    # minibatch of 128 (path steps); on a CPU also one thread, the "cpu1" row of AUTO_STRATEGY
    settings = [(threads, None, repeats), (threads, 128, repeats)]
    if device.type == "cpu" and threads > 1 and not args.quick:
        settings += [(1, None, 3), (1, 128, 3)]
    tables = []
    for n_threads, batch, rounds in settings:
        torch.set_num_threads(n_threads)
        title = (
            f"{n_threads} intra-op thread{'s' if n_threads > 1 else ''}"
            f"{' (the default)' if n_threads == threads and not args.threads else ''}, "
            + (f"minibatch of {batch} examples" if batch else "whole train set")
        )
        print(title + ":", flush=True)
        tables += ["", title + ":", "", table(run_all(data, device, m, rounds, batch))]
    torch.set_num_threads(threads)
    load_after = os.getloadavg()[0]
    command = " ".join(["bench/engine.py", *(sys.argv[1:] if argv is None else argv)])
    body = "\n".join(
        [
            f"## Batched loss + gradient on {device.type} (`{command}`)",
            "",
            f"- Machine: {machine()}; {platform.platform()}.",
            f"- Load average (1 min) before / after: {load_before:.1f} / {load_after:.1f} on "
            f"{os.cpu_count()} cores: read the ratios (all strategies were timed in the same "
            "interleaved rounds) rather than the absolute times.",
            f"- Task: digits train split ({data.x_train.shape[0]} examples, or its first "
            f"minibatch), M = {m} parameter vectors: objective value + gradient w.r.t. thetas "
            "(M, P). One warm-up round, then median of `rounds` rounds; each round times every "
            "strategy and a float32 2048x2048 matmul once (with the same threads).",
            "- Every strategy is called as the engine calls it "
            "(`core.engine.evaluate.values_and_grads`), in chunks of `objective.block_size(M)` "
            "vectors (a block's activations within half the CPU's last-level cache; the memory "
            "budget on a GPU); `fused, one block` is the fused strategy with all M vectors in one "
            "call, for comparison; `fused, autograd` (MLP) is fused with autograd's backward "
            "instead of the model's hand-written one (`ce_and_grad_many`); `fused, its products "
            "alone` (MLP) runs only the matrix products of the fused MLP's loss and gradient, in "
            "the same blocks, shapes and layouts, on random operands: no biases, ReLU, softmax or "
            "copies, so its rate is the ceiling that these matrix shapes put on the fused MLP "
            "(counted with the same FLOPs). `auto` takes the loop for blocks of one network.",
            "- FLOPs = 3 x forward (2 x multiply-adds, counted by FlopCounterMode on one network) "
            "x M x B. Speed-up = loop time / strategy time (> 1: faster than the loop). CPU s = "
            "CPU time of the process (all threads).",
            *tables,
        ]
    )
    print(f"load average before / after: {load_before:.1f} / {load_after:.1f}")
    if not args.no_write:
        write_block(BLOCK, body)
        print(f"wrote the {BLOCK} block of BENCHMARKS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
