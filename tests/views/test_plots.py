r"""Figure builders: the numbers in the figure data are the numbers that were passed in.

The hand-made barcode used throughout (values in brackets, saddle heights on the edges)::

    a (0.0) ---- 2.0 ---- d (0.2) ---- 0.9 ---- c (0.5) ---- 1.5 ---- b (1.0)

    c dies at 0.9 into d; b dies at 1.5 into d; d dies at 2.0 into a; a is essential.
    bars: a [0, inf)  d [0.2, 2.0) = 1.8  b [1.0, 1.5) = 0.5  c [0.5, 0.9) = 0.4
"""

import numpy as np
import pytest

from core.engine.barcode import barcode_from_graph
from core.engine.paths import SPLIT
from core.views import plots
from core.views.analysis import Plane, Profile
from core.views.projection import pca_project
from core.views.stats import correlation

INF = np.inf
IDENT = "run 0123456789ab · digits · mlp width 8 depth 1"


@pytest.fixture(scope="module")
def bars():
    values = np.array([0.0, 1.0, 0.5, 0.2])  # a, b, c, d
    s = np.full((4, 4), INF)
    s[0, 3] = s[3, 0] = 2.0
    s[3, 2] = s[2, 3] = 0.9
    s[2, 1] = s[1, 2] = 1.5
    return barcode_from_graph(values, s)


def _trace(fig, name_part):
    found = [t for t in fig.data if t.name and name_part in t.name]
    assert found, f"no trace named like {name_part!r} in {[t.name for t in fig.data]}"
    return found[0]


def _bar_extents(trace):
    base = np.asarray(trace.base, float)
    return base, base + np.asarray(trace.x, float)


def test_barcode_bars_extents_order_and_essential(bars):
    fig = plots.barcode_figure(bars, ident=IDENT)
    fin = _trace(fig, "minima segments")
    mins = np.asarray(fin.customdata)[:, 0].astype(int)
    lo, hi = _bar_extents(fin)
    values = {0: 0.0, 1: 1.0, 2: 0.5, 3: 0.2}
    deaths = {1: 1.5, 2: 0.9, 3: 2.0}
    for m, a, b in zip(mins, lo, hi, strict=True):
        assert a == pytest.approx(values[m]) and b == pytest.approx(deaths[m])
    # sorted by length: essential a on top, then d (1.8), b (0.5), c (0.4)
    ess = _trace(fig, "essential")
    rows = {int(c[0]): y for c, y in zip(fin.customdata, fin.y, strict=True)}
    rows[int(ess.customdata[0][0])] = ess.y[0]
    assert sorted(rows, key=rows.get, reverse=True) == [0, 3, 1, 2]
    e_lo, e_hi = _bar_extents(ess)
    assert e_lo[0] == 0.0 and e_hi[0] > 2.0  # drawn to the right edge, past every death
    assert any(a.text and "\u221e" in a.text for a in fig.layout.annotations)
    assert ess.marker.color != fin.marker.color
    assert fig.layout.title.text.endswith("= 2.7")  # TO-score: 1.8 + 0.5 + 0.4


def test_barcode_selected_and_errors(bars):
    fig = plots.barcode_figure(bars, selected=2, errors={2: (0.01, 0.05), 3: (0.0, 0.1)})
    sel = _trace(fig, "selected")
    lo, hi = _bar_extents(sel)
    assert (lo[0], hi[0]) == pytest.approx((0.5, 0.9)) and sel.customdata[0][0] == 2
    fin = _trace(fig, "minima segments")
    errs = dict(zip(np.asarray(fin.customdata)[:, 0].astype(int), fin.error_x.array, strict=True))
    assert errs == {1: 0.0, 2: 0.05, 3: 0.1}


def test_barcode_draws_each_kind_of_death_its_own_way(bars):
    """Certified saddles solid, uncertified dotted, upper bounds hatched; each bar once."""
    kinds = {
        1: "certified saddle",
        2: "saddle, not certified",
        3: "upper bound (path not converged)",
    }
    fig = plots.barcode_figure(bars, death_kinds=kinds)
    seen = {}
    for kind, pattern in (("certified", ""), ("not certified", "."), ("upper bound", "/")):
        t = _trace(fig, kind)
        assert (t.marker.pattern.shape or "") == pattern
        seen.update({int(c[0]): kind for c in t.customdata})
    assert seen == {1: "certified", 2: "not certified", 3: "upper bound"}


