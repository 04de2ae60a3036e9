"""Every dashboard page under streamlit's AppTest, over the tiny real runs of conftest.py.

Each page is opened through ``app.py`` (so the shared sidebar and ``st.navigation`` run too)
and then ``switch_page``; session state is preset the way the sidebar would set it. The
checks: no exception, the expected elements, the numbers equal the stored ones, and the main
control changes what is shown.
"""

from __future__ import annotations

import base64
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.engine.escape import toy_escape
from core.runs.config import RunConfig, fields_of
from core.runs.files import read_json, write_json
from core.runs.jobs import Job, registry
from core.views.dashboard import (
    generalization_points,
    no_obstruction,
    progress_words,
    remaining_seconds,
    to_score_series,
)
from core.views.learn import alive_bars, level_range, sublevel, toy_picture
from core.views.particles import REPEATS
from core.views.rebasin import ALIGN_HINT, rebasin_barriers
from pages._form import key_of

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # seconds per script run; the first toy or plane evaluation takes a few


def open_page(page: str, **state) -> AppTest:
    """Run app.py with ``state`` preset, switch to ``pages/<page>.py``; fail on exceptions."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page != "home":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> list[dict]:
    """The plotly figures on the page, as dicts."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(v) -> list:
    """A plotly JSON array: a list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def first_column(v) -> list[int]:
    """Column 0 of a plotly 2-D array (a list of rows, or a typed array with a shape)."""
    if isinstance(v, dict) and "bdata" in v:
        shape = [int(n) for n in str(v["shape"]).split(",")]
        flat = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        return flat.reshape(shape)[:, 0].astype(int).tolist()
    return [int(row[0]) for row in v]


def metric(at: AppTest, label: str) -> str:
    hits = [m.value for m in at.metric if m.label == label]
    assert hits, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return hits[0]


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


# ---------------------------------------------------------------------------------------------
# Pages


def test_home_lists_runs_and_explains(runs_env):
    at = open_page("home")
    assert len(at.get("plotly_chart")) == 2  # the teaching picture: sublevel set + barcode
    assert "TO-score" in text(at)
    table = at.dataframe[0].value
    assert set(runs_env.ids) <= set(table["run"])
    row = table.set_index("run").loc[runs_env.run.run_id]
    assert row["TO-score sum"] == pytest.approx(runs_env.run.summary.to_score_sum)
    assert row["width"] == 8 and row["depth"] == 1 and row["dataset"] == "mnist1d"
    # the one action and the way to learn sit above the picture (on screen at 1280 x 720)
    start = [b for b in at.button if b.label.startswith("Run the default experiment (")]
    assert len(start) == 1 and start[0].proto.type == "primary"
    order = [n.type for n in at.main if n.type in ("button", "page_link", "plotly_chart")]
    assert order.index("button") < order.index("plotly_chart")
    # the sidebar offers every saved run and makes the newest current
    picker = at.sidebar.selectbox(key="run_box")
    assert len(picker.options) == 2 and picker.value in runs_env.ids


def test_barcode_numbers_equal_the_run(runs_env):
    run = runs_env.run
    at = open_page("barcode", run_id=run.run_id)
    assert at.sidebar.selectbox(key="run_box").value == run.run_id  # routed through app.py
    s = run.summary
    assert metric(at, "TO-score (sum)") == f"{s.to_score_sum:.6g}"
    assert metric(at, "TO-score (max)") == f"{s.to_score_max:.6g}"
    assert float(metric(at, "TO-score (sum)")) == pytest.approx(run.barcode.to_score("sum"), 1e-5)
    assert metric(at, "Distinct minima") == str(s.n_minima)
    figs = charts(at)
    kinds = {t["type"] for f in figs for t in f["data"]}
    assert "bar" in kinds  # the barcode
    assert len(figs) == 3  # barcode, diagram, saddle history
    table = at.dataframe[0].value
    assert list(table["minimum"]) == list(range(s.n_minima))
    assert "no obstruction found" not in text(at)
    labels = {b.label for b in at.get("download_button")}
    assert {"PNG", "SVG", "PDF", "HTML", "Download table (CSV)"} <= labels
    # stopping points are hollow in the barcode and the diagram, and called so in the table
    stops = [k for k, st in enumerate(run.minima.status) if st != "minimum"]
    for fig in figs[:2]:
        hollow = {
            m
            for t in fig["data"]
            if t["type"] == "scatter" and isinstance(t.get("marker", {}).get("symbol"), list)
            for m, sym in zip(first_column(t["customdata"]), t["marker"]["symbol"], strict=True)
            if sym.endswith("-open")
        }
        assert hollow == set(stops)
    assert "train error (%)" in table.columns and "loss: train CE + L2 (nats)" in table.columns
    assert sum(table["status"].str.startswith("stopping point")) == len(stops)
    assert any(lab.startswith("Download the whole run") for lab in labels)


def test_barcode_selection_moves_everywhere(runs_env):
    run = runs_env.run
    at = open_page("barcode", run_id=run.run_id)
    assert "**Selected minimum 0**" in text(at)
    at.selectbox(key="minimum_box").set_value(2).run()
    assert not at.exception
    assert "**Selected minimum 2**" in text(at)
    assert at.session_state["minimum"] == 2
    # the barcode outlines minimum 2's bar
    marked = [t for t in charts(at)[0]["data"] if t.get("name", "").startswith("selected")]
    assert [int(t["customdata"][0][0]) for t in marked] == [2]
    # the selection survives a trip to another page
    at.switch_page("pages/landscape.py").run()
    assert at.selectbox(key="minimum_box").value == 2


def test_barcode_says_no_obstruction_instead_of_an_empty_chart(runs_env, tmp_path, monkeypatch):
    run = runs_env.run
    shutil.copytree(runs_env.root / run.run_id, tmp_path / run.run_id)
    res = read_json(tmp_path / run.run_id / "results.json")
    res["summary"]["to_score_max"] = 0.0
    write_json(tmp_path / run.run_id / "results.json", res)
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = open_page("barcode", run_id=run.run_id)
    assert any("no obstruction found" in i.value.lower() for i in at.info)
    assert len(charts(at)) == 1  # only the saddle history; no empty barcode


def test_landscape_projection_profile_plane(runs_env):
    run = runs_env.run
    at = open_page("landscape", run_id=run.run_id)
    figs = charts(at)
    assert len(figs) == 3  # projection, profile, plane
    assert {t["type"] for t in figs[0]["data"]} == {"scatter"}
    assert figs[0]["layout"]["xaxis"]["title"]["text"].startswith("PC1")
    assert any(t["type"] == "contour" for t in figs[2]["data"])
    # the profile's saddle is the stored one
    assert "saddle" in figs[1]["layout"]["title"]["text"]
    at.radio(key="proj_dims").set_value(3).run()
    assert not at.exception
    assert {t["type"] for t in charts(at)[0]["data"]} == {"scatter3d"}
    # another path changes the profile
    before = charts(at)[1]["layout"]["title"]["text"]
    box = at.selectbox(key="profile_pair")
    box.set_value((box.value + 1) % len(box.options)).run()
    assert charts(at)[1]["layout"]["title"]["text"] != before


def test_generalization_stats_and_gap_kind(runs_env):
    run = runs_env.run
    at = open_page("generalization", run_id=run.run_id)
    n_one = len(generalization_points([run], "loss")[0])  # 2: three minima, one essential
    assert any(f"Only {n_one} minima" in w.value for w in at.warning)  # too few for a CI
    fig = charts(at)[0]
    assert "loss" in fig["layout"]["yaxis"]["title"]["text"]
    at.radio(key="gen_gap").set_value("error").run()
    assert "error" in charts(at)[0]["layout"]["yaxis"]["title"]["text"]
    at.multiselect(key="gen_runs").set_value(runs_env.ids).run()
    assert not at.exception
    n_both = len(generalization_points([runs_env.run, runs_env.other], "error")[0])
    assert metric(at, "Minima (n)") == str(n_both)
    assert metric(at, "Pearson r [95% CI]")


def test_compare_width_series(runs_env):
    at = open_page("compare")
    at.multiselect(key="compare_runs").set_value(runs_env.ids).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 2
    figs = charts(at)
    assert len(figs) == 2  # TO-score vs width (depth is constant: said in words) + overlay
    assert any("same depth" in i.value for i in at.info)
    xs = [array(t["x"]) for t in figs[0]["data"] if t.get("mode") == "lines+markers"][0]
    assert xs == [4, 8]
    # runs with stopping points are named, and their TO-scores called not comparable
    runs = (runs_env.run, runs_env.other)
    stopped = [r.run_id for r in runs if r.summary.n_true_minima < r.summary.n_minima]
    warned = [w.value for w in at.warning if "stopping points" in w.value]
    assert bool(warned) == bool(stopped) and all(r in warned[0] for r in stopped)
    assert "not comparable" in warned[0] if warned else True
    marks = {
        sym
        for t in figs[1]["data"]
        if t.get("name") == "birth"
        for sym in (t["marker"]["symbol"] if isinstance(t["marker"]["symbol"], list) else [])
    }
    assert ("circle-open" in marks) == bool(stopped)


@pytest.fixture
def aligned_env(aligned_runs, monkeypatch):
    """A store with the two tiny raw runs and two aligned ones (``paths.align``)."""
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(aligned_runs.root))
    return aligned_runs


def test_barcode_shows_the_raw_and_the_aligned_barcodes_side_by_side(aligned_env):
    run = aligned_env.run
    at = open_page("barcode", run_id=run.run_id)
    s = run.summary
    assert metric(at, "TO-score (sum)") == f"{s.to_score_sum:.6g}"
    assert metric(at, "Aligned TO-score (sum)") == f"{s.aligned_to_score_sum:.6g}"
    assert metric(at, "Aligned TO-score (max)") == f"{s.aligned_to_score_max:.6g}"
    figs = charts(at)
    assert len(figs) == 6  # barcode, diagram; raw | aligned barcodes, re-basin; saddle history
    raw, aligned, rebasin = figs[2:5]
    for fig, bc in ((raw, run.barcode), (aligned, run.aligned.barcode)):
        assert f"TO-score sum {bc.to_score('sum'):.4g}," in fig["layout"]["title"]["text"]
    assert raw["layout"]["xaxis"]["range"] == aligned["layout"]["xaxis"]["range"]  # one axis
    points = rebasin["data"][1]
    barriers = rebasin_barriers(run)
    np.testing.assert_allclose(array(points["x"]), barriers.before)
    np.testing.assert_allclose(array(points["y"]), barriers.after)
    assert ALIGN_HINT not in [c.value for c in at.caption]
    told = [i.value for i in at.info if i.value.startswith("Modulo the hidden units' symmetry")]
    assert len(told) == 1 and f"is {s.aligned_to_score_sum:.6g} (sum)" in told[0]


def test_barcode_of_a_raw_run_says_how_to_align(aligned_env):
    at = open_page("barcode", run_id=aligned_env.raw.run.run_id)
    assert ALIGN_HINT in [c.value for c in at.caption]
    assert not [i for i in at.info if i.value.startswith("Modulo the hidden units' symmetry")]
    assert "Aligned TO-score (sum)" not in [m.label for m in at.metric]
    assert len(charts(at)) == 3


def test_landscape_projects_the_aligned_minima(aligned_env):
    run = aligned_env.run
    at = open_page("landscape", run_id=run.run_id)
    raw = charts(at)[0]
    at.radio(key="proj_aligned").set_value(True).run()
    assert not at.exception
    fig = charts(at)[0]
    ident = [a for a in fig["layout"]["annotations"] if a.get("name") == "ident"][0]
    assert ident["text"].endswith("aligned minima")
    assert fig["data"] != raw["data"]  # other points: the minima moved
    assert len(fig["data"]) == len(raw["data"])  # the same minima and as many paths


def test_compare_draws_the_aligned_to_score_as_a_second_series(aligned_env):
    at = open_page("compare")
    ids = [r.run_id for r in (*aligned_env.runs, aligned_env.raw.run, aligned_env.raw.other)]
    at.multiselect(key="compare_runs").set_value(ids).run()
    assert not at.exception
    lines = [t for t in charts(at)[0]["data"] if t.get("mode") == "lines+markers"]
    assert [t["line"].get("dash") for t in lines] == [None, "dash"]
    assert array(lines[1]["y"]) == pytest.approx(
        [r.summary.aligned_to_score_sum for r in aligned_env.runs]
    )
    assert "aligned TO-score sum" in at.dataframe[0].value.columns


def test_learn_steps_through_the_flood_event_by_event(runs_env):
    at = open_page("learn")
    assert len(at.get("plotly_chart")) == 2  # the flood (curve) and the merge tree

    def caption() -> str:
        return next(m.value for m in at.markdown if m.value.startswith("**level"))

    assert "not reached the deepest point" in caption()
    at.button(key="learn_next_curve").click().run()
    assert not at.exception
    assert "minimum A; its pool appears" in caption()
    events = at.select_slider(key="learn_event_curve")
    events.set_value(events.options[-1]).run()
    assert "the pool of minimum B merges into A's" in caption()
    assert caption().endswith("Now 1 pool: A.**")
    flood = charts(at)[0]
    assert len(flood["frames"]) > 100 and flood["layout"]["sliders"][0]["active"] > 0
    at.segmented_control(key="learn_story").set_value("2. Surfaces").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 6  # flood, tree, escapes, particles, path, engine
    assert "barcodes **match**" in text(at)
    at.toggle(key="learn_3d_wells").set_value(True).run()
    assert len(at.get("plotly_chart")) == 7  # the 3-D view only when asked for


def test_learn_noisy_particles_count_toy_escapes(runs_env):
    def counts(at) -> list[tuple[str, int, int]]:
        table = next(d.value for d in at.dataframe if "escaped" in d.value.columns)
        return list(zip(table["minimum"], table["escaped"], table["settled"], strict=True))

    def escape(noise: float) -> list[tuple[int, int]]:
        _, res = toy_escape("wells", noise=noise, repeats=REPEATS)
        return sorted(zip(res.escaped.tolist(), res.settled.tolist(), strict=True))

    at = open_page("learn")
    at.segmented_control(key="learn_story").set_value("2. Surfaces").run()
    assert not at.exception
    assert at.select_slider(key="learn_noise_wells").value == 1.0
    calm = counts(at)
    assert [c[0] for c in calm] == ["A", "B", "C", "D"]
    assert sorted(c[1:] for c in calm) == escape(1.0)
    at.select_slider(key="learn_noise_wells").set_value(0.25).run()
    assert not at.exception
    still = counts(at)
    assert still != calm
    assert sorted(c[1:] for c in still) == escape(0.25)
    assert sum(c[1] for c in still) < sum(c[1] for c in calm)  # less noise, fewer escapes
    final = next(m.value for m in at.markdown if m.value.startswith("Saddle estimate"))
    at.select_slider(key="learn_snap_wells").set_value("cap 1").run()
    assert not at.exception
    first = next(m.value for m in at.markdown if m.value.startswith("Saddle estimate"))
    assert first != final and "after 1 steps" in first


def test_learn_your_own_landscape_follows_its_wells(runs_env):
    at = open_page("learn")
    at.segmented_control(key="learn_story").set_value("3. Your own").run()
    assert not at.exception
    events = at.select_slider[0]
    assert len(events.options) == 1 + 3 + 2  # dry, three births, two merges
    at.number_input(key="own_n").set_value(1).run()
    assert not at.exception
    assert at.select_slider[0].options[1:] == [at.select_slider[0].options[1]]  # one birth
    assert at.select_slider[0].options[1].endswith(": A born")


def test_run_form_rejects_bad_settings_before_running(runs_env):
    before = sorted(p.name for p in runs_env.root.iterdir())
    at = open_page("run")
    at.number_input(key="f_train_minima").set_value(1)
    at.button[0].click()  # the form's submit button is the first button on a fresh page
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert "train.minima=1" in at.error[0].value
    at.number_input(key="f_train_minima").set_value(4)
    at.number_input(key="f_train_lr").set_value(0.0)
    at.button[0].click()
    at.run()
    assert len(at.error) == 1 and "train.lr=0.0" in at.error[0].value
    # widths the widget would once refuse silently (a red field) reach validation's message
    at.number_input(key="f_train_lr").set_value(0.02)
    for width in (0, -5):
        at.number_input(key="f_model_width").set_value(width)
        at.button[0].click()
        at.run()
        assert len(at.error) == 1 and f"model.width={width}" in at.error[0].value
    assert sorted(p.name for p in runs_env.root.iterdir()) == before  # nothing started


def test_run_form_has_a_widget_for_every_config_field(runs_env):
    """The form is generated from the config's declarations: every field has its widget,
    showing the field's default, and the untouched form submits the default config."""
    at = open_page("run")
    kinds = ("number_input", "selectbox", "checkbox", "text_input")
    widgets = {w.key: w for kind in kinds for w in getattr(at, kind)}
    for where, f, default in fields_of(RunConfig()):
        w = widgets[key_of(where)]
        none = "" if str(f.type).startswith("str") else 0  # how the form shows None
        assert w.value == (none if default is None else default), where
    assert len([k for k in widgets if k and k.startswith("f_")]) == len(
        list(fields_of(RunConfig()))
    )


