"""Runs and sweeps started from a page: background jobs (``core.runs.jobs``), their progress,
cancel, resume, and opening the result.

A job belongs to the server process, not to the script run that started it: a click, another
page or a closed tab does not stop it. The browser tab keeps only the job's key
(``st.session_state["job"]`` for a run, ``["sweep_job"]`` for a sweep); every rerun draws the
job's progress again, refreshed by a fragment every ``REFRESH`` seconds while it runs.
"""

from __future__ import annotations

import streamlit as st

from core.runs.config import RunConfig
from core.runs.jobs import Job
from core.runs.store import RunStore
from core.views.dashboard import STAGE_WORDS, check_runnable, format_seconds
from core.views.progress import (
    Rates,
    device_kind,
    estimate_words,
    job_words,
    measured_rates,
    run_seconds,
    stage_bars,
    stage_costs,
)
from pages._common import REFRESH, jobs, runs_dir, store

# ---------------------------------------------------------------------------------------------
# Estimates (cached: the cost model counts FLOPs on the meta device)


@st.cache_data(ttl=30, show_spinner=False)
def _rates(root: str, kind: str) -> Rates:
    return measured_rates(RunStore(root).list()[0], kind)


def rates(config: RunConfig) -> Rates:
    """FLOP/s per stage measured on the finished runs stored here for ``config``'s device."""
    return _rates(runs_dir(), device_kind(config.device))


@st.cache_data(max_entries=512, show_spinner=False)
def _costs(run_id: str, config: dict):
    return stage_costs(RunConfig.from_dict(config))


def costs(config: RunConfig):
    return _costs(config.run_id, config.to_dict())


def estimate(config: RunConfig) -> str:
    """The time a whole run of ``config`` takes, in words."""
    c = costs(config)
    if c is None:
        return "time unknown (the cost model cannot count this network)"
    return estimate_words(run_seconds(c, rates(config)), rates(config))


def short_estimate(config: RunConfig) -> str:
    """The time a whole run of ``config`` takes at most, in a button's few words: "≤ 3 min"."""
    c = costs(config)
    seconds = None if c is None else run_seconds(c, rates(config))
    return "time unknown" if seconds is None else f"\u2264 {format_seconds(seconds)}"


# ---------------------------------------------------------------------------------------------
# Starting and showing a run


def start_run(config: RunConfig) -> Job | None:
    """Check ``config`` (one ``st.error`` if it cannot run here), start (or re-attach to) its
    job and make it this browser tab's; None when it cannot run."""
    try:
        prepared = check_runnable(config)
    except ValueError as exc:
        st.error(f"Cannot run these settings: {exc}")
        return None
    job = jobs().start_run(config, store(), prepared=prepared)
    st.session_state["job"] = job.key
    st.session_state["pending_run"] = config.run_id
    return job


def open_run(run_id: str) -> None:
    """Make ``run_id`` current and go to its barcode."""
    st.session_state["run_id"] = run_id
    st.session_state["minimum"] = 0
    st.switch_page("pages/barcode.py")


def _config_of(job: Job) -> RunConfig | None:
    s = job.state()
    try:
        return store().config(s.run_id) if s.run_id else None
    except ValueError:
        return None


def show_job(key: str) -> None:
    """The job's progress, refreshed every ``REFRESH`` s while it runs; nothing if unknown."""
    job = jobs().get(key)
    if job is None:
        return
    ticking = job.running
    st.fragment(_job_box, run_every=REFRESH if ticking else None)(key, ticking)


def _job_box(key: str, ticking: bool) -> None:
    job = jobs().get(key)
    s, config = job.state(), _config_of(job)
    if ticking and not job.running:
        st.rerun()  # ended: redraw the page (the run picker, the buttons) and stop ticking
    box = st.container(border=True)
    c = costs(config) if config else None
    box.markdown(job_words(s, c, rates(config) if config else Rates(1, 1)))
    if s.kind == "sweep":
        box.progress(s.runs_done / max(s.n_runs, 1), text=f"runs {s.runs_done} of {s.n_runs}")
    if s.stage in STAGE_WORDS or s.status == "finished":
        for bar in stage_bars(s):
            box.progress(bar.fraction, text=bar.text)
    _job_buttons(box, job, config)


def _job_buttons(box, job: Job, config: RunConfig | None) -> None:
    s = job.state()
    if job.running:
        box.button(
            "Cancelling..." if job.cancelling else "Cancel",
            key=f"cancel_{s.key}",
            on_click=job.cancel,
            disabled=job.cancelling,
            help="Stops at the next progress report; finished stages are kept, and starting "
            "the same settings again resumes from them.",
        )
    elif s.kind == "run" and s.status == "finished":
        if box.button("Open the result", key=f"open_{s.key}", type="primary"):
            open_run(s.run_id)
    elif s.kind == "run" and config is not None:
        if box.button("Resume", key=f"resume_{s.key}", help="Continue from the saved stages"):
            start_run(config)
            st.rerun()


def pending_notice() -> None:
    """If the last run started here stopped before its barcode and no job is on it, say so
    and offer to resume it."""
    run_id = st.session_state.get("pending_run")
    if not run_id:
        return
    job = jobs().find("run", store(), run_id)
    try:
        stage = store().stage(run_id)
        config = store().config(run_id)
    except ValueError:
        return
    if stage == "results" or (job is not None and job.running):
        return
    done = "before its first stage finished" if stage == "none" else f"after the stage '{stage}'"
    st.warning(
        f"Run {run_id} stopped {done}. What it finished is saved; resuming continues from there."
    )
    if st.button("Resume it", key="resume_run") and start_run(config):
        st.switch_page("pages/run.py")
