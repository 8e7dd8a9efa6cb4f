"""Inference: segment uploaded frames or the bundled KITTI samples; views, legend, downloads."""
import streamlit as st

import app_ui
import app_video
from seg import appdata, appvideo
from seg.data import DataError, list_images

ctx = app_ui.context()
app_ui.header("Inference", "Drop dashcam frames (jpg, jpeg, png, webp, bmp; up to 25 MB each) or clips (mp4, mov, "
                           f"avi, mkv, webm; up to {appvideo.MAX_CLIP_MB} MB, first {appvideo.MAX_CLIP_FRAMES} "
                           "frames), or pick a bundled KITTI sample. Each frame is segmented by the loaded checkpoint.")
pred = app_ui.predictor(ctx)
classes = pred.classes

uploads = st.file_uploader("Frames", type=appdata.UPLOAD_TYPES, accept_multiple_files=True, key="inf_uploads",
                           max_upload_size=25,
                           help="Several files at once; extensions in any case (.JPG works).")
try:
    samples = list_images(ctx.config.samples)
except DataError:
    samples = []
sample_names = [p.name for p in samples]
picked = st.multiselect("Bundled sample frames", sample_names, default=sample_names[:1],
                        key="inf_samples", disabled=not samples,
                        placeholder="No sample frames found" if not samples else "Choose sample frames")
clip_uploads = st.file_uploader("Clips", type=appvideo.CLIP_TYPES, accept_multiple_files=True, key="inf_clip_uploads",
                                max_upload_size=appvideo.MAX_CLIP_MB,
                                help="Segmented frame by frame into an H.264 clip with the classes listed in a corner.")
sample_clips = appvideo.list_clips(ctx.config.samples)
picked_clips = st.multiselect("Bundled sample clips", [p.name for p in sample_clips], key="inf_clips",
                              disabled=not sample_clips, placeholder="Choose a sample clip (segmented on demand)")

c1, c2, c3, c4 = st.columns([2.2, 1.4, 1.4, 1.1])
view = c1.segmented_control("View", ["Side by side", "Overlay", "Mask only"], default="Side by side",
                            key="inf_view", help="Side by side: input | segmentation map | overlay.")
alpha = c2.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="inf_alpha")
threshold = c3.slider("Confidence threshold", 0.0, 1.0, 0.5, 0.05, key="inf_threshold",
                      help="In the confidence view, pixels whose top-class probability is below this are magenta.")
show_conf = c4.toggle("Confidence view", value=False, key="inf_conf")

frames = [(u.name, u.getvalue()) for u in (uploads or [])]
frames += [(p.name, p.read_bytes()) for p in samples if p.name in picked]
clips = [(u.name, u.getvalue()) for u in (clip_uploads or [])]
clips += [(p.name, p.read_bytes()) for p in sample_clips if p.name in picked_clips]
if not frames and not clips:
    st.info("Drop one or more images or clips above, or choose a bundled sample.", icon=":material/upload:")
    st.stop()
app_video.show(pred, app_ui.model_key(pred), clips)

for i, (name, data) in enumerate(frames):
    st.divider()
    try:
        res = app_ui.infer(pred, app_ui.model_key(pred), name, data)
    except Exception as e:  # noqa: BLE001 — one bad frame must not take the others down
        res = appdata.InferenceFailure(name, f"{name}: could not be segmented ({type(e).__name__}: {e})")
    if isinstance(res, appdata.InferenceFailure):
        st.error(res.message, icon=":material/broken_image:")
        continue
    h, w = res.labels.shape
    st.markdown(f"**{name}**")
    st.caption(f"{w}×{h} px · inference {res.ms:.0f} ms")
    overlay = appdata.overlay_view(res.image, res.labels, classes, alpha)
    if view == "Side by side" or view is None:
        cols = st.columns(3)
        cols[0].image(res.image, caption="Input", width="stretch")
        cols[1].image(appdata.mask_view(res.labels, classes), caption="Segmentation map", width="stretch")
        cols[2].image(overlay, caption=f"Overlay ({alpha:.0%})", width="stretch")
    elif view == "Overlay":
        st.image(overlay, caption=f"Overlay ({alpha:.0%})", width="stretch")
    else:
        st.image(appdata.mask_view(res.labels, classes), caption="Segmentation map", width="stretch")
    if show_conf:
        conf_rgb, unsure = appdata.confidence_view(res.confidence, threshold)
        cc = st.columns(3)
        cc[0].image(conf_rgb, caption=f"Confidence (white = sure, magenta < {threshold:.0%}: {unsure:.1%} of pixels)",
                    width="stretch")
    app_ui.legend_chips(res.legend)
    stem = appdata.stem_of(name)
    d1, d2, _ = st.columns([1, 1, 4])
    d1.download_button("Label map (PNG)", appdata.label_png_bytes(res.labels, classes), f"{stem}_labels.png",
                       "image/png", key=f"dl_lbl_{i}_{name}", on_click="ignore", icon=":material/download:",
                       help="Paletted PNG: pixel values are Vistas class ids.")
    d2.download_button("Overlay (PNG)", appdata.png_bytes(overlay), f"{stem}_overlay.png", "image/png",
                       key=f"dl_ovl_{i}_{name}", on_click="ignore", icon=":material/download:")