SMALL = {
    "f_model_width": 4,
    "f_train_minima": 3,
    "f_data_n_train": 200,
    "f_data_n_test": 100,
    "f_train_steps": 60,
    "f_paths_steps": 50,
    "f_paths_n_points": 6,
    "f_paths_max_points": 8,
}


def start_small_run(at: AppTest, **changes) -> Job:
    """Fill the Run page's form with a run of seconds, press Start; its job."""
    for key, value in (SMALL | changes).items():
        at.number_input(key=key).set_value(value)
    at.selectbox(key="f_device").set_value("cpu")
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]  # a valid form must start
    return registry().get(at.session_state["job"])


def button(at: AppTest, label: str):
    hits = [b for b in at.button if b.label == label]
    assert hits, f"no button {label!r}; have {[b.label for b in at.button]}"
    return hits[0]


def test_run_form_runs_in_the_background_and_opens_the_result(tmp_path, monkeypatch):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = open_page("run")
    job = start_small_run(at)
    assert job.wait(TIMEOUT).status == "finished"
    run_id = job.state().run_id
    assert (tmp_path / run_id / "results.json").exists()
    at.run()  # back on the page: the job's end is shown with a way to the result
    assert f"run {run_id}: finished in" in text(at)
    button(at, "Open the result").click()
    at.run()
    assert at.session_state["run_id"] == run_id
    assert metric(at, "TO-score (sum)")  # we are on the barcode page of the new run


