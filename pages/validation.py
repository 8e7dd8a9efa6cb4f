"""Validation: dataset-level scores, then Original | Prediction | Ground truth | Errors frame by frame."""
import streamlit as st

import app_components
import app_ui
from seg import appdata, classmap, figures, provenance
from seg.data import DataError
from seg.paths import printable

DEFAULT_LIMIT = 300  # frames scored by default; each frame is scored once per checkpoint and kept



def or_stop(work):
    """Run `work()`; a bad frame met while scoring (unreadable, too large, ids outside the table) is one
    error line on the page, not a traceback."""
    try:
        return work()
    except (DataError, ValueError, OSError) as e:
        st.error(printable(e), icon=":material/error:")
        st.stop()


ctx = app_ui.context()
app_ui.header("Validation", "The loaded checkpoint against ground truth: scores for the split, then each frame "
                            "as original | prediction | ground truth | errors in the class palette.")
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
    store = app_ui.val_scores(pred, ctx.data, split, stamp)
except (DataError, ValueError) as e:
    st.error(printable(e), icon=":material/error:")
    st.stop()
if ds.skipped:
    st.warning(f"{len(ds.skipped):,} file(s) left out: their links lead outside the folders this app may read, "
               f"e.g. {printable(ds.skipped[0])}", icon=":material/link_off:")
n_total = len(ds)
limit = int(c2.number_input("Frames to evaluate", 1, max(n_total, 1), min(n_total, DEFAULT_LIMIT), step=50,
                            key="val_limit", help=f"{n_total:,} frames in this split. Each frame is scored once "
                                                  "per checkpoint and kept: changing this is free for frames "
                                                  "scored before."))
if provenance.is_bundled_synthetic(ctx.data):
    st.caption(f"`{ctx.data.name}` is a bundled set of synthetic renders (seg.synth's street world), not photos: "
               "scores here say how well the model learned that world.")
missing = store.missing(limit)
top = st.container()  # split metrics, or the scoring progress while frames are still being scored
tab_frames, tab_iou, tab_conf = st.tabs(["Frames", "Per-class IoU", "Confusion matrix"])
result = store.result(limit)  # over the frames scored so far
frames = result["frames"]

with tab_frames:
    present = sorted({i for f in frames for i in appdata.frame_class_ids(f, classes)})
    f1, f2, f3, f4 = st.columns([1.4, 1.4, 0.8, 0.8])
    order = f1.selectbox("Sort", appdata.SORT_ORDERS, key="val_order", disabled=bool(missing),
                         help="Sorting by score waits until every frame is scored; meanwhile frames come in file order.")
    wanted = f2.selectbox("Frames containing", [None, *present], key="val_class",
                          format_func=lambda i: "any class" if i is None else classes.readable[i])
    per_page = f3.selectbox("Per page", [4, 8, 16], key="val_per_page")
    if missing:  # first page first: the frames to show are scored now, the rest after they are drawn
        order, wanted = "file name", None
        rows = [{"stem": p.stem, "index": i} for i, (p, _) in enumerate(ds.pairs[:limit])]
    else:
        rows = appdata.select_frames(frames, order, wanted, classes)
    pages = appdata.n_pages(len(rows), per_page)
    page = f4.number_input(f"Page (of {pages})", 1, pages, 1, key="val_page")
    g1, g2, g3, g4 = st.columns([1.1, 1.1, 1.2, 2.6])
    as_overlay = g1.toggle("Overlay on photo", value=False, key="val_overlay")
    outlines = g2.toggle("Class outlines", value=False, key="val_outline",
                         help="A white line where the class changes: tells apart classes of similar color "
                              "(Car, Truck, Bus).")
    alpha = g3.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="val_alpha", disabled=not as_overlay)
    only_ids = g4.multiselect("Show only these classes", present, key="val_only",
                              format_func=lambda i: classes.readable[i], placeholder="all classes")
    show_conf = st.toggle("Confidence in the hover readout", value=False, key="val_conf",
                          help="Runs the model once more on the frames shown, for per-pixel confidence.")
    only = only_ids or None
    if not rows:
        st.info("No frame contains that class.", icon=":material/info:")
    for row in appdata.page_of(rows, int(page), per_page):
        i = row["index"]
        image, truth, score, labels = or_stop(lambda: (*app_ui.frame(str(ctx.data), split, stamp, i),
                                                       store.score(pred, i), store.labels(pred, i)))
        truth = classmap.truth_for_model(truth, ds.classes, pred.meta.get("classmap"))  # e.g. lanes: 0/1
        st.divider()
        miou = "n/a" if score.miou is None else f"{score.miou:.1%}"
        acc = "n/a" if score.pixel_acc is None else f"{score.pixel_acc:.1%}"
        st.markdown(f"**{score.stem}** &nbsp; pixel accuracy {acc} · mIoU {miou}")
        if as_overlay:
            views = [appdata.overlay_view(image, x, classes, alpha, only) for x in (labels, truth)]
        else:
            views = [appdata.mask_view(x, classes, only) for x in (labels, truth)]
        if outlines:
            views = [appdata.outline(v, x) for v, x in zip(views, (labels, truth))]
        errors, wrong = appdata.error_view(labels, truth, classes)
        conf = app_ui.frame_confidence(pred, app_ui.model_key(pred), str(ctx.data), split, stamp, i) if show_conf else None
        cols = [st.container() for _ in range(4)] if appdata.is_wide(image.shape) else st.columns(4)
        cols[0].image(image, caption="Original", width="stretch")
        with cols[1]:
            app_components.pixel_inspector(views[0], labels, classes.readable, f"Prediction · {score.stem} (hover)",
                                           key=f"val_inspect_{split}_{i}", truth=truth, confidence=conf)
        cols[2].image(views[1], caption="Ground truth", width="stretch")
        cols[3].image(errors, caption=f"Errors: {wrong:.1%} of labelled pixels, in the true class's color",
                      width="stretch")
        iou = {c: v for c, v in store.frame_iou(i).items() if not only or c in only}
        st.caption("Classes in this frame (truth or prediction) with their IoU here, lowest first:")
        app_ui.legend_chips(appdata.iou_rows(iou, classes))

if missing:  # the page above is drawn; now the rest of the split, then draw everything from the store
    rest = store.missing(limit)
    with top:
        st.info(f"{len(rest):,} of {limit:,} frames not scored yet: scoring them now (kept for later visits).",
                icon=":material/hourglass_top:")
    or_stop(lambda: app_ui.score_frames(pred, store, rest, top))
    st.rerun()

with top:
    m = st.columns(4)
    m[0].metric("mIoU", f"{result['miou']:.1%}" if result["miou"] is not None else "n/a",
                help="Mean IoU over the classes present in these frames' ground truth or predictions.")
    m[1].metric("Pixel accuracy", f"{result['pixel_acc']:.1%}" if result["pixel_acc"] is not None else "n/a")
    m[2].metric("Frames", f"{len(frames):,} of {n_total:,}")
    m[3].metric("Classes scored", sum(v is not None for v in result["per_class_iou"].values()))

with tab_iou:
    st.plotly_chart(figures.iou_bar_figure(appdata.per_class_rows(result["per_class_iou"], classes)),
                    key="val_iou_chart", width="stretch")
with tab_conf:
    names, shares = appdata.confusion_view(result["confusion"], classes)
    st.plotly_chart(figures.confusion_figure(names, shares), key="val_confusion", width="stretch")
    st.caption("Rows are ground-truth classes, columns predictions; each row sums to 100% (cells in %, blank "
               "under 0.5%). Only classes present in the ground truth or the predictions are shown; Unlabeled is "
               "left out.")
