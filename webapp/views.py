"""Computations behind the app's pages, kept free of Streamlit so they can be tested and reused.

Inference on uploaded bytes (errors become values, never tracebacks), the views of a prediction
(mask, overlay, confidence, class filter), and the sorting / filtering / paging of validation frames.
Images are numpy uint8 (H, W, 3) RGB; label maps uint8 or int (H, W) class ids.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from seg import viz
from seg.classes import ClassTable
from seg.imageio import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, ImageError, load_image
from seg.paths import printable

UPLOAD_TYPES = [e.lstrip(".") for e in IMAGE_EXTENSIONS]  # Streamlit compares them case-insensitively
MAX_FRAME_MB = 25  # the frames' uploader; clips have their own (webapp.clips.MAX_CLIP_MB)
MAX_UPLOAD_PIXELS = DEFAULT_MAX_PIXELS  # one limit for the app, the CLI and the README; checked from the header
DIMMED_RGB = (40, 40, 40)  # mask view: pixels of classes the user hid
CORRECT_RGB = (30, 30, 30)  # error view: pixels predicted right
UNLABELED_RGB = (110, 110, 110)  # error view: pixels without ground truth (not scored)
WIDE_ASPECT = 2.2  # frames wider than this (W / H; KITTI is 3.3) are shown stacked, one panel per row
DISPLAY_MAX_WIDTH = 1460  # Streamlit's own width cap for st.image (image_utils.MAXIMUM_CONTENT_WIDTH)
JPEG_MAX_SIDE = 65500  # libjpeg's limit: Streamlit and the pixel inspector send RGB frames as JPEG


@dataclass
class InferenceResult:
    """One frame's prediction. image (H, W, 3) uint8, labels (H, W) uint8, confidence (H, W) float32."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    ms: float
    legend: list[dict]  # viz.legend: [{id, name, color "#rrggbb", share}], largest first
    note: str = ""  # e.g. how a transparent area was treated


@dataclass
class InferenceFailure:
    """A file that could not be used; `message` is one line naming it."""

    name: str
    message: str


def run_inference(predictor, name: str, data: bytes, max_pixels: int = MAX_UPLOAD_PIXELS):
    """Decode `data` safely and predict it. Returns InferenceResult, or InferenceFailure for a bad file.

    `predictor` is a seg.infer.predictor.Predictor (shared between sessions; only read here).
    """
    try:
        image = load_image(data, name=name, max_pixels=min(max_pixels, DEFAULT_MAX_PIXELS))
    except ImageError as e:
        return InferenceFailure(name, str(e))
    pred = predictor.predict_full(image)
    labels = np.array(pred.labels, dtype=np.uint8)  # a copy: transparent pixels are unlabelled below
    clear = transparent_mask(data, labels.shape)
    note = ""
    if clear is not None and clear.any():
        # The model saw these pixels composited on black; what it calls them says nothing about the photo.
        legend = viz.legend(labels[~clear][None, :], predictor.classes) if not clear.all() else []
        ignore = predictor.classes.ignore_index
        if ignore is not None:  # map, overlay and label PNG then show them as unlabelled, as the shares do
            labels[clear] = ignore
        note = (f"{clear.mean():.1%} of the pixels are fully transparent: composited on black for the model, "
                "left out of the class shares" + (" and shown unlabelled." if ignore is not None else "."))
    else:
        legend = viz.legend(labels, predictor.classes)
    return InferenceResult(name, np.asarray(image), labels, np.asarray(pred.confidence, np.float32), pred.ms,
                           legend, note)


