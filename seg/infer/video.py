"""Dashcam clips: decode -> segment -> encode as one stream, so memory stays flat in the clip's length.

    python -m seg.predict CLIP.mp4 --out DIR [--frames] [--every K] [--max-frames N]
    python -m seg.predict SEQUENCE_DIR --fps 10 --out DIR      # numbered frames, e.g. KITTI image_02/data

`segment_clip` turns a reader's frames into DIR/<stem>_overlay.mp4 (H.264 for browsers, `seg.infer.clipio`).
The largest classes of each frame (LEGEND_TOP at most) are listed in a small translucent box in its top-left
corner (`burn_legend`; `--no-legend` leaves it out). With --frames,
DIR/<stem>/000000.png... hold the label maps (paletted, pixel value = class id) of the clip's frames in
order. Each output frame keeps its source frame's time, so the clip lasts as long as the part of the source
it covers, variable frame rates included. Outputs are written under hidden temporary names and renamed when
complete: a clip that fails leaves nothing behind. A clip whose stem is empty or hidden (`..mp4`: ".") is
refused, as its outputs would land on OUT itself or on another clip's temporaries. The command-line side
is `seg.infer.clip_cli`.

The clip readers, writer and `VideoError` live in `seg.infer.clipio`; they are importable from here too, so
one import serves a caller that reads and segments clips (the app).
"""
from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from seg.classes import ClassTable
from seg.infer.clipio import VIDEO_EXTENSIONS, ClipReader, ClipWriter, FolderReader, VideoError, is_video
from seg.viz import legend, overlay_image, to_label_png

__all__ = ["LEGEND_MIN_SHARE", "LEGEND_TOP", "burn_legend", "segment_clip", "output_stem", "replace_dir",
           "VIDEO_EXTENSIONS", "ClipReader", "ClipWriter", "FolderReader", "VideoError", "is_video"]

LEGEND_MIN_SHARE = 0.002  # classes under 0.2% of a frame stay out of its legend
LEGEND_TOP = 6  # ... and so do all but its 6 largest: a real frame has 35-40 classes, which filled its height


