"""Procedural street world: perspective street scenes with exact Vistas v1.2 labels.

This module draws one frame (`render`), writes datasets, image folders and preview grids of frames, and is the
CLI. `render(seed, size, style)` samples the frame (`seg.synth.scene`) and draws it in three passes. The
ground (road, bike and parking lanes, markings, crossings, manholes, catch basins, kerbs and curb cuts,
sidewalk, terrain, water) and the sky are computed per pixel with numpy from the ground-plane depth of each
row (`seg.synth.ground`), so markings stay exact under perspective and curvature. Objects (buildings with
windows, balconies and shopfronts, trees, hedges, walls, fences, guard rails, poles, utility poles, street
lights, signs front and back, sign frames, billboards, traffic lights, street furniture, vehicles,
two-wheelers and their riders, people, hills) are then drawn far-to-near with PIL polygons; each polygon is
drawn with the same vertices into the image, the label map and a material map, so the label is always the
class of what was painted last (painter's order). Materials pick a detail texture (brick, foliage, planks...)
applied afterwards. Last, the camera (`seg.synth.camera`): the ego car's hood or dashboard, roll and lens
distortion (image and label resampled together), motion blur, sensor noise, vignette, tone curve, defocus and
JPEG. Appearance comes from a `seg.synth.style.Style`: "in" for training, "out" for a held-out look that
training never samples.
All randomness comes from one numpy Generator seeded by `seed`: the same seed gives the same frame.

CLI: python -m seg.synth --out DIR --train N --val M [--seed S] [--size WxH] [--workers K] [--style in|out]
     [--images-only [--prefix P]]; or --preview FILE --train 0 --val M to draw an image | label grid.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from seg.classes import VISTAS
from seg.cli import MAX_FRAME_SIDE, MIN_FRAME_SIDE, frame_size_arg, int_arg
from seg.synth import camera as cam_fx
from seg.synth import objects as obj
from seg.synth.ground import TEX, ground, sky, textures, wrap
from seg.synth.objects import C, M
from seg.synth.scene import sample_scene
from seg.synth.style import get_style
from seg.viz import colorize

SPLITS = ("training", "validation")
# Classes this world paints (tests check they all show up).
RENDERED_CLASSES = tuple(sorted(C.values()))


def frame_seed(split: str, seed: int, index: int) -> int:
    """Seed of frame `index` of `split` in the dataset built from `seed`.

    Training seeds are even and validation seeds odd, so the two splits never share a frame.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return ((seed * 1_000_003 + index) * 2 + SPLITS.index(split)) % 2**63


def render(seed: int, size: tuple[int, int] = (512, 384), style: str = "in") -> tuple[Image.Image, np.ndarray]:
    """Draw frame `seed` of the street world.

    Args: seed >= 0; size (W, H) in pixels, any size >= 1x1 (geometry scales with the frame); style "in"
    (the training appearance) or "out" (held-out appearance, `seg.synth.style`).
    Returns: (PIL RGB image (W, H), np.uint8 array (H, W) of Vistas class ids). Pure: same seed, size and
    style give the same label array byte for byte.
    """
    W, H = (int(v) for v in size)
    if W < 1 or H < 1:
        raise ValueError(f"size must be at least 1x1, got {W}x{H}")
    rng = np.random.default_rng(seed)
    tex = textures()
    sc = sample_scene(rng, W, H, get_style(style))
    r0 = min(H, max(0, int(math.floor(sc.cam.yh - 0.45)) + 1))  # first row whose centre is on the ground
    rgb = np.empty((H, W, 3), np.float32)
    lab = np.empty((H, W), np.uint8)
    lab[:r0] = C["sky"]
    if r0 > 0:
        rgb[:r0] = sky(sc, W, r0, tex)
    if r0 < H:
        rgb[r0:], lab[r0:] = ground(sc, W, r0, H, tex)
    img = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    lab_img = Image.fromarray(lab, "L")
    mat_img = Image.new("L", (W, H), M["flat"])
    canvas = obj.Canvas(img, lab_img, mat_img, sc)
    for _, draw in sorted(sc.items, key=lambda it: -it[0]):
        draw(canvas)
    out = np.asarray(img, np.float32)
    lab = np.array(lab_img)
    mats = np.asarray(mat_img)
    s = 384.0 / H
    ys = wrap(np.arange(H) * s + rng.integers(TEX))
    xs = wrap(np.arange(W) * s + rng.integers(TEX))
    out *= np.take(tex["materials"], (mats.astype(np.int32) * TEX + ys[:, None]) * TEX + xs[None, :])[..., None]
    if sc.ego is not None:
        cam_fx.ego_vehicle(out, lab, sc.ego)
    out, lab = cam_fx.warp(out, lab, sc.roll, sc.distort)
    out = cam_fx.motion_blur(out, round(sc.motion[0] * H / 384.0), sc.motion[1])
    sensor = np.take(tex["sensor"], wrap(np.arange(H) + rng.integers(TEX))[:, None] * TEX
                     + wrap(np.arange(W) + rng.integers(TEX))[None, :], axis=0)
    out += sensor * sc.noise
    out *= _vignette(W, H, round(sc.vignette, 2))
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB").point(sc.tone_lut)
    if sc.blur > 0.3:
        img = img.filter(ImageFilter.BoxBlur(sc.blur * H / 384.0))
    if sc.jpeg:
        img = cam_fx.jpeg(img, sc.jpeg)
    return img, lab


