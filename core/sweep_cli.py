"""The ``sweep``, ``sweeps``, ``presets`` and ``report`` commands of ``python -m core``.

    python -m core sweep --dataset digits --arch mlp --widths 4,8,16 --depths 1,2 --seeds 0,1,2
    python -m core sweep --preset cpu-digits          # a named sweep (python -m core presets)
    python -m core report SWEEP_ID [SWEEP_ID ...] --out docs/ [--format md,html]

``sweep`` prints one line per run (log friendly: no carriage returns) and the sweep id.
"""

from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from core.engine.options import REGIMES
from core.report.document import build_report, write_report
from core.runs.presets import GPU_FLOPS, PRESETS, estimate_cost, get_preset, run_cost
from core.runs.ray_executor import check_address
from core.runs.store import RunStore
from core.runs.sweep import (
    EXECUTORS,
    SweepSpec,
    describe,
    list_sweeps,
    parse_list,
    plan_sweep,
    run_sweep,
    sweep_id,
)


def add_commands(sub, run_flags) -> None:
    """Add the commands to the subparsers ``sub``; ``run_flags(parser)`` adds the run flags."""
    s = sub.add_parser("sweep", help="run a grid of configurations (cached by run id)")
    run_flags(s)
    s.add_argument(
        "--preset",
        help="a named sweep (see `python -m core presets`); run flags "
        "given as well override its settings",
    )
    s.add_argument("--widths", help="comma-separated widths, e.g. 4,8,16")
    s.add_argument("--depths", help="comma-separated depths, e.g. 1,2,3")
    s.add_argument("--seeds", help="comma-separated seeds, e.g. 0,1,2")
    s.add_argument("--datasets", help="comma-separated datasets")
    s.add_argument("--archs", help="comma-separated architectures")
    s.add_argument(
        "--regimes",
        help=f"comma-separated regimes ({', '.join(REGIMES)}), each "
        "optionally with its own learning rate: anneal,constant:0.001",
    )
    s.add_argument("--dry-run", action="store_true", help="print the runs and their cost only")
    s.add_argument(
        "--executor",
        default="serial",
        choices=EXECUTORS,
        help="serial (default): one run after another here; ray: every run a Ray task",
    )
    s.add_argument("--address", help="with --executor ray: join this Ray cluster (ray start)")
    sub.add_parser("sweeps", help="list saved sweeps")
    sub.add_parser("presets", help="list the named sweeps with their expected cost")
    r = sub.add_parser("report", help="write the report of one or more sweeps")
    r.add_argument("sweep_ids", nargs="+", metavar="SWEEP_ID")
    r.add_argument("--out", default="docs", help="output folder (default: docs/)")
    r.add_argument("--name", default="REPRODUCTION", help="file name without extension")
    r.add_argument("--format", default="md", help="md, html or md,html (default: md)")
    r.add_argument("--images", default="png,svg", help="figure formats, or 'none'")
    r.add_argument("--subsamples", type=int, default=5, help="data subsets per bar (default 5)")
    r.add_argument("--fraction", type=float, default=0.5, help="share of data per subset")
    r.add_argument("--title", default="Reproduction of the paper's two observations")


def specs_from_args(a: argparse.Namespace, config_from_args):
    """The sweep's specs (and its name) from the flags, or from ``--preset`` plus overrides."""

    axes = {
        "widths": parse_list(a.widths, int, "--widths") if a.widths else (),
        "depths": parse_list(a.depths, int, "--depths") if a.depths else (),
        "seeds": parse_list(a.seeds, int, "--seeds") if a.seeds else (),
        "datasets": parse_list(a.datasets, str, "--datasets") if a.datasets else (),
        "archs": parse_list(a.archs, str, "--archs") if a.archs else (),
        "regimes": parse_list(a.regimes, str, "--regimes") if a.regimes else (),
    }
    if not a.preset:
        return (SweepSpec(base=config_from_args(a), **axes),), ""
    preset = get_preset(a.preset)
    specs = []
    for s in preset.specs:
        given = {k: v for k, v in axes.items() if v}
        kw = {
            k: getattr(s, k) for k in ("widths", "depths", "seeds", "datasets", "archs", "regimes")
        } | given
        specs.append(SweepSpec(base=config_from_args(a, s.base), **kw))
    return tuple(specs), preset.name


