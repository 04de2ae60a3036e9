"""Command line: ``python -m core {run,list,show,toy,sweep,sweeps,presets,report,analyze,escape}``.

Bad input (a bad flag or config value, a missing dataset, an unknown or corrupt run, a path
that cannot be used) prints one line on stderr and exits with code 2; nothing already saved
is lost. Two commands computing the same run: the second waits for the first.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import numpy as np

from core import escape_cli, model_cli, sweep_cli
from core.engine.paths import SPLIT
from core.engine.validate import compare_engine_to_exact
from core.runs.config import RunConfig, fields_of
from core.runs.pipeline import run
from core.runs.presets import get_preset
from core.runs.ray_executor import PairWorkers, shutdown
from core.runs.record import Run, Summary
from core.runs.store import RunStore, read_run
from core.runs.sweep import EXECUTORS
from core.views.dashboard import NO_OBSTRUCTION, death_kinds, no_obstruction, route_search_words

log = logging.getLogger("core")


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m core", description="H0 barcodes of loss landscapes.")
    p.add_argument("--runs-dir", default="runs", help="the run store (default: runs/)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    r = sub.add_parser("run", help="train minima, connect them, print the barcode")
    _run_flags(r)
    r.add_argument("--preset", help="start from the first run of a named sweep (core.runs.presets)")
    r.add_argument(
        "--executor",
        default="serial",
        choices=EXECUTORS,
        help="serial (default): every batch of pairs here; ray: the --path-groups batches on "
        "as many Ray workers",
    )
    r.add_argument("--address", help="with --executor ray: join this Ray cluster (ray start)")

    sub.add_parser("list", help="list saved runs")
    s = sub.add_parser("show", help="print a saved run's barcode and convergence")
    s.add_argument("run_id")
    t = sub.add_parser("toy", help="engine vs exact barcode on an analytic 2-D landscape")
    t.add_argument("name")
    t.add_argument("--starts", type=int, default=32)
    sweep_cli.add_commands(sub, _run_flags)
    model_cli.add_command(sub, add_field)
    escape_cli.add_command(sub)
    for command in sub.choices.values():  # the global options after the command too
        command.add_argument("--runs-dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return p


def _run_flags(r: argparse.ArgumentParser) -> None:
    """A flag for every RunConfig field (``run`` and ``sweep``), from its declaration."""
    r.add_argument("--config", help="a config JSON file; flags below override its fields")
    for where, f, _ in fields_of(RunConfig()):
        add_field(r, where, f)


def add_field(r: argparse.ArgumentParser, where: str, f) -> None:
    """The flag of one declared field (``core.engine.options.knob``), stored at ``where``."""
    md, kind = f.metadata, str(f.type)
    shown = "none" if f.default is None else f.default
    kw = {"dest": where, "default": None, "help": f"{md['help']} [{where}, default {shown}]"}
    if kind == "bool":
        kw["action"] = "store_true"
    elif md["choices"]:
        kw["choices"] = md["choices"]
    elif kind.startswith("int"):
        kw.update(type=int, metavar="N")
    elif kind == "float":
        kw.update(type=float, metavar="X")
    else:
        kw["metavar"] = "TEXT"
    r.add_argument(flag_of(f), **kw)


def flag_of(f) -> str:
    """The command-line flag of a config field."""
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


def config_from_args(a: argparse.Namespace, base: RunConfig | None = None) -> RunConfig:
    if base is None and getattr(a, "preset", None) and a.command == "run":
        base = get_preset(a.preset).first
    base = base or RunConfig()
    if a.config:
        try:
            with open(a.config, encoding="utf-8") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValueError(f"--config {a.config!r}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ValueError(f"--config {a.config!r} is not UTF-8 text") from None
        try:
            base = RunConfig.from_json(text)
        except ValueError as exc:
            raise ValueError(f"--config {a.config!r}: {exc}") from None
    d = base.to_dict()
    for where, f, _ in fields_of(base):
        v = getattr(a, where, None)
        if v is None:
            continue
        if f.metadata["zero_is_none"] and v == 0:
            v = None
        section, _, name = where.rpartition(".")
        (d[section] if section else d)[name] = v
    return RunConfig.from_dict(d)


def _coarse_line(s: Summary) -> list[str]:
    """Under ``pairs="mst"``: how many paths got final saddles."""
    final = s.n_paths_final
    if final >= s.n_paths:
        return []
    return [
        f"       {final} with final saddles (the pairs the barcode reads); the other "
        f"{s.n_paths - final} keep their coarse maxima, lower bounds"
    ]


SHORT_KINDS = {
    "certified saddle": "certified saddle",
    "saddle, not certified": "saddle",
    "upper bound (path not converged)": "upper bound",
    "no barrier": "no barrier",
}


def _joined_note(paths) -> str:
    """'; N of them ran through a third minimum ...', or nothing."""
    via = np.full(len(paths), -1) if paths.via is None else paths.via
    n, split = int((via >= 0).sum()), int((via == SPLIT).sum())
    note = f"; {n} ran through a third minimum and were joined from its two legs" if n else ""
    if split:
        note += (
            f"; {split} stopped at the step cap across basins of minima that no start reached "
            "and were split there (--path-splits)"
        )
    return note


def _route_line(run: Run, modulo: bool = False) -> list[str]:
    """Whether widening the route search (restarts, neighbour legs) still lowered the
    barcode (``modulo``: the barcode modulo the symmetry)."""
    words = route_search_words(run, modulo)
    return [words[0].lower() + words[1:]] if words else []


def _bar_rows(run: Run, b, kinds: dict[int, str]) -> list[str]:
    """The table of barcode ``b`` of ``run``'s minima, longest bar first."""
    m, gaps = run.minima, run.metrics.gap_loss
    lines = [
        "  bar  minimum  birth      death      length     merges into  status    death by"
        "          test-train",
    ]
    for i in np.argsort(-np.where(np.isinf(b.lengths), np.inf, b.lengths), kind="stable"):
        k = int(b.minimum[i])
        death = "inf" if np.isinf(b.deaths[i]) else f"{b.deaths[i]:.6f}"
        length = "inf" if np.isinf(b.lengths[i]) else f"{b.lengths[i]:.3e}"
        into = "-" if b.merges_into[i] < 0 else str(int(b.merges_into[i]))
        lines.append(
            f"  {i:3d}  {k:7d}  {b.births[i]:.6f}  {death:>9}  {length:>9}  {into:>11}  "
            f"{m.status[k]:9} {SHORT_KINDS.get(kinds.get(k), '-'):16} {gaps[k]:+.4f}"
        )
    return lines


