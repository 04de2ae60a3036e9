"""One prepared GPU check, sized to finish in under 5 minutes on one GPU (2 min on an H100).

    .venv/bin/python bench/gpu_check.py [--device cuda] [--quick] [--sections a,b,...]

1. The default pipeline (digits, MLP, 8 minima, all pairs) on the device, timed per stage.
2. Batched loss + gradient for 64 parameter vectors on CIFAR10-shaped batches (2048 random
   3x32x32 images, and a minibatch of 128 of them: the cost is what is measured, not the
   accuracy): loop, vmap and fused, and the achieved FLOP/s next to a float32 matmul in the
   same run.
3. A CIFAR10-shaped CNN and ResNet landscape, 8 minima, ``pairs="mst"`` (``core.engine.landscape``):
   synthetic images (ten class templates plus noise, so the networks have something to
   learn; the GPU machine cannot download CIFAR10), timed per stage.
4. Path steps in bfloat16 and through ``torch.compile`` against float32 on the CNN minima:
   time per step and the largest saddle difference relative to the float32 barrier.
Without CUDA it says so and exits with code 0 after running nothing, so CI can call it.
A section that fails is reported with its error and the next one runs (a lent GPU machine's
minutes are few). With every section passing it writes the ``bench/gpu_check.py`` block of
BENCHMARKS.md; otherwise it prints.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_block  # noqa: E402
from core.engine.evaluate import values_and_grads  # noqa: E402
from core.engine.landscape import landscape_of  # noqa: E402
from core.engine.paths import PathOptions, connect  # noqa: E402
from core.nets.models import build_model  # noqa: E402
from core.nets.objective import NetworkObjective  # noqa: E402
from core.runs.config import RunConfig  # noqa: E402
from core.runs.pipeline import run  # noqa: E402
from core.runs.store import RunStore  # noqa: E402


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
    """CIFAR10-shaped data: ten random class templates plus noise (learnable, not CIFAR)."""

    def __init__(self, n_train, n_test, device, seed=0, noise=1.0):
        g = torch.Generator().manual_seed(seed)
        templates = torch.rand(10, 3, 32, 32, generator=g)

        def draw(n):
            y = torch.randint(0, 10, (n,), generator=g)
            x = templates[y] + noise * torch.randn(n, 3, 32, 32, generator=g)
            return x.to(device), y.to(device)

        self.x_train, self.y_train = draw(n_train)
        self.x_test, self.y_test = draw(n_test)
        self.n_classes, self.input_shape, self.name = 10, (3, 32, 32), "cifar10-shaped"


FULL = {
    "n_train": 2048,
    "train_steps": 400,
    "path_steps": 300,
    "m": 64,
    "matmul": 4096,
    "max_density": 64,
}
QUICK = {
    "n_train": 64,
    "train_steps": 20,
    "path_steps": 10,
    "m": 4,
    "matmul": 1024,
    "max_density": 8,
}


def landscape_row(arch, width, depth, data, device, size) -> tuple[str, object, object]:
    """One timed 8-minima landscape (mst pairs) of a CIFAR10-shaped network."""
    model = build_model(arch, width, depth, data.input_shape, data.n_classes)
    obj = NetworkObjective(model, data, l2=1e-4, batch_size=128, device=device)
    starts = obj.init(8, seed=0)
    t0 = time.perf_counter()
    land = landscape_of(
        obj,
        starts,
        step_objective=obj.minibatch,
        minima={
            "optimizer": "adam",
            "lr": 0.01,
            "lr_final": 1e-4,
            "steps": size["train_steps"],
            "grad_tol": 1e-3,
            "merge_distance": 1e-2,  # the engine's default when this check was written
        },
        paths={
            "pairs": "mst",
            "steps": size["path_steps"],
            "noisy_steps": size["path_steps"] // 2,
            "check_density": 2,
            "check_every": 50,
            "max_density": size["max_density"],
        },
    )
    sync(device)
    total = time.perf_counter() - t0
    conn = land.paths
    row = (
        f"| {arch} {width}x{depth} | {obj.n_params:,} | {len(land.minima)} | {len(conn)} of "
        f"{len(land.minima) * (len(land.minima) - 1) // 2} | {int(conn.converged.sum())} | "
        f"{total:.1f} | {land.barcode.to_score():.4g} |"
    )
    return row, obj, land


def precision_rows(obj, land, device, size) -> list[str]:
    """Path steps in float32, bfloat16 and compiled float32 on the same minima and pairs."""
    pairs = land.paths.pairs[:4]
    results = {}
    for name, precision, step_src in (
        ("float32", "float32", obj),
        ("bfloat16", "bfloat16", obj),
        ("compiled float32", "float32", obj.compiled()),
    ):
        opts = PathOptions(
            steps=size["path_steps"],
            noisy_steps=size["path_steps"],
            check_density=2,
            precision=precision,
            max_density=size["max_density"],
        )
        connect(
            obj,
            land.minima.thetas,
            pairs,
            PathOptions(steps=2, max_density=8, precision=precision),
            step_objective=step_src.minibatch,
        )
        sync(device)
        t0 = time.perf_counter()
        p = connect(obj, land.minima.thetas, pairs, opts, step_objective=step_src.minibatch)
        sync(device)
        results[name] = (time.perf_counter() - t0, p)
    ref_t, ref = results["float32"]
    low = land.minima.values[ref.pairs].max(1)
    rows = []
    for name, (t, p) in results.items():
        diff, barrier = abs(p.saddles - ref.saddles), ref.saddles - low
        # a pair whose float32 saddle is its higher end has no barrier to compare with
        rel = diff[barrier > 0] / barrier[barrier > 0]
        rows.append(
            f"| {name} | {t:.1f} | {ref_t / t:.2f}x | {rel.max():.2%} of {len(rel)} barriers, "
            f"{diff.max():.2g} absolute |"
        )
    return rows


def default_run(a, size) -> list[str]:
    """1. The default pipeline on the device (the run of bench/default_run.py)."""
    cfg = RunConfig(device=a.device).replace(model={"width": 32, "depth": 2})
    if a.quick:
        cfg = cfg.replace(train={"steps": 30}, paths={"steps": 20})
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run(cfg, store=RunStore(tmp))
        total = time.perf_counter() - t0
    s = r.summary
    return [
        f"Default run ({cfg.data.name}, {cfg.model.arch} w{cfg.model.width} d"
        f"{cfg.model.depth}, {cfg.train.minima} minima, {s.n_paths} paths): {total:.1f} s "
        f"(minima {s.seconds_minima:.1f} s, paths {s.seconds_paths:.1f} s), TO sum "
        f"{s.to_score_sum:.4g}, {s.n_paths_converged}/{s.n_paths} paths converged."
    ]


def batched_vs_loop(device, size) -> list[str]:
    """2. Loss + gradient of M vectors per strategy, whole set and minibatch, vs matmul."""
    from torch.utils.flop_counter import FlopCounterMode

    n = size["matmul"]
    x, y = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    peak = 2 * n**3 / timed(lambda: x @ y, device)
    lines = [f"float32 matmul {n}x{n}: {peak / 1e12:.2f} TFLOP/s", ""]
    lines += [
        "| arch | P | examples | strategy | ms | vs loop | TFLOP/s | of matmul |",
        "|---|---|---|---|---|---|---|---|",
    ]
    data = FakeData(size["n_train"], 512, device)
    for arch in ("mlp", "cnn", "resnet", "transformer"):
        model = build_model(arch, 32, 2, data.input_shape, 10)
        with FlopCounterMode(display=False) as fc:
            model(data.x_train[:1].cpu())
        for examples in (size["n_train"], 128):
            flops = 3 * fc.get_total_flops() * size["m"] * examples
            times = {}
            for strategy in ("loop", "vmap", "fused"):
                obj = NetworkObjective(
                    model, data, batch_size=128, strategy=strategy, device=device
                )
                f = obj if examples == size["n_train"] else obj.minibatch(0)
                th = obj.init(size["m"], 0)
                times[strategy] = timed(lambda f=f, t=th: values_and_grads(f, t), device, 3)
            for strategy, t in times.items():
                lines.append(
                    f"| {arch} | {obj.n_params:,} | {examples} | {strategy} | {1000 * t:.1f} | "
                    f"{times['loop'] / t:.1f}x | {flops / t / 1e12:.2f} | {flops / t / peak:.0%} |"
                )
    return lines


def landscapes(device, size) -> tuple[list[str], tuple]:
    """3. CIFAR10-shaped landscapes, 8 minima, mst pairs."""
    lines = [
        f"CIFAR10-shaped landscapes ({size['n_train']} synthetic train images, minibatch 128, "
        f"{size['train_steps']} training steps, {size['path_steps']} path steps, pairs=mst):",
        "",
        "| network | P | minima | paths optimised | converged | seconds | TO sum |",
        "|---|---|---|---|---|---|---|",
    ]
    cifar = FakeData(size["n_train"], 512, device)
    row, cnn_obj, cnn_land = landscape_row("cnn", 16, 2, cifar, device, size)
    lines.append(row)
    lines.append(landscape_row("resnet", 16, 2, cifar, device, size)[0])
    return lines, (cnn_obj, cnn_land)


def precisions(cnn, device, size) -> list[str]:
    """4. bfloat16 and torch.compile path steps against float32."""
    return [
        f"Path steps on the CNN minima (4 pairs, {size['path_steps']} steps incl. checks and "
        "final float32 saddles); saddle difference relative to the float32 barrier above the "
        "higher end:",
        "",
        "| path steps | seconds | vs float32 | largest saddle difference |",
        "|---|---|---|---|",
        *precision_rows(*cnn, device, size),
    ]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument(
        "--sections",
        default="default,batched,landscapes,precisions",
        help="comma-separated subset (precisions needs landscapes)",
    )
    a = ap.parse_args()
    wanted = set(a.sections.split(","))
    if a.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (run this on a GPU machine)")
        return 0
    device = torch.device(a.device)
    size = QUICK if a.quick else FULL
    lines = [f"Machine: {machine()}", "Command: `.venv/bin/python bench/gpu_check.py`"]
    start, failed, cnn = time.perf_counter(), [], None

    def section(name, fn):
        """Run one section; a failure is printed and recorded, and the next section runs."""
        print(f"[{time.perf_counter() - start:.0f} s] {name}", flush=True)
        try:
            out = fn()
            print("\n".join(out[0] if isinstance(out, tuple) else out), flush=True)
            return out
        except Exception as e:  # a GPU check should report every section it can
            traceback.print_exc()
            failed.append(name)
            lines.extend(["", f"{name}: FAILED ({type(e).__name__}: {e})"])
            return None

    if "default" in wanted:
        out = section("default run", lambda: default_run(a, size))
        lines += ["", *out] if out else []
    if "batched" in wanted:
        out = section("batched vs loop", lambda: batched_vs_loop(device, size))
        lines += ["", *out] if out else []
    out = (
        section("landscapes", lambda: landscapes(device, size)) if "landscapes" in wanted else None
    )
    if out:
        lines += ["", *out[0]]
        cnn = out[1]
        if "precisions" in wanted:
            out = section("precisions", lambda: precisions(cnn, device, size))
            lines += ["", *out] if out else []
    text = "\n".join(lines)
    print(text)
    if a.quick or failed or len(wanted) < 4:
        return 1 if failed else 0
    write_block("bench/gpu_check.py", "## GPU check\n\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
