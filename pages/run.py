"""Run: choose the settings of an experiment, run it in the background, open the result."""

import streamlit as st

from core.runs.config import RunConfig
from pages._common import store, through_app
from pages._form import config_form
from pages._running import estimate, open_run, pending_notice, show_job, start_run

through_app()

D = RunConfig()  # the defaults shown in the form

st.title("Run an experiment")
st.markdown(
    "A run trains several networks from independent random starts (each ends in a minimum of "
    "the training loss), joins pairs of minima by optimised paths, and computes the barcode. "
    "It runs on the server in the background: you can use the other pages meanwhile (the "
    "sidebar shows it) and come back here. Every stage is saved as it finishes: a cancelled "
    "run resumes where it stopped, and the same settings always give the same run (its id "
    "is the hash of the settings)."
)
if "job" in st.session_state:
    show_job(st.session_state["job"])
pending_notice()

with st.form("run_form"):
    settings = config_form(D)
    left, right = st.columns([1, 4])
    submitted = left.form_submit_button("Start run", type="primary")
    estimated = right.form_submit_button("Estimate the time")

if submitted or estimated:
    try:
        config = RunConfig.from_dict(settings)
    except ValueError as exc:
        st.error(f"These settings cannot run: {exc}")
        st.stop()
    done = store().stage(config.run_id) == "results"
    if estimated:
        st.info(
            f"Run {config.run_id}: "
            + ("already computed, opens at once." if done else estimate(config) + ".")
        )
    elif done:
        st.success(f"These settings were already run ({config.run_id}); opening the result.")
        open_run(config.run_id)
    elif start_run(config) is not None:
        st.rerun()  # draw the job's progress at the top
