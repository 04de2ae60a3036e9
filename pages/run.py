"""Run: choose the settings of an experiment, run it with progress, open the result."""

import streamlit as st

from core.runs.config import RunConfig
from pages._common import store, through_app
from pages._form import config_form
from pages._running import open_run, pending_notice, run_with_progress

through_app()

D = RunConfig()  # the defaults shown in the form

st.title("Run an experiment")
st.markdown(
    "A run trains several networks from independent random starts (each ends in a minimum of "
    "the training loss), joins pairs of minima by optimised paths, and computes the barcode. "
    "Every stage is saved as it finishes: an interrupted run resumes where it stopped, and "
    "the same settings always give the same run (its id is the hash of the settings)."
)
pending_notice()

with st.form("run_form"):
    settings = config_form(D)
    submitted = st.form_submit_button("Start run", type="primary")

if submitted:
    try:
        config = RunConfig.from_dict(settings)
    except ValueError as exc:
        st.error(f"These settings cannot run: {exc}")
        st.stop()
    if store().stage(config.run_id) == "results":
        st.success(f"These settings were already run ({config.run_id}); opening the result.")
        open_run(config.run_id)
    result = run_with_progress(config)
    if result is not None:
        open_run(result.run_id)
