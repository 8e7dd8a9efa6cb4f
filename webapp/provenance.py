"""Where a checkpoint's training and validation data came from, and which folders hold synthetic frames.

Everything here is read from files (the checkpoint's recorded `args`, label PNGs), so the app can say plainly
what a model was trained on and what a score is over, without hard-coding either.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from seg.classes import ClassTable
from seg.imageio import VISTAS_IMAGE_EXTENSIONS
from seg.data.vistas import read_label
from seg.paths import DEFAULT_DATA, REPO_ROOT

SYNTHETIC_ROOT = REPO_ROOT / "assets"  # every bundled frame is rendered by seg.synth (assets/README.md)
HELD_OUT_LOOK = SYNTHETIC_ROOT / "synth_vistas_out"  # the same scenes in a style training never samples


def is_bundled_synthetic(path: str | Path | None) -> bool:
    """True for the bundled folders (assets/...): synthetic renders of seg.synth's street world."""
    if path is None:
        return False
    p, root = Path(path).resolve(), SYNTHETIC_ROOT.resolve()
    return p == root or root in p.parents


def is_held_out_look(path: str | Path | None) -> bool:
    """True for the bundled held-out look (assets/synth_vistas_out): colours, textures and sky that training
    never samples, on the same scenes as assets/synth_vistas."""
    if path is None:
        return False
    return Path(path).resolve() == HELD_OUT_LOOK.resolve()


def data_caption(path: str | Path | None) -> str | None:
    """What the scores over a bundled dataset folder mean (markdown-free text), None for other folders."""
    if is_held_out_look(path):
        return ("is a bundled set of synthetic renders (seg.synth's street world) in a held-out look: colours, "
                "textures and sky that training never saw. Scores here say how well the model carries over to a "
                "look it was not trained on, not how it does on real photos.")
    if is_bundled_synthetic(path):
        return ("is a bundled set of synthetic renders (seg.synth's street world), not photos: scores here say "
                "how well the model learned that world.")
    return None


def data_origin(args: dict | None) -> dict:
    """{"train", "val", "synthetic", "eval_limit", "val_frames"} read from a checkpoint's recorded training
    `args`; "val_frames" counts the validation split's images when that folder is here (else None).

    "train"/"val" are short descriptions (None when the checkpoint does not record them); "synthetic" is True
    when training used the synthetic stream (`--data synth`).
    """
    args = args or {}
    data = args.get("data")
    if data is None:
        return {"train": None, "val": None, "synthetic": False, "eval_limit": None, "val_frames": None}
    synthetic = data == "synth"
    val = args.get("val_data") or (str(DEFAULT_DATA) if synthetic else str(data))
    val_desc = _short(val) + (" (synthetic renders)" if is_bundled_synthetic(val) else "")
    train_desc = "the synthetic street world (seg.synth renders, not photos)" if synthetic else _short(data)
    return {"train": train_desc, "val": val_desc, "synthetic": synthetic, "eval_limit": args.get("eval_limit"),
            "val_frames": _count_frames(Path(val) / "validation" / "images")}


def frames_scored(eval_limit: int | None, val_frames: int | None) -> str:
    """Which of the validation frames training scored, in words: "all 32 of its frames", "the first 100 of
    its 2,000 frames", or "its first 100 frames" when the folder cannot be counted here."""
    if not eval_limit:
        return "all of its frames" if val_frames is None else f"all {val_frames:,} of its frames"
    if val_frames is None:
        return f"its first {eval_limit:,} frames"
    if eval_limit >= val_frames:
        return f"all {val_frames:,} of its frames"
    return f"the first {eval_limit:,} of its {val_frames:,} frames"


def _count_frames(folder: Path) -> int | None:
    try:
        return sum(1 for f in folder.iterdir() if f.suffix.lower() in VISTAS_IMAGE_EXTENSIONS)
    except OSError:  # not here (trained elsewhere) or not readable: the count is left out
        return None


def _short(path: str | Path) -> str:
    try:
        return Path(path).resolve().relative_to(REPO_ROOT.resolve()).as_posix()
    except ValueError:
        return str(path)


def classes_in_labels(label_files: list[Path], classes: ClassTable, limit: int = 500) -> tuple[int, int]:
    """(number of distinct class ids, files read) over the first `limit` label PNGs (pixel = class id), the
    ignore index left out. Read as training reads them (seg.data.vistas.read_label): a size over the pixel
    limit is refused from the header, before decoding. Raises DataError (a ValueError) naming the file."""
    ids: set[int] = set()
    files = label_files[:limit]
    for f in files:
        ids.update(np.unique(read_label(f, classes)).tolist())
    ids.discard(classes.ignore_index)
    return len(ids), len(files)
