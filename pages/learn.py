"""Learn: barcodes of 2-D landscapes, where everything can be seen and checked exactly."""

import numpy as np
import streamlit as st

from core.engine.toy import TOYS
from core.engine.validate import SIGNIFICANT, TOLERANCE
from core.views.dashboard import alive_bars, level_range, sublevel, toy_view
from core.views.plots import (
    barcode_figure,
    growing_barcode_figure,
    merge_tree_figure,
    sublevel_figure,
    surface_figure,
)
from pages._common import chart, through_app

through_app()


@st.cache_data(
    show_spinner="Finding this landscape's minima and saddles with the engine and "
    "computing its exact barcode (a few seconds, once per landscape)..."
)
def cached_toy(name: str):
    return toy_view(name)


st.title("Learn: the barcode of a landscape")
st.markdown(
    "A loss function is a landscape over its parameters. Here the landscape has only two "
    "parameters (x, y), so it can be drawn. Imagine filling it with water from below: at "
    "**level c** the flooded region is the **sublevel set** {f ≤ c}. Each **minimum** starts a "
    "new pool when c reaches its height (the bar is **born**). When two pools meet, at a "
    "**saddle**, the younger one (with the higher minimum) stops being separate: its bar "
    "**dies** at the saddle's height. The bar's length, death − birth, is the smallest climb "
    "needed to leave that minimum's basin for a lower one."
)

name = st.selectbox(
    "Landscape", list(TOYS), format_func={n: t.title for n, t in TOYS.items()}.get, key="toy"
)
toy = TOYS[name]
st.markdown(f"**{toy.title}.** {toy.description}")
st.code(toy.formula, language=None)
view = cached_toy(name)
exact = view.exact
lo, hi, start = level_range(view.Z, exact)
level = st.slider(
    "Level c (the water height; move it to flood the landscape)",
    min_value=lo,
    max_value=hi,
    value=start,
    step=(hi - lo) / 200,
    format="%.3f",
    key=f"level_{name}",
)
labels, n_components = sublevel(view.Z, level)
n_alive = alive_bars(exact.births, exact.deaths, level)
c1, c2, c3 = st.columns(3)
c1.metric(
    "Components of {f ≤ c}",
    n_components,
    help="Connected pieces of the flooded region on the drawn grid.",
)
c2.metric(
    "Bars alive at c",
    n_alive,
    help="Bars born at or below c that have not died yet; it equals the number of "
    "components (up to the grid's resolution).",
)
c3.metric("Minima (bars in total)", len(exact.births))

finite = np.isfinite(exact.deaths)
left, right = st.columns(2)
with left:
    chart(
        sublevel_figure(
            view.xs,
            view.ys,
            view.Z,
            labels,
            level,
            minima_xy=exact.minima,
            saddles_xy=exact.saddles[finite],
        ),
        "learn_sublevel",
        export_name=f"sublevel-{name}",
    )
    st.caption(
        "Coloured: the flooded region {f ≤ c}, one colour per pool. Black dots: minima; "
        "red crosses: the saddles where a pool merges into an older one."
    )
with right:
    chart(
        growing_barcode_figure(exact.births, exact.deaths, level, exact=exact),
        "learn_growing",
        export_name=f"growing-barcode-{name}",
    )
    st.caption(
        "Each bar starts when its pool appears and stops when the pool merges into an "
        "older one. Blue: still alive at c; grey: already dead. The outlines show the "
        "whole barcode. The global minimum's bar never dies (∞)."
    )

with st.expander("The landscape in 3-D, with the level c as a plane", expanded=False):
    chart(
        surface_figure(view.xs, view.ys, view.Z, level=level),
        "learn_surface",
        export_name=f"surface-{name}",
    )

st.subheader("The engine's estimate next to the exact barcode")
cmp = view.comparison
land = cmp.landscape
st.markdown(
    f"For a network there is no grid. The engine does what it does for a network: gradient "
    f"descent from {len(land.minima.start_of)} starting points found "
    f"{len(land.minima.values)} distinct minima; every pair was joined by a path optimised to "
    f"cross the lowest possible barrier, whose highest point estimates the saddle; the bars are "
    f"read off that graph of minima and saddles. Here "
    f"the exact barcode is known (sublevel persistence of an {exact.resolution} × "
    f"{exact.resolution} grid), so the estimate can be checked."
)
bars = land.barcode
verdict = "match" if cmp.ok else "do not match"
rows = [
    {"source": src, "birth": float(b), "death": float(d), "length": float(d - b)}
    for src, pairs in (("engine", cmp.engine_bars), ("exact", cmp.exact_bars))
    for b, d in pairs
]
left, right = st.columns([3, 2])
with left:
    chart(
        barcode_figure(bars, ident=f"engine estimate, toy {name}", loss_label="f(x, y)"),
        "learn_engine",
        export_name=f"engine-barcode-{name}",
    )
with right:
    st.markdown(
        f"Bars longer than {SIGNIFICANT:.1%} of the value range ({exact.value_range:.4g}) "
        f"are compared: engine {len(cmp.engine_bars)}, exact {len(cmp.exact_bars)}. The "
        f"bottleneck distance between them is **{cmp.bottleneck:.3g}** (f units) = "
        f"{100 * cmp.bottleneck / cmp.value_range:.2g}% of the range; allowed {TOLERANCE:.0%}: the "
        f"barcodes **{verdict}**."
    )
    st.dataframe(rows, hide_index=True)
    st.caption(
        "Finite bars of both barcodes (birth, death and length in f units); the "
        "essential bar of the global minimum is left out."
    )
left, right = st.columns([3, 2])
with left:
    chart(
        merge_tree_figure(
            bars.births, bars.deaths, bars.merges_into, bars.minimum, loss_label="f(x, y)"
        ),
        "learn_tree",
        export_name=f"merge-tree-{name}",
    )
with right:
    st.markdown(
        "**The merge tree** draws the same information as a tree: each minimum is a leaf at "
        "its height; two branches join at the saddle where their pools meet, and the branch "
        "of the younger minimum ends there. A bar is the branch from a leaf up to its join; "
        "the deepest minimum's branch goes on to ∞."
    )