def cmd_sweep(a, store: RunStore, config_from_args) -> int:
    if a.address and a.executor != "ray":
        raise ValueError(f"--address {a.address!r} needs --executor ray")
    if a.address:
        check_address(a.address)  # before anything is printed or recorded
    specs, name = specs_from_args(a, config_from_args)
    plan = plan_sweep(specs, store)
    sid = sweep_id(specs)
    cached = sum(stage == "results" for _, stage in plan)
    print(
        f"sweep {sid}{f' ({name})' if name else ''}: {len(plan)} runs, {cached} already finished",
        flush=True,
    )
    if a.dry_run:
        for c, stage in plan:
            cost = run_cost(c)
            print(
                f"  {c.run_id}  {describe(c):48} {stage:8} {cost['parameters']:>9,} params "
                f"{cost['FLOPs'] / 1e12:9.2f} TFLOP"
            )
        return 0
    t0, shown = time.perf_counter(), {}
    counts = {"done": 0, "cached": 0, "failed": 0}
    bar = tqdm(total=len(plan), desc="sweep", unit="run", file=sys.stderr, leave=False)

    def say(text: str) -> None:
        tqdm.write(text, file=sys.stdout)

    def progress(p) -> None:
        key = (p.index, p.stage)
        if key in shown:
            return
        shown[key] = time.perf_counter()
        head = f"[{p.index + 1}/{p.n_runs}] {p.run_id} {describe(p.config)}"
        if p.stage in ("minima", "paths"):
            say(f"{head}: {p.stage} ({p.total} steps max)")
        elif p.stage == "done":
            start = shown.get((p.index, "minima"), shown.get((p.index, "paths"), t0))
            sweep = time.perf_counter() - t0
            say(f"{head}: done in {shown[key] - start:.0f} s (sweep {sweep:.0f} s)")
        else:
            say(f"{head}: {p.stage}")
        if p.stage in counts:  # one bar for the sweep: runs finished, new / cached / failed
            counts[p.stage] += 1
            bar.update(1)
            bar.set_postfix(new=counts["done"], cached=counts["cached"], failed=counts["failed"])

    try:
        res = run_sweep(specs, store, progress, name=name, executor=a.executor, address=a.address)
    finally:
        bar.close()
    print(
        f"sweep {res.sweep_id}: {len(res.run_ids)} runs, {len(res.new)} new, "
        f"{len(res.reused)} re-used, {len(res.failed)} failed, {res.seconds:.0f} s"
    )
    for rid, why in res.failed.items():
        print(f"run {rid} failed: {why}", file=sys.stderr)
    print(f"report: python -m core --runs-dir {store.root} report {res.sweep_id} --out docs/")
    return 1 if res.failed else 0


def cmd_sweeps(a, store: RunStore) -> int:

    for rec in list_sweeps(store):
        done = sum(store.stage(i) == "results" for i in rec.run_ids)
        print(
            f"{rec.sweep_id}  {rec.name or '-':14} {done:4d}/{len(rec.run_ids):<4d} finished  "
            f"{rec.compute_seconds / 60:7.1f} min"
        )
    return 0


def cmd_presets(a, store: RunStore) -> int:

    for p in PRESETS.values():
        c = estimate_cost(p)
        lo, hi = c["parameters"]
        measured = ", ".join(f"{d} {arch}" for d, arch in c["measured"])
        basis = f"as measured on {measured}" if measured else "at the caps: none measured"
        basis += "; the others at the caps" if measured and c["unmeasured"] else ""
        print(
            f"{p.name:18} {p.device}: {p.description}\n{'':18} {c['runs']} runs, {lo:,}-{hi:,} "
            f"parameters, up to {c['examples per training step']:,} examples per training "
            f"step and {c['examples per path step']:,} per path step; expected "
            f"{c['PFLOP']:.3g} PFLOP = about {c['GPU minutes']} GPU minutes at "
            f"{GPU_FLOPS / 1e12:g} TFLOP/s ({100 * c['share in full-data checks']:.0f}% of it "
            f"in the full-data checks; path steps {basis}), at most {c['PFLOP bound']:.3g} "
            f"PFLOP = {c['GPU minutes bound']} GPU minutes with every pair at its step cap"
        )
    return 0


def cmd_report(a, store: RunStore) -> int:

    formats = tuple(f.strip() for f in a.format.split(","))
    if not set(formats) <= {"md", "html"} or not formats:
        raise ValueError(f"--format={a.format!r}: must be md, html or md,html")
    images = () if a.images == "none" else tuple(f.strip() for f in a.images.split(","))
    if not set(images) <= {"png", "svg", "pdf"}:
        raise ValueError(f"--images={a.images!r}: must be png, svg, pdf (comma-separated) or none")
    cmd = f"python -m core --runs-dir {store.root} report {' '.join(a.sweep_ids)} --out {a.out}"
    t0 = time.perf_counter()
    doc = build_report(
        store,
        a.sweep_ids,
        title=a.title,
        subsamples=a.subsamples,
        fraction=a.fraction,
        command=cmd,
        progress=lambda s: print(f"report: {s}", file=sys.stderr),
    )
    paths = write_report(doc, a.out, name=a.name, formats=formats, images=images)
    for p in paths:
        if p.suffix in (".md", ".html"):
            print(p)
    print(f"{len(paths)} files written to {a.out} in {time.perf_counter() - t0:.0f} s")
    return 0
