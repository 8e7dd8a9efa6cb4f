"""Dashcam clips: decode -> segment -> encode as one stream, so memory stays flat in the clip's length.

    python -m seg.predict CLIP.mp4 --out DIR [--frames] [--every K] [--max-frames N]
    python -m seg.predict SEQUENCE_DIR --fps 10 --out DIR      # numbered frames, e.g. KITTI image_02/data

DIR/<stem>_overlay.mp4 is H.264 (libx264, bundled in PyAV's wheels: no system ffmpeg), yuv420p with the
index at the front (`+faststart`): what browsers play. 4:2:0 chroma needs even sides, so an odd width or
height (KITTI's 375 rows) gets one edge-replicated column/row. The classes present in each frame are
listed in its top-left corner. With --frames, DIR/<stem>/000000.png... hold the label maps (paletted, pixel
value = class id) of the clip's frames in order. Outputs are written under hidden temporary names and
renamed when complete: a clip that fails leaves nothing behind.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from seg.cli import int_arg, one_line, positive_float
from seg.imageio import IMAGE_EXTENSIONS, ImageError, image_files, load_image
from seg.viz import legend, overlay_image, to_label_png

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm")
ENCODER = {"crf": "23", "preset": "veryfast"}  # x264: visually clean overlays, encode a small share of the time
LEGEND_MIN_SHARE = 0.002  # classes under 0.2% of a frame stay out of its legend


class VideoError(ValueError):
    """A clip (or frame folder) that cannot be used; str is "{name}: {reason}" on one line."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"{name}: {reason}")


def is_video(path: str | Path) -> bool:
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
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


class FolderReader:
    """A folder of numbered frames (KITTI raw `image_02/data/*.png`) in numeric order, at `fps`."""

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


