"""The Sweeps page's grid form and report verdicts under streamlit's AppTest: a grid of
widths x depths x seeds starts as a background sweep whose runs and curve are the grid's; bad
values are one st.error naming the value; a stored sweep shows the report's own verdicts."""

from __future__ import annotations

import shutil

import pytest
from test_app import TIMEOUT, array, button, charts, open_page, text

from core.report.document import build_report, sweep_verdicts, verdict_markdown
from core.runs.jobs import registry
from core.runs.store import RunStore
from core.runs.sweep import SweepRecord, SweepSpec, list_sweeps, sweep_id
from core.views.sweeps import GRID_BASE, grid_name, grid_spec


def _grid(at, widths: str, depths: str = "1", seeds: str = "0"):
    at.text_input(key="grid_widths").set_value(widths)
    at.text_input(key="grid_depths").set_value(depths)
    at.text_input(key="grid_seeds").set_value(seeds)
    button(at, "Start grid").click()
    return at.run()


def test_a_grid_runs_in_the_background_and_shows_its_verdicts(tmp_path, monkeypatch):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = _grid(open_page("sweeps"), "4, 6", "1", "0")
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = registry().get(at.session_state["sweep_job"])
    assert job.wait(TIMEOUT).status == "finished" and job.state().runs_done == 2
    at.run()
    spec = grid_spec("digits", "mlp", "4, 6", "1", "0")
    (rec,) = list_sweeps(RunStore(tmp_path))
    assert rec.sweep_id == sweep_id(spec) and rec.name == "grid digits mlp w4,6 d1 s0"
    assert [RunStore(tmp_path).config(r).model.width for r in rec.run_ids] == [4, 6]
    row = at.dataframe[0].value.iloc[0]
    assert (row["name"], row["runs"], row["finished"]) == (rec.name, 2, 2)
    (fig,) = charts(at)  # width varies, depth does not
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert array(lines[0]["x"]) == [4, 6]
    # the report's verdicts, as the report's functions state them
    said = verdict_markdown(RunStore(tmp_path), rec.sweep_id)
    assert said in text(at)
    assert said.startswith("Scaled down from the paper's setting") and "In short:" in said
    assert "- Observation 1" in said and "- Observation 2" in said
    assert "Escapability: not testable here: no escape results are saved for the 2 runs" in said


@pytest.mark.parametrize(
    ("widths", "depths", "seeds", "words"),
    [
        ("4, x", "1", "0", "widths='4, x': 'x' is not a valid int"),
        ("4", "0", "0", "depths entry 0: must be an integer >= 1"),
        ("4", "1", "-1", "seeds entry -1: must be an integer >= 0"),
        ("", "1", "0", "widths='': empty entry"),
    ],
)
def test_bad_grid_values_are_an_error_naming_the_value(
    tmp_path, monkeypatch, widths, depths, seeds, words
):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = _grid(open_page("sweeps"), widths, depths, seeds)
    assert not at.exception
    (error,) = at.error
    assert error.value == f"Cannot start this grid: {words}"
    assert "sweep_job" not in at.session_state and not list_sweeps(RunStore(tmp_path))


def test_grid_spec_is_the_grid_of_its_inputs():
    spec = grid_spec("mnist1d", "mlp", "4,8", "1, 2", "0,1,2")
    assert spec == SweepSpec(
        base=GRID_BASE,
        datasets=("mnist1d",),
        archs=("mlp",),
        widths=(4, 8),
        depths=(1, 2),
        seeds=(0, 1, 2),
    )
    assert spec.size == 12 and grid_name(spec) == "grid mnist1d mlp w4,8 d1,2 s0,1,2"


def test_a_stored_sweep_shows_the_reports_summary(runs_env, tmp_path, monkeypatch):
    root = tmp_path / "runs"
    shutil.copytree(runs_env.root, root, ignore=shutil.ignore_patterns(".lock", "escape-*"))
    store = RunStore(root)
    spec = SweepSpec(base=runs_env.run.config, widths=(4, 8))
    rec = SweepRecord(sweep_id(spec), (spec,), runs_env.ids[::-1], [], {})
    (root / "sweeps").mkdir()
    from core.runs.files import write_json

    write_json(root / "sweeps" / f"{rec.sweep_id}.json", rec.to_dict())
    # the verdicts are the report's own: its Summary section, sentence for sentence
    doc = sweep_verdicts(store, [rec.sweep_id])
    report = build_report(store, [rec.sweep_id], subsamples=1, budgets=(50,))
    start = report.blocks.index(("h", 2, "Summary"))
    summary = doc.blocks[: doc.blocks.index(("p", "Escapability:"))]
    assert summary != report.blocks[start : start + len(summary)]  # other budgets
    doc = sweep_verdicts(store, [rec.sweep_id], budgets=(50,))
    summary = doc.blocks[: doc.blocks.index(("p", "Escapability:"))]
    assert summary == report.blocks[start : start + len(summary)]
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(root))
    at = open_page("sweeps")
    assert not at.exception and not at.error
    assert any(h.value == "Report verdicts" for h in at.subheader)
    assert verdict_markdown(store, rec.sweep_id) in text(at)
