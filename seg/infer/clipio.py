"""Clip I/O: video files and folders of numbered frames in, browser-playable H.264 mp4 out.

Readers yield (H, W, 3) uint8 RGB frames one at a time, so memory stays flat in a clip's length; every
failure is a `VideoError` with a one-line message. The writer makes H.264 (libx264, bundled in PyAV's wheels:
no system ffmpeg), yuv420p with the index at the front (`+faststart`): what browsers play. 4:2:0 chroma needs
even sides, so an odd width or height (KITTI's 375 rows) gets one edge-replicated column/row. The clip is
written under a hidden temporary name and renamed when complete.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from seg.cli import one_line
from seg.imageio import IMAGE_EXTENSIONS, ImageError, image_files, load_image

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
ENCODER = {"crf": "23", "preset": "veryfast"}  # x264: visually clean overlays, encode a small share of the time


class VideoError(ValueError):
    """A clip (or frame folder) that cannot be used; str is "{name}: {reason}" on one line."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")


def is_video(path: str | Path) -> bool:
    """Whether `path` names a video file by its extension (VIDEO_EXTENSIONS, any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


class ClipReader:
    """Decoded frames of a video file as (H, W, 3) uint8 RGB arrays; `fps` (Fraction), `total` (declared
    frame count, None when the container does not say). Raises VideoError (one line) for a file that is not
    a video, has no video stream, cannot be decoded, stops short of its declared length, or has no frame."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name, self.stem = self.path.name, self.path.stem
        if not self.path.is_file():
            raise VideoError(self.name, "file not found" if not self.path.exists() else "not a file")
        try:
            self.container = av.open(str(self.path), "r")
        except (av.FFmpegError, ValueError, OSError) as e:
            raise VideoError(self.name, f"not a readable video ({one_line(e, 160)})") from None
        streams = self.container.streams.video
        if not streams:
            self.close()
            raise VideoError(self.name, "no video stream")
        self.stream = streams[0]
        if self.stream.codec_context is None:
            self.close()
            raise VideoError(self.name, f"no decoder for its video codec in this build ({self.stream.codec_tag!r})")
        self.stream.codec_context.thread_type = "AUTO"
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = Fraction(rate) if rate else Fraction(25)
        self.total = int(self.stream.frames) or None

    def __iter__(self) -> Iterator[np.ndarray]:
        n = 0
        try:
            for frame in self.container.decode(self.stream):
                n += 1
                yield frame.to_ndarray(format="rgb24")
        except (av.FFmpegError, ValueError, OSError) as e:
            raise VideoError(self.name, f"truncated or corrupt at frame {n} ({one_line(e, 160)})") from None
        if n == 0:
            raise VideoError(self.name, "no frames (empty, truncated, or a codec this build cannot decode)")
        if self.total and n < self.total:
            raise VideoError(self.name, f"truncated: {n} of its {self.total} frames decode")

    def close(self) -> None:
        self.container.close()


def _natural_key(p: Path):
    """Sort key that orders numbered names by number: 9.png before 10.png."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


class FolderReader:
    """A folder of numbered frames (KITTI raw `image_02/data/*.png`) in numeric order, at `fps`; the same
    interface as ClipReader. Raises VideoError for a folder without images or a frame that does not load."""

    def __init__(self, folder: str | Path, fps: float):
        self.path = Path(folder)
        self.name, self.stem = str(self.path), self.path.resolve().name
        self.files = sorted(image_files(self.path), key=_natural_key)
        if not self.files:
            raise VideoError(self.name, f"folder has no frames ({', '.join(IMAGE_EXTENSIONS)})")
        self.fps, self.total = Fraction(fps).limit_denominator(1001), len(self.files)

    def __iter__(self) -> Iterator[np.ndarray]:
        for f in self.files:
            try:
                yield np.asarray(load_image(f))
            except ImageError as e:
                raise VideoError(self.name, str(e)) from None

    def close(self) -> None:
        pass


class ClipWriter:
    """H.264 mp4 written to a hidden temporary file; `finish()` renames it into place, `abort()` removes it.

    Frames (H, W, 3) uint8 RGB must all share the size given; odd sides are padded by edge replication.
    """

    def __init__(self, path: Path, fps: Fraction, width: int, height: int):
        self.path, self.size = Path(path), (height, width)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.pad = (height % 2, width % 2)
        self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
        self.stream = self.container.add_stream("libx264", rate=fps, options=dict(ENCODER))
        self.stream.width, self.stream.height = width + self.pad[1], height + self.pad[0]
        self.stream.pix_fmt = "yuv420p"
        self.time_base = 1 / fps
        self.n = 0

    def write(self, rgb: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts, frame.time_base = self.n, self.time_base
        self.container.mux(self.stream.encode(frame))
        self.n += 1

    def finish(self) -> None:
        self.container.mux(self.stream.encode(None))  # flush the encoder's delayed frames
        self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        except (av.FFmpegError, ValueError, OSError):
            pass
        self.tmp.unlink(missing_ok=True)