def test_short_bars_stay_visible_and_stopping_points_are_hollow():
    """Bars of 0.001 on a 0.26-0.7 axis are far thinner than a pixel: a pixel-sized dot at
    every birth and tick at every finite death show them, in the barcode and the overlay."""
    v = np.array([0.26, 0.5, 0.6])
    s = np.array([[0.26, 0.7, 0.7], [0.7, 0.5, 0.601], [0.7, 0.601, 0.6]])
    bc = barcode_from_graph(v, s)
    for fig in (
        plots.barcode_figure(bc, stopping=[2]),
        plots.barcodes_overlay_figure([bc], ["w4"], stopping=[[2]]),
    ):
        marks = [t for t in fig.data if t.type == "scatter"]
        births = {float(x) for t in marks if t.name == "birth" for x in t.x}
        deaths = {round(float(x), 9) for t in marks if t.name != "birth" for x in t.x}
        assert births == {0.26, 0.5, 0.6}
        assert deaths == {0.601, 0.7}  # every finite death, none for the essential bar
        assert all(t.marker.size >= 9 for t in marks)  # pixels, at any scale
        sym = {
            int(c[0]): m
            for t in marks
            if t.name == "birth"
            for c, m in zip(t.customdata, t.marker.symbol, strict=True)
        }
        assert sym == {0: "circle", 1: "circle", 2: "circle-open"}


def test_barcode_says_no_obstruction_when_all_bars_vanish():
    v = np.array([0.1, 0.2, 0.3])
    s = np.array([[0.1, 0.2, 0.3], [0.2, 0.2, 0.3], [0.3, 0.3, 0.3]]) + 1e-12
    fig = plots.barcode_figure(barcode_from_graph(v, s))
    assert "no obstruction found" in fig.layout.title.text
    # zero-length bars stay visible as birth markers
    assert sum(len(t.x) for t in fig.data if t.name == "birth") == 3


def test_diagram_points_and_axes(bars):
    fig = plots.diagram_figure(bars, selected=1, ident=IDENT)
    pts = _trace(fig, "minima")
    got = {int(c[0]): (x, y) for c, x, y in zip(pts.customdata, pts.x, pts.y, strict=True)}
    assert got == {1: (1.0, 1.5), 2: (0.5, 0.9), 3: (0.2, 2.0)}
    ess = _trace(fig, "essential")
    inf_line = _trace(fig, "death = \u221e")
    assert ess.x[0] == 0.0 and ess.y[0] == inf_line.y[0] > 2.0
    assert tuple(fig.layout.xaxis.range) == tuple(fig.layout.yaxis.range)
    diag = _trace(fig, "death = birth")
    assert list(diag.x) == list(diag.y)


def test_diagram_draws_infinity_above_every_finite_value_and_labels_it(bars):
    """As GUDHI does: the essential point on a line above all finite ends, whose tick says ∞;
    no finite tick sits at or above it (a tick 0.03 over an "∞" at 0.0296 read as a death)."""
    fig = plots.diagram_figure(bars, stopping={2})
    inf_y = _trace(fig, "essential").y[0]
    finite = [y for t in fig.data if t.name and "finite" in t.name for y in t.y]
    assert finite and inf_y > max(finite) and inf_y > max(bars.births)
    ticks = dict(zip(fig.layout.yaxis.tickvals, fig.layout.yaxis.ticktext, strict=True))
    assert ticks[inf_y] == "\u221e"
    assert all(v < inf_y and float(t) <= 2.0 for v, t in ticks.items() if t != "\u221e")
    assert fig.layout.yaxis.range[1] > inf_y > fig.layout.yaxis.range[0]
    assert any(sh.y0 < inf_y < sh.y1 and sh.y0 > 2.0 for sh in fig.layout.shapes)  # the band
    pts = _trace(fig, "finite")
    sym = dict(zip(np.asarray(pts.customdata)[:, 0].astype(int), pts.marker.symbol, strict=True))
    assert sym == {1: "circle", 2: "circle-open", 3: "circle"}  # stopping point 2 hollow