@functools.lru_cache(maxsize=8)
def _vignette(W: int, H: int, strength: float) -> np.ndarray:
    """(H, W, 1) float32 radial darkening; cached per size since frames of one run share it."""
    y = (np.arange(H, dtype=np.float32)[:, None] + 0.5) / H - 0.5
    x = (np.arange(W, dtype=np.float32)[None, :] + 0.5) / W - 0.5
    return (1.0 - strength * (x * x + y * y) * 2.0)[..., None]


def _label_png(lab: np.ndarray) -> Image.Image:
    png = Image.fromarray(lab, "P")
    png.putpalette(VISTAS.flat_palette())
    return png


def _write_frame(job: tuple) -> None:
    split_dir, stem, fseed, size, images_only, style = job
    img, lab = render(fseed, size, style)
    if images_only:
        img.save(split_dir / f"{stem}.png", optimize=True)
        return
    quality = int(np.random.default_rng(fseed).integers(72, 96))  # JPEG artefacts vary like phone uploads
    img.save(split_dir / "images" / f"{stem}.jpg", quality=quality)
    _label_png(lab).save(split_dir / "labels" / f"{stem}.png", optimize=True)


def write_dataset(out, n_train: int, n_val: int, seed: int = 0, size: tuple[int, int] = (512, 384),
                  workers: int = 1, style: str = "in") -> Path:
    """Write a Vistas-layout dataset: out/config.json, out/{training,validation}/{images/*.jpg,labels/*.png}.

    A split with zero frames gets no folder. Stems are zero-padded frame indices. style "out" renders the
    held-out appearance and writes validation frames only (training on it would defeat its purpose).
    Returns the out path.
    """
    out = Path(out)
    if n_train < 0 or n_val < 0 or workers < 1:
        raise ValueError("frame counts must be >= 0 and workers >= 1")
    get_style(style)
    if style != "in" and n_train:
        raise ValueError(f"style {style!r} is held out from training: write it with n_train=0")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(VISTAS.to_config(), indent=1))
    jobs = []
    for split, n in zip(SPLITS, (n_train, n_val)):
        if n == 0:
            continue
        for sub in ("images", "labels"):
            (out / split / sub).mkdir(parents=True, exist_ok=True)
        jobs += [(out / split, f"{i:06d}", frame_seed(split, seed, i), size, False, style) for i in range(n)]
    _run(jobs, workers)
    return out


