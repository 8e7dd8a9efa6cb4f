"""Downsize a Vistas-layout dataset: `python -m seg.prepare --src RAW --dst OUT [--size 512x384] [--workers K]`.

Reads a Vistas root (`config.json`, `{training,validation,testing}/images/*.{jpg,jpeg,png}`, labels in each
split's `labels/`, else `v1.2/labels/` as the v1.2 download has them, or `--labels-dir`) and writes the same
layout: `config.json`, `SPLIT/images/*.jpg`, `SPLIT/labels/*.png`. Images are resized antialiased (Lanczos)
and saved as JPEG quality 95; labels are resized NEAREST in their own P (or L) mode, so the palette and every
pixel value (class id) survive untouched; they are never converted to RGB. Every output is written under a
temporary name and renamed into place, so an existing output is always complete and a rerun skips it
(resumable). Bad inputs are reported by name at the end and make the exit code 1; everything else is still
processed.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from seg.cli import size_arg
from seg.imageio import VISTAS_IMAGE_EXTENSIONS  # numpy and Pillow only: the workers skip torch

SPLITS = ("training", "validation", "testing")
LABELED_SPLITS = ("training", "validation")  # testing has no public labels
LABEL_MODES = ("P", "L")
JPEG_QUALITY = 95
PART = ".part"  # temporary output suffix; leftovers of a killed run are removed at the next start


@dataclass
class Job:
    """One frame: its image, its label (None in testing) and where the resized copies go."""

    image: Path
    label: Path | None
    image_out: Path
    label_out: Path | None
    size: tuple[int, int]  # (W, H)
    keep_aspect: bool


@dataclass
class Report:
    """What a run did: frames written and already done, problems and notes."""

    done: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # one line each, naming the file
    notes: list[str] = field(default_factory=list)


def geometry(src: tuple[int, int], size: tuple[int, int], keep_aspect: bool):
    """(resize_to (W, H), crop box or None) that maps a `src` (W, H) frame to exactly `size` (W, H).

    Plain: stretch to `size`. keep_aspect: scale so the frame covers `size`, then center-crop.
    """
    if not keep_aspect:
        return size, None
    scale = max(size[0] / src[0], size[1] / src[1])
    rw, rh = max(size[0], round(src[0] * scale)), max(size[1], round(src[1] * scale))
    left, top = (rw - size[0]) // 2, (rh - size[1]) // 2
    return (rw, rh), (left, top, left + size[0], top + size[1])


def _is_complete(path: Path | None, size: tuple[int, int]) -> bool:
    if path is None:
        return True
    try:
        with Image.open(path) as im:  # header only
            return im.size == size
    except OSError:
        return False


def _save_atomic(im: Image.Image, dst: Path, **kw) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}{PART}")
    try:
        im.save(tmp, **kw)
        os.replace(tmp, dst)  # atomic on one filesystem: dst is either absent or complete
    finally:
        tmp.unlink(missing_ok=True)


def _write_label(job: Job, src_size, resize_to, box) -> str | None:
    """Resize the label NEAREST in its own P/L mode (ids copied, never blended; palette kept); None or a problem."""
    try:
        with Image.open(job.label) as lab:
            if lab.mode not in LABEL_MODES:
                return f"{job.label}: label mode {lab.mode}, expected paletted (P) or grayscale (L) ids"
            if lab.size != src_size:
                return f"{job.label}: label {lab.size[0]}x{lab.size[1]} != image {src_size[0]}x{src_size[1]}"
            out = lab.resize(resize_to, Image.Resampling.NEAREST)
            _save_atomic(out.crop(box) if box else out, job.label_out, format="PNG")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return f"{job.label}: {e.__class__.__name__}: {e}"
    return None


def process(job: Job) -> tuple[str, str | None]:
    """Resize one frame; returns ("done" | "skipped", None) or ("failed", "file: reason")."""
    if _is_complete(job.image_out, job.size) and _is_complete(job.label_out, job.size):
        return "skipped", None
    try:
        with Image.open(job.image) as im:
            src_size = im.size  # header only so far
            resize_to, box = geometry(src_size, job.size, job.keep_aspect)
            if job.label is not None:
                problem = _write_label(job, src_size, resize_to, box)
                if problem:
                    return "failed", problem
            im.draft("RGB", resize_to)  # JPEG: the decoder downscales by 2^k first, never below resize_to
            out = im.convert("RGB").resize(resize_to, Image.Resampling.LANCZOS)
            _save_atomic(out.crop(box) if box else out, job.image_out, format="JPEG", quality=JPEG_QUALITY)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        return "failed", f"{job.image}: {e.__class__.__name__}: {e}"
    return "done", None


def _labels_folder(split_dir: Path, labels_dir: str | None, report: Report) -> Path | None:
    """The split's label folder: `labels_dir` when given, else `labels`, else `v1.2/labels` (said so)."""
    if labels_dir is not None:
        return split_dir / labels_dir if (split_dir / labels_dir).is_dir() else None
    if (split_dir / "labels").is_dir():
        return split_dir / "labels"
    if (split_dir / "v1.2" / "labels").is_dir():
        report.notes.append(f"{split_dir.name}: no labels/, using v1.2/labels (pass --labels-dir to choose)")
        return split_dir / "v1.2" / "labels"
    return None


