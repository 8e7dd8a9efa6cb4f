"""Validation: dataset-level scores, then Original | Prediction | Ground truth | Errors frame by frame;
with a checkpoint picked as B in the sidebar (A/B), both models side by side with where they disagree."""
import streamlit as st

from webapp import components
from webapp import ui
from webapp import views
from webapp import models
from seg import classmap
from webapp import figures
from webapp import provenance
from seg.data.vistas import DataError
from webapp.escape import code, md

DEFAULT_LIMIT = 300  # frames scored by default; each frame is scored once per checkpoint and kept
DELTA_HELP = "Delta: B − A in percentage points (pp), between the two figures as shown."


def or_stop(work):
    """Run `work()`; a bad frame met while scoring (unreadable, too large, ids outside the table) is one
    error line on the page, not a traceback."""
    try:
        return work()
    except (DataError, ValueError, OSError) as e:
        st.error(md(e), icon=":material/error:")
        st.stop()


def pct(x) -> str:
    return f"{x:.1%}" if x is not None else "n/a"


def errors_panel(labels, truth, only) -> tuple:
    """The Errors panel and its caption; with "Show only these classes" set, only pixels whose truth or
    prediction is one of those classes, the rest dimmed as in the other panels."""
    errors, wrong = views.error_view(labels, truth, classes)
    keep = views.class_mask(truth, only)
    if keep is None:
        return errors, f"Errors: {wrong:.1%} of labelled pixels, in the true class's color"
    keep = keep | views.class_mask(labels, only)
    errors = errors.copy()
    errors[~keep] = views.DIMMED_RGB
    scored = keep & (truth != classes.ignore_index) if classes.ignore_index is not None else keep
    n = int(scored.sum())
    share = float((scored & (labels != truth)).sum()) / n if n else 0.0
    return errors, f"Errors: {share:.1%} of the chosen classes' labelled pixels, in the true class's color"


def show_ab_frame(image, truth, labels, labels_b, score, score_b, i) -> None:
    """One frame in A/B mode: Original | A | B | Ground truth | where A and B disagree, then each class's IoU
    in this frame for both, where B loses most first."""
    st.markdown(f"**{md(score.stem)}** &nbsp; mIoU A {pct(score.miou)} · B {pct(score_b.miou)} &nbsp; "
                f"pixel accuracy A {pct(score.pixel_acc)} · B {pct(score_b.pixel_acc)}")
    if as_overlay:
        panels = [views.overlay_view(image, x, classes, alpha, only) for x in (labels, labels_b, truth)]
    else:
        panels = [views.mask_view(x, classes, only) for x in (labels, labels_b, truth)]
    if outlines:
        panels = [views.outline(v, x) for v, x in zip(panels, (labels, labels_b, truth))]
    diff, share = models.disagreement(image, labels, labels_b)
    cols = [st.container() for _ in range(5)] if views.is_wide(image.shape) else st.columns(5)
    ui.image(cols[0], image, "Original")
    with cols[1]:
        components.pixel_inspector(panels[0], labels, classes.readable, f"A · {name_a} (hover)",
                                       key=f"val_inspect_a_{split}_{i}", truth=truth)
    with cols[2]:
        components.pixel_inspector(panels[1], labels_b, classes.readable, f"B · {name_b} (hover)",
                                       key=f"val_inspect_b_{split}_{i}", truth=truth)
    ui.image(cols[3], panels[2], "Ground truth")
    ui.image(cols[4], diff, f"A and B disagree on {share:.1%} of pixels (magenta)")
    ia, ib = store.frame_iou(i), store_b.frame_iou(i)
    keep = [c for c in dict.fromkeys([*ia, *ib]) if not only or c in only]
    rows = models.iou_table({c: ia.get(c) for c in keep}, {c: ib.get(c) for c in keep})
    st.caption("Classes in this frame with their IoU here, A → B, where B loses most first:")
    ui.legend_chips([{"name": classes.readable[r["class"]], "color": views.class_hex(classes, r["class"]),
                          "text": f"{pct(r['a'])} → {pct(r['b'])}"} for r in rows])


ctx = ui.context()
ui.header("Validation", "Two checkpoints against ground truth: scores for the split, then each frame as "
                            "original | A | B | ground truth | where A and B disagree." if ctx.compare else
                            "The loaded checkpoint against ground truth: scores for the split, then each frame "
                            "as original | prediction | ground truth | errors in the class palette.")
pred = ui.predictor(ctx)
ui.stop_unless(ctx, "data")
ab = ui.predictor_b(ctx)  # (B's predictor, Comparison) in A/B mode, else None
pred_b, cmp = ab if ab else (None, None)
classes = cmp.table if cmp else pred.classes
truth_space = cmp.truth if cmp else pred.meta.get("classmap")  # e.g. "lanes": ground truth folded by name
if cmp:
    name_a, name_b = ui.ab_names(ctx)
    folded = " (folded into the lanes classes by name)" if cmp.map_a or cmp.map_b else ""
    st.info(f"A/B: **{md(name_a)}** (A) and **{md(name_b)}** (B) on the same frames, scored in one class table of "
            f"{len(classes)} classes{folded}.", icon=":material/compare:")

