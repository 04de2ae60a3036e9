"""Generalization: does a minimum's segment length say anything about its test-train gap?"""

import math

import streamlit as st

from core.views.dashboard import generalization_points, generalization_stopping, run_label
from core.views.plots import generalization_figure
from core.views.stats import correlation
from pages._common import chart, export_table, load, saved_runs, through_app

through_app()


@st.cache_data(max_entries=32, show_spinner="Bootstrapping the correlations...")
def cached_correlation(run_ids: tuple[str, ...], gap_kind: str):
    lengths, gaps, _, _ = generalization_points([load(r) for r in run_ids], gap_kind)
    return correlation(lengths, gaps)


st.title("Generalization")
st.markdown(
    "Observation 2 of the paper: in some settings a minimum's **segment length** (how high "
    "it must climb to escape its basin, in loss units) relates to its **generalization gap** "
    "(test minus train, in loss or in error). One point per minimum; the global minimum has "
    "an infinite bar and is left out."
)
finished = [r for r in saved_runs() if r.stage == "results"]
if not finished:
    st.info("No finished runs yet: start one on the **Home** or **Run** page.")
    st.stop()
ids = [r.run_id for r in finished]
labels = {r.run_id: run_label(r) for r in finished}
if "gen_runs" not in st.session_state or not set(st.session_state["gen_runs"]) <= set(ids):
    current = st.session_state.get("run_id")
    st.session_state["gen_runs"] = [current] if current in ids else ids[:1]
chosen = st.multiselect(
    "Runs (pool minima from several runs)", ids, key="gen_runs", format_func=labels.get
)
gap_kind = st.radio(
    "Gap",
    ["loss", "error"],
    horizontal=True,
    key="gen_gap",
    format_func={
        "loss": "loss gap (test - train cross-entropy)",
        "error": "error gap (test - train fraction misclassified)",
    }.get,
)
if not chosen:
    st.info("Choose at least one run.")
    st.stop()

runs = [load(r) for r in chosen]
lengths, gaps, groups, minima = generalization_points(runs, gap_kind)
stopping = generalization_stopping(runs)
stats = None
if len(lengths) >= 3:
    try:
        stats = cached_correlation(tuple(chosen), gap_kind)
    except ValueError as exc:
        st.error(f"No correlation: {exc}")
else:
    st.warning(
        f"Only {len(lengths)} minima with a finite segment: a correlation needs at least "
        "3. Add runs or use more minima."
    )

if stats is not None:
    ci = f"{100 * stats.ci:.0f}%"
    c1, c2, c3 = st.columns(3)
    c1.metric("Minima (n)", stats.n, help="Points with a finite segment in the chosen runs.")

    def show(v, lo, hi):
        return "undefined" if math.isnan(v) else f"{v:.2f} [{lo:.2f}, {hi:.2f}]"

    c2.metric(
        f"Pearson r [{ci} CI]",
        show(stats.pearson, *stats.pearson_ci),
        help="Linear correlation; bootstrap percentile interval "
        f"({stats.n_boot} resamples of the minima).",
    )
    c3.metric(
        f"Spearman ρ [{ci} CI]",
        show(stats.spearman, *stats.spearman_ci),
        help="Rank correlation; same bootstrap.",
    )
    st.caption(
        f"Permutation p-values (two-sided, {stats.n_perm} permutations): Pearson "
        f"{stats.pearson_p_perm:.3g}, Spearman {stats.spearman_p_perm:.3g}. With n = {stats.n} a "
        "wide interval is expected; 'undefined' means one of the two is constant."
    )

group_labels = [labels[g] for g in groups] if len(chosen) > 1 else None
chart(
    generalization_figure(
        lengths,
        gaps,
        stats=stats,
        gap_kind=gap_kind,
        groups=group_labels,
        minima=minima,
        stopping=stopping,
        ident=", ".join(f"run {r}" for r in chosen),
    ),
    "generalization_chart",
    export_name=f"generalization-{gap_kind}",
)
gap_unit = "nats" if gap_kind == "loss" else "fraction misclassified"
rows = [
    {
        "run": g,
        "minimum": m,
        "stopping point": stop,
        "segment length (nats)": x,
        f"gap: test \u2212 train {gap_kind} ({gap_unit})": y,
    }
    for g, m, x, y, stop in zip(groups, minima, lengths, gaps, stopping, strict=True)
]
if any(stopping):
    st.caption(
        f"Hollow points: {sum(stopping)} of {len(stopping)} minima are stopping points (their "
        "descent ended on the step cap or stalled): their segments start on a slope."
    )
export_table(rows, f"generalization-{gap_kind}")
