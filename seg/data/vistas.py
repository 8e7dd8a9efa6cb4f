"""The Vistas layout: pairing images with labels, reading labels, checking a split, the torch Dataset.

Labels are read as palette *indices* (the pixel value is the class id), never by color: Vistas v1.0
palettes give several classes the same color, so any color lookup silently merges classes.

Shapes: images are (3, H, W) (uint8 before `get_transform`, normalized float32 after); targets are (H, W)
int64 class ids, with `IGNORE_INDEX` (65, Unlabeled) where there is no label.
"""
from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors

from seg.classes import IGNORE_INDEX, ClassTable, table_for
from seg.cli import one_line
from seg.imageio import DEFAULT_MAX_PIXELS as MAX_PIXELS, VISTAS_IMAGE_EXTENSIONS, image_files
from seg.paths import inside

LABEL_MODES = ("P", "L")  # paletted or grayscale: both store the id as the pixel value
VOID_VALUE = 255  # "no label" value some tools write; mapped to the table's ignore index on read


class DataError(ValueError):
    """A dataset file or folder is missing, unpaired or unreadable; the message names the file."""


def list_images(folder: str | Path) -> list[Path]:
    """Sorted image files directly in `folder` (`seg.imageio.IMAGE_EXTENSIONS`, any case: dashcams write .JPG)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    return image_files(folder)


def _listdir(folder: Path) -> tuple[list[Path], str | None]:
    """Sorted entries of `folder`, or ([], "problem line") when it cannot be listed (no permission...)."""
    try:
        return sorted(folder.iterdir()), None
    except OSError as e:
        return [], f"{folder}: cannot list the folder ({e.strerror or e})"


def scan_split(root: Path, split: str, roots: tuple[Path, ...] | None = None
                ) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """Pair `root/split/images/*` with `root/split/labels/*.png` by stem; returns (pairs, problems, skipped).

    With `roots`, files and folders that resolve (links followed) outside every root are left out and
    listed in `skipped` instead of being read.
    """
    img_dir, lbl_dir = root / split / "images", root / split / "labels"
    missing = [f"{d}: folder not found" for d in (img_dir, lbl_dir) if not d.is_dir()]
    if missing:
        return [], missing, []
    if roots is not None:
        outside = [f"{d}: leads outside the allowed folders" for d in (img_dir, lbl_dir) if not inside(d, roots)]
        if outside:
            return [], outside, []
    problems: list[str] = []
    skipped: list[str] = []
    entries = {}
    for d in (img_dir, lbl_dir):
        entries[d], problem = _listdir(d)
        if problem:
            return [], [problem], []

    def allowed(p: Path) -> bool:
        if roots is None or inside(p, roots):
            return True
        skipped.append(f"{p}: leads outside the allowed folders")
        return False

    images: dict[str, Path] = {}
    for p in entries[img_dir]:
        if p.is_file() and p.suffix.lower() in VISTAS_IMAGE_EXTENSIONS and allowed(p):
            if p.stem in images:
                problems.append(f"{p}: same stem as {images[p.stem].name}; which one is the frame?")
            images[p.stem] = p
    labels = {p.stem: p for p in entries[lbl_dir] if p.is_file() and p.suffix.lower() == ".png" and allowed(p)}
    pairs = []
    for stem, img in images.items():
        if stem in labels:
            pairs.append((img, labels[stem]))
        else:
            problems.append(f"{img}: no label {lbl_dir / (stem + '.png')}")
    problems += [f"{lbl}: label without an image in {img_dir}" for s, lbl in labels.items() if s not in images]
    if not images:
        problems.append(f"{img_dir}: no .jpg/.jpeg/.png images")
    return pairs, problems, skipped


def _open(path: Path, what: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Image.open that checks the header's pixel count and turns every failure into DataError naming the file.

    Lazy like Image.open: only the header is read here.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
    except (OSError, ValueError, SyntaxError, struct.error,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            raise DataError(f"{path}: {what} is over the {max_pixels:,}-pixel limit") from None
        reason = e.strerror if isinstance(e, OSError) and e.strerror else one_line(e, 160, kind=True)
        raise DataError(f"{path}: unreadable {what} ({reason})") from None
    w, h = im.size
    if w * h > max_pixels:
        im.close()
        raise DataError(f"{path}: {what} of {w}x{h} is over the {max_pixels:,}-pixel limit")
    return im



def read_label(path: str | Path, classes: ClassTable) -> np.ndarray:
    """Class ids of a label PNG as (H, W) int64, read as palette indices (P) or gray values (L).

    255 becomes `classes.ignore_index` (when the table has one). Raises DataError naming the file for an
    unreadable file, an RGB(A) label, or ids outside the table.
    """
    try:
        with _open(Path(path), "label") as im:
            if im.mode not in LABEL_MODES:
                raise DataError(
                    f"{path}: label is mode {im.mode}, expected paletted (P) or grayscale (L) class ids; "
                    "color labels cannot be read safely (Vistas v1.0 palettes repeat colors)"
                )
            ids = np.array(im)  # P mode: the palette indices themselves, not colors
    except (OSError, ValueError, SyntaxError, struct.error) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: unreadable label ({one_line(e, 160, kind=True)})") from None
    bad = np.unique(ids[(ids >= classes.num_classes) & (ids != VOID_VALUE)])
    if bad.size:
        raise DataError(f"{path}: label ids {bad[:8].tolist()} outside the {classes.num_classes}-class table")
    ids = ids.astype(np.int64)
    if classes.ignore_index is not None:
        ids[ids == VOID_VALUE] = classes.ignore_index
    return ids


def _read_image(path: Path) -> Image.Image:
    try:
        with _open(path, "image") as im:
            # No EXIF transpose: Vistas labels are aligned with the stored pixel grid.
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError, struct.error) as e:  # e.g. a JPEG cut short after its header
        if isinstance(e, DataError):
            raise
        raise DataError(f"{path}: unreadable image ({one_line(e, 160, kind=True)})") from None


def to_tv(image: Image.Image, ids: np.ndarray) -> tuple[tv_tensors.Image, tv_tensors.Mask]:
    """PIL RGB + (H, W) ids -> (Image uint8 (3, H, W), Mask int64 (H, W))."""
    img = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).contiguous()
    return tv_tensors.Image(img), tv_tensors.Mask(torch.from_numpy(np.asarray(ids, dtype=np.int64)))


class VistasDataset(Dataset):
    """Frames of one split of a Vistas-layout folder: `root/{split}/images/*.jpg` + `labels/*.png`.

    Pairs are checked at construction (DataError naming the first unpaired files). Item i is
    `transforms(image, target)`, or without transforms `(tv_tensors.Image uint8 (3, H, W),
    tv_tensors.Mask int64 (H, W))`. `classes` is the dataset's config.json table, else the built-in one.
    With `roots` (the app's allowed folders), files whose links lead outside them are never opened; they
    are listed in `skipped`.
    """

    def __init__(self, root: str | Path, split: str, transforms=None, roots: tuple[Path, ...] | None = None):
        self.root, self.split, self.transforms = Path(root), split, transforms
        if roots is not None and (self.root / "config.json").exists() and not inside(self.root / "config.json", roots):
            raise DataError(f"{self.root / 'config.json'}: leads outside the allowed folders")
        try:
            self.classes = table_for(self.root)
        except ValueError as e:  # a bad config.json: one line naming it
            raise DataError(str(e)) from None
        self.pairs, problems, self.skipped = scan_split(self.root, split, roots)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise DataError("; ".join(problems[:5]) + more)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int):
        img_path, lbl_path = self.pairs[i]
        image = _read_image(img_path)
        ids = read_label(lbl_path, self.classes)
        if ids.shape != (image.height, image.width):
            raise DataError(
                f"{lbl_path}: label is {ids.shape[1]}x{ids.shape[0]} but image {img_path.name} is "
                f"{image.width}x{image.height}"
            )
        image, target = to_tv(image, ids)
        return self.transforms(image, target) if self.transforms is not None else (image, target)


def check_split(root: str | Path, split: str, max_files: int | None = None) -> list[str]:
    """Scan a split for problems before training; returns readable lines naming files ([] when clean).

    Images are decoded (JPEGs at 1/8 scale, which still reads every byte: a truncated file shows up);
    labels are decoded fully (mode, size, id range). `max_files` limits how many pairs are opened
    (pairing is always checked for all).
    """
    root = Path(root)
    try:
        classes = table_for(root)
    except ValueError as e:
        return [str(e)]
    pairs, problems, _ = scan_split(root, split)
    for img_path, lbl_path in pairs[:max_files]:
        try:
            with _open(img_path, "image") as im:
                size = im.size
                im.draft("RGB", (max(1, size[0] // 8), max(1, size[1] // 8)))  # JPEG: decode at 1/8 scale
                im.load()  # reads every byte, so a file cut short after its header is found now
            ids = read_label(lbl_path, classes)
        except DataError as e:
            problems.append(str(e))
            continue
        except (OSError, ValueError, SyntaxError, struct.error) as e:  # the image data, not its header
            problems.append(f"{img_path}: unreadable image ({one_line(e, 160, kind=True)})")
            continue
        if ids.shape != (size[1], size[0]):
            problems.append(f"{lbl_path}: label is {ids.shape[1]}x{ids.shape[0]}, image is {size[0]}x{size[1]}")
    return problems