def test_saddle_history_lines():
    steps = np.array([0, 50, 100])
    hist = np.array([[3.0, 2.0, 1.5], [4.0, 3.5, np.nan]])
    fig = plots.saddle_history_figure(
        steps, hist, [[0, 1], [1, 2]], converged=[True, False], highlight={1}, relative=False
    )
    a, b, b_thick = fig.data
    np.testing.assert_array_equal(a.y, hist[0])
    assert a.line.dash == "solid" and b.line.dash == "dash"
    assert b_thick.line.width > b.line.width and b_thick.meta == plots.SELECTION
    assert not b_thick.showlegend and np.array_equal(b_thick.y, b.y, equal_nan=True)
    assert "1/2 finished" in fig.layout.title.text


def test_saddle_history_draws_each_estimate_minus_the_final_one_on_a_log_axis():
    """Estimates that fall from 1.4 to 0.03 flatten the tail on a linear axis; estimate -
    final on a log axis shows how the convergence went."""
    steps = np.arange(0, 250, 50)
    hist = np.array([[1.4, 0.2, 0.04, 0.031, 0.03], [0.9, 0.5, 0.3, np.nan, np.nan]])
    fig = plots.saddle_history_figure(steps, hist, [[0, 1], [0, 2]])
    a, b = fig.data
    np.testing.assert_allclose(a.y, hist[0] - 0.03)
    np.testing.assert_allclose(b.y[:3], hist[1, :3] - 0.3)  # final = the last finite one
    np.testing.assert_allclose(np.asarray(a.customdata)[:, 3], hist[0])  # hover: the estimate
    y = fig.layout.yaxis
    assert y.type == "log" and "final" in y.title.text
    assert list(y.tickvals) == sorted(y.tickvals)
    assert list(y.ticktext) == ["0.001", "0.01", "0.1", "1", "10"][: len(y.ticktext)]
    assert 10 ** y.range[0] <= 0.001 and 10 ** y.range[1] >= 1.37


def _profile():
    s = np.linspace(0, 1, 9)
    v = 1 - (2 * s - 1) ** 2  # peak 1 at s = 0.5
    return Profile(s, v, s, 1.5 * v, s[::4], 1.0, float(v.max()), 1.5, 4, (0, 2), 2.0, 1.5)


def test_profile_figure_marks_the_saddle():
    fig = plots.profile_figure(_profile(), ident=IDENT)
    sad = _trace(fig, "saddle =")
    assert (sad.x[0], sad.y[0]) == (0.5, 1.0)
    assert _trace(fig, "straight").line.dash == "dash"
    assert list(_trace(fig, "nodes").y) == [0.0, 1.0, 0.0]
    assert list(_trace(fig, "saddle level").y) == [1.0, 1.0]  # the dotted line, in the legend


def test_profile_figure_marks_the_minimum_a_joined_path_runs_through():
    s = np.linspace(0, 1, 9)
    v = np.abs(np.sin(2 * np.pi * s))  # two humps, a dip to 0 at s = 0.5: a third minimum
    p = Profile(s, v, s, 2 * v, s[::4], 1.0, 1.0, 2.0, 4, (0, 2), 2.0, 1.5, via=1, via_s=0.5)
    mark = _trace(plots.profile_figure(p), "minimum 1: the path is joined here")
    assert (mark.x[0], mark.y[0]) == (0.5, pytest.approx(0.0, abs=1e-12))
    assert not [t for t in plots.profile_figure(_profile()).data if "joined" in (t.name or "")]
    split = Profile(
        s, v, s, 2 * v, s[::4], 1.0, 1.0, 2.0, 4, (0, 2), 2.0, 1.5, via=SPLIT, via_s=0.5
    )
    mark = _trace(plots.profile_figure(split), "a minimum that no start reached: the path is")
    assert (mark.x[0], mark.y[0]) == (0.5, pytest.approx(0.0, abs=1e-12))


def test_profile_gives_one_saddle_and_fits_the_path_beside_the_straight_segment():
    """A straight segment 40 times higher than the path's barrier: the left panel's range is
    the path's, the right panel holds both; title and legend give the stored numbers."""
    s = np.linspace(0, 1, 9)
    v = 0.01 + 0.02 * (1 - (2 * s - 1) ** 2)  # saddle 0.03
    straight = 0.01 + 1.2 * (1 - (2 * s - 1) ** 2)
    p = Profile(s, v, s, straight, s[::4], 0.0300001, 0.03, 1.21, 4, (0, 2), 2.0, 1.5)
    fig = plots.profile_figure(p)
    title = fig.layout.title.text
    legend = " ".join(t.name for t in fig.data if t.showlegend is not False)
    for number in ("0.03", "1.21"):
        assert number in title and number in legend
    assert "1.2101" not in title + legend  # the profile's own max is not a second number
    lo, hi = fig.layout.yaxis.range
    assert lo < 0.01 and 0.03 < hi < 0.05  # left panel: the path's range
    right = [t for t in fig.data if t.xaxis == "x2"]
    assert {t.name.split(" (")[0] for t in right} == {"optimised path", "straight segment"}


