"""Shared by the benchmark scripts: the machine they ran on, BENCHMARKS.md blocks, and
Python snippets run in fresh processes.

Each script owns one block of BENCHMARKS.md between ``<!-- NAME start -->`` and
``<!-- NAME end -->`` and replaces only that block, so scripts can be rerun one at a time.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


def machine() -> str:
    """One line: CPU model, cores, torch version and threads, GPU if any, date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}"
    )


def write_block(name: str, body: str) -> None:
    """Replace (or append) the block ``name`` of BENCHMARKS.md with ``body``."""
    start, end = f"<!-- {name} start -->", f"<!-- {name} end -->"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def overrides(cfg, sets: list[str]):
    """``cfg`` with each ``SECTION.FIELD=VALUE`` of ``sets`` applied (VALUE read as JSON, else
    as a string): ``model.width=2``, ``model.activation=tanh``."""
    for s in sets:
        key, eq, value = s.partition("=")
        section, dot, name = key.partition(".")
        if not (eq and dot and name):
            raise ValueError(f"--set {s!r}: expected SECTION.FIELD=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        cfg = cfg.replace(**{section: {name: parsed}})
    return cfg


def run_fresh(code: str, arg: str, tree: Path = ROOT) -> dict:
    """Run the Python ``code`` with the argument ``arg`` in a fresh process on the sources in
    ``tree`` (its own peak memory, no state shared with the caller) and return the JSON object
    on the last line it prints."""
    out = subprocess.run(
        [sys.executable, "-c", code, arg],
        cwd=tree,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tree)},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])
