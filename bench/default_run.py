"""The default run end to end, and where its time goes.

    .venv/bin/python bench/default_run.py [--width 32 --depth 2 --minima 8] [--quick]
                                          [--baseline REV [--repeats 3]]

Runs digits / MLP (depth 2, width 32) / 8 minima / all 28 pairs through the real pipeline
stages in a temporary run store, timing each stage and splitting the path stage into
minibatch steps, full-data checks and the final dense saddle evaluation (by wrapping the
objectives with counters). Then, in the same process, it times a few path steps for all
pairs in one batch against the same steps one pair at a time, and prints that ratio. With
``--baseline REV`` it then runs the same configuration end to end with the code of git
revision REV and with today's, back to back, each in a fresh process (REV checked out in a
temporary worktree), ``--repeats`` pairs of runs in alternating order, and prints the median
ratio of today vs that version and the work each side did. Writes the ``bench/default_run.py``
block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import ROOT, machine, run_fresh, write_block  # noqa: E402
from core.engine.pairs import all_pairs  # noqa: E402
from core.engine.paths import PathOptions, connect  # noqa: E402
from core.runs.config import RunConfig  # noqa: E402
from core.runs.pipeline import objectives, run  # noqa: E402
from core.runs.store import RunStore  # noqa: E402

# The run end to end: seconds, TO sum and the full configuration it ran.
END_TO_END = r"""
import dataclasses, json, sys, tempfile, time
try:  # where each revision keeps them: core/runs/ today, core/ before the layer folders
    from core.runs.config import RunConfig
    from core.runs.pipeline import run
    from core.runs.store import RunStore
except ImportError:
    from core.config import RunConfig
    from core.pipeline import run
    from core.runs import RunStore
