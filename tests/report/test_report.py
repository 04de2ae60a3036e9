"""The report's numbers equal direct computations from the runs; the document is written."""

import dataclasses
import shutil

import numpy as np
import pytest

from core.__main__ import main
from core.engine.chain import dense_points
from core.engine.evaluate import values_of
from core.report import numbers as R
from core.runs.store import RunStore
from core.runs.sweep import SweepSpec, run_sweep
from core.views.analysis import run_objective
from core.views.stats import correlation
from tests.conftest import tiny_config


@pytest.fixture
def runs(tiny_runs):
    return [tiny_runs.other, tiny_runs.run]  # widths 4 and 8, seed 0


def test_run_row_and_series_equal_the_runs(runs):
    for r in runs:
        row = R.run_row(r)
        assert row["TO sum"] == r.barcode.to_score("sum") == r.summary.to_score_sum
        assert row["TO max"] == r.barcode.to_score("max")
        assert row["gap loss"] == pytest.approx(
            np.mean(r.metrics.test_loss) - np.mean(r.metrics.train_loss)
        )
        assert row["converged"] == (all(r.paths.converged) and row["stalled"] == 0)
    (s,), left_out = R.score_series(runs, "width", only_converged=False)
    assert (s.xs, left_out) == ([4, 8], [])
    assert s.means.tolist() == [r.barcode.to_score("sum") for r in runs]
    assert s.label == "all runs"
    kept, left = R.score_series(runs, "width", only_converged=True)
    assert set(left) == {r.run_id for r in runs if not R.converged(r)}
    assert all(x for s in kept for x in s.xs)


def test_segment_gap_equals_a_direct_correlation(runs):
    pts = R.segment_gap_points(runs, "loss")
    lengths, gaps = [], []
    for r in runs:
        seg = r.barcode.segment_of()
        for k in np.flatnonzero(np.isfinite(seg)):
            lengths.append(seg[k])
            gaps.append(r.metrics.test_loss[k] - r.metrics.train_loss[k])
    assert len(pts) == len(lengths) == sum(len(r.barcode) - 1 for r in runs)
    assert [p["length"] for p in pts] == lengths
    assert np.allclose([p["gap"] for p in pts], gaps, atol=1e-12)
    res = R.segment_gap(pts)
    direct = correlation(lengths, gaps, n_boot=2000, n_perm=2000, seed=0)
    assert res["pooled"].pearson == pytest.approx(direct.pearson, abs=1e-12)
    assert res["pooled"].spearman_p_perm == direct.spearman_p_perm
    assert [row["n"] for row in res["per_run"]] == [len(r.barcode) - 1 for r in runs]


def test_budget_curve_last_point_is_the_stored_path_at_the_check_density(tiny_runs):
    """The history holds, per pair, the best dense maximum seen while the path relaxed; the
    stored saddle is the stored path's maximum at its final density."""
    r = tiny_runs.run
    steps, curve = R.budget_curve(r)
    assert steps[0] == 0 and steps[-1] == max(r.paths.steps)
    obj = run_objective(r)
    _, hist = R._filled_history(r)
    for e, path in enumerate(r.paths.points):
        dens = int(r.paths.densities[e])
        top = values_of(obj, dense_points(path.to(obj.device), dens)).double().max().item()
        assert top == pytest.approx(r.paths.saddles[e], abs=1e-6)
        assert hist[e, 0] >= hist[e, -1] - 1e-12  # the best estimate never rises
    assert curve[0] >= curve[-1]  # best-so-far saddles never rise


def test_vanishing_bars_counts(tiny_runs):
    r = tiny_runs.run
    v = R.vanishing_bars(r, 0)  # bars of the straight segments
    seg0 = R.barcode_at(r, R._filled_history(r)[1][:, 0]).segment_of()
    tol = r.config.paths.saddle_tol
    assert v["visible"] == int(np.sum(np.isfinite(seg0) & (seg0 > tol)))
    assert 0 <= v["vanished"] <= v["visible"]
    assert v["TO final"] == r.barcode.to_score()


