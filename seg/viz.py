"""Label maps -> pictures: palette colors, overlays, legend data, paletted PNGs.

Colors are RGB everywhere and always come from `ClassTable.palette()`, so a legend swatch and the pixels
it describes are the same bytes. All functions are vectorised (table lookups, integer blends).
Shapes: labels (H, W) uint8 class ids; images (H, W, 3) uint8 RGB.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

from seg.classes import ClassTable


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError("labels must be class ids in 0..255")
        labels = labels.astype(np.uint8)
    return labels


def hex_color(rgb: Iterable[int]) -> str:
    """(r, g, b) -> '#rrggbb'."""
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def colorize(labels: np.ndarray, classes: ClassTable) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 RGB palette colors (ids past the table are black)."""
    return np.take(classes.palette(), _labels(labels), axis=0)


def overlay(
    image: np.ndarray | Image.Image,
    labels: np.ndarray,
    classes: ClassTable,
    alpha: float = 0.5,
    only: Iterable[int] | None = None,
) -> np.ndarray:
    """Blend class colors over an image: out = (1 - alpha) * image + alpha * color.

    Same arguments as `overlay_image`. Returns: (H, W, 3) uint8 array (read-only; copy it to draw on it).
    """
    return np.asarray(overlay_image(image, labels, classes, alpha, only))


def overlay_image(
    image: np.ndarray | Image.Image,
    labels: np.ndarray,
    classes: ClassTable,
    alpha: float = 0.5,
    only: Iterable[int] | None = None,
) -> Image.Image:
    """`overlay` as a PIL RGB image (what a caller that saves or displays it wants; no extra copy).

    Args:
        image: (H, W, 3) uint8 RGB array or PIL image of the same size as `labels`.
        labels: (H, W) class ids.
        alpha: color weight in [0, 1].
        only: class ids to color; pixels of other classes keep the image unchanged. None = all.
    Returns: PIL RGB image, size (W, H).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    pil = None
    if isinstance(image, Image.Image):
        pil = image if image.mode == "RGB" else image.convert("RGB")
    shape = (pil.height, pil.width, 3) if pil is not None else np.shape(image)
    labels = _labels(labels)
    if shape != labels.shape + (3,):
        raise ValueError(f"image must be {labels.shape + (3,)} to match the labels, got {shape}")
    if pil is None:
        img = np.asarray(image)
        if img.dtype != np.uint8:
            raise ValueError(f"image must be uint8, got {img.dtype}")
        pil = Image.fromarray(img)
    # Pillow's C blend is ~9x faster than the same uint16 arithmetic in numpy (0.5 vs 4.5 ms at 384x512).
    color = to_label_png(labels, classes).convert("RGB")
    if only is None:
        return Image.blend(pil, color, alpha)
    # Per-class blend weight (0..255) via one lookup: 0 for hidden classes, which keep the image.
    weight = np.zeros(256, np.uint8)
    weight[[int(i) for i in only]] = round(alpha * 255)
    mask = Image.fromarray(labels).point(weight.tolist())
    return Image.composite(color, pil, mask)


def legend(labels: np.ndarray, classes: ClassTable, min_share: float = 0.0) -> list[dict]:
    """Classes present in `labels`, largest first.

    Returns: list of dict(id: int, name: readable name, color: '#rrggbb' (the palette color), share:
    fraction of pixels in [0, 1]); classes below `min_share` are left out.
    """
    labels = _labels(labels)
    counts = np.bincount(labels.ravel(), minlength=256)
    total = max(int(labels.size), 1)
    palette = classes.palette()
    rows = []
    for i in np.flatnonzero(counts):
        share = counts[i] / total
        if share >= min_share:
            name = classes.readable[i] if i < len(classes) else f"id {i}"
            rows.append({"id": int(i), "name": name, "color": hex_color(palette[i]), "share": float(share)})
    rows.sort(key=lambda r: (-r["share"], r["id"]))
    return rows


LEGEND_KEY_SHARE = 0.005  # split_legend: classes under 0.5% of a frame go behind "and K more"
LEGEND_KEY_TOP = 12  # ... and so do those past the 12 largest


def split_legend(rows: list[dict], min_share: float = LEGEND_KEY_SHARE, top: int = LEGEND_KEY_TOP) -> tuple[list[dict], list[dict]]:
    """`legend` rows (largest first) split into (the ones that matter, the rest): at most `top` rows of at
    least `min_share` of the frame (always the largest one), so a real frame's 40 classes, a dozen under
    0.1%, do not bury the few that cover it."""
    shown = [r for r in rows[:top] if r["share"] >= min_share] or rows[:1]
    return shown, rows[len(shown):]


def to_label_png(labels: np.ndarray, classes: ClassTable) -> Image.Image:
    """(H, W) class ids -> PIL 'P' image whose pixel values are the ids and whose palette is the class palette.

    Saved as PNG this is the Vistas label format: readable by index, viewable in color.
    """
    im = Image.fromarray(_labels(labels))  # mode "L"
    im.putpalette(classes.flat_palette())  # "L" -> "P", pixel values unchanged
    return im


def confidence_view(confidence: np.ndarray, threshold: float | None = None) -> np.ndarray:
    """Max-softmax confidence (H, W) in [0, 1] -> (H, W, 3) uint8 gray map (white = sure).

    With `threshold`, pixels below it are drawn in magenta so unsure regions stand out.
    """
    conf = np.asarray(confidence, np.float32)
    if conf.ndim != 2:
        raise ValueError(f"confidence must be (H, W), got shape {conf.shape}")
    g = np.clip(np.rint(conf * 255.0), 0, 255).astype(np.uint8)
    out = np.repeat(g[..., None], 3, axis=2)
    if threshold is not None:
        out[conf < threshold] = (255, 0, 255)
    return out