cfg = RunConfig().replace(**json.loads(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    t0 = time.perf_counter()
    r = run(cfg, store=RunStore(tmp))
    total = time.perf_counter() - t0
get = lambda o, k: o[k] if isinstance(o, dict) else getattr(o, k)  # dicts before typed runs
print(json.dumps({"total": total, "to": get(r.summary, "to_score_sum"),
                  "steps": [int(sum(get(r.minima, "steps"))), int(sum(get(r.paths, "steps")))],
                  "config": dataclasses.asdict(cfg)}))
"""


def versus(rev: str, sections: dict, repeats: int) -> str:
    """One line: today's code vs revision ``rev``, the same configuration, ``repeats`` pairs
    of runs back to back, the order alternating (the same code twice differed by up to 1.2x
    in one pair on this VM, so one pair says little)."""
    olds, news = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            sides = [(olds, tree), (news, ROOT)]
            for i in range(repeats):
                for out, where in sides if i % 2 == 0 else sides[::-1]:
                    out.append(run_fresh(END_TO_END, json.dumps(sections), where))
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=True)
    old, new = olds[0], news[0]
    ratios = sorted(o["total"] / n["total"] for o, n in zip(olds, news, strict=True))
    seconds = ", ".join(
        f"({o['total']:.1f}, {n['total']:.1f})" for o, n in zip(olds, news, strict=True)
    )
    short = subprocess.run(
        [*git, "rev-parse", "--short", rev], check=True, text=True, capture_output=True
    ).stdout.strip()
    same = compare_configs(old["config"], new["config"])
    # A change at the level of float32 rounding can change the trajectories and with them
    # the work (steps until the stopping rules hold): say how much each side did.
    work = " and ".join(
        f"{a:,} -> {b:,} {what} steps"
        for what, a, b in zip(("minima", "path"), old["steps"], new["steps"], strict=True)
    )
    return (
        f"Today vs {short}, {same}, end to end in fresh processes, {repeats} pairs of runs "
        f"back to back, the order alternating: {short}'s seconds / today's median "
        f"**{ratios[len(ratios) // 2]:.2f}x** (range {ratios[0]:.2f}-{ratios[-1]:.2f}x; seconds "
        f"({short}, today): {seconds}); TO-score sums {old['to']:.4g} and {new['to']:.4g}; {work}."
    )


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v}
    return out


def compare_configs(old: dict, new: dict) -> str:
    """How two revisions' configurations compare: fields both have that differ (defaults
    changed in between), and fields that only one has (options that were fixed in the code
    before they became config fields: the same run only if those values match the code's)."""
    a, b = _flat(old), _flat(new)
    changed = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    if changed:
        return f"**configurations differ** (defaults changed in between: {', '.join(changed)})"
    only = [
        f"{side} also has {', '.join(sorted(keys))}"
        for side, keys in (("today", b.keys() - a.keys()), ("that version", a.keys() - b.keys()))
        if keys
    ]
    if not only:
        return "the same configuration"
    return f"the same configuration in the fields both have ({'; '.join(only)})"


class Counted:
    """Wrap an objective: count parameter vectors and seconds spent in it, through its call
    and through its own ``values_and_grads`` where it has one (``core.engine.evaluate`` uses it)."""

    def __init__(self, f, tally, key):
        self.f, self.tally, self.key = f, tally, key
        if callable(getattr(f, "values_and_grads", None)):
            self.values_and_grads = lambda thetas: self._timed(f.values_and_grads, thetas)

    def __call__(self, thetas):
        return self._timed(self.f, thetas)

    def _timed(self, fn, thetas):
        t0 = time.perf_counter()
        out = fn(thetas)
        n, s = self.tally.get(self.key, (0, 0.0))
        self.tally[self.key] = (n + thetas.shape[0], s + time.perf_counter() - t0)
        return out

    def __getattr__(self, name):
        return getattr(self.f, name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--minima", type=int, default=8)
    ap.add_argument("--quick", action="store_true", help="fewer steps, for a smoke test")
    ap.add_argument("--baseline", metavar="REV", help="also time git revision REV end to end")
    ap.add_argument("--repeats", type=int, default=3, help="pairs of runs with --baseline")
    a = ap.parse_args()
    sections = {"model": {"width": a.width, "depth": a.depth}, "train": {"minima": a.minima}}
    if a.quick:
        sections = {
            **sections,
            "train": {"minima": a.minima, "steps": 200},
            "paths": {"steps": 100},
        }
    cfg = RunConfig().replace(**sections)

    # 1. The run itself, with counters on every objective call (autograd's backward passes
    #    run in the caller's time, not here; the MLP's hand-written one runs inside the call).
    #    The pipeline evaluates both stages on the training objective (the path objective
    #    gives only its minibatches), so its counter is relabelled once the minima are found.
    tally: dict[str, tuple[int, float]] = {}
    import core.runs.pipeline as pipeline

    real, real_landscape = pipeline.objectives, pipeline.landscape_of
    full = []

    def counted(config, device=None):
        tr, pa = real(config, device)
        mb = pa.minibatch
        pa_c = Counted(pa, tally, "paths: full-data steps, dense checks, final saddles")
        pa_c.minibatch = lambda step: Counted(mb(step), tally, "paths: minibatch steps")
        full[:] = [Counted(tr, tally, "minima: full-batch steps and checks")]
        return full[0], pa_c

    def landscape(*args, on_stage=None, **kwargs):
        def staged(stage, value):
            on_stage(stage, value)  # saves the stage (its train/test metrics are not counted)
            if stage == "minima":
                full[0].key = "paths: full-data steps, dense checks, final saddles"

        return real_landscape(*args, on_stage=staged, **kwargs)

    pipeline.objectives, pipeline.landscape_of = counted, landscape
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = run(cfg, store=RunStore(tmp))
            total = time.perf_counter() - t0
    finally:
        pipeline.objectives, pipeline.landscape_of = real, real_landscape
    s = result.summary

    # 2. Path steps, all pairs in one batch vs one pair at a time, measured now: the time of
    #    `long` steps minus the time of `short` steps, so set-up and final saddles cancel.
    _, pa = objectives(cfg.replace(paths={"batch_size": 128}))
    thetas = result.minima.thetas
    pairs = all_pairs(thetas.shape[0])
    short, long = 20, 120
    steps = long - short

    def timed(batch_pairs, n):
        opts = PathOptions(
            steps=n,
            check_every=10**6,
            max_points=12,
            check_density=2,
            max_density=8,
            noisy_steps=n,
        )
        t0 = time.perf_counter()
        connect(pa, thetas, batch_pairs, opts, step_objective=pa.minibatch, final=False)
        return time.perf_counter() - t0

    batched = timed(pairs, long) - timed(pairs, short)
    some = pairs[: max(1, len(pairs) // 4)]  # a quarter of the pairs, scaled up
    loop = sum(timed(p[None], long) - timed(p[None], short) for p in some) * len(pairs) / len(some)

    threads = "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",) if k in os.environ)
    lines = [
        f"Machine: {machine()}",
        f"Command: `{threads}.venv/bin/python bench/default_run.py {' '.join(sys.argv[1:])}`",
        "",
        f"Run: digits, MLP depth {a.depth} width {a.width}, {a.minima} minima, "
        f"{s.n_paths} paths; TO-score sum {s.to_score_sum:.4g}, max "
        f"{s.to_score_max:.4g}; {s.n_true_minima}/{s.n_minima} minima and "
        f"paths: {s.n_paths_converged} converged by force, {s.n_paths_no_barrier} with "
        f"no barrier, {s.n_paths_step_cap} at the step cap; {s.n_saddles_certified} "
        "certified saddles.",
        "",
        "| stage | seconds |",
        "|---|---|",
        f"| training minima | {s.seconds_minima:.1f} |",
        f"| optimising paths (incl. final saddles) | {s.seconds_paths:.1f} |",
        f"| end to end (incl. data, barcode, writing) | {total:.1f} |",
        "",
        "Time inside the objective calls: forward passes, and for the MLP's gradients also "
        "its hand-written backward pass, which runs inside the call (autograd's backward "
        "passes, for the other architectures, are not counted here):",
        "",
        "| where | parameter vectors evaluated | seconds |",
        "|---|---|---|",
        *[f"| {k} | {n:,} | {t:.1f} |" for k, (n, t) in tally.items()],
        "",
        f"Path steps, all {len(pairs)} pairs in one batch vs one pair at a time "
        f"({steps} steps, minibatch 128): {batched:.2f} s vs {loop:.2f} s "
        f"= **{loop / batched:.1f}x** faster batched.",
    ]
    if a.baseline:
        lines.append(versus(a.baseline, sections, a.repeats))
    text = "\n".join(lines)
    print(text)
    if a.quick:  # a smoke test: BENCHMARKS.md keeps the real numbers
        return
    write_block("bench/default_run.py", "## Default run end to end\n\n" + text)


if __name__ == "__main__":
    main()