@pytest.fixture
def sweep(tiny_runs, tmp_path):
    shutil.copytree(tiny_runs.root, tmp_path / "runs")
    store = RunStore(tmp_path / "runs")
    res = run_sweep(SweepSpec(base=tiny_config(8), widths=(4, 8)), store)
    assert res.new == []
    return store, res.sweep_id


def test_report_document_carries_the_numbers(sweep, tiny_runs, tmp_path):
    from core.report.doc import fmt
    from core.report.document import build_report, write_report

    store, sid = sweep
    doc = build_report(store, [sid], subsamples=2, fraction=0.5)
    md = doc.markdown(images=())
    for r in (tiny_runs.run, tiny_runs.other):
        assert fmt(r.barcode.to_score("sum")) in md
        assert r.run_id in md
    assert "## Summary" in md and "Observation 2" in md
    tol = max(r.config.paths.saddle_tol for r in (tiny_runs.run, tiny_runs.other))
    trends = [f for n, f in doc.figures.items() if n.startswith("to_score_vs_width")]
    assert trends  # TO-score trends mark where bars stop being visible
    for fig in trends:
        assert [s.y0 for s in fig.layout.shapes] == [tol]
    paths = write_report(doc, tmp_path / "out", formats=("md", "html"), images=())
    assert {p.name for p in paths} == {"REPRODUCTION.md", "REPRODUCTION.html"}
    assert (tmp_path / "out" / "REPRODUCTION.html").read_text().count("<table>") >= 3


def test_cli_report_writes_markdown(sweep, tmp_path, capsys):
    store, sid = sweep
    out = tmp_path / "docs"
    args = [
        "--runs-dir",
        str(store.root),
        "report",
        sid,
        "--out",
        str(out),
        "--images",
        "none",
        "--subsamples",
        "2",
    ]
    assert main(args) == 0
    assert (out / "REPRODUCTION.md").read_text().startswith("# Reproduction")
    assert main(["--runs-dir", str(store.root), "report", "0123456789ab"]) == 2
    assert "no sweep" in capsys.readouterr().err


def test_regime_rows_compare_two_regimes(tiny_runs):
    a = tiny_runs.run
    fake = dataclasses.replace(
        a, run_id=a.run_id[::-1], config=a.config.replace(train={"regime": "constant", "lr": 1e-3})
    )
    rows = R.regime_rows([a, fake])
    assert [r["regime"] for r in rows] == ["anneal (lr 0.05)", "constant (lr 0.001)"]
    seg = a.barcode.segment_of()
    assert rows[0]["mean segment"] == pytest.approx(np.mean(seg[np.isfinite(seg)]))
    assert rows[0]["p (length)"] == pytest.approx(1.0)  # identical minima: no difference


def test_group_labels_name_what_differs():
    a = tiny_config(8)
    b = a.replace(model={"width": 4})
    c = a.replace(paths={"n_points": 12, "max_points": 32, "steps": 2000})
    assert R.group_label([a, b]) == ["width 8", "width 4"]
    p = a.paths
    assert R.group_label([a, c]) == [
        f"paths {p.n_points}-{p.max_points} pts x {p.steps} steps",
        "paths 12-32 pts x 2000 steps",
    ]
    assert R.group_label([a, a.replace(seed=3)]) == ["all runs", "all runs"]


def test_a_path_kept_at_a_climbing_straight_segment_is_stalled(tiny_runs):
    r = tiny_runs.run
    v, pairs = r.minima.values, r.paths.pairs
    top = np.maximum(v[pairs[:, 0]], v[pairs[:, 1]])
    paths = dataclasses.replace(
        r.paths,
        straight=top + 1.0,  # every straight segment climbs 1.0
        saddles=top + 1.0,  # ... and nothing better was found
        status=np.full(len(pairs), "converged", dtype=object),
    )
    fake = dataclasses.replace(r, paths=paths)
    assert R.stalled(fake) == len(pairs) and not R.converged(fake)
    paths.saddles = top + 0.5
    assert R.stalled(fake) == 0 and R.converged(fake)


