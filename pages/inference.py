"""Inference: segment uploaded frames and clips or the bundled samples; views, legend, downloads."""
import streamlit as st

from webapp import components
from webapp import ui
from webapp import clip_panel
from webapp import views
from webapp import models
from webapp import clips
from webapp import provenance
from webapp.escape import md
from seg.cli import one_line
from seg.data.vistas import DataError, list_images

ctx = ui.context()
max_mb = views.MAX_FRAME_MB
samples_synthetic = provenance.is_bundled_synthetic(ctx.config.samples)
SIDE = "Input, map, overlay"  # all three panels: side by side, or stacked for wide frames
ui.header("Inference", "Drop dashcam frames or clips, or pick a bundled sample; each frame is segmented by the "
                           "loaded checkpoint.")
pred = ui.predictor(ctx)
classes = pred.classes
model_synthetic = provenance.data_origin(pred.meta.get("train_args"))["synthetic"]
ab = ui.predictor_b(ctx)  # (B's predictor, Comparison) when a checkpoint is picked as B, else None
if ab:
    name_a, name_b = ui.ab_names(ctx)
    st.info(f"A/B: each frame through **{md(name_a)}** (A) and **{md(name_b)}** (B), each shown in its own classes, "
            f"and where they disagree in the {len(ab[1].table)} classes they share. Clips use A.",
            icon=":material/compare:")

uploads = st.file_uploader(
    f"Frames ({', '.join(views.UPLOAD_TYPES)}; up to {max_mb} MB and {views.MAX_UPLOAD_PIXELS / 1e6:g} million "
    "pixels each)", type=views.UPLOAD_TYPES, accept_multiple_files=True, key="inf_uploads", max_upload_size=max_mb,
    on_change=ui.default_steps_aside, args=("inf_uploads", "inf_samples"),
    help="Several files at once; extensions in any case (.JPG works). Larger images are refused from their header, "
         "before decoding.")
try:
    samples = list_images(ctx.config.samples)
except DataError:
    samples = []
sample_names = [p.name for p in samples]
label = "Bundled sample frames (synthetic renders, KITTI-shaped 1242×375)" if samples_synthetic else "Sample frames"
picked = st.multiselect(label, sample_names, default=sample_names[:1], key="inf_samples", disabled=not samples,
                        placeholder="No sample frames found" if not samples else "Choose sample frames",
                        format_func=lambda n: f"{n} (synthetic)" if samples_synthetic else n,
                        on_change=ui.mark_chosen, args=("inf_samples",))
if samples_synthetic:
    st.caption("The bundled samples are renders of the same synthetic street world the bundled model was trained "
               "on, framed like KITTI: they show what the model learned, not how it does on real dashcam photos "
               "(expect much worse there; train on real Vistas for real use).")
clip_uploads = st.file_uploader(
    f"Clips (mp4, mov, avi, mkv, webm; up to {clips.MAX_CLIP_MB} MB, the first {clips.MAX_CLIP_FRAMES} frames "
    "are segmented)", type=clips.CLIP_TYPES, accept_multiple_files=True, key="inf_clip_uploads",
    max_upload_size=clips.MAX_CLIP_MB,
    help="Segmented frame by frame into an H.264 clip with each frame's largest classes listed in a corner.")
sample_clips = clips.list_clips(ctx.config.samples)
picked_clips = st.multiselect(
    "Sample clips (made from the synthetic renders)" if samples_synthetic else "Sample clips",
    [p.name for p in sample_clips], key="inf_clips", disabled=not sample_clips,
    placeholder="Choose a sample clip (segmented on demand)",
    format_func=lambda n: f"{n} (synthetic)" if samples_synthetic else n)

c1, c2, c3, c4, c5 = st.columns([2.2, 1.3, 1.3, 1.1, 1.1])
view = c1.segmented_control("View", [SIDE, "Overlay", "Mask only"], default=SIDE, key="inf_view", required=True,
                            help="Input, segmentation map and overlay: side by side, or one under the other for "
                                 "wide frames (KITTI).")