def write_images(out, n: int, seed: int = 0, size: tuple[int, int] = (1242, 375), prefix: str = "frame_",
                 workers: int = 1) -> list[Path]:
    """Write `n` validation-seeded frames as PNG images only (no labels): out/{prefix}{i:03d}.png."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, f"{prefix}{i:03d}", frame_seed("validation", seed, i), size, True, "in") for i in range(n)]
    _run(jobs, workers)
    return [out / f"{j[1]}.png" for j in jobs]


def write_preview(path, n: int, seed: int = 0, size: tuple[int, int] = (512, 384), style: str = "in",
                  cols: int = 2) -> Path:
    """Write a JPEG grid of validation frames `0..n-1` of dataset `seed`, each as image | colour-coded label.

    Returns the path. The grid is (ceil(n / cols) rows) x (cols pairs) of frames at `size`.
    """
    path = Path(path)
    if n < 1:
        raise ValueError("a preview needs at least one frame")
    W, H = size
    rows = -(-n // cols)
    grid = Image.new("RGB", (2 * W * cols, H * rows), (255, 255, 255))
    for i in range(n):
        img, lab = render(frame_seed("validation", seed, i), size, style)
        x, y = (i % cols) * 2 * W, (i // cols) * H
        grid.paste(img, (x, y))
        grid.paste(Image.fromarray(colorize(lab, VISTAS)), (x + W, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, quality=85)
    return path


def _run(jobs: list, workers: int) -> None:
    if workers == 1 or len(jobs) < 2:
        for j in jobs:
            _write_frame(j)
        return
    with Pool(min(workers, len(jobs))) as pool:
        for _ in pool.imap_unordered(_write_frame, jobs, chunksize=4):
            pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage block: callers grep stderr
        self.exit(2, f"{self.prog}: error: {message}\n")


def get_args_parser() -> argparse.ArgumentParser:
    """The `python -m seg.synth` flags."""
    p = _Parser(prog="python -m seg.synth", description=__doc__.split("\n")[0])
    p.add_argument("--out", help="output folder (Vistas layout); required unless --preview")
    p.add_argument("--train", type=int_arg(0), required=True, help="number of training frames (0: no folder)")
    p.add_argument("--val", type=int_arg(0), required=True, help="number of validation frames")
    p.add_argument("--seed", type=int_arg(0), default=0, help="dataset seed (frame seeds derive from it)")
    p.add_argument("--size", type=frame_size_arg, default=(512, 384),
                   help=f"frame size WxH, {MIN_FRAME_SIDE} to {MAX_FRAME_SIDE} pixels a side (default 512x384)")
    p.add_argument("--workers", type=int_arg(1), default=1, help="worker processes (default 1)")
    p.add_argument("--images-only", action="store_true",
                   help="write the --val frames as OUT/PREFIXnnn.png images only, no labels (needs --train 0)")
    p.add_argument("--prefix", default="frame_", help="file name prefix for --images-only")
    p.add_argument("--preview", metavar="FILE",
                   help="write a JPEG grid of the --val frames (image | colour-coded label) to FILE instead of a "
                        "dataset; needs --train 0")
    p.add_argument("--style", choices=("in", "out"), default="in",
                   help="appearance: 'in' (what training sees, default) or 'out' (held-out palettes, textures and "
                        "colour casts for an out-of-style validation set; needs --train 0)")
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m seg.synth`: returns the exit code (1 when writing failed; 2 for bad flags)."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.preview is None:
        parser.error("the following arguments are required: --out")
    if args.preview and (args.train or args.images_only):
        parser.error("--preview draws validation frames only; use --train 0 and no --images-only")
    if args.images_only and args.train:
        parser.error("--images-only writes validation frames only; use --train 0")
    if args.style != "in" and args.train:
        parser.error(f"--style {args.style} is held out from training; use --train 0")
    if args.style != "in" and args.images_only:
        parser.error("--images-only writes the training style only; drop --style")
    try:
        if args.preview:
            write_preview(args.preview, args.val, args.seed, args.size, args.style)
        elif args.images_only:
            write_images(args.out, args.val, args.seed, args.size, args.prefix, args.workers)
        else:
            write_dataset(args.out, args.train, args.val, args.seed, args.size, args.workers, args.style)
    except OSError as e:
        print(f"seg.synth: error: {e}", file=sys.stderr)
        return 1
    return 0