def transparent_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray | None:
    """(H, W) bool of the fully transparent pixels of an image file with alpha, None without alpha (or when
    its size differs from `shape`, e.g. after an EXIF rotation)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            if not (im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)):
                return None
            im.seek(0)
            alpha = np.asarray(im.convert("RGBA"))[..., 3]
    except (OSError, ValueError, SyntaxError):
        return None
    return alpha == 0 if alpha.shape == tuple(shape) else None


def is_wide(shape: tuple[int, ...]) -> bool:
    """Whether an (H, W, ...) frame is wide enough to show its panels stacked rather than side by side."""
    return shape[1] > WIDE_ASPECT * shape[0]


def fit_for_display(rgb: np.ndarray, max_width: int = DISPLAY_MAX_WIDTH) -> np.ndarray:
    """(H, W, 3) uint8 `rgb` shrunk (bilinear, as Streamlit shrinks) to at most `max_width` wide and
    JPEG_MAX_SIDE high, never below 1 pixel: Streamlit's own shrinking of a 65535x1 strip fails (0 rows).
    Returns `rgb` itself when it already fits."""
    h, w = rgb.shape[:2]
    if w <= max_width and h <= JPEG_MAX_SIDE:
        return rgb
    size = (max_width, max(1, int(1.0 * h * max_width / w))) if w > max_width else (w, h)  # Streamlit's sums
    if size[1] > JPEG_MAX_SIDE:
        size = (max(1, int(1.0 * size[0] * JPEG_MAX_SIDE / size[1])), JPEG_MAX_SIDE)
    return np.asarray(Image.fromarray(np.asarray(rgb, dtype=np.uint8)).resize(size, Image.BILINEAR))


def error_view(labels: np.ndarray, truth: np.ndarray, classes: ClassTable) -> tuple[np.ndarray, float]:
    """Pixels predicted wrong, in the color of their true class; right ones dark, unlabeled ones gray.

    Returns ((H, W, 3) uint8, share of wrong pixels among the labelled ones).
    """
    truth = np.asarray(truth)
    rgb = viz.colorize(truth, classes).copy()
    scored = truth != classes.ignore_index if classes.ignore_index is not None else np.ones(truth.shape, bool)
    right = (np.asarray(labels) == truth) & scored
    rgb[right] = CORRECT_RGB
    rgb[~scored] = UNLABELED_RGB
    n = int(scored.sum())
    return rgb, (float((scored & ~right).sum()) / n if n else 0.0)


def outline(rgb: np.ndarray, labels: np.ndarray, color=(255, 255, 255)) -> np.ndarray:
    """`rgb` with a 1-pixel line where the class changes (so classes of similar color stay apart)."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    edge[:, 1:] |= lab[:, 1:] != lab[:, :-1]
    edge[1:, :] |= lab[1:, :] != lab[:-1, :]
    out = np.array(rgb, dtype=np.uint8, copy=True)
    out[edge] = color
    return out


OUTLINE_COLORS = {(0, 255, 255): "cyan", (255, 255, 0): "yellow", (0, 255, 0): "green", (255, 128, 0): "orange",
                  (255, 0, 255): "magenta", (255, 255, 255): "white"}  # outline_color's picks, in order


def outline_color(classes: ClassTable) -> tuple[int, int, int]:
    """An outline colour no class of `classes` is drawn in (cyan unless a class uses it), so a class edge is
    never mistaken for a class (white is Lane Marking in Vistas)."""
    used = {tuple(int(v) for v in c) for c in classes.palette()}
    return next((c for c in OUTLINE_COLORS if c not in used), next(iter(OUTLINE_COLORS)))


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip archive of {file name: bytes} (PNG inside is already compressed, so the entries are stored)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def iou_rows(iou: dict[int, float], classes: ClassTable) -> list[dict]:
    """[{name, color, text}] of per-class IoU (class id -> IoU), lowest first, for legend chips."""
    return [{"name": classes.readable[c], "color": class_hex(classes, c), "text": f"{v:.0%}"}
            for c, v in sorted(iou.items(), key=lambda kv: kv[1])]


def class_mask(labels: np.ndarray, only: list[int] | None) -> np.ndarray | None:
    """(H, W) bool of pixels whose class is in `only`; None when every class is shown."""
    if only is None:
        return None
    return np.isin(labels, np.asarray(list(only), dtype=np.int64))


def mask_view(labels: np.ndarray, classes: ClassTable, only: list[int] | None = None) -> np.ndarray:
    """Colored label map; classes outside `only` are drawn dark grey."""
    rgb = viz.colorize(labels, classes)
    keep = class_mask(labels, only)
    if keep is not None:
        rgb = rgb.copy()
        rgb[~keep] = DIMMED_RGB
    return rgb


def overlay_view(
    image: np.ndarray, labels: np.ndarray, classes: ClassTable, alpha: float, only: list[int] | None = None
) -> np.ndarray:
    """Photo with class colors blended in at opacity `alpha`; classes outside `only` stay plain photo."""
    return viz.overlay(image, labels, classes, alpha, only=only)


def confidence_view(confidence: np.ndarray, threshold: float) -> tuple[np.ndarray, float]:
    """Gray confidence map (white = sure) with pixels below `threshold` marked; returns (rgb, unsure share)."""
    return viz.confidence_view(confidence, threshold), float((np.asarray(confidence) < threshold).mean())


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG bytes (for download buttons)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def label_png_bytes(labels: np.ndarray, classes: ClassTable) -> bytes:
    """The label map as a paletted PNG whose pixel values are the class ids (Vistas layout)."""
    buf = io.BytesIO()
    viz.to_label_png(labels, classes).save(buf, format="PNG")
    return buf.getvalue()


def stem_of(name: str) -> str:
    """An uploaded file's name without folder and extension, for download names ("frame" when empty)."""
    return Path(name).stem or "frame"


# ---- validation frames -------------------------------------------------------------------------------

SORT_ORDERS = ("worst mIoU first", "best mIoU first", "worst pixel acc first", "file name")
AB_SORT_ORDERS = ("B - A mIoU: B loses most first", "B - A mIoU: B gains most first")  # A/B mode adds these