alpha = c2.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="inf_alpha", disabled=view == "Mask only",
                  help="Off in Mask only, which shows no overlay.")
show_conf = c4.toggle("Confidence", value=False, key="inf_conf", help="Show the per-pixel confidence map.")
threshold = c3.slider("Confidence threshold", 0.0, 1.0, 0.5, 0.05, key="inf_threshold", disabled=not show_conf,
                      help="In the confidence view (turn on Confidence), pixels whose top-class probability is "
                           "below this are magenta.")
outline_rgb = views.outline_color(classes)
outlines = c5.toggle("Outlines", value=False, key="inf_outline",
                     help=f"A {views.OUTLINE_COLORS[outline_rgb]} line, a colour no class uses, where the class "
                          "changes: tells apart classes of similar color (Car, Truck, Bus).")

frames = [(u.name, u.getvalue(), False) for u in (uploads or [])]
frames += [(p.name, p.read_bytes(), True) for p in samples if p.name in picked]
clip_inputs = [(u.name, u.getvalue()) for u in (clip_uploads or [])]
clip_inputs += [(p.name, p.read_bytes()) for p in sample_clips if p.name in picked_clips]
if not frames and not clip_inputs:
    st.info("Drop one or more images or clips above, or choose a sample.", icon=":material/upload:")
    st.stop()
# the picked samples come after the uploads: from that index on, clips are synthetic renders when bundled
clip_panel.show(pred, ui.model_key(pred), clip_inputs,
                synthetic_from=len(clip_uploads or []) if samples_synthetic else None)



def show_b(i: int, name: str, data: bytes, res) -> dict[str, bytes]:
    """B's segmentation of the frame beside A's, the pixels where they disagree, and B's downloads (A/B mode).
    Returns B's entries for "Download all"."""
    pred_b, cmp = ab
    res_b = ui.infer(pred_b, ui.model_key(pred_b), name, data)
    if isinstance(res_b, views.InferenceFailure):
        st.error(f"B: {md(res_b.message)}", icon=":material/broken_image:")
        return {}
    diff, share = models.disagreement(res.image, cmp.fold(res.labels, "a"), cmp.fold(res_b.labels, "b"))
    cols = [st.container() for _ in range(3)] if views.is_wide(res.image.shape) else st.columns(3)
    with cols[0]:
        components.pixel_inspector(views.mask_view(res.labels, classes), res.labels, classes.readable,
                                       f"A · {name_a} (hover)", key=f"inf_inspect_a_{i}_{name}")
    with cols[1]:
        components.pixel_inspector(views.mask_view(res_b.labels, pred_b.classes), res_b.labels,
                                       pred_b.classes.readable, f"B · {name_b} (hover)", key=f"inf_inspect_b_{i}_{name}")
    ui.image(cols[2], diff, f"A and B disagree on {share:.1%} of pixels (magenta)")
    st.caption(f"B · {md(name_b)}: {res_b.ms:.0f} ms")
    ui.legend_with_more(res_b.legend)
    return downloads(i, name, res_b.labels, views.overlay_view(res_b.image, res_b.labels, pred_b.classes, alpha),
                     pred_b.classes, "B")


def downloads(i: int, name: str, labels, overlay, table, which: str) -> dict[str, bytes]:
    """Download buttons of one model's (`which`: "A" or "B") label map (H, W) and overlay (H, W, 3) for frame
    `i`. Returns their {zip name: PNG bytes}."""
    stem, tag = views.stem_of(name), "" if which == "A" else "_B"
    label_png, overlay_png = views.label_png_bytes(labels, table), views.png_bytes(overlay)
    what = f" of {which}" if ab else ""
    with st.container(horizontal=True):
        st.download_button(f"Label map{what} (PNG)", label_png, f"{stem}{tag}_labels.png", "image/png",
                           key=f"dl_lbl{tag}_{i}_{name}", on_click="ignore", icon=":material/download:",
                           width="content", help="Paletted PNG: pixel values are Vistas class ids.")
        st.download_button(f"Overlay{what} (PNG)", overlay_png, f"{stem}{tag}_overlay.png", "image/png",
                           key=f"dl_ovl{tag}_{i}_{name}", on_click="ignore", icon=":material/download:",
                           width="content")
    return {f"{i:03d}_{stem}{tag}_labels.png": label_png, f"{i:03d}_{stem}{tag}_overlay.png": overlay_png}


