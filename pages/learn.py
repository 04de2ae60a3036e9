"""Learn: flood a landscape from below and watch its barcode grow; a curve first, then surfaces.

The flood figure carries a frame per level, so its slider and Play run in the browser. The
event stepper (a fragment: only it reruns) starts the figure at a chosen birth or merge and
says what happened there. Everything is computed once per landscape and cached.
"""

import hashlib

import streamlit as st

from core.engine.toy import TOYS, get_toy
from core.engine.validate import SIGNIFICANT, TOLERANCE
from core.views.learn import (
    MAX_WELLS,
    OWN_BOX,
    curve_flood,
    mark_label,
    mark_words,
    own_flood,
    toy_flood,
    toy_view,
)
from core.views.particles import NOISES, REPEATS, flood_to_engine, throw_particles
from core.views.plots import barcode_figure, merge_tree_figure
from core.views.plots.flood import SpecFigure, at_frame, flood_figure
from core.views.plots.particles import escape_bars_figure, escape_words, particles_figure
from core.views.plots.pools import color_of, surface_pools_figure
from core.views.plots.watch import watch_figure
from core.views.watch import exact_saddle, snapshots
from pages._common import chart, through_app

through_app()

CURVE = "curve"  # the key of the 1-D landscape among the toys' names
STORIES = ["1. A curve", "2. Surfaces", "3. Your own"]
DEFAULT_WELLS = [
    (-1.5, -1.0, 1.0),
    (1.3, -1.2, 0.8),
    (1.1, 1.3, 0.6),
    (-1.2, 1.4, 0.4),
    (0.0, 2.2, 0.5),
    (2.2, 0.2, 0.3),
]
COMPACT = "<style>[data-testid='stMainBlockContainer']{padding-top:1.2rem}</style>"
LARGE = "<style>html{font-size:19px}</style>"


@st.cache_resource(max_entries=16, show_spinner="Flooding the landscape (once per landscape)...")
def flood(key: str, wells: tuple | None = None):
    """The curve, a toy by name, or your own ``wells`` (their key starts with "own")."""
    if wells is not None:
        return own_flood(wells)
    return curve_flood() if key == CURVE else toy_flood(key)


@st.cache_resource(max_entries=16, show_spinner="Drawing every level (once per landscape)...")
def flood_spec(key: str, large: bool, wells: tuple | None = None) -> dict:
    """The flood figure as a dict (shared, never changed: ``at_frame`` copies what it sets)."""
    fl = flood(key, wells)
    return flood_figure(fl, fl.levels(), 0, large=large).to_dict()


@st.cache_resource(
    max_entries=8,
    show_spinner="Finding this landscape's minima and saddles with the engine (a few seconds, "
    "once per landscape)...",
)
def engine_view(name: str):
    return toy_view(name)


def _step(key: str, options: list[str], by: int) -> None:
    """◀ / ▶: the previous or next event."""
    box = f"learn_event_{key}"
    i = options.index(st.session_state.get(box, options[0])) + by
    st.session_state[box] = options[min(max(i, 0), len(options) - 1)]


@st.fragment
def level_view(key: str, large: bool, wells: tuple | None = None) -> None:
    """The event stepper, its sentence and every figure that depends on the level."""
    fl, spec = flood(key, wells), flood_spec(key, large, wells)
    levels = fl.levels()
    stops = [0, *(int(levels.searchsorted(m)) for m in fl.marks)]  # dry, then each event level
    options = [mark_label(fl, levels[i]) for i in stops]
    left, mid, right = st.columns([1, 8, 1], vertical_alignment="bottom")
    left.button(
        "◀",
        key=f"learn_prev_{key}",
        on_click=_step,
        args=(key, options, -1),
        help="The previous event",
        width="stretch",
    )
    right.button(
        "▶",
        key=f"learn_next_{key}",
        on_click=_step,
        args=(key, options, 1),
        help="The next event",
        width="stretch",
    )
    chosen = mid.select_slider(
        "Event",
        options,
        key=f"learn_event_{key}",
        label_visibility="collapsed",
        help="Jump to an event: a pool appears, or two pools merge. The figure's own slider "
        "and its ▶ Play move the level continuously.",
    )
    i = stops[options.index(chosen)]
    level = float(levels[i])
    st.markdown(f"**{mark_words(fl, level)}**")
    chart(
        SpecFigure(at_frame(spec, i)),
        f"learn_flood_{key}",
        export_name=f"flood-{key}",
    )
    if fl.ys is not None and st.toggle("Show the landscape in 3-D", key=f"learn_3d_{key}"):
        chart(surface_pools_figure(fl, level), f"learn_surface_{key}", export_name=f"surface-{key}")
    tree, words = st.columns([3, 2])
    names = fl.names
    with tree:
        into = [names[j] if j >= 0 else -1 for j in fl.into]
        chart(
            merge_tree_figure(
                fl.births,
                fl.deaths,
                into,
                names,
                level=level,
                loss_label="f",
                colors=[color_of(k) for k in range(len(fl))],
            ),
            f"learn_tree_{key}",
            export_name=f"merge-tree-{key}",
        )
    words.markdown(
        "**The merge tree** draws the same story as a tree: each minimum is a leaf at its "
        "height, in its colour; two branches join at the saddle where their pools meet, and "
        "the branch of the younger minimum ends there. A bar is the branch from a leaf up to "
        "its join; the deepest minimum's branch goes on to ∞. The dashed line is the level."
    )


