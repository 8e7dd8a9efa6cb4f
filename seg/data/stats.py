"""Class statistics of a Vistas-layout split: what share of the pixels each class covers, and in how many frames.

Compare a real dataset with the synthetic world (or two downsized copies) class by class: the classes a real
frame is made of are the ones a model trained elsewhere must get right.

CLI: python -m seg.datastats DIR [--split validation] [--limit N] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from seg.classes import ClassTable, table_for
from seg.cli import int_arg
from seg.data.vistas import DataError, read_label, scan_split


def class_stats(root: str | Path, split: str = "validation", limit: int | None = None) -> dict:
    """Pixel counts per class over the labels of `root/split`.

    Returns {"frames", "pixels" (labelled, ignore excluded), "ignored", "classes": [{"id", "name", "pixels",
    "share", "frames"}, ...] for every class present, largest share first}. Raises DataError naming the file
    or folder on a bad split or label.
    """
    root = Path(root)
    try:
        table: ClassTable = table_for(root)
    except ValueError as e:
        raise DataError(str(e)) from None
    pairs, problems, _ = scan_split(root, split)
    if not pairs:
        raise DataError(problems[0] if problems else f"{root / split}: no frames")
    pairs = pairs[:limit] if limit else pairs
    n = table.num_classes
    pixels = np.zeros(n, np.int64)
    frames = np.zeros(n, np.int64)
    for _, label_path in pairs:
        counts = np.bincount(read_label(label_path, table).ravel(), minlength=n)[:n]
        pixels += counts
        frames += counts > 0
    ignored = int(pixels[table.ignore_index]) if table.ignore_index is not None else 0
    if table.ignore_index is not None:
        pixels[table.ignore_index] = frames[table.ignore_index] = 0
    total = int(pixels.sum())
    rows = [{"id": int(i), "name": table.readable[i], "pixels": int(pixels[i]),
             "share": float(pixels[i] / total) if total else 0.0, "frames": int(frames[i])}
            for i in np.argsort(-pixels, kind="stable") if pixels[i] > 0]
    return {"frames": len(pairs), "pixels": total, "ignored": ignored, "classes": rows}



def get_args_parser() -> argparse.ArgumentParser:
    """The `python -m seg.datastats` arguments."""
    p = argparse.ArgumentParser(description="Per-class pixel shares of a Vistas-layout split.")
    p.add_argument("data", help="dataset folder (Vistas layout: SPLIT/images, SPLIT/labels, config.json)")
    p.add_argument("--split", default="validation", help="split folder (default validation)")
    p.add_argument("--limit", type=int_arg(1), default=None, help="read only the first N frames")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m seg.datastats`: prints the table or JSON; returns the exit code (1 on a bad split)."""
    args = get_args_parser().parse_args(argv)
    try:
        stats = class_stats(args.data, args.split, args.limit)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(stats))
        return 0
    print(f"{stats['frames']} frames, {len(stats['classes'])} classes present, "
          f"{stats['ignored']} ignored pixels")
    print(f"{'class':<28}{'pixels':>8}{'frames':>8}")
    for row in stats["classes"]:
        print(f"{row['name']:<28}{row['share']:>7.2%}{row['frames']:>8}")
    return 0