def show_frame(i: int, name: str, data: bytes, is_sample: bool) -> dict[str, bytes]:
    """Frame `i` of the batch: its views, legend and downloads (and B's, in A/B mode). Returns its entries
    for "Download all" ({zip name: PNG bytes}); none for a file that could not be segmented."""
    res = ui.infer(pred, ui.model_key(pred), name, data)
    if isinstance(res, views.InferenceFailure):
        st.error(md(res.message), icon=":material/broken_image:")
        return {}
    h, w = res.labels.shape
    wide = views.is_wide(res.image.shape)
    st.markdown(f"**{md(name)}**" + (" · synthetic sample" if is_sample and samples_synthetic else ""))
    st.caption(f"{w}×{h} px · inference {res.ms:.0f} ms on this machine as it is now (labels + confidence; "
               "Home times an idle run)")
    if model_synthetic and not (is_sample and samples_synthetic):  # the user's own frames, uploaded or in a folder
        st.caption(":material/info: This model was trained only on the synthetic street world: on a real photo "
                   "expect much worse than on the samples.")
    if res.note:
        st.caption(res.note)
    mask = views.mask_view(res.labels, classes)
    overlay = views.overlay_view(res.image, res.labels, classes, alpha)
    if outlines:
        mask, overlay = views.outline(mask, res.labels, outline_rgb), views.outline(overlay, res.labels, outline_rgb)
    inspect = dict(labels=res.labels, names=classes.readable, confidence=res.confidence, key=f"inf_inspect_{i}_{name}")
    if view == SIDE:
        cols = [st.container() for _ in range(3)] if wide else st.columns(3)
        ui.image(cols[0], res.image, "Input")
        ui.image(cols[1], mask, "Segmentation map")
        with cols[2]:
            components.pixel_inspector(overlay, caption=f"Overlay ({alpha:.0%}) · hover for a readout", **inspect)
    elif view == "Overlay":
        components.pixel_inspector(overlay, caption=f"Overlay ({alpha:.0%}) · hover for a readout", **inspect)
    else:
        components.pixel_inspector(mask, caption="Segmentation map · hover for a readout", **inspect)
    if show_conf:
        conf_rgb, unsure = views.confidence_view(res.confidence, threshold)
        caption = f"Confidence (white = sure, magenta < {threshold:.0%}: {unsure:.1%} of pixels)"
        ui.image(st if wide else st.columns(3)[0], conf_rgb, caption)
    ui.legend_with_more(res.legend)
    files = downloads(i, name, res.labels, overlay, classes, "A")
    if ab:
        files.update(show_b(i, name, data, res))
    return files


batch = {}  # file name in the zip -> PNG bytes, for "Download all"
n_done = 0  # frames segmented and shown
all_slot = st.empty()
for i, (name, data, is_sample) in enumerate(frames):
    st.divider()
    slot = st.empty()  # a frame that fails half-drawn is replaced by its one error line
    try:
        with slot.container():
            files = show_frame(i, name, data, is_sample)
        batch.update(files)
        n_done += bool(files)
    except Exception as e:  # noqa: BLE001 — one bad frame must not take the others down
        slot.error(md(f"{name}: could not be segmented or shown ({one_line(e, kind=True)})"),
                   icon=":material/broken_image:")

if n_done > 1:
    all_slot.download_button(f"Download all ({n_done} frames: label maps and overlays{', A and B' if ab else ''}, zip)",
                             views.zip_bytes(batch), "segmentation.zip", "application/zip", key="dl_all",
                             on_click="ignore", icon=":material/folder_zip:", width="content")
