"""Sample frames for checks and measurements: a folder's images at a fixed size, topped up with renders."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from seg.imageio import image_files, load_image
from seg.synth import render

KITTI_SIZE = (1242, 375)  # (W, H) of a KITTI dashcam frame


def sample_frames(folder: Path, size: tuple[int, int], n: int, seed0: int) -> list[Image.Image]:
    """Up to n RGB frames of `size` (W, H) from `folder`, topped up with synthetic renders."""
    out = []
    if folder.is_dir():
        for p in image_files(folder)[:n]:
            im = load_image(p)
            out.append(im if im.size == size else im.resize(size, Image.BILINEAR))
    if len(out) < n:
        out += [render(seed0 + i, size)[0] for i in range(n - len(out))]
    return out