def collect_jobs(src: Path, dst: Path, size, keep_aspect: bool, labels_dir: str | None, report: Report) -> list[Job]:
    """Pair images and labels by stem in every split of `src`; unpaired files go to report.problems."""
    jobs = []
    for split in SPLITS:
        img_dir = src / split / "images"
        if not img_dir.is_dir():
            continue
        lbl_dir = _labels_folder(src / split, labels_dir, report)
        if lbl_dir is None and split in LABELED_SPLITS:
            report.problems.append(f"{src / split}: no label folder {labels_dir or 'labels'}")
        images = {p.stem: p for p in sorted(img_dir.iterdir()) if p.is_file() and p.suffix.lower() in VISTAS_IMAGE_EXTENSIONS}
        labels = {}
        if lbl_dir is not None:
            labels = {p.stem: p for p in sorted(lbl_dir.iterdir()) if p.is_file() and p.suffix.lower() == ".png"}
        out = dst / split
        for stem, img in images.items():
            label = labels.get(stem)
            if label is None and lbl_dir is not None:
                report.problems.append(f"{img}: no label {lbl_dir / (stem + '.png')}")
                continue
            label_out = out / "labels" / f"{stem}.png" if label is not None else None
            jobs.append(Job(img, label, out / "images" / f"{stem}.jpg", label_out, size, keep_aspect))
        report.problems += [f"{p}: label without an image" for s, p in labels.items() if s not in images]
    return jobs


def prepare(src, dst, size=(512, 384), workers: int = 1, labels_dir: str | None = None,
            keep_aspect: bool = False, progress: bool = False) -> Report:
    """Write the resized copy of Vistas root `src` to `dst`; returns counts, problems and notes."""
    src, dst = Path(src), Path(dst)
    report = Report()
    jobs = collect_jobs(src, dst, tuple(size), keep_aspect, labels_dir, report)
    if not jobs and not report.problems:
        report.problems.append(f"{src}: no frames in {'/'.join(SPLITS)}/images")
    for folder in {j.image_out.parent for j in jobs} | {j.label_out.parent for j in jobs if j.label_out}:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f".*{PART}"):
            stale.unlink()
    if (src / "config.json").is_file():
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "config.json", dst / "config.json")
    else:
        report.notes.append(f"{src}: no config.json; readers of {dst} will use the built-in v1.2 table")
    bar = tqdm(total=len(jobs), unit="frame", disable=not progress)
    if workers > 1:
        with multiprocessing.Pool(workers) as pool:
            results = pool.imap_unordered(process, jobs, chunksize=8)
            _tally(results, report, bar)
    else:
        _tally(map(process, jobs), report, bar)
    bar.close()
    return report


def _tally(results, report: Report, bar) -> None:
    for status, message in results:
        if status == "failed":
            report.problems.append(message)
        else:
            setattr(report, status, getattr(report, status) + 1)
        bar.update()


def get_args_parser() -> argparse.ArgumentParser:
    """The `python -m seg.prepare` flags."""
    p = argparse.ArgumentParser(prog="python -m seg.prepare", description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, type=Path, help="Vistas root (config.json, training/, validation/, ...)")
    p.add_argument("--dst", required=True, type=Path, help="output root, outside --src; resumes if present")
    p.add_argument("--size", default="512x384", type=size_arg, metavar="WxH", help="output size (default 512x384)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), metavar="K",
                   help="parallel processes (default min(4, cpu count))")
    p.add_argument("--labels-dir", default=None, metavar="DIR",
                   help="label folder inside each split, e.g. v1.2/labels (default labels, else v1.2/labels)")
    p.add_argument("--keep-aspect", action="store_true",
                   help="resize the short side and center-crop instead of stretching to WxH")
    return p


def main(argv=None) -> int:
    """`python -m seg.prepare`: returns the exit code (1 when any input had a problem; 2 for bad flags)."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    src, dst = args.src.resolve(), args.dst.resolve()
    if not src.is_dir():
        parser.error(f"--src {args.src}: not a folder")
    if dst == src or src in dst.parents:
        parser.error(f"--dst {args.dst} is inside --src {args.src}; it would mix outputs into the raw data")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    report = prepare(src, dst, args.size, args.workers, args.labels_dir, args.keep_aspect, sys.stderr.isatty())
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{dst}: {report.done} frames written, {report.skipped} already done, {len(report.problems)} problems")
    for line in report.problems:
        print(f"problem: {line}", file=sys.stderr)
    return 1 if report.problems else 0
