"""The Inference page's clip panel (Streamlit): a progress bar while a clip is segmented, then the clip
playing in the page, its download, frames/s and the class shares over time. Computation: webapp.clips."""
from __future__ import annotations

import hashlib

import streamlit as st

from seg.cli import one_line
from webapp import clips, ui, views
from webapp.escape import md

PROGRESS_STEPS = 50  # a bar update is a message to the browser: keep them few


def _segment(pred, key: str, name: str, data: bytes):
    """clips.run_clip with a progress bar, kept in ui.pixel_cache (by model key, name and the bytes' hash)."""
    def run():
        bar = st.progress(0.0, text=f"Segmenting {md(name)}…")
        shown = [-1]

        def on_frame(done: int, total: int | None) -> None:
            total = total or clips.MAX_CLIP_FRAMES
            step = int(PROGRESS_STEPS * done / total)
            if step != shown[0]:
                shown[0] = step
                bar.progress(min(done / total, 1.0), text=f"Segmenting {md(name)}: frame {done:,} of {total:,}…")

        return clips.run_clip(pred, name, data, on_frame)

    return ui.pixel_cache().get_or_compute(("clip", key, name, hashlib.sha256(data).digest()), run)


def show(pred, key: str, inputs: list[tuple[str, bytes]], synthetic_from: int | None = None) -> None:
    """One block per clip of `inputs` [(file name, bytes)]: errors as one line, results as video + download +
    chart. Clips from index `synthetic_from` on (None: none) are bundled samples made of synthetic renders,
    and their heading says so."""
    for i, (name, data) in enumerate(inputs):
        st.divider()
        slot = st.empty()
        try:
            with slot.container():  # the bar lives here and is cleared after
                res = _segment(pred, key, name, data)
        except Exception as e:  # noqa: BLE001 — one bad clip must not take the others (or the frames) down
            res = views.InferenceFailure(name, f"{name}: could not be segmented ({one_line(e, kind=True)})")
        slot.empty()
        if isinstance(res, views.InferenceFailure):
            st.error(md(res.message), icon=":material/broken_image:")
            continue
        synthetic = synthetic_from is not None and i >= synthetic_from
        st.markdown(f"**{md(name)}**" + (" · synthetic sample clip (rendered frames, not a real drive)"
                                          if synthetic else ""))
        cut = f" (first {res.frames:,} frames only)" if res.capped else ""
        st.caption(f"{res.frames:,} frames{cut} · {res.frames / max(res.seconds, 1e-9):.1f} frames/s on this machine as "
                   f"it is now (decode + segment + encode; Home times an idle run) · {res.fps:g} frames/s clip")
        st.video(res.video, format="video/mp4")
        st.download_button("Segmented clip (MP4)", res.video, f"{views.stem_of(name)}_overlay.mp4", "video/mp4",
                           key=f"dl_clip_{i}_{name}", on_click="ignore", icon=":material/download:")
        st.plotly_chart(clips.share_figure(res.shares, res.fps, pred.classes), key=f"clip_shares_{i}_{name}",
                        width="stretch")