def test_projection_figure_2d_and_3d():
    rng = np.random.default_rng(0)
    thetas = rng.normal(size=(4, 10))
    proj = pca_project(thetas, [np.linspace(thetas[0], thetas[1], 5)], n_components=3)
    vals = np.array([0.3, 0.1, 0.2, 0.4])
    fig = plots.projection_figure(proj, vals, selected=1, path_pairs=[(0, 1)], ident=IDENT)
    m = _trace(fig, "minima")
    np.testing.assert_allclose(np.c_[m.x, m.y], proj.minima[:, :2])
    np.testing.assert_array_equal(m.marker.color, vals)
    assert m.marker.colorbar.title.text == plots.LOSS_LABEL
    assert list(np.asarray(m.customdata)[:, 0]) == [0, 1, 2, 3]
    assert (
        fig.layout.xaxis.title.text.startswith("PC1 (") and "% var)" in fig.layout.xaxis.title.text
    )
    fig3 = plots.projection_figure(proj, vals, dims=3, ident=IDENT)
    m3 = _trace(fig3, "minima")
    assert m3.type == "scatter3d"
    np.testing.assert_allclose(m3.z, proj.minima[:, 2])
    assert fig3.layout.scene.zaxis.title.text.startswith("PC3")
    with pytest.raises(ValueError, match="dims"):
        plots.projection_figure(pca_project(thetas), vals, dims=3)


def _plane():
    u = v = np.linspace(-1, 2, 4)
    Z = np.add.outer(v, u)
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, 1.0]])
    return Plane(
        u, v, Z, (4, 1, 7), uv, np.array([0.1, 0.2, 0.3]), {(1, 4): uv[[0, 1]]}, {(1, 4): 0.25}
    )


def test_plane_figure():
    fig = plots.plane_figure(_plane(), ident=IDENT)
    np.testing.assert_array_equal(fig.data[0].z, _plane().Z)
    path = _trace(fig, "path 1-4")
    assert "0.25" in path.name
    mins = _trace(fig, "minima")
    assert list(np.asarray(mins.customdata)[:, 0]) == [4, 1, 7]


def test_generalization_title_has_the_statistics():
    rng = np.random.default_rng(1)
    x = np.r_[np.inf, rng.uniform(0, 1, 10)]
    y = 2 * x + 0.1 * rng.normal(size=11)
    y[0] = 0.5
    st = correlation(x[1:], y[1:], n_boot=200, n_perm=200)
    fig = plots.generalization_figure(x, y, stats=st, gap_kind="error", ident=IDENT)
    t = fig.layout.title.text
    for number in (st.pearson, *st.pearson_ci, st.spearman, *st.spearman_ci):
        assert f"{number:.2f}" in t
    assert f"{st.pearson_p_perm:.3g}" in t and "n = 10" in t
    pts = _trace(fig, "minima")
    assert len(pts.x) == 10 and 0 not in list(pts.customdata)  # essential left out ...
    assert any("essential" in a.text for a in fig.layout.annotations)  # ... and said so
    ols = _trace(fig, "least squares")
    slope = np.polyfit(x[1:], y[1:], 1)[0]
    assert (ols.y[1] - ols.y[0]) / (ols.x[1] - ols.x[0]) == pytest.approx(slope)
    assert "error" in fig.layout.yaxis.title.text
    with pytest.raises(ValueError, match="gap_kind"):
        plots.generalization_figure(x, y, gap_kind="accuracy")


def test_to_score_band():
    means, los, his = [0.3, 0.2, 0.1], [0.2, 0.1, 0.0], [0.4, 0.3, 0.2]
    fig = plots.to_score_figure([1, 2, 4], means, los, his, x_label="width", ident=IDENT)
    band, line = fig.data
    np.testing.assert_array_equal(line.y, [0.3, 0.2, 0.1])
    np.testing.assert_array_equal(band.y, [0.4, 0.3, 0.2, 0.0, 0.1, 0.2])
    with pytest.raises(ValueError, match="means, los, his"):
        plots.to_score_figure([1, 2], [1, 2, 3], [1, 2, 3], [1, 2, 3], x_label="w")
    assert fig.layout.yaxis.type == "linear"  # a band down to zero: no log axis


