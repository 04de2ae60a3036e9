"""Landscape: minima and paths projected (PCA or UMAP), a path's loss profile, a plane."""

import numpy as np
import streamlit as st

from core.views.analysis import path_profile_of, plane_of
from core.views.dashboard import minimum_facts, pair_index, pair_labels, stopping_points
from core.views.plots import ident_of, plane_figure, profile_figure, projection_figure
from core.views.rebasin import landscape_points
from pages._common import (
    chart,
    current_run,
    load,
    minimum_name,
    minimum_picker,
    runs_dir,
    through_app,
)

through_app()


@st.cache_resource(max_entries=16, show_spinner=False)
def projection(root: str, run_id: str, method: str, dims: int, aligned: bool = False):
    from core.views.projection import pca_project, umap_project

    run = load(run_id)
    thetas, points, _, _ = landscape_points(run, aligned)
    if method == "umap":
        return umap_project(thetas, points, n_components=dims, seed=run.config.seed)
    return pca_project(thetas, points, n_components=dims)


@st.cache_resource(max_entries=32, show_spinner="Evaluating the loss along the path...")
def profile(root: str, run_id: str, pair: int):
    return path_profile_of(load(run_id), pair)


@st.cache_resource(
    max_entries=8, show_spinner="Evaluating the loss on the plane (41 × 41 networks)..."
)
def plane(root: str, run_id: str, minima: tuple[int, int, int]):
    return plane_of(load(run_id), minima)


run = current_run()
ident = ident_of(run.run_id, run.config)
n = len(run.minima)
stops = stopping_points(run)
st.title("Landscape")
st.caption(ident)
st.markdown(
    "Every minimum is a point in parameter space (one number per weight). These views "
    "squeeze that space into 2 or 3 coordinates so the minima and the optimised paths "
    "between them can be seen; colour is the training loss (cross-entropy + L2)."
)
k = minimum_picker(n, help="Shared with the Barcode page; click a minimum in the projection.")

c1, c2 = st.columns(2)
method = c1.radio(
    "Projection",
    ["pca", "umap"],
    horizontal=True,
    key="proj_method",
    format_func={"pca": "PCA (linear, fast)", "umap": "UMAP (non-linear, slow first time)"}.get,
)
dims = c2.radio(
    "Dimensions", [2, 3], horizontal=True, key="proj_dims", format_func={2: "2-D", 3: "3-D"}.get
)
aligned = False
if run.aligned is not None:
    aligned = st.radio(
        "Minima",
        [False, True],
        horizontal=True,
        key="proj_aligned",
        format_func={False: "as trained", True: "aligned (modulo permutations)"}.get,
        help="Weight matching permutes every minimum's hidden units onto minimum 0's; the "
        "aligned minima are the same functions, and their paths are computed between them.",
    )
spin = (
    "Computing UMAP: its first fit in a new process takes about 20 s while numba "
    "compiles; later fits are quick and the result is kept."
    if method == "umap"
    else "Computing PCA..."
)
with st.spinner(spin):
    proj = projection(runs_dir(), run.run_id, method, dims, aligned)
_, _, values, drawn = landscape_points(run, aligned)
pairs = [tuple(int(v) for v in p) for p in run.paths.pairs]  # the raw paths, for the profile
chart(
    projection_figure(
        proj,
        values,
        selected=k,
        path_pairs=[tuple(int(v) for v in p) for p in drawn],
        dims=dims,
        ident=ident + (" · aligned minima" if aligned else ""),
        stopping=stops,
    ),
    "projection_chart",
    linked=True,
    export_name=f"projection-{method}{'-aligned' if aligned else ''}-{run.run_id}",
)
if stops:
    st.caption(
        f"Hollow markers: minima {', '.join(map(str, stops))} are stopping points (their "
        "descent ended on the step cap or stalled before the gradient-norm criterion)."
    )
if aligned:
    st.caption(
        "The aligned minima and the paths between them (the profile and the plane below stay "
        "with the minima as trained)."
    )
if method == "pca":
    st.caption(
        f"PCA axes of all minima and path points; the axis titles give the share of "
        f"the variance each keeps ({100 * float(np.sum(proj.explained)):.1f}% in "
        "all). Distances within that subspace are true distances."
    )
else:
    st.caption(
        "UMAP keeps neighbourhoods, not distances: near points were near, but the "
        "axes have no units."
    )

st.subheader("The loss along one path")
labels = pair_labels(run)
if not labels:
    st.info("This run stored no paths.")
    st.stop()
f = minimum_facts(run, k)
default = pair_index(run, f["saddle_edge"]) if f["merges_into"] >= 0 else None
if default is None:
    mine = [e for e, p in enumerate(pairs) if k in p]
    default = mine[0] if mine else 0
follow = [run.run_id, k]  # the path and the plane follow the selected minimum
if st.session_state.get("profile_for") != follow or "profile_pair" not in st.session_state:
    st.session_state["profile_pair"] = default
    st.session_state["profile_for"] = follow
e = st.selectbox(
    "Path (pair of minima)",
    list(range(len(labels))),
    format_func=labels.__getitem__,
    key="profile_pair",
    help="Starts at the path where the selected minimum's bar dies.",
)
prof = profile(runs_dir(), run.run_id, e)
chart(profile_figure(prof, ident=ident), "profile_chart", export_name=f"profile-{run.run_id}")
st.caption(
    f"Loss (cross-entropy + L2) along the optimised path from minimum {prof.pair[0]} to "
    f"{prof.pair[1]}, evaluated at the path's {len(prof.nodes_s)} points and {prof.density - 1} "
    f"interpolated points between each two; the x axis is arc length normalised to 1 "
    f"(path length {prof.length:.3g}, straight distance {prof.straight_length:.3g} in parameter "
    f"units). Left, the path alone on a loss range fitted to it; the cross marks the saddle, "
    f"the highest loss on the path ({prof.saddle:.5g}, the death this path gives). Right, the "
    f"same path beside the straight segment between the same minima (dashed, maximum "
    f"{prof.straight_saddle:.5g}), which would flatten the path on one shared axis."
)

st.subheader("The loss on the plane through three minima")
others = [i for i in range(n) if i != k]
if n < 3:
    st.info("A plane needs three minima; this run has fewer.")
    st.stop()
if st.session_state.get("plane_for") != follow or "plane_minima" not in st.session_state:
    st.session_state["plane_minima"] = [k, *others[:2]]
    st.session_state["plane_for"] = follow
chosen = st.multiselect(
    "Three minima",
    list(range(n)),
    key="plane_minima",
    max_selections=3,
    format_func=minimum_name,
)
if len(chosen) != 3:
    st.info("Choose exactly three minima.")
    st.stop()
try:
    pl = plane(runs_dir(), run.run_id, tuple(chosen))
except ValueError as exc:
    st.error(f"No plane: {exc}")
    st.stop()
chart(
    plane_figure(pl, labels=("a", "b", "c"), ident=ident, stopping=stops),
    "plane_chart",
    export_name=f"plane-{run.run_id}",
)
st.caption(
    "Contours: the loss on the flat plane through the three minima (a at the origin, b on the "
    "u axis; coordinates are Euclidean distances in parameter space). Magenta lines: the "
    "optimised paths between them, projected onto the plane; they leave it, which is why the "
    "loss under a path can look higher than the path's own saddle."
)
