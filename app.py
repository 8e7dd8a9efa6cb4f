"""Street-scene segmentation workbench: `streamlit run app.py [-- --data DIR --runs DIR --checkpoint FILE]`.

The router: page config, the shared sidebar (checkpoint, dataset, runs folder), then the chosen page.
Pages in pages/ hold only view code; the work is done in webapp/ and seg/.
"""
import sys

import streamlit as st

from webapp import ui
from webapp import config

st.set_page_config(page_title="Street-scene segmentation", page_icon="🚦", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/training.py", title="Training", icon=":material/monitoring:"),
    st.Page("pages/validation.py", title="Validation", icon=":material/fact_check:"),
    st.Page("pages/inference.py", title="Inference", icon=":material/photo_camera:"),
]

page = st.navigation(PAGES)
ui.sidebar(config.load_config(sys.argv[1:]))
page.run()