splits = views.list_splits(ctx.data)
if not splits:
    st.error(f"{md(ctx.data)}: no split folder with images/ and labels/ (Vistas layout)", icon=":material/error:")
    st.stop()
c1, c2, _ = st.columns([1, 1, 2])
split = c1.selectbox("Split", splits, index=splits.index("validation") if "validation" in splits else 0, key="val_split")
stamp = (ctx.data / split / "images").stat().st_mtime
try:
    ds = ui.dataset(str(ctx.data), split, stamp)
    store = ui.val_scores(pred, ctx.data, split, stamp, cmp, "a")
    store_b = ui.val_scores(pred_b, ctx.data, split, stamp, cmp, "b") if cmp else None
except (DataError, ValueError) as e:
    st.error(md(e), icon=":material/error:")
    st.stop()
if ds.skipped:
    st.warning(f"{len(ds.skipped):,} file(s) left out: their links lead outside the folders this app may read, "
               f"e.g. {md(ds.skipped[0])}", icon=":material/link_off:")
n_total = len(ds)
limit = int(c2.number_input("Frames to evaluate", 1, max(n_total, 1), min(n_total, DEFAULT_LIMIT), step=50,
                            key="val_limit", help=f"{n_total:,} frames in this split. Each frame is scored once "
                                                  "per checkpoint and kept: changing this is free for frames "
                                                  "scored before."))
about_data = provenance.data_caption(ctx.data)
if about_data:
    st.caption(f"{code(ctx.data.name)} {about_data}")
missing = bool(store.missing(limit) or (cmp and store_b.missing(limit)))
top = st.container()  # split metrics, or the scoring progress while frames are still being scored
tab_frames, tab_iou, tab_conf = st.tabs(["Frames", "Per-class IoU (A/B)" if cmp else "Per-class IoU",
                                         "Confusion matrices (A/B)" if cmp else "Confusion matrix"])
result = store.result(limit)  # over the frames scored so far
result_b = store_b.result(limit) if cmp else None
frames = result["frames"]

with tab_frames:
    present = sorted({i for f in frames for i in views.frame_class_ids(f, classes)})
    f1, f2, f3, f4 = st.columns([1.4, 1.4, 0.8, 0.8])
    order = f1.selectbox("Sort", views.SORT_ORDERS + (views.AB_SORT_ORDERS if cmp else ()), key="val_order",
                         disabled=bool(missing),
                         help="Sorting by score waits until every frame is scored; meanwhile frames come in file order.")
    wanted = f2.selectbox("Frames containing", [None, *present], key="val_class",
                          format_func=lambda i: "any class" if i is None else classes.readable[i])
    per_page = f3.selectbox("Per page", [4, 8, 16], key="val_per_page")
    if missing:  # first page first: the frames to show are scored now, the rest after they are drawn
        order, wanted = "file name", None
        rows = [{"stem": p.stem, "index": i} for i, (p, _) in enumerate(ds.pairs[:limit])]
    else:
        rows = views.select_frames(frames, order, wanted, classes, result_b["frames"] if cmp else None)
    pages = views.n_pages(len(rows), per_page)
    page = f4.number_input(f"Page (of {pages})", 1, pages, 1, key="val_page")
    g1, g2, g3, g4 = st.columns([1.1, 1.1, 1.2, 2.6])
    as_overlay = g1.toggle("Overlay on photo", value=False, key="val_overlay")
    outlines = g2.toggle("Class outlines", value=False, key="val_outline",
                         help="A white line where the class changes: tells apart classes of similar color "
                              "(Car, Truck, Bus).")
    alpha = g3.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="val_alpha", disabled=not as_overlay)
    only_ids = g4.multiselect("Show only these classes", present, key="val_only",
                              format_func=lambda i: classes.readable[i], placeholder="all classes")
    show_conf = not cmp and st.toggle("Confidence in the hover readout", value=False, key="val_conf",
                                      help="Runs the model once more on the frames shown, for per-pixel confidence.")
    only = only_ids or None
    if not rows:
        st.info("No frame contains that class.", icon=":material/info:")
    for row in views.page_of(rows, int(page), per_page):
        i = row["index"]
        image, truth, score, labels = or_stop(lambda: (*ui.frame(str(ctx.data), split, stamp, i),
                                                       store.score(pred, i), store.labels(pred, i)))
        truth = classmap.truth_for_model(truth, ds.classes, truth_space)  # e.g. lanes: 0/1
        st.divider()
        if cmp:
            score_b, labels_b = or_stop(lambda: (store_b.score(pred_b, i), store_b.labels(pred_b, i)))
            show_ab_frame(image, truth, labels, labels_b, score, score_b, i)
            continue
        miou = "n/a" if score.miou is None else f"{score.miou:.1%}"
        acc = "n/a" if score.pixel_acc is None else f"{score.pixel_acc:.1%}"
        st.markdown(f"**{md(score.stem)}** &nbsp; pixel accuracy {acc} · mIoU {miou}")
        if as_overlay:
            panels = [views.overlay_view(image, x, classes, alpha, only) for x in (labels, truth)]
        else:
            panels = [views.mask_view(x, classes, only) for x in (labels, truth)]
        if outlines:
            panels = [views.outline(v, x) for v, x in zip(panels, (labels, truth))]
        errors, errors_caption = errors_panel(labels, truth, only)
        conf = ui.frame_confidence(pred, ui.model_key(pred), str(ctx.data), split, stamp, i) if show_conf else None
        cols = [st.container() for _ in range(4)] if views.is_wide(image.shape) else st.columns(4)
        ui.image(cols[0], image, "Original")
        with cols[1]:
            components.pixel_inspector(panels[0], labels, classes.readable, f"Prediction · {score.stem} (hover)",
                                           key=f"val_inspect_{split}_{i}", truth=truth, confidence=conf)
        ui.image(cols[2], panels[1], "Ground truth")
        ui.image(cols[3], errors, errors_caption)
        iou = {c: v for c, v in store.frame_iou(i).items() if not only or c in only}
        st.caption("Classes in this frame (truth or prediction) with their IoU here, lowest first:")
        ui.legend_chips(views.iou_rows(iou, classes))