def section_text(runs, specs=None) -> tuple[str, dict]:
    from core.report.doc import Doc
    from core.report.sections import observation1_aligned

    doc = Doc()
    out = observation1_aligned(doc, runs, specs)
    return doc.markdown(images=()), out


def test_symmetry_section_says_plainly_when_no_run_was_aligned(runs):
    md, out = section_text(runs)
    assert md.startswith("## Observation 1 modulo symmetry")
    assert "Not testable here: none of the 2 runs has an aligned landscape" in md
    assert "`--align weight-matching`" in md
    assert out["claims"] == [
        "Observation 1 modulo symmetry: not testable here: none of the 2 runs has an aligned "
        "landscape (paths.align = 'none'); run the sweep again with `--align weight-matching`."
    ]
    assert out["width"] == out["depth"] == []


def test_symmetry_section_compares_the_raw_and_aligned_to_scores(aligned_runs, runs):
    from core.report.doc import fmt
    from core.views.rebasin import rebasin_barriers

    al = aligned_runs.runs
    md, out = section_text([*runs, *al], [SweepSpec(base=al[0].config, widths=(4, 8))])
    assert "2 of 4 runs have an aligned landscape" in md
    for r in al:  # the per-run table: both TO-scores and the mean barriers
        assert r.run_id in md
        assert fmt(r.summary.to_score_sum) in md and fmt(r.summary.aligned_to_score_sum) in md
        assert fmt(float(np.mean(rebasin_barriers(r).after))) in md
    for r in runs:
        assert r.run_id not in md  # raw runs take no part
    ((label, raw, aligned),) = out["width"]
    assert raw is None and aligned is None  # two runs: no trend to test
    assert out["claims"] == [
        f"Observation 1 modulo symmetry, TO-score vs width ({label}): raw minima: not testable "
        "(constant or fewer than 3 runs); aligned minima: not testable (constant or fewer "
        "than 3 runs); not testable (fewer than 3 runs, or constant TO-scores)."
    ]
    assert "No series over depth" in md


def fake_widths(run, raw_scores, aligned_scores):
    """Copies of ``run`` at widths 4, 8, 16, ... whose raw and aligned barcodes have the given
    TO-scores (two minima at 0.0 and 0.1, one saddle)."""
    from core.engine.barcode import barcode_from_graph

    def barcode(score):
        values = np.array([0.0, 0.1])
        return barcode_from_graph(values, np.array([[0.0, 0.1 + score], [0.1 + score, 0.1]]))

    out = []
    for k, (a, b) in enumerate(zip(raw_scores, aligned_scores, strict=True)):
        c = run.config.replace(model={"width": 4 * 2**k})
        aligned = dataclasses.replace(run.aligned, barcode=barcode(b))
        out.append(
            dataclasses.replace(run, run_id=c.run_id, config=c, barcode=barcode(a), aligned=aligned)
        )
    return out


def test_symmetry_section_says_whether_the_trend_survives(aligned_runs):
    down = [0.5, 0.4, 0.3, 0.2, 0.1]
    survives = fake_widths(aligned_runs.run, down, [0.05, 0.04, 0.03, 0.02, 0.01])
    assert survives[0].barcode.to_score("sum") == pytest.approx(0.5)
    md, out = section_text(survives)
    ((_, raw, aligned),) = out["width"]
    assert raw.spearman == aligned.spearman == pytest.approx(-1.0)
    assert out["claims"][0].endswith("; the trend survives alignment.")
    assert "raw minima: decreases (Spearman rho = -1.00" in out["claims"][0]
    lost = fake_widths(aligned_runs.run, down, [0.01, 0.03, 0.02, 0.05, 0.04])
    _, out = section_text(lost)
    assert out["claims"][0].endswith(
        "; the trend does not survive alignment: it came with the unit labelling."
    )
    flat = fake_widths(aligned_runs.run, [0.1, 0.3, 0.2, 0.5, 0.4], down)
    _, out = section_text(flat)
    assert out["claims"][0].endswith(
        "; the raw TO-score has no significant trend, so there is none to survive."
    )
