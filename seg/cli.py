"""Small helpers shared by the command-line tools: argparse types for sizes and numbers, and the one-line
error text every tool prints instead of a traceback."""
from __future__ import annotations

import argparse
import math
import re

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
MAX_SIDE = 16384


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. '512x384') into (W, H); raises ValueError for anything else or a zero side."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"size must look like WxH, e.g. 512x384, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1 or w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"size sides must be between 1 and {MAX_SIDE}, got {text!r}")
    return w, h


# Frame sizes seg.synth renders and seg.train trains at. The models' coarsest features are 1/16 of the input
# (MobileNet backbones), so a side under MIN_FRAME_SIDE leaves them less than one cell; MAX_FRAME_SIDE is the
# largest input size a checkpoint may record (seg.checkpoint_schema.MAX_INPUT_SIDE), and rendering one
# frame that size takes ~2 GB (about 120 bytes a pixel).
MIN_FRAME_SIDE = 16
MAX_FRAME_SIDE = 4096


def check_frame_size(size: tuple[int, int], lo: int = MIN_FRAME_SIDE, hi: int = MAX_FRAME_SIDE) -> tuple[int, int]:
    """`size` (W, H) unchanged when each side is in lo..hi pixels; raises ValueError("WxH: ...") otherwise."""
    w, h = size
    if not (lo <= w <= hi and lo <= h <= hi):
        raise ValueError(f"{w}x{h}: each side must be {lo} to {hi} pixels")
    return size


def frame_size_arg(text: str) -> tuple[int, int]:
    """argparse `type=` for a frame size 'WxH' within MIN_FRAME_SIDE..MAX_FRAME_SIDE a side."""
    try:
        return check_frame_size(parse_size(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def size_arg(text: str) -> tuple[int, int]:
    """`parse_size` for argparse's `type=`: a bad value becomes a one-line usage error, not a traceback."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def int_arg(minimum: int = 1):
    """argparse `type=` for a whole number >= `minimum` (1: a count of things, 0: may be off)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}")
        return value
    return parse


def positive_float(text: str) -> float:
    """argparse `type=` for a finite number > 0 (a frame rate, a scale)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def one_line(e: BaseException, limit: int = 200, kind: bool = False) -> str:
    """The first non-empty line of an exception's message (an OSError's strerror), cut at `limit` characters;
    the class name when the message is empty, or as a prefix with `kind`."""
    text = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    return f"{type(e).__name__}: {lines[0][:limit]}" if kind else lines[0][:limit]
