"""Barcode: the bars, the persistence diagram, the TO-score, the minima and the convergence."""

import math

import pandas as pd
import streamlit as st

from core.views.analysis import minima_rows
from core.views.dashboard import (
    NO_OBSTRUCTION,
    STATUS_WORDS,
    TO_SCORE_WORDS,
    convergence_words,
    death_kinds,
    minimum_facts,
    no_obstruction,
    pairs_of_minimum,
    route_search_words,
    stopping_points,
)
from core.views.plots import (
    barcode_figure,
    diagram_figure,
    ident_of,
    paired_barcode_figures,
    rebasin_figure,
    saddle_history_figure,
)
from core.views.rebasin import ALIGN_HINT, ALIGN_WORDS, rebasin_barriers, same_function_notes
from pages._common import (
    chart,
    current_run,
    export_run,
    export_table,
    minimum_picker,
    select_from_table,
    through_app,
)

through_app()

run = current_run()
c, s, bars = run.config, run.summary, run.barcode
ident = ident_of(run.run_id, c)
stops = stopping_points(run)
st.title("Barcode")
st.caption(ident)
st.markdown(
    "Each **bar** belongs to one minimum of the training loss (cross-entropy + L2 term on the "
    "training set). It is **born** at the minimum's loss and **dies** at the lowest saddle "
    "over which the minimum connects to a lower one; its length (death − birth, in loss "
    "units) is the smallest loss increase needed to escape that minimum's basin. The "
    "deepest minimum's bar never dies (∞)."
)

m1, m2, m3, m4 = st.columns(4)
m1.metric("TO-score (sum)", f"{s.to_score_sum:.6g}", help=TO_SCORE_WORDS["sum"])
m2.metric("TO-score (max)", f"{s.to_score_max:.6g}", help=TO_SCORE_WORDS["max"])
m3.metric("Distinct minima", s.n_minima, help=f"from {c.train.minima} training starts")
m4.metric(
    "Paths finished",
    f"{s.n_paths - s.n_paths_step_cap} of {s.n_paths}",
    help="Converged by force (the climbing point on a saddle) or joined with no barrier; the "
    "others stopped at the step cap and their saddles are upper bounds.",
)
st.caption(
    f"{TO_SCORE_WORDS['sum']}. {TO_SCORE_WORDS['max']}. Both in loss units (cross-entropy + L2)."
)
if run.aligned is not None:
    st.info(
        f"Modulo the hidden units' symmetry (below) the TO-score is {s.aligned_to_score_sum:.6g} "
        f"(sum) and {s.aligned_to_score_max:.6g} (max): one bar per function, through each "
        "pair's lower route between copies of its two functions. The bars above are upper "
        "bounds over the routes found between the minima as their units are numbered."
        + (f" {words}" if (words := route_search_words(run, modulo=True)) else "")
    )

k = minimum_picker(s.n_minima, help="Click a bar or a point in the charts to select it.")
f = minimum_facts(run, k)
life = "∞ (the global minimum: never dies)" if math.isinf(f["length"]) else f"{f['length']:.6g}"
into = (
    "nothing (essential)"
    if f["merges_into"] < 0
    else (
        f"minimum {f['merges_into']} via the saddle of path {f['saddle_edge'][0]}-"
        f"{f['saddle_edge'][1]} at loss {f['death']:.6g}"
    )
)
status = STATUS_WORDS.get(f["status"], f["status"])
st.markdown(
    f"**Selected minimum {k}** ({status}): born at loss {f['birth']:.6g}, segment length "
    f"{life}; merges into {into}. Train / test loss {f['train_loss']:.4g} / "
    f"{f['test_loss']:.4g}, train / test error {f['train_error']:.2%} / {f['test_error']:.2%}."
)

if no_obstruction(s.to_score_max, c.paths.saddle_tol):
    st.info(
        f"**{NO_OBSTRUCTION[0].upper() + NO_OBSTRUCTION[1:]}.** Every minima segment is at most "
        f"{s.to_score_max:.3g}, below the saddle tolerance {c.paths.saddle_tol:g}: the paths "
        "found join every pair of minima without climbing a measurable barrier, so there is no "
        "barcode to draw. Narrower networks, less data or fewer training steps make barriers "
        "visible."
    )