def test_to_score_axis_is_log_when_scores_span_orders_of_magnitude():
    means, los, his = [0.5, 0.02, 0.001], [0.3, 0.01, 0.0005], [0.7, 0.03, 0.002]
    fig = plots.to_score_figure([8, 32, 128], means, los, his, x_label="width", ident=IDENT)
    assert fig.layout.yaxis.type == "log"
    narrow = plots.to_score_figure([8, 32], [0.3, 0.2], [0.25, 0.15], [0.35, 0.25], x_label="w")
    assert narrow.layout.yaxis.type == "linear"
    forced = plots.to_score_figure(
        [8, 32], [0.3, 0.2], [0.25, 0.15], [0.35, 0.25], x_label="w", log_y=True
    )
    assert forced.layout.yaxis.type == "log"


def test_log_axis_labels_are_increasing_powers_of_ten():
    """The review's case: 0.003 to 0.02 on plotly's own ticks read "3 ... 9 0.01 2"."""
    fig = plots.to_score_figure(
        [4, 8, 16],
        [0.003, 0.008, 0.02],
        [0.0025, 0.007, 0.015],
        [0.0035, 0.009, 0.025],
        x_label="width",
        log_x=True,
    )
    y = fig.layout.yaxis
    assert y.type == "log" and list(y.ticktext) == ["0.001", "0.01", "0.1"]
    assert list(y.tickvals) == pytest.approx([0.001, 0.01, 0.1])
    assert list(y.minor.tickvals)[:3] == pytest.approx([0.002, 0.003, 0.004])
    assert list(fig.layout.xaxis.ticktext) == ["4", "8", "16"]  # every width, not digits
    assert plots.frame.log_axis(3e-7, 2e-5)["ticktext"] == [
        "10\u207b\u2077",
        "10\u207b\u2076",
        "10\u207b\u2075",
        "10\u207b\u2074",
    ]
    with pytest.raises(ValueError, match="lo="):
        plots.frame.log_axis(0.0, 1.0)


def test_overlay_has_every_bar(bars):
    fig = plots.barcodes_overlay_figure([bars, bars], ["A", "B"], ident=IDENT)
    assert [len(t.x) for t in fig.data if t.type == "bar"] == [4, 4]
    assert list(fig.layout.yaxis.ticktext) == ["A", "B"]
    with pytest.raises(ValueError, match="labels"):
        plots.barcodes_overlay_figure([bars], ["A", "B"])


def test_growing_barcode_truncates_at_the_level():
    births, deaths = np.array([0.0, 1.0, 0.5, 0.2]), np.array([INF, 1.5, 0.9, 2.0])
    below_second = plots.growing_barcode_figure(births, deaths, 0.1)
    assert len(_trace(below_second, "so far").x) == 1
    fig = plots.growing_barcode_figure(
        births, deaths, 1.2, exact=type("E", (), {"births": births, "deaths": deaths})()
    )
    lo, hi = _bar_extents(_trace(fig, "so far"))
    np.testing.assert_allclose(lo, [0.0, 0.2, 0.5, 1.0])  # oldest first
    np.testing.assert_allclose(hi, [1.2, 1.2, 0.9, 1.2])  # min(death, level)
    assert "3 alive, 1 dead" in fig.layout.title.text
    assert len(_trace(fig, "exact").x) == 4
    assert any(sh.x0 == 1.2 for sh in fig.layout.shapes)


def test_sublevel_components_one_colour_each():
    xs = ys = np.linspace(-1, 1, 5)
    Z = np.ones((5, 5))
    labels = -np.ones((5, 5), dtype=int)
    labels[0, 0], labels[4, 4], labels[0, 4] = 0, 1, 2
    fig = plots.sublevel_figure(xs, ys, Z, labels, 0.5, minima_xy=[[-1, -1]], ident=IDENT)
    z = np.asarray(fig.data[0].z, float)
    assert len(np.unique(z[np.isfinite(z)])) == 3 and "3 connected components" in (
        fig.layout.title.text
    )
    # the stepped colour scale gives each component a single colour
    scale = fig.data[0].colorscale
    assert len({c for _, c in scale}) == 3


