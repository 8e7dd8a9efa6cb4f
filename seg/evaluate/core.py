"""Dataset evaluation: a Predictor over a Vistas-layout split -> mIoU, pixel accuracy, per-class IoU, per-frame rows.

Predictions are made at each frame's own size (exactly what the CLI and the app show), and scored by the
`seg.evaluate.scoring.Scorer` the app's validation store uses too.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from seg.classmap import get_classmap
from seg.data.vistas import VistasDataset
from seg.evaluate.scoring import Scorer, image_hwc
from seg.paths import DEFAULT_DATA


def _predictions(predictor, ds, n: int, batch_size: int):
    """(target (H, W) int64 tensor, prediction (H, W) uint8) for the first n frames of ds, in order; frames
    go through `predictor.predict_batch` batch_size at a time when it has one."""
    step = batch_size if batch_size > 1 and hasattr(predictor, "predict_batch") else 1
    for start in range(0, n, step):
        items = [ds[i] for i in range(start, min(n, start + step))]  # [(image (3, H, W) uint8, target)]
        if step > 1:
            preds = predictor.predict_batch([image_hwc(image) for image, _ in items], step)
        else:
            preds = [predictor.predict(image_hwc(items[0][0]))]
        yield from ((target, pred) for (_, target), pred in zip(items, preds))


def scorer_for(predictor, ds: VistasDataset, classmap: str | None, root) -> tuple[Scorer, str | None]:
    """The Scorer of `predictor` on dataset `ds` in mapping `classmap` (default: the checkpoint's own,
    `predictor.meta["classmap"]`), and the mapping's name (None: the dataset's own classes).

    The dataset's labels go through the mapping, and so do the predictions of a checkpoint that predicts the
    dataset's own classes (a 66-class model scored as lanes). Raises ValueError when the tables disagree.
    """
    meta = getattr(predictor, "meta", None) or {}
    own, where = meta.get("classmap"), meta.get("path", "checkpoint")
    name = classmap or own
    if not name:
        return Scorer(predictor.classes, ds.classes, where=root), None
    if own and own != name:
        raise ValueError(f"{where}: predicts the '{own}' classes; it cannot be scored as '{name}'")
    try:
        truth_map = get_classmap(name, ds.classes)
    except ValueError as e:
        raise ValueError(f"{root}: {e}") from None
    pred_map = None if own else get_classmap(name, predictor.classes)
    if (pred_map.table if pred_map else predictor.classes).names != truth_map.table.names:
        raise ValueError(f"{where}: its classes are not those of mapping '{name}'")
    return Scorer(truth_map.table, ds.classes, truth_map, pred_map, where=root), name


def evaluate(
    predictor,
    root: str | Path = DEFAULT_DATA,
    split: str = "validation",
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    roots: tuple[Path, ...] | None = None,
    batch_size: int = 1,
    classmap: str | None = None,
) -> dict:
    """Score `predictor` (anything with `.predict(image (H, W, 3) uint8) -> (H, W) ids` and `.classes`).

    Args:
        root: Vistas-layout folder; split: its subfolder; limit: first N frames only.
        progress: called as progress(done, total) after each frame.
        roots: when given (the app), dataset files whose links lead outside these folders are not read.
        batch_size: frames predicted together through `predictor.predict_batch` (when it has one); > 1
            pays on a GPU, where a single frame leaves the device mostly idle.
        classmap: a `seg.classmap` mapping name (e.g. "lanes") to score in; default: the checkpoint's own
            (`predictor.meta["classmap"]`); see `scorer_for`.
    Returns: dict(miou, pixel_acc, per_class_iou {readable name: IoU or None when the class is absent from
    both truth and prediction; the ignore class left out}, confusion (C, C) nested list (rows = truth),
    frames [dict(stem, pixel_acc, miou, classes: readable names present in the truth)], num_frames,
    root, split, classmap: the mapping scored in or None). Raises DataError for a broken split, ValueError
    when the class tables disagree.
    """
    ds = VistasDataset(root, split, roots=roots)
    scorer, name = scorer_for(predictor, ds, classmap, root)
    n = len(ds) if limit is None else min(limit, len(ds))
    total = np.zeros((scorer.num_classes, scorer.num_classes), np.int64)
    frames = []
    for i, (target, pred) in enumerate(_predictions(predictor, ds, n, batch_size)):
        scored = scorer.score(target, pred)
        total += scored.confusion
        frames.append(scorer.frame_row(ds.pairs[i][0].stem, scored))
        if progress is not None:
            progress(i + 1, n)
    return {**scorer.result(total, frames), "root": str(root), "split": split, "classmap": name}
