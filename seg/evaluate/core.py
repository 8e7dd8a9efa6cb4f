"""Dataset evaluation: a Predictor over a Vistas-layout split -> mIoU, pixel accuracy, per-class IoU, per-frame rows.

Predictions are made at each frame's own size (exactly what the CLI and the app show), and scored with the
one ConfusionMatrix that training uses; the ignore index (Unlabeled) is excluded from every figure.
"""
from __future__ import annotations

import argparse
import json
import os
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from seg.checkpoint import CheckpointError
from seg.classmap import get_classmap, list_mappings
from seg.data import DataError, VistasDataset
from seg.device import add_runtime_args
from seg.evaluate.metrics import ConfusionMatrix
from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _hwc(image) -> np.ndarray:
    """(3, H, W) uint8 tensor -> (H, W, 3) uint8 array."""
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


def _predictions(predictor, ds, n: int, batch_size: int):
    """(target (H, W) int64 tensor, prediction (H, W) uint8) for the first n frames of ds, in order; frames
    go through `predictor.predict_batch` batch_size at a time when it has one."""
    step = batch_size if batch_size > 1 and hasattr(predictor, "predict_batch") else 1
    for start in range(0, n, step):
        items = [ds[i] for i in range(start, min(n, start + step))]  # [(image (3, H, W) uint8, target)]
        if step > 1:
            preds = predictor.predict_batch([_hwc(image) for image, _ in items], step)
        else:
            preds = [predictor.predict(_hwc(items[0][0]))]
        yield from ((target, pred) for (_, target), pred in zip(items, preds))


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
            (`predictor.meta["classmap"]`). The dataset's labels are mapped through it, and so are the
            predictions of a checkpoint that predicts the dataset's own classes (a 66-class model as lanes).
    Returns: dict(miou, pixel_acc, per_class_iou {readable name: IoU or None when the class is absent from
    both truth and prediction; the ignore class left out}, confusion (C, C) nested list (rows = truth),
    frames [dict(stem, pixel_acc, miou, classes: readable names present in the truth)], num_frames,
    root, split, classmap: the mapping scored in or None). Raises DataError for a broken split, ValueError when the class tables disagree.
    """
    ds = VistasDataset(root, split, roots=roots)
    classes = predictor.classes
    meta = getattr(predictor, "meta", None) or {}
    own, where = meta.get("classmap"), meta.get("path", "checkpoint")
    name = classmap or own
    truth_map = pred_map = None
    if name:
        if own and own != name:
            raise ValueError(f"{where}: predicts the '{own}' classes; it cannot be scored as '{name}'")
        try:
            truth_map = get_classmap(name, ds.classes)
        except ValueError as e:
            raise ValueError(f"{root}: {e}") from None
        pred_map = None if own else get_classmap(name, classes)
        if (pred_map.table if pred_map else classes).names != truth_map.table.names:
            raise ValueError(f"{where}: its classes are not those of mapping '{name}'")
        classes = truth_map.table
    elif len(ds.classes) != len(classes):
        raise ValueError(
            f"{root}: dataset has {len(ds.classes)} classes but the checkpoint predicts {len(classes)}"
        )
    n = len(ds) if limit is None else min(limit, len(ds))
    ignore = classes.ignore_index if truth_map else ds.classes.ignore_index
    total = ConfusionMatrix(len(classes), ignore)
    frames = []
    for i, (target, pred) in enumerate(_predictions(predictor, ds, n, batch_size)):
        target = target.numpy()
        if truth_map is not None:
            target = truth_map(target)
        if pred_map is not None:
            pred = pred_map(pred)
        cm = ConfusionMatrix(len(classes), ignore)
        cm.update(target, pred)
        total.mat += cm.mat
        r = cm.compute()
        present = [int(c) for c in np.unique(target) if c != ignore and c < len(classes)]
        frames.append({
            "stem": ds.pairs[i][0].stem,
            "pixel_acc": _num(r["pixel_acc"]),
            "miou": _num(r["miou"]),
            "classes": [classes.readable[c] for c in present],
        })
        if progress is not None:
            progress(i + 1, n)
    r = total.compute()
    per_class = {
        classes.readable[c]: _num(r["iou"][c]) for c in range(len(classes)) if c != ignore
    }
    return {
        "miou": _num(r["miou"]),
        "pixel_acc": _num(r["pixel_acc"]),
        "per_class_iou": per_class,
        "confusion": total.mat.tolist(),
        "frames": frames,
        "num_frames": n,
        "root": str(root),
        "split": split,
        "classmap": name,
    }


def format_table(result: dict) -> str:
    """Readable summary: overall figures, then classes with an IoU, best first."""
    f = lambda v: "   -  " if v is None else f"{100 * v:5.1f}%"  # noqa: E731
    lines = [
        f"{result['num_frames']} frames of {result['root']} / {result['split']}",
        f"mIoU {f(result['miou'])}   pixel accuracy {f(result['pixel_acc'])}",
        "",
        f"{'class':<28} {'IoU':>6}",
    ]
    rows = sorted(((v, k) for k, v in result["per_class_iou"].items() if v is not None), reverse=True)
    lines += [f"{name:<28} {f(v)}" for v, name in rows]
    absent = sum(v is None for v in result["per_class_iou"].values())
    lines.append(f"({absent} classes absent from truth and prediction)")
    return "\n".join(lines)


def get_args_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Evaluate a checkpoint on a Vistas-layout split.")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="dataset folder (default: the bundled set)")
    p.add_argument("--split", default="validation", help="split subfolder")
    p.add_argument("--checkpoint", default=None, help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--limit", type=int, default=None, help="first N frames only")
    p.add_argument("--batch-size", type=int, default=None,
                   help="frames predicted together (default: 8 on CUDA, 1 on the CPU, where batches gain nothing)")
    add_runtime_args(p)
    p.add_argument("--classes", choices=list_mappings(), default=None,
                   help="score in a named class mapping (lanes: lane markings vs. the rest); a checkpoint "
                        "trained with one is scored in it by default")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def main(argv: list[str] | None = None) -> int:
    from seg.infer.predictor import Predictor  # keeps `evaluate` importable with a stub predictor alone

    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    try:
        predictor = Predictor(args.checkpoint, device=args.device, threads=args.threads, precision=args.precision,
                              backend=args.backend)
        batch = args.batch_size or (8 if predictor.device.type == "cuda" else 1)
        result = evaluate(predictor, args.data, args.split, args.limit, batch_size=batch, classmap=args.classes)
    except (CheckpointError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    result["checkpoint"] = predictor.meta["path"]
    if args.json:
        print(json.dumps(result))
    else:
        print(format_table(result))
    return 0