else:
    left, right = st.columns([3, 2])
    with left:
        chart(
            barcode_figure(
                bars, selected=k, ident=ident, death_kinds=death_kinds(run), stopping=stops
            ),
            "barcode_chart",
            linked=True,
            export_name=f"barcode-{run.run_id}",
        )
    with right:
        chart(
            diagram_figure(bars, selected=k, ident=ident, stopping=stops),
            "diagram_chart",
            linked=True,
            export_name=f"diagram-{run.run_id}",
        )
    st.caption(
        "Bars sorted by length, the essential bar (red, ∞) on top; a dot marks each birth and "
        "a tick each death, so a bar too short to see still shows where it is. In the diagram "
        "each minimum is a point (birth, death); its height above the diagonal is its segment "
        "length, and the essential point sits on the ∞ line in the grey band above every "
        "finite value. Hollow marks are stopping points (minima "
        + (", ".join(map(str, stops)) if stops else "none in this run")
        + "): their descent ended before the gradient-norm criterion. Click a bar or a point "
        "to select its minimum."
    )

st.subheader("Modulo permutation symmetry")
if run.aligned is None:
    st.caption(ALIGN_HINT)
else:
    al = run.aligned.barcode
    st.markdown(ALIGN_WORDS)
    a1, a2, a3 = st.columns(3)
    a1.metric(
        "Aligned TO-score (sum)",
        f"{s.aligned_to_score_sum:.6g}",
        delta=f"{s.aligned_to_score_sum - s.to_score_sum:.3g} vs raw",
        delta_color="off",
        help=TO_SCORE_WORDS["sum"] + ", modulo the symmetry: each pair's lower route",
    )
    a2.metric(
        "Aligned TO-score (max)",
        f"{s.aligned_to_score_max:.6g}",
        delta=f"{s.aligned_to_score_max - s.to_score_max:.3g} vs raw",
        delta_color="off",
        help=TO_SCORE_WORDS["max"] + ", modulo the symmetry: each pair's lower route",
    )
    a3.metric("Alignment took", f"{run.aligned.seconds:.1f} s", help="matching, paths, barcode")
    if no_obstruction(max(s.to_score_max, s.aligned_to_score_max), c.paths.saddle_tol):
        st.info(f"Raw and aligned: {NO_OBSTRUCTION}.")
    else:
        raw_fig, al_fig = paired_barcode_figures(
            bars,
            al,
            selected=k,
            death_kinds=(death_kinds(run), death_kinds(run, aligned=True)),
            ident=ident,
            stopping=stops,
        )
        left, right = st.columns(2)
        for col, name, fig in ((left, "raw", raw_fig), (right, "aligned", al_fig)):
            with col:
                chart(
                    fig,
                    f"{name}_barcode_chart",
                    linked=True,
                    export_name=f"barcode-{name}-{run.run_id}",
                )
    bar = rebasin_barriers(run)
    chart(
        rebasin_figure(bar.pairs, bar.before, bar.after, ident=ident),
        "rebasin_chart",
        export_name=f"rebasin-{run.run_id}",
    )
    st.caption(
        "Left, the barcode of the minima as trained; right, modulo the symmetry: each "
        "pair's lower route, its raw path or the path between the minima aligned to minimum 0 "
        "(same loss axis). Below, each pair's straight-segment barrier (the "
        "segment's highest loss minus its higher end's) before and after alignment: points "
        f"under the dashed diagonal were lowered ({bar.lowered} of {len(bar)})."
    )
    for note in same_function_notes(run):
        st.info(note)

st.subheader("Minima")
rows = minima_rows(run)
table = pd.DataFrame(rows)
styled = table.style.apply(
    lambda r: ["background-color: #fbe3cf" if r["minimum"] == k else ""] * len(r), axis=1
).format(precision=4)
st.dataframe(
    styled,
    hide_index=True,
    key="minima_table",
    on_select=lambda: select_from_table("minima_table", list(table["minimum"])),
    selection_mode="single-row",
)
st.caption(
    "Losses are cross-entropy (nats); the landscape adds the L2 term "
    f"{c.train.l2:g} · ‖θ‖²/2. Errors are percentages misclassified. Status 'minimum': "
    f"gradient norm ≤ {c.train.grad_tol:g}; anything else is a stopping point (hollow in the "
    "charts). The highlighted row is the selected minimum; click a row to select another."
)
export_table(rows, f"minima-{run.run_id}")

st.subheader("Convergence")
for line in convergence_words(run):
    st.markdown(f"- {line}")
p = run.paths
mine = pairs_of_minimum(run, k)
chart(
    saddle_history_figure(
        p.history_steps,
        p.history,
        p.pairs,
        converged=p.converged,
        highlight=set(mine),
        ident=ident,
    ),
    "saddle_history",
    export_name=f"saddle-history-{run.run_id}",
)
st.caption(
    "Each line is one pair of minima: how far its best saddle estimate (loss) still was "
    "above the pair's final estimate as the path was optimised, on a log axis (a line ends "
    f"where it reached its final value; hover for the estimate). The paths of minimum {k} are "
    "drawn thick. Solid: converged; dashed: stopped on the step cap, so its saddle is an "
    "upper bound."
)
export_run(run.run_id)
