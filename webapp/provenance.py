"""Where a checkpoint's training and validation data came from, and which folders hold synthetic frames.

Everything here is read from files (the checkpoint's recorded `args`, label PNGs), so the app can say plainly
what a model was trained on and what a score is over, without hard-coding either.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from seg.classes import ClassTable
from seg.data.vistas import read_label
from seg.paths import DEFAULT_DATA, REPO_ROOT

SYNTHETIC_ROOT = REPO_ROOT / "assets"  # every bundled frame is rendered by seg.synth (assets/README.md)


def is_bundled_synthetic(path: str | Path | None) -> bool:
    """True for the bundled folders (assets/...): synthetic renders of seg.synth's street world."""
    if path is None:
        return False
    p, root = Path(path).resolve(), SYNTHETIC_ROOT.resolve()
    return p == root or root in p.parents


def data_origin(args: dict | None) -> dict:
    """{"train", "val", "synthetic", "eval_limit"} read from a checkpoint's recorded training `args`.

    "train"/"val" are short descriptions (None when the checkpoint does not record them); "synthetic" is True
    when training used the synthetic stream (`--data synth`).
    """
    args = args or {}
    data = args.get("data")
    if data is None:
        return {"train": None, "val": None, "synthetic": False, "eval_limit": None}
    synthetic = data == "synth"
    val = args.get("val_data") or (str(DEFAULT_DATA) if synthetic else str(data))
    val_desc = _short(val) + (" (synthetic renders)" if is_bundled_synthetic(val) else "")
    train_desc = "the synthetic street world (seg.synth renders, not photos)" if synthetic else _short(data)
    return {"train": train_desc, "val": val_desc, "synthetic": synthetic, "eval_limit": args.get("eval_limit")}


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
