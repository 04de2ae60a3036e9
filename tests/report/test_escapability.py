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
    fast = dict(lr=0.5, batch_size=16, steps=15, repeats=3, descent_steps=5)
    results = [escape_saved(store, r.run_id, **fast)[0] for r in runs]
    doc = Doc()
    out = escapability(doc, store, runs)
    ((words, corr),) = out["settings"]
    assert words == "lr 0.5, batch 16, 15 steps, 3 repeats"
    assert corr == pooled(results)
    assert out["claims"] == [f"Escapability (SGD {words}, 2 runs): {verdict(corr)}"]
    table = next(b for b in doc.blocks if b[0] == "table")[1]
    assert [row["escaped"] for row in table] == [int(r.escaped.sum()) for r in results]
    assert "Escapability" in doc.markdown(images=())