def engine_section(name: str) -> None:
    """The engine's estimate of the toy's barcode next to the exact one."""
    view = engine_view(name)
    cmp, exact = view.comparison, view.exact
    land = cmp.landscape
    bars = land.barcode
    st.subheader("The engine's estimate next to the exact barcode")
    st.markdown(
        f"For a network there is no grid. The engine does what it does for a network: gradient "
        f"descent from {len(land.minima.start_of)} starting points found "
        f"{len(land.minima.values)} distinct minima; every pair was joined by a path optimised "
        f"to cross the lowest possible barrier, whose highest point estimates the saddle; the "
        f"bars are read off that graph of minima and saddles. Here the exact barcode is known "
        f"(sublevel persistence of an {exact.resolution} × {exact.resolution} grid), so the "
        f"estimate can be checked."
    )
    verdict = "match" if cmp.ok else "do not match"
    rows = [
        {
            "engine birth": float(e[0]),
            "engine death": float(e[1]),
            "exact birth": float(x[0]),
            "exact death": float(x[1]),
        }
        for e, x in zip(cmp.engine_bars, cmp.exact_bars, strict=False)
    ]
    left, right = st.columns([3, 2])
    with left:
        chart(
            barcode_figure(bars, ident=f"engine estimate, toy {name}", loss_label="f(x, y)"),
            f"learn_engine_{name}",
            export_name=f"engine-barcode-{name}",
        )
    with right:
        st.markdown(
            f"Bars longer than {SIGNIFICANT:.1%} of the value range ({exact.value_range:.4g}) "
            f"are compared: engine {len(cmp.engine_bars)}, exact {len(cmp.exact_bars)}. The "
            f"bottleneck distance between them is **{cmp.bottleneck:.3g}** (f units) = "
            f"{100 * cmp.bottleneck / cmp.value_range:.2g}% of the range; allowed "
            f"{TOLERANCE:.0%}: the barcodes **{verdict}**."
        )
        st.dataframe(rows, hide_index=True)
        st.caption(
            "Finite bars of both barcodes, side by side in order of birth (f units); the "
            "essential bar of the global minimum is left out."
        )


@st.cache_resource(max_entries=32, show_spinner="Throwing noisy particles (once per noise)...")
def particles(name: str, noise: float):
    return throw_particles(name, flood(name), noise)


@st.fragment
def particles_section(name: str) -> None:
    """Noisy particles from every minimum: escape counts beside the bars, and end points."""
    st.subheader("Noisy particles")
    st.markdown(
        f"Drop {REPEATS} particles into each minimum and shake them: noisy gradient steps "
        "(Langevin dynamics, noise of the chosen scale), then plain descent until they come to "
        "rest. A particle **escaped** when it rests outside its minimum's basin (the pool just "
        "below its bar's end). A long bar should be hard to leave, a short one easy."
    )
    noise = st.select_slider("Noise", NOISES, value=1.0, key=f"learn_noise_{name}")
    fl, ps = flood(name), particles(name, noise)
    bars, ends = st.columns(2)
    with bars:
        chart(escape_bars_figure(fl, ps), f"learn_escapes_{name}", export_name=f"escapes-{name}")
    with ends:
        chart(particles_figure(fl, ps), f"learn_particles_{name}", export_name=f"ends-{name}")
    escaped, settled, prob = ps.counts()
    rows = [
        {
            "minimum": n,
            "bar length": float(fl.deaths[k] - fl.births[k]),
            "escaped": int(escaped[k]),
            "settled": int(settled[k]),
            "escape probability": float(prob[k]),
            "in words": escape_words(int(escaped[k]), int(settled[k]), float(prob[k])),
        }
        for k, n in enumerate(fl.names)
    ]
    st.dataframe(rows, hide_index=True)
    st.caption(
        "Escape probability = escaped / settled: particles still coming down after the "
        "descent are left out. Crosses in the right figure are escapes, dots stays."
    )


@st.cache_resource(max_entries=32, show_spinner="Optimising the path (once per pair)...")
def path_snapshots(name: str, a: int, b: int):
    """Snapshots of the path between the flood's minima ``a`` and ``b`` (engine minima)."""
    thetas = engine_view(name).engine.minima.thetas.double().cpu().numpy()
    vertex = flood_to_engine(name, flood(name), thetas)
    if vertex[a] < 0 or vertex[b] < 0:
        return None
    return snapshots(get_toy(name).fn, thetas[vertex[a]], thetas[vertex[b]])


