"""`python -m seg.video FRAMES... --out clip.mp4`: a sample dashcam clip (H.264 mp4) from still frames, for
trying the clip path of `seg.predict` and the app without real footage."""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from seg.cli import int_arg, positive_float
from seg.imageio import ImageError, image_files, load_image
from seg.infer.clipio import ClipWriter


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


def get_args_parser() -> argparse.ArgumentParser:
    """The flags of `python -m seg.video`."""
    p = argparse.ArgumentParser(description="Write a sample dashcam clip (H.264 mp4) from still frames.")
    p.add_argument("frames", nargs="+", help="image files or a folder of them (e.g. assets/kitti_samples)")
    p.add_argument("--out", required=True, help="output .mp4")
    p.add_argument("--seconds", type=positive_float, default=4.0, help="clip length")
    p.add_argument("--fps", type=int_arg(1), default=10, help="frame rate (KITTI records at 10)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Write the clip and print `OUT: N frames`; 1 with one `error:` line when it cannot."""
    args = get_args_parser().parse_args(argv)
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
