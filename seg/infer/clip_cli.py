"""The clip side of `python -m seg.predict`: the video flags, which inputs are clips, and the loop that
segments each clip (`seg.infer.video.segment_clip`) and reports it in one line, so one bad clip never stops
the others. Two inputs of one stem (clip.mp4 and clip.mov) would write the same outputs: the second is
refused, as for images."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from seg.cli import int_arg, one_line, positive_float
from seg.infer.clipio import MAX_FPS, MIN_FPS, ClipReader, FolderReader, VideoError, is_video
from seg.infer.video import segment_clip


def add_args(p: argparse.ArgumentParser) -> None:
    """The video flags of `python -m seg.predict`."""
    g = p.add_argument_group("video (.mp4 .mov .avi .mkv .webm, any case; frame folders with --fps)")
    g.add_argument("--frames", action="store_true", help="also write OUT/<stem>/000000.png... label maps")
    g.add_argument("--every", type=int_arg(1), default=1, metavar="K", help="segment every K-th frame")
    g.add_argument("--max-frames", type=int_arg(1), default=None, metavar="N", help="stop after N frames")
    g.add_argument("--fps", type=fps_arg, default=None,
                   help="turn each FOLDER of numbered frames into a clip at this rate (else folders are images)")
    g.add_argument("--legend", action=argparse.BooleanOptionalAction, default=True,
                   help="burn each frame's largest classes (6 at most) into a small box in its top-left corner "
                        "(default: on)")


def fps_arg(text: str) -> float:
    """argparse `type=` for --fps: a frame rate within MIN_FPS..MAX_FPS (1e-300 would reach the encoder)."""
    value = positive_float(text)
    if not MIN_FPS <= value <= MAX_FPS:
        raise argparse.ArgumentTypeError(f"expected a frame rate from {MIN_FPS} to {MAX_FPS}, got {text!r}")
    return value


def split_inputs(paths: list[str], fps: float | None) -> tuple[list[Path], list[str]]:
    """(clips: video files, and with `fps` folders; the remaining inputs for the image path)."""
    clips, rest = [], []
    for p in paths:
        if is_video(p) or (fps is not None and Path(p).is_dir()):
            clips.append(Path(p))
        else:
            rest.append(p)
    return clips, rest


def run_clips(predictor, clips: list[Path], out: Path, args: argparse.Namespace) -> int:
    """Segment each clip; prints the output path (stdout) and frames/s (stderr), or one `error:` line.
    Returns the number of clips that failed. SIGTERM ends it like Ctrl-C: the clip in progress is removed.

    `args` holds the flags of `add_args` (fps, every, max_frames, frames, legend)."""
    failed, old, written = 0, None, {}
    if clips and threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGTERM, exit_on_term)
    try:
        for clip in clips:
            failed += run_clip(predictor, clip, out, args, written)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
    return failed


def exit_on_term(signum: int, frame) -> None:
    """SIGTERM handler: raise SystemExit(128 + signum), a BaseException, so `segment_clip` removes its
    temporaries on the way out."""
    raise SystemExit(128 + signum)


def run_clip(predictor, clip: Path, out: Path, args: argparse.Namespace, written: dict[str, str]) -> int:
    """One clip for `run_clips`: 0 when written, 1 when it failed (reported in one line). `written` maps the
    stems written so far to their clip's name; this clip's is added."""
    try:
        reader = FolderReader(clip, args.fps) if clip.is_dir() else ClipReader(clip)
        if reader.stem in written:
            reader.close()
            raise VideoError(clip.name, f"same output name {reader.stem}_overlay.mp4 as {written[reader.stem]}; "
                                        "skipped")
        r = segment_clip(predictor, reader, out, args.every, args.max_frames, args.frames,
                         progress=sys.stderr.isatty(), legend=args.legend)
    except VideoError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # writing the outputs
        print(f"error: {clip.name}: cannot write output ({e.strerror or e})", file=sys.stderr)
        return 1
    except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge frame: report, go on
        print(f"error: {clip.name}: {e.__class__.__name__}: {one_line(e, 160)}", file=sys.stderr)
        return 1
    written[reader.stem] = clip.name
    print(r["path"])
    print(f"{clip.name}: {r['frames']} frames in {r['seconds']:.1f} s ({r['frames'] / r['seconds']:.2f} "
          f"frames/s, decode + segment + encode)", file=sys.stderr)
    return 0
