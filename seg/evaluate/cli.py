"""`python -m seg.evaluate`: flags, the run, and the readable table; the scoring itself is in `seg.evaluate.core`."""
from __future__ import annotations

import argparse
import json
import sys

from seg.checkpoint import CheckpointError
from seg.classmap import list_mappings
from seg.data.vistas import DataError
from seg.device import add_runtime_args
from seg.evaluate.core import evaluate
from seg.infer.predictor import Predictor
from seg.paths import DEFAULT_CHECKPOINT, DEFAULT_DATA


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
    """The flags of `python -m seg.evaluate`."""
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
    """`python -m seg.evaluate`: prints the table (or with --json one JSON object); returns the exit code."""
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
