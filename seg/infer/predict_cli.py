"""`python -m seg.predict`: segment images, folders of images and video clips into an output folder."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image

from seg.checkpoint import CheckpointError
from seg.cli import one_line
from seg.device import add_runtime_args
from seg.imageio import IMAGE_EXTENSIONS, ImageError, image_files, load_image
from seg.paths import DEFAULT_CHECKPOINT
from seg.infer import clip_cli
from seg.infer.predictor import Predictor
from seg.viz import overlay_image, to_label_png


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Files as given, folders expanded to their images (sorted, not recursive). Returns (files, errors)."""
    files, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            found = image_files(p)
            if not found:
                errors.append(f"{p}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
            files += found
        else:
            files.append(p)  # missing files are reported by load_image, in order
    return files, errors


def get_args_parser() -> argparse.ArgumentParser:
    """The flags of `python -m seg.predict` (images, runtime and video flags)."""
    p = argparse.ArgumentParser(description="Segment images: writes OUT/<stem>.png (paletted class ids); "
                                            "video clips: OUT/<stem>_overlay.mp4 (see seg/infer/video.py).")
    p.add_argument("images", nargs="+", help="image files, folders of images, or video clips")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--checkpoint", default=None, help=f"checkpoint (default {DEFAULT_CHECKPOINT})")
    p.add_argument("--overlay", action="store_true", help="also write OUT/<stem>_overlay.jpg")
    add_runtime_args(p)
    clip_cli.add_args(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Segment every input; 0 when all were written, 1 when any failed (one `error:` line each)."""
    args = get_args_parser().parse_args(argv)
    try:
        predictor = Predictor(args.checkpoint, device=args.device, threads=args.threads,
                              precision=args.precision, backend=args.backend)
    except (CheckpointError, ValueError) as e:  # ValueError: a device or precision this machine lacks
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: {out}: cannot create output folder ({e.strerror})", file=sys.stderr)
        return 1
    clips, images = clip_cli.split_inputs(args.images, args.fps)
    files, errors = expand_inputs(images)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    failed = len(errors) + clip_cli.run_clips(predictor, clips, out, args)
    failed += predict_images(predictor, files, out, args.overlay)
    return 1 if failed else 0


def predict_images(predictor: Predictor, files: list[Path], out: Path, overlay: bool) -> int:
    """Write OUT/<stem>.png (and with `overlay` OUT/<stem>_overlay.jpg) per image, printing each label map's
    path (stdout) or one `error:` line (stderr). Returns the number of images that failed."""
    failed, written = 0, {}
    for f in files:
        try:
            if f.stem in written:
                raise ImageError(f.name, f"same output name {f.stem}.png as {written[f.stem]}; skipped")
            image = load_image(f)
            labels = predictor.predict(image)
            write_outputs(out, f.stem, to_label_png(labels, predictor.classes),
                          overlay_image(image, labels, predictor.classes) if overlay else None)
            written[f.stem] = str(f)
            print(out / f"{f.stem}.png")
        except ImageError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:  # writing the outputs
            failed += 1
            print(f"error: {f.name}: cannot write output ({e.strerror or e})", file=sys.stderr)
        except (RuntimeError, ValueError) as e:  # e.g. out of memory on a huge frame: report, go on
            failed += 1
            print(f"error: {f.name}: {one_line(e, kind=True)}", file=sys.stderr)
    return failed


def write_outputs(out: Path, stem: str, label_png: Image.Image, overlay: Image.Image | None) -> None:
    """Write OUT/<stem>.png and, unless None, OUT/<stem>_overlay.jpg: both under hidden temporary names
    first, renamed only once both are written, so a failed one (JPEG stops at 65500 px a side) leaves
    neither, and older outputs as they were. Raises OSError or ValueError from the encoders."""
    outputs = [(label_png, out / f"{stem}.png", {"format": "PNG"})]
    if overlay is not None:
        outputs.append((overlay, out / f"{stem}_overlay.jpg", {"format": "JPEG", "quality": 90}))
    temps = []
    try:
        for image, path, options in outputs:
            temps.append(path.with_name(f".{path.name}.part"))
            image.save(temps[-1], **options)
        for tmp, (_, path, _) in zip(temps, outputs):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