def _aligned_lines(run: Run) -> list[str]:
    """The barcode modulo the units' symmetry, its TO-scores and the minima that are one
    function, or nothing."""
    if run.aligned is None:
        return []
    from core.views.rebasin import same_function_notes

    b = run.aligned.barcode
    return [
        "",
        "modulo the hidden units' symmetry (each pair's lower route: its raw path or the path "
        "between the minima aligned to minimum 0 by weight matching; one bar per function):",
        *_bar_rows(run, b, death_kinds(run, aligned=True)),
        f"aligned to minimum 0 (weight matching): TO-score sum {b.to_score('sum'):.6g}, "
        f"longest {b.to_score('max'):.6g}, modulo the hidden units' symmetry",
        *_route_line(run, modulo=True),
        *same_function_notes(run),
    ]


def format_run(run: Run) -> str:
    """The barcode, the TO-score and the convergence of a loaded run, as text."""
    c, m, s = run.config, run.minima, run.summary
    lines = [
        f"run {run.run_id}: {c.data.name}, {c.model.network}, {len(run.minima.start_of)} "
        f"starts, seed {c.seed}",
        f"minima: {s.n_minima} distinct, {s.n_true_minima} meet ||grad|| <= "
        f"{c.train.grad_tol:g} (the rest are stopping points), {s.n_failed} failed",
        f"paths: {s.n_paths} of {s.n_pairs_total} pairs optimised, "
        f"{s.n_paths_converged} converged by force, {s.n_paths_no_barrier} with "
        f"no barrier, {s.n_paths_step_cap} stopped at the step cap (upper bounds)"
        + _joined_note(run.paths),
        f"saddles: {s.n_saddles_certified} certified index-1 (gradient below the "
        "tolerance, exactly one clearly negative Hessian eigenvalue at the path's peak): "
        "exact for the routes found; a lower route may exist, so deaths are upper bounds "
        "(--path-restarts, --path-neighbours and --path-probe search more routes)",
        *_route_line(run),
        *_coarse_line(s),
        "",
        *_bar_rows(run, run.barcode, death_kinds(run)),
    ]
    lines += [
        "",
        f"TO-score (sum of finite segment lengths): {s.to_score_sum:.6g}",
        f"TO-score (longest finite segment):        {s.to_score_max:.6g}",
        f"time: minima {s.seconds_minima:.1f} s, paths {s.seconds_paths:.1f} s"
        + (f", alignment {run.aligned.seconds:.1f} s" if run.aligned else ""),
        *_aligned_lines(run),
    ]
    for start, why in sorted(m.failed.items()):
        lines.append(f"start {start} left out of the barcode: {why}")
    if s.n_paths_step_cap:
        lines.append(
            f"{s.n_paths_step_cap} paths stopped at the step cap ({c.paths.steps}): the bars "
            "they end are upper bounds; --path-steps raises the cap. Their forces, over each "
            f"pair's gradient scale (tolerances {c.paths.force_tol:g} perpendicular, "
            f"{c.paths.grad_tol:g} climbing):"
        )
        p = run.paths
        for e in np.flatnonzero(p.status == "step cap"):
            i, j = p.pairs[e]
            lines.append(
                f"  pair ({i}, {j}): perpendicular {p.force[e]:.2g}, climbing {p.climb_grad[e]:.2g}"
            )
    if no_obstruction(s.to_score_max, c.paths.saddle_tol):
        lines.append(NO_OBSTRUCTION)
    return "\n".join(lines)


