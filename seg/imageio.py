"""Safe image decoding: one function that turns an untrusted file into an upright 8-bit RGB image.

Everything that can go wrong with a user's file (not an image, truncated, too big, odd mode) ends in
`ImageError` with a one-line "{name}: {reason}" message, so the CLI and the app can print it as is.

Mode decisions:
- alpha (RGBA, LA, PA, P with transparency) is composited on black: the color under a transparent pixel
  is arbitrary (often stale data), and black is what "nothing here" looks like to the model and the
  Unlabeled color in the palette;
- 16-bit grayscale (I;16*) maps the full 0..65535 range linearly onto 0..255; 32-bit int / float images
  are kept when already in 0..255, mapped from 0..65535 when they fit that range, else min-max stretched;
- animated images give their first frame; EXIF orientation is applied (phone photos come out upright).
"""
from __future__ import annotations

import io
import re
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from seg.cli import one_line

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")  # what load_image reads
VISTAS_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")  # what the Vistas layout holds
# Decoders we let near user files (the JPEG one also yields MPO, what Pillow calls many phone JPEGs).
_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF")
DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """A file that cannot be used as an input image; str is "{name}: {reason}" on one line."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason
        super().__init__(f"{name}: {reason}")


def load_image(
    src: str | Path | bytes | bytearray | memoryview | BinaryIO,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """Decode `src` (path, bytes or seekable file-like) into a fully loaded, upright RGB image.

    The pixel count is read from the header and checked against `max_pixels` before any pixel data is
    decoded; Pillow's own decompression-bomb guard is turned into an error as well.
    `name` is used in error messages (default: the file name, or "image" for bytes).
    Returns: PIL.Image in mode "RGB", size (W, H), detached from the source.
    Raises: ImageError.
    """
    if isinstance(src, (str, Path)):
        path = Path(src)
        name = name or path.name
        if not path.exists():
            raise ImageError(name, "file not found")
        if not path.is_file():
            raise ImageError(name, "not a file")
        try:
            with open(path, "rb") as f:
                return _decode(f, name, max_pixels)
        except OSError as e:
            if isinstance(e, ImageError):
                raise
            raise ImageError(name, f"cannot read ({e.strerror or e})") from None
    if isinstance(src, (bytes, bytearray, memoryview)):
        return _decode(io.BytesIO(bytes(src)), name or "image", max_pixels)
    if hasattr(src, "read"):
        name = name or Path(str(getattr(src, "name", "image"))).name
        if not (hasattr(src, "seekable") and src.seekable()):
            src = io.BytesIO(src.read())
        return _decode(src, name, max_pixels)
    raise TypeError(f"load_image: expected a path, bytes or file object, got {type(src).__name__}")


def _decode(f: BinaryIO, name: str, max_pixels: int) -> Image.Image:
    start = f.tell()
    if not f.read(1):
        raise ImageError(name, "empty file")
    f.seek(start)
    try:
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice its limit; a warning is not a refusal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(f, formats=_FORMATS)  # lazy: reads the header only
    except UnidentifiedImageError:
        raise ImageError(name, "not an image file (or an unsupported format)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        m = re.search(r"\((\d+) pixels\)", str(e))
        pixels = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
        raise ImageError(name, f"{pixels} is over the {max_pixels:,}-pixel limit") from None
    except (OSError, SyntaxError, ValueError, struct.error) as e:  # struct.error: some corrupt headers
        raise ImageError(name, f"unreadable image header ({one_line(e, kind=True)})") from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageError(name, f"{w * h:,} pixels is over the {max_pixels:,}-pixel limit")
        if w < 1 or h < 1:
            raise ImageError(name, f"empty image ({w}x{h})")
        try:
            im.seek(0)  # first frame of animations
            im.load()
            im = ImageOps.exif_transpose(im) or im
            return _to_rgb(im, name)
        except ImageError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            raise ImageError(name, f"truncated or corrupt image data ({one_line(e, kind=True)})") from None


def _to_rgb(im: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, per the decisions in the module docstring."""
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float32)  # uint16 values, any byte order
        return _gray_u8(a * (255.0 / 65535.0))
    if mode in ("I", "F"):
        a = np.asarray(im).astype(np.float64)
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 255:
            pass
        elif lo >= 0 and hi <= 65535:
            a = a * (255.0 / 65535.0)
        else:
            a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
        return _gray_u8(a)
    if (mode == "P" and "transparency" in im.info) or mode in ("PA", "RGBa", "La"):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA"):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint16)  # (H, W, 4)
        rgb = (rgba[..., :3] * rgba[..., 3:] + 127) // 255  # composite on black
        return Image.fromarray(rgb.astype(np.uint8))
    try:
        return im.convert("RGB")  # L, 1, P, CMYK (incl. Adobe-inverted), YCbCr, LAB, HSV
    except (ValueError, OSError) as e:
        raise ImageError(name, f"unsupported image mode {mode} ({one_line(e, kind=True)})") from None


def _gray_u8(a: np.ndarray) -> Image.Image:
    g = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(g[..., None], 3, axis=2))



def image_files(folder: str | Path, exts: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Sorted files directly in `folder` whose suffix, in any case, is one of `exts` (dashcams write .JPG)."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in exts)
