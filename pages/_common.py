"""What every page shares: the run store, cached loading, the run picker, the linked
selection of a minimum, export buttons and running a config with progress.

Each browser tab's st.session_state holds ids and selections only:

- ``run_id``: the current run (12 hex digits), picked in the sidebar.
- ``minimum``: the selected minimum (an int index into the run's minima), linked across views.
- ``pending_run``: the id of the last run started from the dashboard (pages/_running.py).
- ``job``, ``sweep_job``: the key of the run or sweep job this browser tab started or followed
  (``core.runs.jobs``; the job itself belongs to the server process).
- ``sweep``: the sweep shown on the Sweeps page.
"""

from __future__ import annotations

import os
import runpy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import streamlit as st

from core.runs.jobs import JobRegistry, registry
from core.runs.store import RunStore
from core.views.dashboard import STAGE_WORDS, run_label

REFRESH = 1.5  # seconds between progress refreshes while a job runs
FORMATS = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html",
}


# ---------------------------------------------------------------------------------------------
# Routing: every page runs inside app.py's navigation

APP = Path(__file__).resolve().parents[1] / "app.py"
_ROUTING = threading.local()  # a script run is one thread


@contextmanager
def routed() -> Iterator[None]:
    """app.py runs the chosen page inside this."""
    _ROUTING.on = True
    try:
        yield
    finally:
        _ROUTING.on = False


def through_app() -> None:
    """The first call of every page. Streamlit serves a fresh server's first request in its
    legacy mode for a ``pages/`` folder beside the entry script (app.py's ``st.navigation``
    switches that mode off from then on): a page URL then runs the page file alone, without
    the navigation and the sidebar. Such a run runs app.py instead, which routes to this
    page, and stops."""
    if getattr(_ROUTING, "on", False):
        return
    runpy.run_path(str(APP))
    st.stop()


# ---------------------------------------------------------------------------------------------
# The run store and cached loading (keyed by strings, never by tensors)


def runs_dir() -> str:
    """The run store folder: ``$BARCODES_RUNS_DIR``, default ``runs``."""
    return os.environ.get("BARCODES_RUNS_DIR", "runs")


def store() -> RunStore:
    return RunStore(runs_dir())


def saved_runs() -> list:
    """RunInfo of every readable run, newest first (unreadable folders are reported)."""
    runs, bad = store().list()
    for name, why in bad:
        st.sidebar.warning(f"Run folder {name} is unreadable and was skipped: {why}")
    return runs


@st.cache_resource(max_entries=16, show_spinner="Loading the run...")
def _load(root: str, run_id: str, stage: str):
    from core.runs.store import read_run

    return read_run(RunStore(root), run_id)


def load(run_id: str):
    """The run ``run_id`` (cached per run id and finished stage)."""
    s = store()
    return _load(runs_dir(), run_id, s.stage(run_id))


def current_run(*, finished: bool = True):
    """The run picked in the sidebar; stops the page with a hint when there is none."""
    run_id = st.session_state.get("run_id")
    if not run_id:
        st.info(
            "No run selected. Start one on the **Home** or **Run** page, or pick one in the "
            "sidebar."
        )
        st.stop()
    try:
        run = load(run_id)
    except ValueError as exc:
        st.error(f"Run {run_id} cannot be opened: {exc}")
        st.stop()
    if finished and run.barcode is None:
        st.warning(
            f"Run {run_id} stopped after the stage '{store().stage(run_id)}', before its barcode "
            "was computed. Resume it on the **Run** page (the finished stages are kept)."
        )
        st.stop()
    return run


# ---------------------------------------------------------------------------------------------
# Sidebar: the current run


def _pick_run() -> None:
    st.session_state["run_id"] = st.session_state["run_box"]
    st.session_state["minimum"] = 0


def sidebar() -> None:
    """The run picker and the jobs running on this server, shown on every page."""
    runs = saved_runs()
    with st.sidebar:
        st.caption(f"Run store: `{runs_dir()}`")
        jobs_sidebar()
        if not runs:
            st.info("No saved runs yet. Start the default experiment on **Home**.")
            return
        ids = [r.run_id for r in runs]
        labels = {
            r.run_id: run_label(r) + ("" if r.stage == "results" else " (unfinished)") for r in runs
        }
        if st.session_state.get("run_id") not in ids:
            st.session_state["run_id"] = ids[0]
        st.session_state["run_box"] = st.session_state["run_id"]
        st.selectbox(
            "Current run",
            ids,
            key="run_box",
            format_func=labels.get,
            on_change=_pick_run,
            help="Every page shows this run. Runs are named by the hash of their settings.",
        )


# ---------------------------------------------------------------------------------------------
# Sidebar: the runs and sweeps computing on this server (background jobs)


def jobs() -> JobRegistry:
    """The server's jobs (process-wide: every browser tab sees the same ones)."""
    return registry()


def jobs_sidebar() -> None:
    """A compact list of the running jobs, each a link to its page; refreshed while any runs."""
    ticking = bool(jobs().running(store()))
    st.fragment(_jobs_list, run_every=REFRESH if ticking else None)(ticking)


