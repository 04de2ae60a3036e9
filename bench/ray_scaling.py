"""Ray on this machine: a sweep serial vs on Ray workers, and one run's pairs split over
workers vs one process.

    .venv/bin/python bench/ray_scaling.py [--workers 2] [--widths 8,32] [--threads] [--quick]

1. Sweep: the same grid (MNIST-1D MLPs, widths x depths) computed serially in this process
   with one torch thread, then with ``run_sweep(..., executor="ray")`` on a local Ray instance
   with ``--workers`` CPUs (one thread per worker), each in a fresh run store; Ray's start is
   counted. Prints serial seconds / Ray seconds and checks that both give the same barcodes.
2. Pairs of one run: for each width, the minima are trained once, then the paths stage
   (``landscape_of`` given those minima) runs (a) here with one thread, (b) here with
   ``paths.groups = --workers`` batches one after the other, (c) the same batches on as many
   Ray actors (``PairWorkers``; their start, which loads the data and builds the network, is
   timed apart), and with ``--threads`` (d) here with ``--workers`` threads. Prints (a)/(c),
   the whole gain, and (b)/(c), the gain of running the batches side by side.

Writes the ``bench/ray_scaling.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.report import machine, write_block  # noqa: E402
from core.engine.landscape import landscape_of  # noqa: E402
from core.runs.config import DataConfig, ModelConfig, PathConfig, RunConfig, TrainConfig  # noqa: E402
from core.runs.pipeline import path_objectives, run  # noqa: E402
from core.runs.ray_executor import PairWorkers, shutdown  # noqa: E402
from core.runs.store import RunStore, read_run  # noqa: E402
from core.runs.sweep import SweepSpec, run_sweep  # noqa: E402


def base(width: int, depth: int, quick: bool) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="mnist1d", n_train=1000 if quick else 2000, n_test=500),
        model=ModelConfig(arch="mlp", width=width, depth=depth),
        train=TrainConfig(minima=6, steps=400 if quick else 1500),
        paths=PathConfig(steps=300 if quick else 1000),
        device="cpu",
    )


def sweep_ratio(workers: int, quick: bool) -> tuple[str, float]:
    spec = SweepSpec(base=base(16, 1, quick), widths=(8, 16), depths=(1, 2))
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(1)
        t = time.perf_counter()
        serial = run_sweep(spec, RunStore(Path(tmp) / "serial"))
        t_serial = time.perf_counter() - t
        import ray

        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        on_ray = run_sweep(spec, RunStore(Path(tmp) / "ray"), executor="ray")
        t_ray = time.perf_counter() - t
        same = all(
            read_run(RunStore(Path(tmp) / "serial"), r).barcode
            == read_run(RunStore(Path(tmp) / "ray"), r).barcode
            for r in serial.run_ids
        )
        shutdown()
    assert not on_ray.failed and len(on_ray.new) == len(serial.new) == 4
    ratio = t_serial / t_ray
    line = (
        f"| sweep: 4 runs (MNIST-1D MLP widths 8,16 x depths 1,2) | {t_serial:.1f} | - | - | "
        f"{t_ray:.1f} (Ray start included) | **{ratio:.2f}x** | - | barcodes equal: {same} |"
    )
    return line, ratio


def paths_seconds(config, minima, group_map=None) -> tuple[float, float]:
    objective, step = path_objectives(config)
    t = time.perf_counter()
    land = landscape_of(
        objective,
        None,
        minima=config.train,
        paths=config.paths,
        step_objective={"paths": step},
        explore=0,
        found=minima,
        group_map=group_map,
    )
    return time.perf_counter() - t, land.barcode.to_score()


def pairs_rows(widths, workers: int, quick: bool, threads: bool) -> list[str]:
    import ray

    rows = []
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    for w in widths:
        config = base(w, 2, quick)
        split = config.replace(paths={"groups": workers})
        torch.set_num_threads(1)
        with tempfile.TemporaryDirectory() as tmp:
            minima = run(config, store=RunStore(tmp)).minima
        one, to_one = paths_seconds(config, minima)
        print(f"width {w}: one process {one:.1f} s", flush=True)
        here, to_here = paths_seconds(split, minima)
        print(f"width {w}: one process, {workers} batches {here:.1f} s", flush=True)
        many = "-"
        if threads:
            torch.set_num_threads(workers)
            t, _ = paths_seconds(config, minima)
            many = f"{t:.1f}"
            torch.set_num_threads(1)
        t = time.perf_counter()
        with PairWorkers(split, workers) as pool:
            ray.get([a.__ray_ready__.remote() for a in pool.actors])
            start = time.perf_counter() - t
            on_ray, to_ray = paths_seconds(split, minima, pool)
        params = minima.thetas.shape[1]
        rows.append(
            f"| pairs: 15 paths, MLP width {w} depth 2 ({params:,} parameters) | {one:.1f} | "
            f"{many} | {here:.1f} | {on_ray:.1f} (+{start:.1f} actor start) | "
            f"**{one / on_ray:.2f}x** | **{here / on_ray:.2f}x** | "
            f"TO sums {to_one:.4g} / {to_here:.4g} / {to_ray:.4g} |"
        )
        print(rows[-1], flush=True)
    shutdown()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--widths", default="8,32")
    ap.add_argument("--quick", action="store_true", help="fewer examples and steps (a check)")
    ap.add_argument(
        "--threads", action="store_true", help="also time one process with --workers threads"
    )
    ap.add_argument(
        "--rows-from",
        metavar="LOG",
        help="take the pairs rows from the output of an earlier invocation (same settings) "
        "instead of measuring them; only the sweep is measured",
    )
    a = ap.parse_args()
    widths = [int(w) for w in a.widths.split(",")]
    if a.rows_from:
        lines = Path(a.rows_from).read_text().splitlines()
        pair_rows = [x for x in lines if x.startswith("| pairs:")]
    else:
        pair_rows = pairs_rows(widths, a.workers, a.quick, a.threads)
    sweep_line, _ = sweep_ratio(a.workers, a.quick)
    print(sweep_line)
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python bench/ray_scaling.py " + " ".join(sys.argv[1:])
    body = "\n".join(
        [
            f"## Ray: a sweep, and one run's pairs, over {a.workers} workers "
            "(`bench/ray_scaling.py`)",
            "",
            f"Machine: {machine()}. Command: `{cmd.strip()}`"
            + (
                " (the pairs rows: the same command without --rows-from, earlier)"
                if a.rows_from
                else ""
            )
            + ". Workers are local Ray processes with one torch thread each; 'one process' "
            f"uses one thread, 'threads' {a.workers} (with --threads); 'batches' relaxes "
            f"`paths.groups={a.workers}` batches one after the other here, the same computation "
            "as on the workers, so 'batches here / Ray' is the speed-up of running them side by "
            "side and 'one process / Ray' the whole gain. Paths rows time the paths stage only, "
            "on the same trained minima (6 minima, all 15 pairs, MNIST-1D, 2000 examples, at "
            "most 1000 path steps).",
            "",
            "| what | one process, s | one process, threads, s | one process, batches, s | "
            "Ray workers, s | one process / Ray | batches here / Ray | check |",
            "|---|---|---|---|---|---|---|---|",
            *pair_rows,
            sweep_line,
        ]
    )
    write_block("bench/ray_scaling.py", body)


if __name__ == "__main__":
    main()
