"""The dashboard's entry point: routing and the shared run picker, nothing else.

Start it with ``make run`` or ``streamlit run app.py``; runs are read from
``$BARCODES_RUNS_DIR`` (default ``runs/``).
"""

import streamlit as st

from pages._common import routed, sidebar

st.set_page_config(page_title="Loss-landscape barcodes", page_icon="📊", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/run.py", title="Run", icon=":material/play_arrow:"),
    st.Page("pages/barcode.py", title="Barcode", icon=":material/bar_chart:"),
    st.Page("pages/landscape.py", title="Landscape", icon=":material/landscape:"),
    st.Page("pages/generalization.py", title="Generalization", icon=":material/scatter_plot:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("pages/escape.py", title="Escapability", icon=":material/logout:"),
    st.Page("pages/sweeps.py", title="Sweeps", icon=":material/grid_view:"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:"),
]

page = st.navigation(PAGES)
sidebar()
with routed():
    page.run()
