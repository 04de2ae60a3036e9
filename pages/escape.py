"""Escapability: does SGD leave minima with short bars more often than those with long ones?"""

import streamlit as st

from core.runs.escape import DEFAULTS, DESCENT_STEPS, check_settings, escape_saved, saved_results
from core.views.escape import RULE, escape_figure, escape_rows, moved_by, sweep_rows, verdict
from core.views.plots.frame import ident_of
from pages._common import chart, current_run, export_table, store, through_app

through_app()

st.title("Escapability")
st.markdown(
    "The paper's newest title calls the barcode *a topological measure of escapability*: a "
    "minimum with a **short bar** should be easy for SGD to leave, one with a **long bar** "
    "hard. Here SGD starts several times from every minimum of the current run (each "
    "trajectory with its own minibatches), and we count how often it ends in another basin. "
    "Only trajectories that have **settled** after a full-batch descent count: the escape "
    "probability is escaped / settled, and the unsettled (loss still above the basin "
    "threshold) and diverged ones are shown as their own columns."
)
with st.expander("How an escape is decided"):
    st.markdown(RULE)
run = current_run()


def parse_lrs(text: str) -> list[float]:
    """'0.05, 0.2' -> [0.05, 0.2]; ValueError naming the bad entry."""
    out = []
    for part in text.replace(";", ",").split(","):
        if part.strip():
            try:
                out.append(float(part))
            except ValueError:
                raise ValueError(f"learning rate {part.strip()!r} is not a number") from None
    if not out:
        raise ValueError("give at least one learning rate")
    return out


with st.form("escape_form"):
    c = st.columns(6)
    lr_text = c[0].text_input(
        "Learning rate(s)", str(DEFAULTS["lr"]), help="Several, comma-separated, make a sweep."
    )
    batch = c[1].number_input("Minibatch", min_value=1, value=DEFAULTS["batch_size"])
    steps = c[2].number_input("SGD steps", min_value=1, value=DEFAULTS["steps"])
    repeats = c[3].number_input("Repeats per minimum", min_value=1, value=DEFAULTS["repeats"])
    seed = c[4].number_input("Seed", min_value=0, value=DEFAULTS["seed"])
    descent = c[5].number_input(
        "Descent steps",
        min_value=0,
        value=DESCENT_STEPS,
        help="Full-batch gradient steps after the SGD; a trajectory whose loss is still above "
        "its basin threshold after them is unsettled and left out of the probability.",
    )
    submitted = st.form_submit_button("Run", type="primary")

settings = dict(
    batch_size=int(batch),
    steps=int(steps),
    repeats=int(repeats),
    seed=int(seed),
    descent_steps=int(descent),
)
if submitted:
    try:
        lrs = parse_lrs(lr_text)
        for lr in lrs:
            check_settings(lr=lr, **settings)
    except ValueError as exc:
        st.error(f"These settings cannot run: {exc}")
        st.stop()
    bar = st.progress(0.0, text="Starting...")
    try:
        for i, lr in enumerate(lrs):

            def progress(done: int, total: int, i=i, lr=lr) -> None:
                bar.progress((i + done / total) / len(lrs), text=f"lr {lr:g}: SGD step {done}")

            escape_saved(store(), run.run_id, lr=lr, on_progress=progress, **settings)
    except ValueError as exc:
        st.error(f"These settings cannot run: {exc}")
        st.stop()
    bar.empty()
    st.session_state["escape_request"] = {"run_id": run.run_id, "lrs": lrs, **settings}

request = st.session_state.get("escape_request")
if request and request["run_id"] == run.run_id:
    kw = {k: v for k, v in request.items() if k not in ("run_id", "lrs")}
    results = [escape_saved(store(), run.run_id, lr=lr, **kw)[0] for lr in request["lrs"]]
else:
    results = saved_results(store(), run.run_id)
if not results:
    st.info("Nothing computed for this run yet: choose the settings and press **Run**.")
    st.stop()

st.subheader("Escape probability vs bar length")
for r in results:  # an inconclusive result (most trajectories unsettled) as a warning
    (st.warning if r.inconclusive else st.markdown)(f"**{moved_by(r)}**: {verdict(r)}")
chart(
    escape_figure(results, ident_of(run.run_id, run.config)),
    "escape_chart",
    export_name=f"escape-{run.run_id}",
)
if len(results) > 1:
    st.dataframe(sweep_rows(results), hide_index=True)
for r in results:
    st.caption(
        f"Per minimum, {moved_by(r)} ({r.settings['descent_steps']} full-batch steps): "
        f"{int(r.escaped.sum())} of {int(r.settled.sum())} settled trajectories escaped; "
        f"{int(r.unsettled.sum())} unsettled and {int(r.diverged.sum())} diverged are left out "
        "of the probability."
    )
    rows = escape_rows(r)
    st.dataframe(rows, hide_index=True)
    export_table(rows, f"escape-{run.run_id}-lr{r.settings['lr']:g}-seed{r.settings['seed']}")