def cmd_run(a, store: RunStore) -> int:
    from tqdm import tqdm

    config = config_from_args(a)
    bars: dict[str, tqdm] = {}

    def finished(bar: tqdm) -> None:  # a stage that stopped before its step cap ends at 100%
        bar.total = bar.n
        bar.refresh()
        bar.close()

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                finished(bar)
            bars[stage] = tqdm(total=total, desc=f"{stage:7}", unit="step", file=sys.stderr)
        bars[stage].n = done
        bars[stage].refresh()

    if a.address and a.executor != "ray":
        raise ValueError(f"--address {a.address!r} needs --executor ray")
    if a.executor == "ray" and config.paths.groups < 2:
        raise ValueError(
            "--executor ray relaxes the --path-groups batches of pairs on as many workers; "
            f"--path-groups is {config.paths.groups}"
        )
    t0 = time.perf_counter()
    workers = (
        PairWorkers(config, config.paths.groups, address=a.address) if a.executor == "ray" else None
    )
    try:
        result = run(config, store=store, on_progress=progress, group_map=workers)
        for bar in bars.values():
            finished(bar)
    finally:
        for b in bars.values():
            b.close()
        if workers is not None:
            workers.close()
            shutdown()
    print(format_run(result))
    print(f"saved to {store.dir(result.run_id)} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_list(a, store: RunStore) -> int:
    runs, bad = store.list()
    print(
        f"{'run':12}  {'dataset':8} {'arch':6} {'w':>4} {'d':>2} {'K':>3}  "
        f"{'TO(sum)':>10} {'TO(max)':>10}  stage"
    )
    for r in runs:
        c, s = r.config, r.summary
        to = f"{s.to_score_sum:10.4g} {s.to_score_max:10.4g}" if s else " " * 21
        print(
            f"{r.run_id:12}  {c.data.name:8} {c.model.arch:6} {c.model.width:4d} "
            f"{c.model.depth:2d} {c.train.minima:3d}  {to}  {r.stage}"
        )
    for name, why in bad:
        print(f"{name}: unreadable, skipped ({why})", file=sys.stderr)
    return 0


def cmd_show(a, store: RunStore) -> int:

    r = read_run(store, a.run_id)
    if r.barcode is None:
        raise ValueError(f"run {a.run_id} is not finished (last stage: {store.stage(a.run_id)})")
    print(format_run(r))
    return 0


def cmd_toy(a, store: RunStore) -> int:

    print(compare_engine_to_exact(a.name, n_starts=a.starts).report())
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        a = _parser().parse_args(argv)
        logging.basicConfig(
            level=logging.INFO if a.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
        store = RunStore(a.runs_dir)
        commands = {
            "run": cmd_run,
            "list": cmd_list,
            "show": cmd_show,
            "toy": cmd_toy,
            "sweep": lambda a, s: sweep_cli.cmd_sweep(a, s, config_from_args),
            "sweeps": sweep_cli.cmd_sweeps,
            "presets": sweep_cli.cmd_presets,
            "report": sweep_cli.cmd_report,
            "analyze": lambda a, s: model_cli.cmd_analyze(a),
            "escape": escape_cli.cmd_escape,
        }
        return commands[a.command](a, store)
    except (UsageError, ValueError) as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # a runs folder or file that cannot be created or read
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {_one_line(exc.strerror or str(exc))}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted: finished stages are saved; run the same command to resume",
            file=sys.stderr,
        )
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
