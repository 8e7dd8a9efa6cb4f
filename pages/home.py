"""Home: what the workbench is, which model and data are in use (and what they are), this machine, next steps."""
import streamlit as st

from webapp import ui
from webapp import config
from webapp import views
from webapp import provenance
from webapp import clips
from webapp.escape import code, md
from seg.train import runlog

ctx = ui.context()
ui.header(
    "Street-scene segmentation workbench",
    "Semantic segmentation of street scenes with the Mapillary Vistas class table (66 classes): follow training, "
    "inspect validation frames against ground truth, and run the model on your own dashcam images.",
)

st.subheader("Loaded checkpoint")
pred = None
if ctx.checkpoint is None:
    st.warning(f"No usable checkpoint: {md(ctx.errors.get('checkpoint'))}", icon=":material/warning:")
else:
    pred = ui.predictor(ctx)
    meta = pred.meta
    origin = provenance.data_origin(meta.get("train_args"))
    h, w = meta.get("input_size") or (None, None)
    miou, label = meta.get("val_miou"), "Validation mIoU"
    if miou is None and meta.get("best_miou") is not None:
        miou, label = meta["best_miou"], "Best val mIoU (training)"
    cols = st.columns(4)
    cols[0].metric("Classes in its table", len(pred.classes))
    cols[1].metric("Input size (W×H)", f"{w}×{h}" if w else "?")
    cols[2].metric("Training steps", f"{meta['steps']:,}" if meta.get("steps") is not None else "?")
    cols[3].metric(label, f"{miou:.1%}" if miou is not None else "not evaluated",
                   help="Recorded in the checkpoint by seg.train: the mean IoU over the classes present in its "
                        "validation frames, not over all the classes of the table.")
    st.markdown(f"**Architecture** {code(meta.get('arch', '?'))} &nbsp;·&nbsp; **File** "
                f"{code(config.display_path(ctx.checkpoint))}")
    if origin["train"] is None:
        st.caption("The checkpoint does not record what it was trained on.")
    else:
        frames = provenance.frames_scored(origin["eval_limit"], origin["val_frames"])
        text = (f"**Trained on** {md(origin['train'])}. **{label}** measured during training on "
                f"{code(origin['val'])}, {md(frames)}.")
        if origin["synthetic"]:
            text += (" Both are renders of one procedural street world in the Vistas layout: the score says how "
                     "well the model learned that world. Expect much worse results on real photos (Vistas, KITTI, "
                     "your dashcam); train on real Vistas for real use.")
        st.info(text, icon=":material/info:")

st.subheader("Sources in use")
runs = runlog.list_runs(ctx.runs, ctx.config.roots) if ctx.runs else []
c1, c2 = st.columns(2)
with c1:
    st.markdown("**Dataset**")
    if ctx.data:
        st.markdown(code(config.display_path(ctx.data)))
        splits = views.list_splits(ctx.data)
        if splits:
            split = "validation" if "validation" in splits else splits[0]
            stamp = (ctx.data / split / "images").stat().st_mtime
            try:
                n_cls, n_files = ui.classes_present(str(ctx.data), split, stamp)
                kind = "synthetic renders" if provenance.is_bundled_synthetic(ctx.data) else "frames"
                st.caption(f"{md(split)}: {n_cls} classes have pixels in the labels of {n_files:,} {kind} "
                           f"(read from its label files).")
            except (OSError, ValueError) as e:
                st.caption(f":red[{md(e)}]")
    else:
        st.markdown(f":red[{md(ctx.errors.get('data'))}]")
with c2:
    st.markdown("**Runs folder**")
    if ctx.runs:
        st.markdown(f"{code(config.display_path(ctx.runs))} · {len(runs)} run{'s' * (len(runs) != 1)} found")
    else:
        st.markdown(f":red[{md(ctx.errors.get('runs'))}]")

if pred is not None:
    st.subheader("This machine")
    speed = ui.machine_speed(pred, ui.model_key(pred))
    m = st.columns([0.8, 1.6, 0.8, 1.2, 1.2])  # room for "onnxruntime" at metric size
    m[0].metric("Device", speed["device"].upper(), help=speed["name"])
    m[1].metric("Backend", speed["backend"],
                help="onnxruntime on the CPU when it is installed (the graph is exported from the checkpoint on "
                     "first use and cached by its hash), torch on CUDA or as the fallback.")
    m[2].metric("Precision", speed["precision"],
                help="On the CPU, bf16 only where it has native bf16 (avx512_bf16 / AMX), elsewhere fp32; on CUDA, "
                     "bf16 or fp16 autocast.")
    m[3].metric("Threads", f"{speed['threads']} of {speed['cores']} cores")
    m[4].metric(f"ms per {speed['size'][1]}×{speed['size'][0]} frame", f"{speed['ms']:.0f}",
                help="Measured here when the model was loaded: median of 3 runs of predict_full (labels and "
                     "confidence, the Inference page's path), after a warm-up. Other work on the machine slows it.")
    st.caption(f"{md(speed['name'])} · native bf16: {'yes' if speed['bf16_native'] else 'no'}. The README's speed "
               "table was measured on another machine; this is the figure that applies here.")
    if speed.get("backend_note"):
        st.caption(f":orange[{md(speed['backend_note'])}]")

st.subheader("Pages")
c1, c2, c3 = st.columns(3)
with c1:
    st.page_link("pages/training.py", label="Training", icon=":material/monitoring:")
    st.caption("Loss, learning rate and validation curves of one or more runs, live while a run trains.")
with c2:
    st.page_link("pages/validation.py", label="Validation", icon=":material/fact_check:")
    st.caption("Original | prediction | ground truth | errors per frame, per-class IoU and the confusion matrix.")
with c3:
    st.page_link("pages/inference.py", label="Inference", icon=":material/photo_camera:")
    st.caption(f"Drop your own frames ({', '.join(views.UPLOAD_TYPES)}) or dashcam clips "
               f"({', '.join(clips.CLIP_TYPES)}), or try the sample frames and clip.")