def _jobs_list(ticking: bool) -> None:
    running = jobs().running(store())
    if ticking and not running:
        st.rerun()  # the last one ended: show its run in the picker, stop refreshing
    if running:
        st.caption(f"Computing on this server: {len(running)}")
    for job in running:
        s = job.state()
        what = STAGE_WORDS.get(s.stage, s.stage) + (f" {s.done / s.total:.0%}" if s.total else "")
        if s.kind == "sweep":
            what = f"{s.runs_done} of {s.n_runs} runs done, {what}"
        if st.button(f"{s.label}: {what}", key=f"side_{s.key}", icon=":material/autorenew:"):
            if s.kind == "run":
                st.session_state["job"] = s.key
                st.switch_page("pages/run.py")
            st.session_state["sweep_job"], st.session_state["sweep"] = s.key, s.target
            st.switch_page("pages/sweeps.py")


# ---------------------------------------------------------------------------------------------
# The selected minimum, linked across charts, tables and pickers


def selected_minimum(n_minima: int) -> int:
    k = st.session_state.get("minimum", 0)
    if not isinstance(k, int) or not 0 <= k < n_minima:
        k = 0
    st.session_state["minimum"] = k
    return k


def _set_minimum(k: int) -> None:
    st.session_state["minimum"] = int(k)
    st.session_state["minimum_box"] = int(k)


def _first_customdata(points: list[dict[str, Any]]) -> int | None:
    """The minimum index in the first point's customdata: a number, a row ``[k, ...]``, or a
    typed-array row as the browser sends it (``{"0": k, "1": ...}``)."""
    for p in points:
        cd = p.get("customdata")
        if isinstance(cd, dict):
            cd = cd.get("0", next(iter(cd.values()), None))
        if isinstance(cd, list | tuple):
            cd = cd[0] if cd else None
        if cd is not None:
            try:
                return int(cd)
            except (TypeError, ValueError):
                continue
    return None


def select_from_chart(key: str) -> None:
    """on_select callback: the clicked point's customdata is a minimum index."""
    event = st.session_state.get(key)
    points = event["selection"]["points"] if event else []
    k = _first_customdata(list(points))
    if k is not None:
        _set_minimum(k)


def select_from_table(key: str, minima: list[int]) -> None:
    """on_select callback of a dataframe whose rows are ``minima`` in order."""
    event = st.session_state.get(key)
    rows = event["selection"]["rows"] if event else []
    if rows:
        _set_minimum(minima[rows[0]])


def minimum_name(i: int) -> str:
    """How pickers name a minimum (a module function: format_func must pickle)."""
    return f"minimum {i}"


def _minimum_from_box() -> None:
    _set_minimum(st.session_state["minimum_box"])


def minimum_picker(n_minima: int, label: str = "Selected minimum", **kw) -> int:
    """A selectbox bound to the linked selection; returns the selected minimum."""
    k = selected_minimum(n_minima)
    st.session_state["minimum_box"] = k
    st.selectbox(
        label,
        list(range(n_minima)),
        key="minimum_box",
        on_change=_minimum_from_box,
        format_func=minimum_name,
        **kw,
    )
    return k


def chart(fig, key: str, *, linked: bool = False, export_name: str | None = None) -> None:
    """A plotly chart; ``linked`` charts select a minimum on click; with its export buttons."""
    if linked:
        st.plotly_chart(
            fig,
            key=key,
            on_select=partial(select_from_chart, key),
            selection_mode="points",
            width="stretch",
        )
    else:
        st.plotly_chart(fig, key=key, width="stretch")
    export_figure(fig, export_name or key)


# ---------------------------------------------------------------------------------------------
# Export: bytes are made only when a button is clicked (deferred download data)


def _figure_bytes(fig, fmt: str, selection: bool) -> bytes:
    from core.views.export import figure_bytes

    return figure_bytes(fig, fmt, selection=selection)


def _table_bytes(rows) -> bytes:
    from core.views.export import table_csv

    return table_csv(rows)


def _archive_bytes(root: str, run_id: str) -> bytes:
    from core.views.export import run_archive

    return run_archive(RunStore(root), run_id)


def export_figure(fig, name: str) -> None:
    """PNG, SVG, PDF and interactive HTML downloads of ``fig``, made on click; without the
    selected minimum's highlight unless the box is ticked."""
    with st.popover("Export figure", icon=":material/download:"):
        st.caption(
            "PNG, SVG and PDF are drawn by kaleido (the first one takes a few seconds); "
            "HTML is the interactive chart."
        )
        keep = st.checkbox("Keep the selected minimum's highlight", key=f"export_{name}_selection")
        for fmt, mime in FORMATS.items():
            st.download_button(
                fmt.upper(),
                data=partial(_figure_bytes, fig, fmt, keep),
                file_name=f"{name}.{fmt}",
                mime=mime,
                on_click="ignore",
                key=f"export_{name}_{fmt}",
            )


def export_table(rows: list[dict[str, Any]], name: str, label: str = "Download table (CSV)"):
    st.download_button(
        label,
        data=partial(_table_bytes, rows),
        file_name=f"{name}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"csv_{name}",
    )


def export_run(run_id: str) -> None:
    st.download_button(
        "Download the whole run (zip: config, results, tensors)",
        data=partial(_archive_bytes, runs_dir(), run_id),
        file_name=f"run-{run_id}.zip",
        mime="application/zip",
        on_click="ignore",
        key=f"zip_{run_id}",
    )
