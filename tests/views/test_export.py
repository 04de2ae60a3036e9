import csv
import io
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import plotly.graph_objects as go
import pytest
from conftest import run_dir

from core.runs.config import RunConfig
from core.runs.files import write_json
from core.runs.store import RunStore
from core.views.export import browser_path, figure_bytes, run_archive, table_csv

needs_chromium = pytest.mark.skipif(
    browser_path() is None,
    reason="static figure export needs Chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def fig():
    f = go.Figure(go.Scatter(x=[0, 1, 2], y=[2.0, 0.5, 1.0], name="loss"))
    f.update_layout(title="test figure", xaxis_title="step", yaxis_title="loss")
    return f


@needs_chromium
def test_png_pdf_svg(fig):
    png = figure_bytes(fig, "png", width=400, height=300, scale=1)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # PNG header: width and height of the image in the IHDR chunk
    assert int.from_bytes(png[16:20], "big") == 400 and int.from_bytes(png[20:24], "big") == 300
    assert figure_bytes(fig, "pdf").startswith(b"%PDF")
    root = ET.fromstring(figure_bytes(fig, "svg"))
    assert root.tag.endswith("svg")
    assert "test figure" in ET.tostring(root, encoding="unicode")


def test_html_is_self_contained(fig):
    html = figure_bytes(fig, "html").decode()
    assert html.lstrip().lower().startswith("<!doctype html>") and "plotly" in html.lower()
    assert 'src="https://cdn' not in html  # plotly.js embedded, so it opens offline
    assert "test figure" in html


def test_bad_format(fig):
    with pytest.raises(ValueError, match="fmt must be one of"):
        figure_bytes(fig, "jpeg")


def test_table_csv_round_trip():
    rows = [
        {"index": 0, "value": 0.1 + 0.2, "segment": np.inf, "status": "minimum", "via": ""},
        {"index": 1, "value": -1e-12, "segment": 0.5, "status": "stopped", "merges_into": None},
    ]
    back = list(csv.DictReader(io.StringIO(table_csv(rows).decode())))
    assert list(back[0]) == ["index", "value", "segment", "status", "via", "merges_into"]
    assert float(back[0]["value"]) == 0.1 + 0.2 and float(back[1]["value"]) == -1e-12
    assert float(back[0]["segment"]) == np.inf
    assert back[1]["via"] == "" and back[1]["merges_into"] == "" and back[0]["merges_into"] == ""
    assert table_csv([]) == b""


def test_run_archive(tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = RunConfig()
    d = run_dir(store, cfg)
    write_json(d / "minima.json", {"values": [0.1, 0.2]})
    (d / ".tmp-abc").write_text("half-written")
    data = run_archive(store, cfg.run_id)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        assert f"{cfg.run_id}/config.json" in names and f"{cfg.run_id}/minima.json" in names
        assert not any(".tmp-" in n for n in names)
        assert RunConfig.from_json(zf.read(f"{cfg.run_id}/config.json").decode()) == cfg
    with pytest.raises(ValueError, match="no run"):
        run_archive(store, "0" * 12)


def test_run_archive_leaves_out_dotfiles_and_symlinks(tmp_path):
    store = RunStore(tmp_path / "runs")
    d = run_dir(store, RunConfig())
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (d / "leak.json").symlink_to(secret)
    (d / ".tmp-abc").write_text("partial")
    (d / ".lock").write_text("")
    names = zipfile.ZipFile(io.BytesIO(run_archive(store, RunConfig().run_id))).namelist()
    assert names == [f"{RunConfig().run_id}/config.json"]


def test_exports_leave_the_selection_out_unless_asked():
    """The selected minimum's outline, ring and thick lines are the dashboard's state, not
    the result: an exported figure has none of them unless ``selection=True``."""
    from core.engine.barcode import barcode_from_graph
    from core.views import plots
    from core.views.export import without_selection

    s = np.array([[0.0, 2.0, 2.0], [2.0, 1.0, 1.5], [2.0, 1.5, 0.5]])
    bc = barcode_from_graph(np.array([0.0, 1.0, 0.5]), s)
    figs = [
        plots.barcode_figure(bc, selected=1),
        plots.diagram_figure(bc, selected=1),
        plots.saddle_history_figure(
            [0, 1], [[2.0, 1.0], [3.0, 1.5]], [[0, 1], [1, 2]], highlight={1}
        ),
    ]
    for f in figs:
        marked = [t for t in f.data if t.meta == plots.SELECTION]
        assert len(marked) == 1
        plain = without_selection(f)
        assert len(plain.data) == len(f.data) - 1
        assert all(t.meta != plots.SELECTION for t in plain.data)
        assert len(f.data) == len(marked) + len(plain.data)  # the original is untouched
    html = figure_bytes(figs[0], "html")
    assert b"selected: min 1" not in html
    assert b"selected: min 1" in figure_bytes(figs[0], "html", selection=True)