@st.fragment
def watch_section(name: str) -> None:
    """One pair's path, optimised step by step, against the exact saddle height."""
    st.subheader("Watch the engine")
    st.markdown(
        "Pick two minima. The engine joins them by a chain of points and moves the chain "
        "downhill, except its highest point, the **climbing point**, which climbs until it "
        "sits on the saddle. Step through the chain as it was after a few steps."
    )
    fl = flood(name)
    names = fl.names
    left, right = st.columns(2)
    a = names.index(left.selectbox("From", names, index=0, key=f"learn_watch_a_{name}"))
    b = names.index(right.selectbox("To", names, index=1, key=f"learn_watch_b_{name}"))
    if a == b:
        st.info("Pick two different minima.")
        return
    snaps = path_snapshots(name, a, b)
    if snaps is None:
        st.info("The engine found no minimum here.")
        return
    labels = [f"cap {s.cap}" if s.cap is not None else "final" for s in snaps]
    at = st.select_slider("Snapshot", labels, value=labels[-1], key=f"learn_snap_{name}")
    snap, exact = snaps[labels.index(at)], exact_saddle(fl, a, b)
    chart(watch_figure(fl, snap, exact, (names[a], names[b])), f"learn_watch_{name}")
    st.markdown(
        f"Saddle estimate **{snap.saddle:.6g}** after {snap.steps} steps; exact "
        f"(grid) **{exact:.6g}**; difference {snap.saddle - exact:.2g}."
    )


def own_wells() -> tuple:
    """Sidebar controls for your own landscape's wells: how many, where, how deep."""
    with st.sidebar:
        st.markdown("**Your landscape**: Gaussian wells in a bowl")
        n = st.number_input("Wells", 1, MAX_WELLS, 3, key="own_n")
        wells = []
        for k in range(n):
            x0, y0, d0 = DEFAULT_WELLS[k]
            with st.expander(f"Well {k + 1}", expanded=k == 0):
                x = st.slider("x", -OWN_BOX, OWN_BOX, x0, 0.1, key=f"own_x{k}")
                y = st.slider("y", -OWN_BOX, OWN_BOX, y0, 0.1, key=f"own_y{k}")
                d = st.slider("depth", 0.0, 2.0, d0, 0.05, key=f"own_d{k}")
            wells.append((x, y, d))
    return tuple(wells)


# ---------------------------------------------------------------------------------------------
# The page

st.markdown(COMPACT, unsafe_allow_html=True)
head, pick, toys = st.columns([2, 3.2, 3], vertical_alignment="bottom")
head.markdown("#### Learn: flooding")
story = pick.segmented_control("Story", STORIES, default=STORIES[0], key="learn_story")
large = st.sidebar.toggle("Large font", key="learn_large", help="Bigger text, for a projector")
if large:
    st.markdown(LARGE, unsafe_allow_html=True)
surface, wells = story == STORIES[1], None
if story == STORIES[2]:
    wells = own_wells()
    key = "own-" + hashlib.sha1(repr(wells).encode()).hexdigest()[:10]
    about = (
        "**Your own landscape.** f = 0.08 (x^2 + y^2) - sum_k d_k exp(-|p - c_k|^2 / (2 * "
        "0.6^2)), with the wells c_k and depths d_k set in the sidebar; its exact barcode is "
        "that of a 201 x 201 grid, recomputed whenever a well moves."
    )
    toys.caption("Move, add and deepen the wells in the sidebar; the barcode follows.")
elif surface:
    name = toys.selectbox(
        "Landscape", list(TOYS), format_func={n: t.title for n, t in TOYS.items()}.get, key="toy"
    )
    toy = TOYS[name]
    key = name
    about = f"**{toy.title}.** {toy.description} `{toy.formula}`"
else:
    key = CURVE
    about = (
        "**A curve with four minima.** f(t) is a polynomial whose slope vanishes at t = -2, "
        "-1.4, -0.8, -0.1, 0.8, 1.4 and 1.8 (minima and maxima in turn); its exact bars "
        "come from those critical points."
    )
level_view(key, large, wells)
with st.expander("How to read this page", expanded=False):
    st.markdown(
        "A loss function is a landscape over its parameters. Fill it with water from below: at "
        "**level c** the flooded region is the **sublevel set** {f ≤ c}. Each **minimum** "
        "starts a new pool when c reaches its height (its bar is **born**). When two pools "
        "meet, at a **saddle**, the younger one (with the higher minimum) stops being "
        "separate: its bar **dies** at the saddle's height and the merged pool keeps the "
        "colour and name of the older minimum. The bar's length, death − birth, is the "
        "smallest climb needed to leave that minimum's basin for a lower one. The persistence "
        "diagram draws each bar as a point (birth, death); an alive bar's hollow point rides "
        "the level until its pool merges.\n\n" + about
    )
if surface:
    particles_section(name)
    watch_section(name)
    engine_section(name)