def test_a_run_survives_other_pages_is_cancelled_and_resumed(tmp_path, monkeypatch, hold):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = open_page("run")
    job = start_small_run(at, f_paths_steps=500)  # several path reports
    hold("paths").wait()  # the minima are saved
    run_id = job.state().run_id
    # another page: the run goes on, and the sidebar shows it with a link back
    at.switch_page("pages/compare.py").run()
    assert not at.exception and job.running
    side = [b for b in at.sidebar.button if b.label.startswith(f"run {run_id}: optimizing")]
    assert len(side) == 1
    side[0].click()
    at.run()  # back on the Run page, re-attached to the same job
    assert f"run {run_id}: optimizing paths" in text(at)
    assert [b.value for b in at.get("progress")][:1] == [100]  # the minima's bar is full
    at.switch_page("pages/run.py").run()  # AppTest's next runs stay on the Run page
    button(at, "Cancel").click()
    at.run()
    assert job.cancelling and button(at, "Cancelling...").disabled
    hold.release()
    assert job.wait(TIMEOUT).status == "cancelled"
    at.run()
    assert "cancelled after" in text(at)
    assert (tmp_path / run_id / "minima.json").exists()
    assert not (tmp_path / run_id / "paths.json").exists()
    button(at, "Resume").click()
    at.run()
    again = registry().get(at.session_state["job"])
    assert again is not job and again.wait(TIMEOUT).status == "finished"
    at.run()
    assert f"run {run_id}: finished in" in text(at)


