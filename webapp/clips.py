"""Clips on the Inference page, kept free of Streamlit: uploaded bytes -> a segmented H.264 clip, its
frames/s and each class's pixel share over time (a Plotly area chart). Errors become values, as for frames.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import plotly.graph_objects as go

from plotly.colors import qualitative

from webapp import escape
from webapp.views import InferenceFailure
from seg.classes import ClassTable
from seg.cli import one_line
from seg.infer.video import VIDEO_EXTENSIONS, ClipReader, VideoError, segment_clip

CLIP_TYPES = [e.lstrip(".") for e in VIDEO_EXTENSIONS]
MAX_CLIP_MB = 200  # Streamlit's own default upload limit (server.maxUploadSize)
MAX_CLIP_FRAMES = 600  # the page segments at most this many frames of a clip (1 min at 10 fps); the CLI has no cap
CHART_MIN_SHARE = 0.005  # classes that never reach 0.5% of a frame stay out of the chart
CHART_COLORS = qualitative.Dark24 + qualitative.Light24  # 48 distinct colours for the chart's series


@dataclass
class ClipResult:
    """A segmented clip. video: mp4 bytes; shares (frames, C) float32 per-class pixel share per frame."""

    name: str
    video: bytes
    frames: int
    seconds: float
    fps: float  # of the output clip
    shares: np.ndarray
    capped: bool  # stopped at MAX_CLIP_FRAMES


def is_clip(name: str) -> bool:
    """Whether a file name has a video extension (any case)."""
    return Path(name).suffix.lower() in VIDEO_EXTENSIONS


def list_clips(folder: str | Path) -> list[Path]:
    """Sorted clips directly in `folder` (any case); [] when it is not a folder."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and is_clip(p.name))


def run_clip(predictor, name: str, data: bytes, on_frame: Callable[[int, int | None], None] | None = None,
             max_frames: int = MAX_CLIP_FRAMES):
    """Segment a clip's bytes. Returns ClipResult, or InferenceFailure (one line naming it) for a bad clip."""
    if len(data) > MAX_CLIP_MB * 2**20:
        return InferenceFailure(name, f"{name}: {len(data) / 2**20:.0f} MB is over the {MAX_CLIP_MB} MB limit")
    with tempfile.TemporaryDirectory(prefix="seg-clip-") as tmp:
        base = Path(name).name  # the base name only: never a path from the browser
        src = Path(tmp) / (base if base not in ("", ".", "..") else "clip.mp4")
        src.write_bytes(data)
        try:
            r = segment_clip(predictor, ClipReader(src), Path(tmp) / "out", max_frames=max_frames,
                             progress=False, on_frame=on_frame)
        except VideoError as e:
            return InferenceFailure(name, str(e))
        except av.FFmpegError as e:  # what the reader's checks let through, e.g. a 1/60000 frames/s stream
            return InferenceFailure(name, f"{name}: cannot be segmented ({e.strerror or one_line(e)})")
        return ClipResult(name, r["path"].read_bytes(), r["frames"], r["seconds"], r["fps_out"], r["shares"],
                          r["frames"] >= max_frames)


def share_figure(shares: np.ndarray, fps: float, classes: ClassTable, min_share: float = CHART_MIN_SHARE) -> go.Figure:
    """Stacked area chart of each class's pixel share (%) against clip time (s), one distinct colour per series
    (CHART_COLORS: the class palette has near-identical navies for Car, Truck, Bus, Utility Pole). Class names
    are escaped: Plotly reads HTML in trace names."""
    t = np.arange(len(shares)) / max(fps, 1e-9)
    fig = go.Figure()
    for k, c in enumerate(np.flatnonzero(shares.max(0) >= min_share)):
        fig.add_trace(go.Scatter(
            x=t, y=100 * shares[:, c], name=escape.html(classes.readable[c]), mode="lines", stackgroup="one",
            line=dict(width=0.5, color=CHART_COLORS[k % len(CHART_COLORS)]),
            hovertemplate="%{y:.1f}%<extra>%{fullData.name}</extra>",
        ))
    fig.update_layout(
        title=dict(text="Pixel share per class over the clip", x=0.0, xanchor="left", font=dict(size=15)),
        xaxis_title="time (s)", yaxis_title="share of the frame (%)", yaxis_range=[0, 100], height=360,
        margin=dict(l=10, r=10, t=40, b=10), hovermode="x unified", uirevision="clip-shares",
    )
    return fig
