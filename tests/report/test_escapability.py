"""The Escapability section: not testable without saved results; with them, the pooled
verdict of the saved numbers."""

from __future__ import annotations

import shutil

from core.report.doc import Doc
from core.report.sections.escapability import escapability
from core.runs.escape import escape_saved, pooled
from core.runs.store import RunStore
from core.views.escape import verdict


def test_the_verdict_comes_from_the_saved_results(tiny_runs, tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(tiny_runs.root, root, ignore=shutil.ignore_patterns("escape-*"))
    store, runs = RunStore(root), [tiny_runs.run, tiny_runs.other]
    doc = Doc()
    out = escapability(doc, store, runs)
    assert out["settings"] == [] and "not testable here" in out["claims"][0]
    fast = dict(lr=0.5, batch_size=16, steps=15, repeats=3)
    results = [escape_saved(store, r.run_id, **fast, descent_steps=100)[0] for r in runs]
    doc = Doc()
    out = escapability(doc, store, runs)
    ((words, corr),) = out["settings"]
    assert words == "lr 0.5, batch 16, 15 steps, 3 repeats, 100 descent steps"
    assert corr == pooled(results)
    assert out["claims"] == [f"Escapability (SGD {words}, 2 runs): {verdict(corr)}"]
    table = next(b for b in doc.blocks if b[0] == "table")[1]
    assert [row["escaped"] for row in table] == [int(r.escaped.sum()) for r in results]
    # the table's counts are the saved results'; after 100 descent steps the width-4 run still
    # has trajectories above their thresholds (4 of 9 when written), left out of its probability
    assert [(row["settled"], row["unsettled"]) for row in table] == [
        (int(r.settled.sum()), int(r.unsettled.sum())) for r in results
    ]
    assert table[1]["unsettled"] > 0 and table[1]["settled"] + table[1]["unsettled"] == 9
    # with 5 descent steps nothing settles: that setting is called inconclusive
    for r in runs:
        escape_saved(store, r.run_id, **fast, descent_steps=5)
    out = escapability(Doc(), store, runs)
    short = next(c for c in out["claims"] if "5 descent steps" in c)
    assert "Inconclusive: 18 of 18 trajectories had not settled after 5 full-batch steps" in short
    assert "Escapability" in doc.markdown(images=())