def burn_legend(image: Image.Image, rows: list[dict]) -> Image.Image:
    """Draw `rows` (viz.legend: name, color) as swatch + name lines in the top-left corner, over a dark
    translucent box; wraps into more columns when the frame is too short. Returns the same image."""
    if not rows:
        return image
    px = max(9, image.height // 34)  # text height: ~11 px at 375 rows
    font = ImageFont.load_default(size=px)
    line, pad = px + px // 3, px // 2
    per_col = max(1, (image.height - 2 * pad) // line)
    widths = [int(font.getlength(r["name"])) + px + pad for r in rows]
    cols = [range(i, min(i + per_col, len(rows))) for i in range(0, len(rows), per_col)]
    col_w = [max(widths[i] for i in c) + pad for c in cols]
    box_w = min(image.width, sum(col_w) + pad)
    box_h = min(image.height, len(cols[0]) * line + pad)
    shade = Image.new("RGB", (box_w, box_h))
    image.paste(Image.blend(image.crop((0, 0, box_w, box_h)), shade, 0.45), (0, 0))  # the scene shows through
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
                 on_frame: Callable[[int, int | None], None] | None = None, legend: bool = True) -> dict:
    """Segment `reader`'s frames (every `every`-th, at most `max_frames`) into OUT/<stem>_overlay.mp4 and,
    with `frames`, OUT/<stem>/NNNNNN.png; `legend`: burn each frame's largest classes into its corner.
    `progress`: a tqdm bar on stderr; `on_frame(done, total or None)`
    is called after each frame. Returns dict(path, frames_dir or None, frames, seconds, fps_out,
    shares (frames, C) float32: each frame's pixel share per class, times (frames,) float64: each output
    frame's time in seconds, from the source's timestamps).

    `predictor` is a `seg.infer.predictor.Predictor` (or anything with its `predict` and `classes`);
    `reader` a `ClipReader` or `FolderReader`. The output frames keep the source's times (nominal rate:
    the source's / `every`), so the clip lasts as long as the part of the source it covers. Raises
    VideoError (also for a stem `output_stem` refuses); then no output is left (earlier complete outputs
    of the same stem are kept).
    """
    out = Path(out)
    try:
        stem = output_stem(reader)
    except VideoError:
        reader.close()
        raise
    out.mkdir(parents=True, exist_ok=True)
    fps, total = reader.fps / every, expected_frames(reader.total, every, max_frames)
    outputs = _ClipOutputs(out, stem, fps)
    t0, shares, times = time.perf_counter(), [], []
    bar = tqdm(total=total, unit="frame", desc=reader.stem, disable=not progress, leave=False)
    try:
        if frames:
            outputs.start_pngs()
        for i, t, rgb in _picked(reader.timed(), every, max_frames):
            outputs.open_for(reader.name, i, rgb)
            labels = predictor.predict(rgb)
            shares.append(class_shares(labels, len(predictor.classes)))
            times.append(float(t))
            outputs.write(overlay_frame(rgb, labels, predictor.classes, alpha, legend), labels if frames else None,
                          predictor.classes, t)
            bar.update(1)
            if on_frame is not None:
                on_frame(outputs.n, total)
        outputs.finish(reader.name)
    except BaseException:
        outputs.abort()
        raise
    finally:
        bar.close()
        reader.close()
    if frames:
        replace_dir(outputs.png_tmp, outputs.png_dir)
    seconds = time.perf_counter() - t0
    return {"path": outputs.clip, "frames_dir": outputs.png_dir if frames else None, "frames": outputs.n,
            "seconds": seconds, "fps_out": float(fps), "shares": np.stack(shares), "times": np.array(times)}


def output_stem(reader) -> str:
    """The name a reader's outputs are made from (`reader.stem`). Raises VideoError for an empty or hidden
    one: `..mp4` has stem ".", whose frames folder would be OUT itself, and hidden names are the temporaries'."""
    stem = str(reader.stem)
    if not stem or stem.startswith("."):
        raise VideoError(reader.name, f"its output name {stem!r} would be empty or hidden; rename it")
    return stem


def expected_frames(declared: int | None, every: int, max_frames: int | None) -> int | None:
    """Frames `segment_clip` will write from a source of `declared` frames (None: unknown, and no max)."""
    total = -(-declared // every) if declared else None
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return total


def _picked(timed: Iterable[tuple[Fraction, np.ndarray]], every: int,
            max_frames: int | None) -> Iterator[tuple[int, Fraction, np.ndarray]]:
    """(source index, time, frame) of every `every`-th (time, frame), at most `max_frames`; decodes no frame
    past the last."""
    n = 0
    for i, (t, rgb) in enumerate(timed):
        if i % every:
            continue
        yield i, t, rgb
        n += 1
        if max_frames is not None and n >= max_frames:
            return


def class_shares(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,) float32 share of the (H, W) label map's pixels in each class."""
    counts = np.bincount(labels.ravel(), minlength=n_classes)[:n_classes]
    return (counts / labels.size).astype(np.float32)


def overlay_frame(rgb: np.ndarray, labels: np.ndarray, classes: ClassTable, alpha: float,
                  with_legend: bool = True) -> np.ndarray:
    """One output frame (H, W, 3) uint8: the class colours over `rgb`, with (`with_legend`) its LEGEND_TOP
    largest classes of at least LEGEND_MIN_SHARE burnt into the top-left corner, in class order."""
    picture = overlay_image(rgb, labels, classes, alpha)
    if not with_legend:
        return np.asarray(picture)
    rows = sorted(legend(labels, classes, LEGEND_MIN_SHARE)[:LEGEND_TOP], key=lambda r: r["id"])
    return np.asarray(burn_legend(picture, rows))


class _ClipOutputs:
    """What one `segment_clip` run writes under OUT, all under hidden temporary names until it is complete:
    the overlay clip (opened at the first frame, whose size every frame must share) and the label PNGs."""

    def __init__(self, out: Path, stem: str, fps: Fraction):
        self.clip, self.png_dir, self.png_tmp = out / f"{stem}_overlay.mp4", out / stem, out / f".{stem}.part"
        self.fps, self.writer, self.n = fps, None, 0

    def start_pngs(self) -> None:
        shutil.rmtree(self.png_tmp, ignore_errors=True)
        self.png_tmp.mkdir(parents=True)

    def open_for(self, name: str, i: int, rgb: np.ndarray) -> None:
        """Open the clip at source frame `i`'s size, or raise VideoError if it differs from the first's."""
        if self.writer is None:
            self.writer = ClipWriter(self.clip, self.fps, rgb.shape[1], rgb.shape[0])
        elif rgb.shape[:2] != self.writer.size:
            raise VideoError(name, f"frame {i} is {rgb.shape[1]}x{rgb.shape[0]}, the first was "
                                   f"{self.writer.size[1]}x{self.writer.size[0]}")

    def write(self, picture: np.ndarray, labels: np.ndarray | None, classes: ClassTable, t: Fraction) -> None:
        """Add one overlay frame, shown from `t` seconds, to the clip and, unless None, its label map as the
        next PNG."""
        if labels is not None:
            to_label_png(labels, classes).save(self.png_tmp / f"{self.n:06d}.png")
        self.writer.write(picture, t)
        self.n += 1

    def finish(self, name: str) -> None:
        if self.writer is None:
            raise VideoError(name, "no frames")
        self.writer.finish()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        shutil.rmtree(self.png_tmp, ignore_errors=True)


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder `src` to `dst`, replacing an older `dst` (renamed aside first, then deleted)."""
    old = dst.with_name(f".{dst.name}.old")
    if dst.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)
