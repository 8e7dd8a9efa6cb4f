"""Small helpers shared by the command-line tools."""
from __future__ import annotations

import argparse
import re

_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """Parse 'WxH' (e.g. '512x384') into (W, H); raises ValueError for anything else or a zero side."""
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"size must look like WxH, e.g. 512x384, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if w < 1 or h < 1 or w > 16384 or h > 16384:
        raise ValueError(f"size sides must be between 1 and 16384, got {text!r}")
    return w, h


def size_arg(text: str) -> tuple[int, int]:
    """`parse_size` for argparse's `type=`: a bad value becomes a one-line usage error, not a traceback."""
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
