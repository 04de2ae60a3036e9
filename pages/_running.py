"""Running a config from a page: progress per stage, cancel, resume, and opening the result.

The run itself is ``core.runs.pipeline.run``; this module only reports its progress. A click
anywhere (the Cancel button, another page) interrupts the script at the next progress
report; the stages that finished stay saved, and the same config resumes from them.
"""

from __future__ import annotations

import time

import streamlit as st

from core.runs.pipeline import run
from core.views.dashboard import STAGE_WORDS, STAGES, check_runnable, progress_words
from pages._common import store


def run_with_progress(config):
    """Run (or resume) ``config`` with a progress bar per stage; the loaded run, or None.

    A click anywhere (the Cancel button, another page) interrupts the run at its next
    progress report; the finished stages stay saved and the same config resumes from them.
    """

    try:
        prepared = check_runnable(config)
    except ValueError as exc:
        st.error(f"Cannot run these settings: {exc}")
        return None
    st.session_state["pending_run"] = config.run_id
    st.button(
        "Cancel run",
        key="cancel_run",
        help="Stops after the current step; finished "
        "stages are kept, and starting the same settings again resumes from them.",
    )
    t_start = time.perf_counter()
    box = st.container(border=True)
    head = box.empty()
    head.markdown(f"**Running {config.run_id}**: loading the data...")
    bars = {s: box.progress(0.0, text=f"{STAGE_WORDS[s]}: waiting") for s in STAGES}
    started: dict[str, float] = {}
    last = [0.0]

    def on_progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if stage not in started:
            started[stage] = now
            for earlier in STAGES[: STAGES.index(stage)]:
                bars[earlier].progress(1.0, text=f"{STAGE_WORDS[earlier]}: done")
        if now - last[0] < 0.25 and done < total:
            return
        last[0] = now
        frac = min(1.0, done / total) if total else 0.0
        bars[stage].progress(frac, text=progress_words(stage, done, total, now - started[stage]))
        head.markdown(f"**Running {config.run_id}**: {now - t_start:.0f} s elapsed")

    try:
        result = run(config, store=store(), on_progress=on_progress, wait=False, prepared=prepared)
    except ValueError as exc:
        head.markdown(
            f"**Run {config.run_id} stopped** after {time.perf_counter() - t_start:.0f} s"
        )
        st.error(f"The run stopped: {exc}. Finished stages are saved.")
        return None
    for s in STAGES:
        bars[s].progress(1.0, text=f"{STAGE_WORDS[s]}: done")
    head.markdown(f"**Finished {config.run_id}** in {time.perf_counter() - t_start:.0f} s")
    st.session_state["run_id"] = result.run_id
    st.session_state["minimum"] = 0
    return result


def open_run(run_id: str) -> None:
    """Make ``run_id`` current and go to its barcode."""
    st.session_state["run_id"] = run_id
    st.session_state["minimum"] = 0
    st.switch_page("pages/barcode.py")


def pending_notice() -> None:
    """If the last run started here was interrupted, say so and offer to resume it."""
    run_id = st.session_state.get("pending_run")
    if not run_id:
        return
    try:
        stage = store().stage(run_id)
        config = store().config(run_id)
    except ValueError:
        return
    if stage == "results":
        return
    done = "before its first stage finished" if stage == "none" else f"after the stage '{stage}'"
    st.warning(
        f"Run {run_id} was interrupted {done}. What it finished is saved; resuming continues "
        "from there."
    )
    if st.button("Resume it", key="resume_run"):
        result = run_with_progress(config)
        if result is not None:
            open_run(result.run_id)