def test_sweeps_page_with_an_empty_store(tmp_path, monkeypatch):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = open_page("sweeps")
    assert any("No sweeps in" in i.value for i in at.info)
    assert "**4 runs**" in text(at)  # the tiny preset's cost, before Start
    assert "at most about" in text(at)
    at.selectbox(key="sweep_preset").set_value("cpu-digits").run()
    assert not at.exception and "runs**" in text(at)


def test_sweeps_page_starts_the_tiny_preset_and_draws_its_curve(tmp_path, monkeypatch):
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(tmp_path))
    at = open_page("sweeps")
    button(at, "Start sweep").click()
    at.run()
    assert not at.exception and not at.error
    job = registry().get(at.session_state["sweep_job"])
    assert job.wait(TIMEOUT).status == "finished" and job.state().runs_done == 4
    at.run()
    assert "sweep tiny (4 of 4 runs done): finished in" in text(at)
    row = at.dataframe[0].value.iloc[0]
    assert (row["name"], row["runs"], row["finished"], row["missing"]) == ("tiny", 4, 4, 0)
    (fig,) = charts(at)
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert array(lines[0]["x"]) == [4, 6]
    assert len(at.dataframe[1].value) == 4  # the finished runs


def test_sweeps_page_shows_progress_and_curves_of_a_stored_sweep(runs_env, tmp_path, monkeypatch):
    from core.runs.sweep import SweepRecord, SweepSpec, sweep_id
    from tests.conftest import tiny_config

    root = tmp_path / "runs"
    shutil.copytree(runs_env.root, root, ignore=shutil.ignore_patterns(".lock"))
    spec = SweepSpec(base=tiny_config(8), widths=(4, 8, 16))  # width 16 is not computed
    ids = [runs_env.other.run_id, runs_env.run.run_id, spec.base.replace(model={"width": 16})]
    ids[2] = ids[2].run_id
    rec = SweepRecord(sweep_id(spec), (spec,), ids, [], {ids[2]: "RuntimeError: out of memory"})
    (root / "sweeps").mkdir()
    write_json(root / "sweeps" / f"{rec.sweep_id}.json", rec.to_dict())
    monkeypatch.setenv("BARCODES_RUNS_DIR", str(root))
    at = open_page("sweeps")
    table = at.dataframe[0].value.set_index("sweep").loc[rec.sweep_id]
    assert (table["runs"], table["finished"], table["failed"], table["missing"]) == (3, 2, 1, 0)
    assert [p.value for p in at.get("progress")] == [66]
    assert "2 of 3 runs finished, 0 running, 1 failed" in at.get("progress")[0].proto.text
    (fig,) = charts(at)  # width only: no grid varies the depth
    lines = [t for t in fig["data"] if t.get("mode") == "lines+markers"]
    assert array(lines[0]["x"]) == [4, 8, 16]
    y = array(lines[0]["y"])
    assert y[:2] == pytest.approx(
        [runs_env.other.summary.to_score_sum, runs_env.run.summary.to_score_sum]
    )
    assert any("varies the depth" in i.value for i in at.info)
    assert any(b.label == "Resume this sweep" for b in at.button)