def burn_legend(image: Image.Image, rows: list[dict]) -> Image.Image:
    """Draw `rows` (viz.legend: name, color) as swatch + name lines in the top-left corner, over a dark
    translucent box; wraps into more columns when the frame is too short. Returns the same image."""
    if not rows:
        return image
    px = max(10, image.height // 28)  # text height: ~13 px at 375 rows
    font = ImageFont.load_default(size=px)
    line, pad = px + px // 3, px // 2
    per_col = max(1, (image.height - 2 * pad) // line)
    widths = [int(font.getlength(r["name"])) + px + pad for r in rows]
    cols = [range(i, min(i + per_col, len(rows))) for i in range(0, len(rows), per_col)]
    col_w = [max(widths[i] for i in c) + pad for c in cols]
    box_w = min(image.width, sum(col_w) + pad)
    box_h = min(image.height, len(cols[0]) * line + pad)
    shade = Image.new("RGB", (box_w, box_h))
    image.paste(Image.blend(image.crop((0, 0, box_w, box_h)), shade, 0.6), (0, 0))
    draw = ImageDraw.Draw(image)
    x = pad
    for c, w in zip(cols, col_w):
        for k, i in enumerate(c):
            y = pad + k * line
            draw.rectangle((x, y + 1, x + px - 2, y + px - 1), fill=rows[i]["color"], outline=(160, 160, 160))
            draw.text((x + px + pad // 2, y), rows[i]["name"], fill=(255, 255, 255), font=font)
        x += w
    return image


def segment_clip(predictor, reader, out: Path, every: int = 1, max_frames: int | None = None,
                 frames: bool = False, alpha: float = 0.5, progress: bool = True,
                 on_frame: Callable[[int, int | None], None] | None = None) -> dict:
    """Segment `reader`'s frames (every `every`-th, at most `max_frames`) into OUT/<stem>_overlay.mp4 and,
    with `frames`, OUT/<stem>/NNNNNN.png. `progress`: a tqdm bar on stderr; `on_frame(done, total or None)`
    is called after each frame. Returns dict(path, frames_dir or None, frames, seconds, fps_out,
    shares (frames, C) float32: each frame's pixel share per class).

    The output clip runs at the source rate / `every`, so it lasts as long as the part of the source it
    covers. Raises VideoError; then no output is left (earlier complete outputs of the same stem are kept).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / f"{reader.stem}_overlay.mp4"
    png_dir, png_tmp = out / reader.stem, out / f".{reader.stem}.part"
    fps = reader.fps / every
    total = -(-reader.total // every) if reader.total else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    writer, n, t0, shares = None, 0, time.perf_counter(), []
    bar = tqdm(total=total, unit="frame", desc=reader.stem, disable=not progress, leave=False)
    try:
        if frames:
            shutil.rmtree(png_tmp, ignore_errors=True)
            png_tmp.mkdir(parents=True)
        for i, rgb in enumerate(reader):
            if i % every:
                continue
            if writer is None:
                writer = ClipWriter(final, fps, rgb.shape[1], rgb.shape[0])
            elif rgb.shape[:2] != writer.size:
                raise VideoError(reader.name, f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, the first was "
                                              f"{writer.size[1]}x{writer.size[0]}")
            labels = predictor.predict(rgb)
            if frames:
                to_label_png(labels, predictor.classes).save(png_tmp / f"{n:06d}.png")
            counts = np.bincount(labels.ravel(), minlength=len(predictor.classes))[: len(predictor.classes)]
            shares.append((counts / labels.size).astype(np.float32))
            rows = sorted(legend(labels, predictor.classes, LEGEND_MIN_SHARE), key=lambda r: r["id"])
            writer.write(np.asarray(burn_legend(overlay_image(rgb, labels, predictor.classes, alpha), rows)))
            n += 1
            bar.update(1)
            if on_frame is not None:
                on_frame(n, total)
            if max_frames is not None and n >= max_frames:
                break
        if writer is None:
            raise VideoError(reader.name, "no frames")
        writer.finish()
    except BaseException:
        if writer is not None:
            writer.abort()
        shutil.rmtree(png_tmp, ignore_errors=True)
        raise
    finally:
        bar.close()
        reader.close()
    if frames:
        _replace_dir(png_tmp, png_dir)
    seconds = time.perf_counter() - t0
    return {"path": final, "frames_dir": png_dir if frames else None, "frames": n, "seconds": seconds,
            "fps_out": float(fps), "shares": np.stack(shares)}


def _replace_dir(src: Path, dst: Path) -> None:
    """Move folder `src` to `dst`, replacing an older `dst` (renamed aside first, then deleted)."""
    old = dst.with_name(f".{dst.name}.old")
    if dst.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


# ---- command line (seg.predict) ------------------------------------------------------------------------



def add_args(p: argparse.ArgumentParser) -> None:
    """The video flags of `python -m seg.predict`."""
    g = p.add_argument_group("video (.mp4 .mov .avi .mkv .webm, any case; frame folders with --fps)")
    g.add_argument("--frames", action="store_true", help="also write OUT/<stem>/000000.png... label maps")
    g.add_argument("--every", type=int_arg(1), default=1, metavar="K", help="segment every K-th frame")
    g.add_argument("--max-frames", type=int_arg(1), default=None, metavar="N", help="stop after N frames")
    g.add_argument("--fps", type=positive_float, default=None,
                   help="turn each FOLDER of numbered frames into a clip at this rate (else folders are images)")


def split_inputs(paths: list[str], fps: float | None) -> tuple[list[Path], list[str]]:
    """(clips: video files, and with `fps` folders; the remaining inputs for the image path)."""
    clips, rest = [], []
    for p in paths:
        if is_video(p) or (fps is not None and Path(p).is_dir()):
            clips.append(Path(p))
        else:
            rest.append(p)
    return clips, rest


def run_clips(predictor, clips: list[Path], out: Path, args) -> int:
    """Segment each clip; prints the output path (stdout) and frames/s (stderr), or one `error:` line.
    Returns the number of clips that failed. SIGTERM ends it like Ctrl-C: the clip in progress is removed."""
    failed, old = 0, None
    if clips and threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        for clip in clips:
            failed += _run_clip(predictor, clip, out, args)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return failed


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)  # a BaseException: segment_clip removes its temporaries on the way out


def _run_clip(predictor, clip: Path, out: Path, args) -> int:
    """One clip for `run_clips`: 0 when written, 1 when it failed (reported in one line)."""
    try:
        reader = FolderReader(clip, args.fps) if clip.is_dir() else ClipReader(clip)
        r = segment_clip(predictor, reader, out, args.every, args.max_frames, args.frames,
                         progress=sys.stderr.isatty())
    except VideoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # writing the outputs
        print(f"error: {clip.name}: cannot write output ({e.strerror or e})", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge frame: report, go on
        print(f"error: {clip.name}: {e.__class__.__name__}: {one_line(e, 160)}", file=sys.stderr)
        return 1
    print(r["path"])
    print(f"{clip.name}: {r['frames']} frames in {r['seconds']:.1f} s ({r['frames'] / r['seconds']:.2f} "
          f"frames/s, decode + segment + encode)", file=sys.stderr)
    return 0


# ---- a sample clip ---------------------------------------------------------------------------------------


def make_sample_clip(frames: list[Path], path: Path, seconds: float, fps: int = 10, zoom: float = 1.25) -> int:
    """A dashcam-like clip from still frames: each in turn for an equal share of `seconds`, slowly zooming
    towards its centre (so every encoded frame differs, as in real footage). Sizes follow the first frame.
    Returns the number of frames written."""
    stills = [load_image(f) for f in frames]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    w, h = stills[0].size
    n = max(1, round(seconds * fps))
    writer = ClipWriter(Path(path), Fraction(fps), w, h)
    try:
        for i in range(n):
            k, t = divmod(i * len(stills) / n, 1.0)
            z = 1 + (zoom - 1) * t
            cw, ch = w / z, h / z
            box = ((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)
            writer.write(np.asarray(stills[int(k)].resize((w, h), Image.BILINEAR, box=box)))
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a sample dashcam clip (H.264 mp4) from still frames.")
    p.add_argument("frames", nargs="+", help="image files or a folder of them (e.g. assets/kitti_samples)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--seconds", type=positive_float, default=4.0, help="clip length")
    p.add_argument("--fps", type=int_arg(1), default=10, help="frame rate (KITTI records at 10)")
    args = p.parse_args(argv)
    files = [f for a in map(Path, args.frames) for f in (image_files(a) if a.is_dir() else [a])]
    if not files:
        print("error: no input frames", file=sys.stderr)
        return 1
    try:
        n = make_sample_clip(files, Path(args.out), args.seconds, args.fps)
    except (ImageError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{args.out}: {n} frames")
    return 0
