"""Home: what a loss barcode is, the saved runs, and the default experiment in one click."""

import numpy as np
import streamlit as st

from core.runs.presets import get_preset
from core.views.dashboard import TO_SCORE_WORDS, runs_table
from core.views.learn import alive_bars, level_range, sublevel, toy_picture
from core.views.plots import growing_barcode_figure, sublevel_figure
from pages._common import chart, export_table, saved_runs, through_app
from pages._running import estimate, pending_notice, short_estimate, start_run

through_app()


@st.cache_data(show_spinner=False)
def picture(name: str):
    return toy_picture(name)


st.title("Loss-landscape barcodes")
st.markdown(
    "How hard is it for gradient descent to get out of a bad minimum? This dashboard measures "
    "it with the **barcode** of the loss landscape (after Barannikov et al., *Topological "
    "obstructions in neural networks learning*, arXiv 2012.15834)."
)

default = get_preset("first").first  # python -m core run --preset first
d, m, t = default.data, default.model, default.train
start_col, learn_col = st.columns([2, 1])
with start_col:
    if st.button(
        f"Run the default experiment ({short_estimate(default)})",
        type="primary",
        key="run_default",
        help=f"{t.minima} {m.activation} MLPs (width {m.width}, depth {m.depth}, L2 {t.l2:g}) "
        f"trained on {d.n_train} examples of the embedded {d.name} dataset (8 × 8 handwritten "
        f"digits, no download), all pairs joined by optimised paths, then again with the "
        f"minima aligned by weight matching, every pair searched twice (a second trust "
        f"radius) and the pairs across the passes that end bars at three more: "
        f"{estimate(default)}. Its barriers are visible, and the Barcode page shows which end "
        "at certified saddles and whether the last search still lowered them. It runs in "
        "the background; the Run page shows its progress and has every setting.",
    ):
        if start_run(default) is not None:
            st.switch_page("pages/run.py")
    st.caption(
        f"{t.minima} narrow {m.activation} networks (width {m.width}) on {d.n_train} embedded "
        f"{d.name}: barriers you can see. Relabelling hidden units keeps a network's function, "
        "so the Barcode page shows the barcode twice: raw, whose bars are upper bounds that "
        "move with the path settings, and modulo that symmetry, lower but still an upper "
        "bound; the run says whether the last widening of its route search still lowered "
        "them. It runs in the background and the Run page shows its progress."
    )
with learn_col:
    st.page_link(
        "pages/learn.py", label="New to barcodes? Start with Learn", icon=":material/school:"
    )
pending_notice()

xs, ys, Z, exact = picture("wells")
_, _, level = level_range(Z, exact)
labels, n = sublevel(Z, level)
left, right = st.columns(2)
with left:
    finite = np.isfinite(exact.deaths)
    chart(
        sublevel_figure(
            xs, ys, Z, labels, level, minima_xy=exact.minima, saddles_xy=exact.saddles[finite]
        ),
        "home_sublevel",
        export_name="sublevel-wells",
    )
with right:
    chart(
        growing_barcode_figure(exact.births, exact.deaths, level, exact=exact),
        "home_growing",
        export_name="growing-barcode-wells",
    )
st.markdown(
    f"**The picture.** A 2-D landscape with four wells, flooded up to level c = {level:.3g}: "
    f"the coloured pools are the set where the loss is at most c ({n} pools, "
    f"{alive_bars(exact.births, exact.deaths, level)} bars alive; black dots are minima, red "
    "crosses the saddles where pools meet). Each minimum's **bar** starts "
    "at its loss (**birth**) and ends where its pool first spills into a pool with a lower "
    "minimum (**death**, at a saddle). The bar's length is the smallest loss increase needed "
    "to escape that minimum's basin. The deepest minimum's bar never ends (∞). The **Learn** "
    "page lets you move the level yourself.\n\n"
    "**For a network** the landscape has thousands of dimensions. The engine trains several "
    "networks to different minima, joins every pair by a path optimised to cross the lowest "
    "possible barrier, and reads the bars off those paths. The **TO-score** summarises the "
    f"barcode: {TO_SCORE_WORDS['sum']}; and {TO_SCORE_WORDS['max']}. Small TO-scores mean "
    "minima that are easy to escape; the paper observes them in wider and deeper networks."
)

st.subheader("Saved runs")
runs = saved_runs()
if not runs:
    st.info("No saved runs yet.")
else:
    rows = runs_table(runs)
    st.dataframe(
        rows,
        hide_index=True,
        column_config={
            "TO-score sum": st.column_config.NumberColumn(
                format="%.4g", help=TO_SCORE_WORDS["sum"]
            ),
            "TO-score max": st.column_config.NumberColumn(
                format="%.4g", help=TO_SCORE_WORDS["max"]
            ),
            "minima (distinct)": st.column_config.NumberColumn(
                help="Distinct minima found from the training starts"
            ),
        },
    )
    st.caption(
        "TO-scores are in loss units (cross-entropy + L2). Pick a run in the sidebar to "
        "open it on the other pages."
    )
    export_table(rows, "runs")
