"""One prepared GPU check, sized to finish in under 5 minutes on one GPU.

    .venv/bin/python bench/gpu_check.py [--device cuda] [--budget small|full]

1. The default pipeline (digits, MLP, 8 minima, all pairs) on the device, timed per stage.
2. Batched loss + gradient for 64 parameter vectors on CIFAR10-shaped batches (2048 random
   3x32x32 images: the cost is what is measured, not the accuracy) vs a per-model loop, for
   every architecture, and the achieved FLOP/s next to a float32 matmul in the same run.
Without CUDA it says so and exits with code 0 after running nothing, so CI can call it.
Writes the ``bench/gpu_check.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_block  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.evaluate import values_and_grads  # noqa: E402
from core.models import build_model  # noqa: E402
from core.objective import NetworkObjective  # noqa: E402
from core.pipeline import run  # noqa: E402
from core.runs import RunStore  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats=5):
    fn()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / repeats


class FakeData:
    """CIFAR10-shaped random data: only the cost of the run is measured."""

    def __init__(self, n_train, n_test, device, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x_train = torch.rand(n_train, 3, 32, 32, generator=g).to(device)
        self.y_train = torch.randint(0, 10, (n_train,), generator=g).to(device)
        self.x_test = torch.rand(n_test, 3, 32, 32, generator=g).to(device)
        self.y_test = torch.randint(0, 10, (n_test,), generator=g).to(device)
        self.n_classes, self.input_shape, self.name = 10, (3, 32, 32), "cifar10-shaped"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this on a GPU machine)")
        return 0
    device = torch.device(a.device)
    lines = [f"Machine: {machine()}", "Command: `.venv/bin/python bench/gpu_check.py`", ""]

    # 1. The default pipeline on the device.
    cfg = RunConfig(device=a.device)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run(cfg, store=RunStore(tmp))
        total = time.perf_counter() - t0
    s = r.summary
    lines.append(
        f"Default run ({cfg.data.name}, {cfg.model.arch} w{cfg.model.width} d"
        f"{cfg.model.depth}, {cfg.train.minima} minima, {s['n_paths']} paths): {total:.1f} s "
        f"(minima {s['seconds_minima']:.1f} s, paths {s['seconds_paths']:.1f} s), TO sum "
        f"{s['to_score_sum']:.4g}, {s['n_paths_converged']}/{s['n_paths']} paths converged."
    )

    # 2. Batched vs loop per architecture, and FLOP/s vs matmul.
    n = 4096
    x, y = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    peak = 2 * n**3 / timed(lambda: x @ y, device)
    lines += ["", f"float32 matmul {n}x{n}: {peak / 1e12:.2f} TFLOP/s", ""]
    lines += [
        "| arch | P | strategy | ms | vs loop | TFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|",
    ]
    data = FakeData(2048, 512, device)
    from torch.utils.flop_counter import FlopCounterMode

    for arch in ("mlp", "cnn", "resnet", "transformer"):
        model = build_model(arch, 32, 2, data.input_shape, 10)
        with FlopCounterMode(display=False) as fc:
            model(data.x_train[:1].cpu())
        flops = 3 * fc.get_total_flops() * 64 * 2048
        times = {}
        for strategy in ("loop", "vmap", "auto"):
            obj = NetworkObjective(model, data, batch_size=None, strategy=strategy, device=device)
            th = obj.init(64, 0)
            times[strategy] = timed(lambda o=obj, t=th: values_and_grads(o, t), device, 3)
        for strategy, t in times.items():
            lines.append(
                f"| {arch} | {obj.n_params:,} | {strategy} | {1000 * t:.1f} | "
                f"{times['loop'] / t:.1f}x | {flops / t / 1e12:.2f} | {flops / t / peak:.0%} |"
            )
    text = "\n".join(lines)
    print(text)
    write_block("bench/gpu_check.py", "## GPU check\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