def select_frames(
    frames: list[dict], order: str, class_id: int | None = None, classes: ClassTable | None = None,
    frames_b: list[dict] | None = None,
) -> list[dict]:
    """Filter evaluated frames to those listing `class_id` (needs `classes`), then sort by `order`.

    `frames` are seg.evaluate rows: {stem, pixel_acc, miou, classes (ids or names present)}; `frames_b`
    the same frames scored by checkpoint B (A/B mode), needed by the AB_SORT_ORDERS, which sort by B's
    frame mIoU minus A's (frames where either has no mIoU last).
    """
    if class_id is None:
        rows = frames
    else:
        rows = [f for f in frames if class_id in frame_class_ids(f, classes)]

    def num(v):
        return -1.0 if v is None else v

    if order == "worst mIoU first":
        return sorted(rows, key=lambda f: (num(f["miou"]), f["stem"]))
    if order == "best mIoU first":
        return sorted(rows, key=lambda f: (-num(f["miou"]), f["stem"]))
    if order == "worst pixel acc first":
        return sorted(rows, key=lambda f: (num(f["pixel_acc"]), f["stem"]))
    if order == "file name":
        return sorted(rows, key=lambda f: f["stem"])
    if order in AB_SORT_ORDERS:
        if frames_b is None:
            raise ValueError(f"order {order!r} needs the frames scored by B")
        b_miou = {f["stem"]: f["miou"] for f in frames_b}
        sign = 1 if order == AB_SORT_ORDERS[0] else -1

        def delta(f):
            a, b = f["miou"], b_miou.get(f["stem"])
            return (0, sign * (b - a), f["stem"]) if a is not None and b is not None else (1, 0.0, f["stem"])

        return sorted(rows, key=delta)
    raise ValueError(f"unknown order {order!r}; valid: {', '.join(SORT_ORDERS + AB_SORT_ORDERS)}")


def page_of(rows: list, page: int, per_page: int) -> list:
    """Rows of 1-based `page`; pages past the end are clamped to the last one."""
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    return rows[(page - 1) * per_page : page * per_page]


def n_pages(n_rows: int, per_page: int) -> int:
    """Pages needed for `n_rows` rows (at least 1)."""
    return max(1, -(-n_rows // per_page))


def confusion_view(confusion, classes: ClassTable) -> tuple[list[str], np.ndarray]:
    """Row-normalised confusion matrix (rows = truth) restricted to classes present in truth or prediction.

    Returns (readable names, (K, K) float matrix of row shares, 0 for empty rows). The ignore class is left out.
    """
    mat = np.asarray(confusion, dtype=np.float64)
    ids = [i for i in range(mat.shape[0]) if (mat[i].sum() > 0 or mat[:, i].sum() > 0) and i != classes.ignore_index]
    sub = mat[np.ix_(ids, ids)]
    rows = sub.sum(axis=1, keepdims=True)
    shares = np.divide(sub, rows, out=np.zeros_like(sub), where=rows > 0)
    return [classes.readable[i] for i in ids], shares


def per_class_rows(per_class_iou: dict, classes: ClassTable) -> list[dict]:
    """[{name, iou, color}] for classes with an IoU, lowest first (the ones to look at)."""
    colors = {classes.names[i]: viz.hex_color(classes.colors[i]) for i in range(len(classes))}
    colors.update({classes.readable[i]: viz.hex_color(classes.colors[i]) for i in range(len(classes))})
    readable = dict(zip(classes.names, classes.readable))
    rows = [
        {"name": readable.get(k, k), "iou": float(v), "color": colors.get(k, "#808080")}
        for k, v in per_class_iou.items()
        if v is not None
    ]
    return sorted(rows, key=lambda r: r["iou"])


def list_splits(root: str | Path) -> list[str]:
    """Sub-folders of a Vistas-layout root that hold images/ and labels/ (e.g. validation, training).

    Folders whose names are not valid UTF-8 are left out: a split name is page text and a cache key.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    try:
        entries = list(root.iterdir())
    except OSError:  # an unreadable folder holds no split we can use
        return []
    return sorted(p.name for p in entries
                  if (p / "images").is_dir() and (p / "labels").is_dir() and printable(p.name) == p.name)


def frame_class_ids(row: dict, classes: ClassTable) -> list[int]:
    """Class ids listed in an evaluate() frame row (given as ids or as names)."""
    out = []
    for c in row.get("classes", ()):
        out.append(int(c) if isinstance(c, (int, np.integer)) else classes.index(c))
    return out


def class_hex(classes: ClassTable, class_id: int) -> str:
    """'#rrggbb' of a class, from the same palette the images are drawn with."""
    return viz.hex_color(classes.palette()[class_id])
