"""How long does one step of the Learn page's level take on the server, and what does it send?

    .venv/bin/python bench/learn_step.py [--rev REV] [--steps 5]

Opens the Learn page under streamlit's AppTest (the server side only, no browser) at revision
``REV`` (default: the revision before the flood figure) and on today's tree, each in a fresh
process, on the four-wells landscape, warms the caches, then moves the level control ``steps``
times: the old page's level slider, or today's event stepper (today the figure's own slider
and Play move the level in the browser with no server call at all). Prints the median server
time of one step and the bytes of the figures the step sends; writes the
``bench/learn_step.py`` block of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import ROOT, machine, run_fresh, write_block  # noqa: E402

BEFORE = "e2991f4"  # the last revision with the old Learn page

STEP = r"""
import json, os, statistics, sys, tempfile, time
os.environ["BARCODES_RUNS_DIR"] = tempfile.mkdtemp()
from streamlit.testing.v1 import AppTest
steps = int(sys.argv[1])
at = AppTest.from_file(os.path.abspath("app.py"), default_timeout=600)
at.run()
at.switch_page("pages/learn.py").run()
new = any(w.key == "learn_story" for w in at.get("segmented_control"))
if new:
    at.segmented_control(key="learn_story").set_value("2. Surfaces").run()

def control():
    return at.select_slider(key="learn_event_wells") if new else at.slider[0]

options = control().options if new else None
times, sent = [], []
for i in range(steps + 1):
    c = control()
    if new:
        value = options[1 + i % (len(options) - 1)]
    else:
        value = c.min + (c.max - c.min) * (0.2 + 0.1 * i)
    t = time.perf_counter()
    c.set_value(value).run()
    if i:  # the first step warms what the first page run did not
        times.append(time.perf_counter() - t)
        sent.append(sum(len(p.proto.spec) for p in at.get("plotly_chart")))
    assert not at.exception, [e.value for e in at.exception]
print(json.dumps({"median": statistics.median(times), "times": times,
                  "bytes": statistics.median(sent), "new": new}))
"""


def measure(tree: Path, steps: int) -> dict:
    return run_fresh(STEP, str(steps), tree)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default=BEFORE)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", a.rev], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        old = measure(Path(tmp), a.steps)
    new = measure(ROOT, a.steps)
    rows = [
        ("before", a.rev, "level slider (server rerun)", old),
        ("today", "working tree", "event stepper (fragment)", new),
    ]
    lines = [
        "## Learn page: one step of the level",
        "",
        f"Machine: {machine()}. AppTest (server side), four wells, median of {a.steps} steps.",
        "Today the figure's own slider and Play move the level in the browser: no server call.",
        "",
        "| code | revision | control | server s per step | figures sent per step |",
        "|---|---|---|---|---|",
    ]
    for name, rev, what, r in rows:
        lines.append(f"| {name} | {rev} | {what} | {r['median']:.3f} | {r['bytes'] / 1e6:.2f} MB |")
    ratio = old["median"] / new["median"]
    lines += ["", f"Server time ratio before / today: {ratio:.1f}x."]
    text = "\n".join(lines)
    print(text)
    print(json.dumps({"before": old, "today": new}))
    write_block("bench/learn_step.py", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
