"""Home: what the workbench is, which model and data are in use, and where to go next."""
import streamlit as st

import app_ui
from seg import appconfig, runlog

ctx = app_ui.context()
app_ui.header(
    "Street-scene segmentation workbench",
    "Semantic segmentation of street scenes into the 66 Mapillary Vistas classes: follow training, "
    "inspect validation frames against ground truth, and run the model on your own dashcam images.",
)

st.subheader("Loaded checkpoint")
if ctx.checkpoint is None:
    st.warning(f"No usable checkpoint: {ctx.errors.get('checkpoint')}", icon=":material/warning:")
else:
    pred = app_ui.predictor(ctx)
    meta = pred.meta
    h, w = meta.get("input_size") or (None, None)
    miou, label = meta.get("val_miou"), "Validation mIoU"
    if miou is None and meta.get("best_miou") is not None:
        miou, label = meta["best_miou"], "Best val mIoU (training)"
    cols = st.columns(4)
    cols[0].metric("Classes", len(pred.classes))
    cols[1].metric("Input size (W×H)", f"{w}×{h}" if w else "?")
    cols[2].metric("Training steps", f"{meta['steps']:,}" if meta.get("steps") is not None else "?")
    cols[3].metric(label, f"{miou:.1%}" if miou is not None else "not evaluated")
    st.markdown(f"**Architecture** `{meta.get('arch', '?')}` &nbsp;·&nbsp; **File** "
                f"`{appconfig.display_path(ctx.checkpoint)}`")
    st.markdown(f"**Runs on** `{meta.get('device', '?')}` · `{meta.get('backend', '?')}` · "
                f"`{meta.get('precision', '?')}`" + (f" ({meta['backend_note']})" if meta.get("backend_note") else ""))

st.subheader("Sources in use")
runs = runlog.list_runs(ctx.runs) if ctx.runs else []
c1, c2 = st.columns(2)
with c1:
    st.markdown("**Dataset**")
    st.markdown(f"`{appconfig.display_path(ctx.data)}`" if ctx.data else f":red[{ctx.errors.get('data')}]")
with c2:
    st.markdown("**Runs folder**")
    if ctx.runs:
        st.markdown(f"`{appconfig.display_path(ctx.runs)}` · {len(runs)} run{'s' * (len(runs) != 1)} found")
    else:
        st.markdown(f":red[{ctx.errors.get('runs')}]")

st.subheader("Pages")
c1, c2, c3 = st.columns(3)
with c1:
    st.page_link("pages/training.py", label="Training", icon=":material/monitoring:")
    st.caption("Loss, learning rate and validation curves of one or more runs, live while a run trains.")
with c2:
    st.page_link("pages/validation.py", label="Validation", icon=":material/fact_check:")
    st.caption("Original | prediction | ground truth per frame, per-class IoU and the confusion matrix.")
with c3:
    st.page_link("pages/inference.py", label="Inference", icon=":material/photo_camera:")
    st.caption("Drop your own frames (jpg, png, webp, bmp) or try the bundled KITTI samples.")
