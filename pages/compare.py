"""Compare: several runs side by side; TO-score against width and depth, barcodes overlaid."""

import streamlit as st

from core.views.dashboard import (
    TO_SCORE_WORDS,
    run_label,
    stopping_points,
    stopping_warning,
    sweep_rows,
)
from core.views.plots import barcodes_overlay_figure
from core.views.sweeps import curves_figure, rows_curves
from pages._common import chart, export_table, load, saved_runs, through_app

through_app()

st.title("Compare runs")
st.markdown(
    "Observation 1 of the paper: barcodes and the TO-score shrink as networks get wider and "
    "deeper. Pick a series of runs (e.g. the same data at several widths) to see it. Runs at "
    "the same width or depth (other seeds) are averaged; the band is their range."
)
finished = [r for r in saved_runs() if r.stage == "results"]
if len(finished) < 1:
    st.info("No finished runs yet: start some on the **Run** page (e.g. widths 4, 8, 16).")
    st.stop()
ids = [r.run_id for r in finished]
info = {r.run_id: r for r in finished}
if "compare_runs" not in st.session_state or not set(st.session_state["compare_runs"]) <= set(ids):
    st.session_state["compare_runs"] = ids[:6]
chosen = st.multiselect(
    "Runs", ids, key="compare_runs", format_func={r: run_label(info[r]) for r in ids}.get
)
kind = st.radio(
    "TO-score",
    ["sum", "max"],
    horizontal=True,
    key="compare_kind",
    format_func={"sum": "sum of segments", "max": "longest segment"}.get,
)
st.caption(TO_SCORE_WORDS[kind] + ", in loss units (cross-entropy + L2).")
if not chosen:
    st.info("Choose at least one run.")
    st.stop()

chosen_infos = [info[r] for r in chosen]
rows = sweep_rows(chosen_infos)
st.dataframe(rows, hide_index=True)
unconverged = [r.run_id for r in chosen_infos if r.summary.n_paths_converged < r.summary.n_paths]
if unconverged:
    st.caption(
        f"In {len(unconverged)} of {len(rows)} runs some paths hit their step cap before "
        "converging: their saddles are upper bounds, so those TO-scores may be too large "
        "(the Barcode page shows each pair's saddle over the steps)."
    )
stopping = stopping_warning(chosen_infos)
if stopping:
    st.warning(stopping)
export_table(rows, "compare")
mixed = {(r["dataset"], r["architecture"]) for r in rows}
if len(mixed) > 1:
    st.warning(
        "The chosen runs mix datasets or architectures: "
        + "; ".join(f"{d} {a}" for d, a in sorted(mixed))
        + ". Their TO-scores are not on one scale."
    )

y_label = TO_SCORE_WORDS[kind].split(":")[0] + " (loss units)"
left, right = st.columns(2)
for col, by, word in ((left, "width", "hidden width"), (right, "depth", "depth (hidden layers)")):
    curves = rows_curves(rows, by, kind)
    with col:
        if len(curves.xs) < 2:
            st.info(
                f"All chosen runs have the same {by} ({curves.xs[0]}): nothing to plot against "
                f"{by}."
            )
            continue
        chart(
            curves_figure(curves, word, y_label),
            f"to_score_{by}",
            export_name=f"to-score-vs-{by}",
        )
if any(curves.aligned):
    st.caption(
        "Dashed: the aligned landscape's TO-score of the chosen runs computed with "
        "`--align weight-matching` (minima permuted onto the lowest one's hidden units)."
    )

runs = [load(r) for r in chosen]
chart(
    barcodes_overlay_figure(
        [r.barcode for r in runs],
        [f"w{r.config.model.width} d{r.config.model.depth} ({r.run_id[:6]})" for r in runs],
        stopping=[stopping_points(r) for r in runs],
    ),
    "overlay_chart",
    export_name="barcodes-overlay",
)
st.caption(
    "All chosen barcodes on one loss axis, one block of rows per run, longest bar on "
    "top; hatched bars are the essential bars of the global minima (∞). A dot marks each "
    "birth (hollow: a stopping point) and a tick each death, so bars far shorter than a "
    "pixel still show."
)