if missing:  # the page above is drawn; now the rest of the split, then draw everything from the store
    rest = sorted(set(store.missing(limit)) | set(store_b.missing(limit) if cmp else ()))
    with top:
        st.info(f"{len(rest):,} of {limit:,} frames not scored yet: scoring them now (kept for later visits).",
                icon=":material/hourglass_top:")
    or_stop(lambda: ui.score_frames(pred, store, store.missing(limit), top))
    if cmp:
        or_stop(lambda: ui.score_frames(pred_b, store_b, store_b.missing(limit), top))
    st.rerun()


with top:
    if cmp:
        m = st.columns(5)
        m[0].metric(f"mIoU · {md(name_a)}", pct(result["miou"]))
        m[1].metric(f"mIoU · {md(name_b)}", pct(result_b["miou"]), delta=models.points(result["miou"], result_b["miou"]),
                    help=DELTA_HELP)
        m[2].metric(f"Pixel acc. · {md(name_a)}", pct(result["pixel_acc"]))
        m[3].metric(f"Pixel acc. · {md(name_b)}", pct(result_b["pixel_acc"]),
                    delta=models.points(result["pixel_acc"], result_b["pixel_acc"]), help=DELTA_HELP)
        m[4].metric("Frames", f"{len(frames):,} of {n_total:,}")
    else:
        m = st.columns(4)
        m[0].metric("mIoU", pct(result["miou"]),
                    help="Mean IoU over the classes present in these frames' ground truth or predictions.")
        m[1].metric("Pixel accuracy", pct(result["pixel_acc"]))
        m[2].metric("Frames", f"{len(frames):,} of {n_total:,}")
        m[3].metric("Classes scored", sum(v is not None for v in result["per_class_iou"].values()))

with tab_iou:
    if cmp:
        rows = models.iou_table(result["per_class_iou"], result_b["per_class_iou"])
        st.caption(f"Per-class IoU of A ({md(name_a)}) and B ({md(name_b)}) over the same {len(frames):,} frames, sorted "
                   "by B − A (percentage points): where B loses most first.")
        st.dataframe(models.iou_table_view(rows), hide_index=True, width="stretch", key="val_ab_table")
        bars = zip(st.columns(2), (result, result_b), (f"A · {name_a}", f"B · {name_b}"), ("val_iou_chart", "val_iou_chart_b"))
    else:
        bars = [(st.container(), result, None, "val_iou_chart")]
    for where, res, who, key in bars:
        where.plotly_chart(figures.iou_bar_figure(views.per_class_rows(res["per_class_iou"], classes), who), key=key,
                           width="stretch")
with tab_conf:
    mats = [(result, f"A · {name_a}", "val_confusion"), (result_b, f"B · {name_b}", "val_confusion_b")] if cmp else \
        [(result, None, "val_confusion")]
    for res, who, key in mats:  # one under the other: each is as wide as the page
        names, shares = views.confusion_view(res["confusion"], classes)
        st.plotly_chart(figures.confusion_figure(names, shares, who), key=key, width="stretch")
    st.caption("Rows are ground-truth classes, columns predictions; each row sums to 100% (cells in %, blank "
               "under 0.5%). Only classes present in the ground truth or the predictions are shown; Unlabeled is "
               "left out.")
