"""Validation: dataset-level scores, then Original | Prediction | Ground Truth frame by frame."""
import streamlit as st

import app_ui
from seg import appdata, classmap, figures
from seg.data import DataError

DEFAULT_LIMIT = 300  # frames evaluated by default; the first pass costs ~0.1 s a frame on CPU

ctx = app_ui.context()
app_ui.header("Validation", "The loaded checkpoint against ground truth: scores for the split, then each frame "
                            "as original | prediction | ground truth in the class palette.")
pred = app_ui.predictor(ctx)
app_ui.stop_unless(ctx, "data")
classes = pred.classes

splits = appdata.list_splits(ctx.data)
if not splits:
    st.error(f"{ctx.data}: no split folder with images/ and labels/ (Vistas layout)", icon=":material/error:")
    st.stop()
c1, c2, _ = st.columns([1, 1, 2])
split = c1.selectbox("Split", splits, index=splits.index("validation") if "validation" in splits else 0, key="val_split")
stamp = (ctx.data / split / "images").stat().st_mtime
try:
    ds = app_ui.dataset(str(ctx.data), split, stamp)
except DataError as e:
    st.error(str(e), icon=":material/error:")
    st.stop()
n_total = len(ds)
limit = c2.number_input("Frames to evaluate", 1, max(n_total, 1), min(n_total, DEFAULT_LIMIT), step=50,
                        key="val_limit", help=f"{n_total:,} frames in this split; the first pass is cached.")
result = app_ui.evaluation(pred, ctx.data, split, int(limit))
frames = result["frames"]

m = st.columns(4)
m[0].metric("mIoU", f"{result['miou']:.1%}")
m[1].metric("Pixel accuracy", f"{result['pixel_acc']:.1%}")
m[2].metric("Frames", f"{len(frames):,} of {n_total:,}")
m[3].metric("Classes scored", sum(v is not None for v in result["per_class_iou"].values()))

tab_frames, tab_iou, tab_conf = st.tabs(["Frames", "Per-class IoU", "Confusion matrix"])

with tab_iou:
    st.plotly_chart(figures.iou_bar_figure(appdata.per_class_rows(result["per_class_iou"], classes)),
                    key="val_iou_chart", width="stretch")
with tab_conf:
    names, shares = appdata.confusion_view(result["confusion"], classes)
    st.plotly_chart(figures.confusion_figure(names, shares), key="val_confusion", width="stretch")
    st.caption("Rows are ground-truth classes, columns predictions; each row sums to 100%. Only classes present "
               "in the ground truth or the predictions are shown; Unlabeled is left out.")

with tab_frames:
    present = sorted({i for f in frames for i in appdata.frame_class_ids(f, classes)})
    f1, f2, f3, f4 = st.columns([1.4, 1.4, 0.8, 0.8])
    order = f1.selectbox("Sort", appdata.SORT_ORDERS, key="val_order")
    wanted = f2.selectbox("Frames containing", [None, *present], key="val_class",
                          format_func=lambda i: "any class" if i is None else classes.readable[i])
    per_page = f3.selectbox("Per page", [4, 8, 16], key="val_per_page")
    rows = appdata.select_frames(frames, order, wanted, classes)
    pages = appdata.n_pages(len(rows), per_page)
    page = f4.number_input(f"Page (of {pages})", 1, pages, 1, key="val_page")
    g1, g2, g3 = st.columns([0.8, 1.2, 3])
    as_overlay = g1.toggle("Overlay on photo", value=False, key="val_overlay")
    alpha = g2.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="val_alpha", disabled=not as_overlay)
    only_ids = g3.multiselect("Show only these classes", present, key="val_only",
                              format_func=lambda i: classes.readable[i], placeholder="all classes")
    only = only_ids or None
    if not rows:
        st.info("No frame contains that class.", icon=":material/info:")
    index_of = {img.stem: i for i, (img, _) in enumerate(ds.pairs)}
    for row in appdata.page_of(rows, int(page), per_page):
        i = index_of[row["stem"]]
        image, truth = app_ui.frame(str(ctx.data), split, stamp, i)
        truth = classmap.truth_for_model(truth, ds.classes, pred.meta.get("classmap"))  # e.g. lanes: 0/1
        labels = app_ui.predict_frame(pred, app_ui.model_key(pred), str(ctx.data), split, stamp, i)
        st.divider()
        miou = "n/a" if row["miou"] is None else f"{row['miou']:.1%}"
        acc = "n/a" if row["pixel_acc"] is None else f"{row['pixel_acc']:.1%}"
        st.markdown(f"**{row['stem']}** &nbsp; pixel accuracy {acc} · mIoU {miou}")
        if as_overlay:
            views = [appdata.overlay_view(image, x, classes, alpha, only) for x in (labels, truth)]
        else:
            views = [appdata.mask_view(x, classes, only) for x in (labels, truth)]
        cols = st.columns(3)
        cols[0].image(image, caption="Original", width="stretch")
        cols[1].image(views[0], caption="Prediction", width="stretch")
        cols[2].image(views[1], caption="Ground truth", width="stretch")
        shown = [c for c in appdata.present_classes(labels, truth) if c < len(classes)]  # not a mapped 255
        if only:
            shown = [c for c in shown if c in only]
        app_ui.legend_chips([{"name": classes.readable[c], "color": appdata.class_hex(classes, c)} for c in shown],
                            show_share=False)
