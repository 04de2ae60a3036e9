"""The dashboard's entry point: routing and the shared run picker, nothing else.

Start it with ``make run`` or ``streamlit run app.py``; runs are read from
``$BARCODES_RUNS_DIR`` (default ``runs/``).
"""

import streamlit as st

from app_pages._common import sidebar

st.set_page_config(page_title="Loss-landscape barcodes", page_icon="📊", layout="wide")

PAGES = [
    st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("app_pages/run.py", title="Run", icon=":material/play_arrow:"),
    st.Page("app_pages/barcode.py", title="Barcode", icon=":material/bar_chart:"),
    st.Page("app_pages/landscape.py", title="Landscape", icon=":material/landscape:"),
    st.Page("app_pages/generalization.py", title="Generalization", icon=":material/scatter_plot:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/learn.py", title="Learn", icon=":material/school:"),
]

page = st.navigation(PAGES)
sidebar()
page.run()