def test_surface_has_the_level_plane():
    xs = ys = np.linspace(0, 1, 3)
    Z = np.arange(9.0).reshape(3, 3)
    fig = plots.surface_figure(xs, ys, Z, level=4.0, ident=IDENT)
    np.testing.assert_array_equal(fig.data[0].z, Z)
    assert np.all(np.asarray(fig.data[1].z) == 4.0)


def test_merge_tree_heights(bars):
    fig = plots.merge_tree_figure(
        bars.births, bars.deaths, bars.merges_into, bars.minimum, ident=IDENT
    )
    leaves = _trace(fig, "births")
    assert dict(zip(leaves.customdata, leaves.y, strict=True)) == {0: 0.0, 3: 0.2, 2: 0.5, 1: 1.0}
    joins = _trace(fig, "deaths")
    assert sorted(joins.y) == [0.9, 1.5, 2.0]
    # the essential minimum's leaf comes first; its tree holds every other leaf
    ticks = dict(zip(fig.layout.xaxis.tickvals, fig.layout.xaxis.ticktext, strict=True))
    assert [ticks[x] for x in sorted(ticks)][0] == "min 0" and len(ticks) == 4
    assert len(_trace(fig, "merge tree").x) == 3 * (2 * 3 + 3 + 1)  # segments: 3 joins, 1 root


def _all_figures(bars):
    xs = ys = np.linspace(0, 1, 3)
    Z = np.arange(9.0).reshape(3, 3)
    proj = pca_project(np.random.default_rng(0).normal(size=(4, 6)))
    st = correlation([1, 2, 3, 4], [1, 3, 2, 4], n_boot=50, n_perm=50)
    return {
        "barcode": plots.barcode_figure(bars, ident=IDENT),
        "diagram": plots.diagram_figure(bars, ident=IDENT),
        "overlay": plots.barcodes_overlay_figure([bars], ["A"], ident=IDENT),
        "history": plots.saddle_history_figure([0, 1], [[2.0, 1.0]], [[0, 1]], ident=IDENT),
        "profile": plots.profile_figure(_profile(), ident=IDENT),
        "projection": plots.projection_figure(proj, np.arange(4.0), ident=IDENT),
        "plane": plots.plane_figure(_plane(), ident=IDENT),
        "generalization": plots.generalization_figure(
            [1, 2, 3, 4], [1, 3, 2, 4], stats=st, ident=IDENT
        ),
        "to_score": plots.to_score_figure(
            [1, 2], [1, 0], [0, 0], [2, 1], x_label="width", ident=IDENT
        ),
        "surface": plots.surface_figure(xs, ys, Z, level=3.0, ident=IDENT),
        "sublevel": plots.sublevel_figure(xs, ys, Z, (Z <= 3).astype(int) - 1, 3.0, ident=IDENT),
        "growing": plots.growing_barcode_figure(bars.births, bars.deaths, 0.6, ident=IDENT),
        "merge": plots.merge_tree_figure(
            bars.births, bars.deaths, bars.merges_into, bars.minimum, ident=IDENT
        ),
    }


def test_every_figure_has_title_axis_titles_and_ident(bars):
    for name, fig in _all_figures(bars).items():
        assert fig.layout.title.text, name
        if name == "surface":
            titles = [fig.layout.scene.xaxis.title.text, fig.layout.scene.zaxis.title.text]
        else:
            titles = [fig.layout.xaxis.title.text, fig.layout.yaxis.title.text]
        assert all(titles), (name, titles)
        idents = [a for a in fig.layout.annotations if a.name == "ident"]
        assert len(idents) == 1 and idents[0].text == IDENT, name


def test_ident_of():
    from core.runs.config import RunConfig

    cfg = RunConfig()
    assert plots.ident_of(cfg.run_id, cfg) == (f"run {cfg.run_id} · digits · mlp width 8 depth 1")
    bn = cfg.replace(data={"name": "cifar10"}, model={"arch": "resnet9", "width": 16})
    assert plots.ident_of(bn.run_id, bn).endswith(
        "cifar10 · resnet9 width 16 depth 1 · BatchNorm: batch statistics of 256"
    )
    again = bn.replace(model={"batchnorm": "recomputed", "norm_batch": 512})
    assert plots.ident_of(again.run_id, again).endswith("BatchNorm: statistics recomputed from 512")
