"""Clip I/O: video files and folders of numbered frames in, browser-playable H.264 mp4 out.

Readers yield (H, W, 3) uint8 RGB frames one at a time, so memory stays flat in a clip's length; every
failure is a `VideoError` with a one-line message. The writer makes H.264 (libx264, bundled in PyAV's wheels:
no system ffmpeg), yuv420p with the index at the front (`+faststart`): what browsers play. 4:2:0 chroma needs
even sides, so an odd width or height (KITTI's 375 rows) gets one edge-replicated column/row. The clip is
written under a hidden temporary name and renamed when complete.

Timing: readers give each frame's time (`timed()`): a video file's own timestamps, so a variable-frame-rate
clip keeps its pacing and length; the writer stamps frames with those times (on a 90 kHz clock).
Limits, checked before any frame is decoded: MAX_FRAME_PIXELS (the images' limit) on the declared frame
size, MIN_FPS..MAX_FPS on the frame rate.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from seg.cli import one_line
from seg.imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageError, image_files, load_image

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
# x264: visually clean overlays, encode a small share of the time. No B-frames: with them x264 derives decode
# timestamps that, for a variable-rate clip, make the mp4's length wrong.
ENCODER = {"crf": "23", "preset": "veryfast", "bf": "0"}
MAX_FRAME_PIXELS = DEFAULT_MAX_PIXELS  # per frame, as for images: one 12000x10000 frame would take GBs
MIN_FPS, MAX_FPS = 0.1, 1000  # outside: a broken or hostile header (the mp4 muxer cannot even store 1/60000)
TIME_BASE = Fraction(1, 90000)  # the writer's clock: exact for 10, 24, 25, 30000/1001, 60 fps...


class VideoError(ValueError):
    """A clip (or frame folder) that cannot be used; str is "{name}: {reason}" on one line."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")


def is_video(path: str | Path) -> bool:
    """Whether `path` names a video file by its extension (VIDEO_EXTENSIONS, any case)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def check_frame_size(name: str, width: int, height: int) -> None:
    """Raise VideoError unless a width x height frame is within MAX_FRAME_PIXELS."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(name, f"frames are {width}x{height} ({width * height / 1e6:.0f} MP), over the "
                               f"{MAX_FRAME_PIXELS / 1e6:.0f} MP limit")


class ClipReader:
    """Decoded frames of a video file as (H, W, 3) uint8 RGB arrays; `fps` (Fraction), `total` (declared
    frame count, None when the container does not say). Raises VideoError (one line) for a file that is not
    a video, has no video stream, cannot be decoded, stops short of its declared length, has no frame, a
    frame rate outside MIN_FPS..MAX_FPS or frames over MAX_FRAME_PIXELS (declared, or decoded)."""

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
        try:
            if not MIN_FPS <= self.fps <= MAX_FPS:
                raise VideoError(self.name, f"frame rate {float(self.fps):.3g} fps is outside {MIN_FPS}-{MAX_FPS} fps")
            check_frame_size(self.name, self.stream.codec_context.width, self.stream.codec_context.height)
        except VideoError:
            self.close()
            raise

    def __iter__(self) -> Iterator[np.ndarray]:
        return (rgb for _, rgb in self.timed())

    def timed(self) -> Iterator[tuple[Fraction, np.ndarray]]:
        """(seconds since the first frame, from the clip's own timestamps; (H, W, 3) uint8 RGB) per frame."""
        n, start = 0, None
        try:
            for frame in self.container.decode(self.stream):
                check_frame_size(self.name, frame.width, frame.height)  # before its RGB copy is made
                if frame.pts is None or frame.time_base is None:
                    t = n / self.fps  # no timestamp: the nominal rate
                else:
                    start = frame.pts if start is None else start
                    t = (frame.pts - start) * Fraction(frame.time_base)
                n += 1
                yield t, frame.to_ndarray(format="rgb24")
        except VideoError:
            raise
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

    def timed(self) -> Iterator[tuple[Fraction, np.ndarray]]:
        """(seconds: frame index / fps, (H, W, 3) uint8 RGB) per frame, as `ClipReader.timed`."""
        return ((i / self.fps, rgb) for i, rgb in enumerate(self))

    def close(self) -> None:
        pass


class ClipWriter:
    """H.264 mp4 written to a hidden temporary file; `finish()` renames it into place, `abort()` removes it.

    Frames (H, W, 3) uint8 RGB must all share the size given; odd sides are padded by edge replication.
    Each frame is shown from its time until the next frame's; the last for 1 / fps. Raises VideoError
    (one line) when the encoder or muxer refuses, OSError when the file cannot be written.
    """

    def __init__(self, path: Path, fps: Fraction, width: int, height: int):
        self.path, self.size = Path(path), (height, width)
        self.tmp = self.path.with_name(f".{self.path.name}.part")
        self.pad = (height % 2, width % 2)
        self.frame_time = 1 / Fraction(fps)  # seconds between frames without their own times
        self.n, self.last_pts, self.pending = 0, -1, None
        self.container = None
        try:
            with self._errors():
                self.container = av.open(str(self.tmp), "w", format="mp4", options={"movflags": "+faststart"})
                self.stream = self.container.add_stream("libx264", rate=fps, options=dict(ENCODER))
                self.stream.width, self.stream.height = width + self.pad[1], height + self.pad[0]
                self.stream.pix_fmt = "yuv420p"
                self.stream.codec_context.time_base = TIME_BASE
        except BaseException:
            self.abort()
            raise

    def write(self, rgb: np.ndarray, t: Fraction | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame, shown from `t` seconds (default: frame count / fps); times
        that do not increase are moved one tick past the previous frame."""
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        self.last_pts = max(round((self.n * self.frame_time if t is None else t) / TIME_BASE), self.last_pts + 1)
        frame.pts, frame.time_base = self.last_pts, TIME_BASE
        with self._errors():
            self._mux(self.stream.encode(frame))
        self.n += 1

    def _mux(self, packets, end: int | None = None) -> None:
        """Mux packets one behind, so each gets its duration (up to the next frame's time; the last: up to
        `end`). Without B-frames, packets come out in time order."""
        for p in packets:
            if self.pending is not None:
                self.pending.duration = p.pts - self.pending.pts
                self.container.mux(self.pending)
            self.pending = p
        if end is not None and self.pending is not None:
            self.pending.duration = max(1, end - self.pending.pts)
            self.container.mux(self.pending)
            self.pending = None

    def finish(self) -> None:
        with self._errors():
            self._mux(self.stream.encode(None), end=self.last_pts + round(self.frame_time / TIME_BASE))
            self.container.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            if self.container is not None:
                self.container.close()
        except (av.FFmpegError, ValueError, OSError):
            pass
        self.tmp.unlink(missing_ok=True)

    @contextmanager
    def _errors(self):
        """PyAV's errors as VideoError (one line), except those that are OSErrors (e.g. disk full)."""
        try:
            yield
        except av.FFmpegError as e:
            if isinstance(e, OSError):
                raise
            raise VideoError(self.path.name, f"cannot encode ({one_line(e, 160)})") from None