# ---------------------------------------------------------------------------------------------
# The small pure helpers behind the pages (core/views/dashboard.py)


def test_no_obstruction_is_a_tolerance_check():
    assert no_obstruction(0.0, 1e-4) and no_obstruction(1e-4, 1e-4)
    assert no_obstruction(2e-4, 1e-4) and not no_obstruction(2.1e-4, 1e-4)


def test_remaining_time_is_linear_in_the_steps_left():
    assert remaining_seconds(10.0, 0, 100) is None
    assert remaining_seconds(10.0, 25, 100) == pytest.approx(30.0)
    assert remaining_seconds(10.0, 100, 100) == 0.0
    words = progress_words("paths", 50, 200, 5.0)
    assert "step 50 of 200" in words and "15 s" in words


def test_to_score_series_groups_seeds():
    rows = [{"width": 8, "depth": 1, "TO-score sum": v} for v in (1.0, 3.0)]
    rows.append({"width": 4, "depth": 1, "TO-score sum": 5.0})
    assert to_score_series(rows, "width") == ([4, 8], [5.0, 2.0], [5.0, 1.0], [5.0, 3.0])
    with pytest.raises(ValueError, match="by must be"):
        to_score_series(rows, "seed")


def test_components_equal_alive_bars_on_every_level_of_a_toy():
    xs, ys, Z, exact = toy_picture("wells")
    lo, hi, start = level_range(Z, exact)
    assert lo < start < hi
    gaps = np.concatenate([exact.births, exact.deaths[np.isfinite(exact.deaths)]])
    for level in np.linspace(lo, hi, 25):
        if np.min(np.abs(gaps - level)) < 1e-9:
            continue  # exactly at a birth or a death the count is a matter of convention
        assert sublevel(Z, level)[1] == alive_bars(exact.births, exact.deaths, level)


def test_generalization_points_leave_out_the_essential_bar(tiny_runs):
    run = tiny_runs.run
    lengths, gaps, groups, minima = generalization_points([run], "loss")
    assert len(lengths) == len(run.barcode) - run.barcode.n_essential
    assert all(math.isfinite(v) for v in lengths)
    k = minima[0]
    assert gaps[0] == pytest.approx(run.metrics.test_loss[k] - run.metrics.train_loss[k])
    assert set(groups) == {run.run_id}


def test_a_clicked_point_names_its_minimum_in_any_customdata_form():
    from pages._common import _first_customdata

    assert _first_customdata([{"customdata": 3}]) == 3
    assert _first_customdata([{"customdata": [2, 0.5, 0.7]}]) == 2
    assert _first_customdata([{"customdata": {"0": 1, "1": 0.33}}]) == 1  # typed-array row
    assert _first_customdata([{"x": 1.0}, {"customdata": [4]}]) == 4
    assert _first_customdata([]) is None
