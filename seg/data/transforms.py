"""The torchvision v2 pipelines: training augmentation and evaluation resize, then normalisation."""
from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from seg.classes import IGNORE_INDEX
from seg.model import MEAN as IMAGENET_MEAN, STD as IMAGENET_STD


def get_transform(
    train: bool,
    crop_size: tuple[int, int] | None = None,
    base_size: int | None = None,
    scale_range: tuple[float, float] = (0.5, 2.0),
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
    ignore_index: int = IGNORE_INDEX,
) -> v2.Compose:
    """The v2 pipeline: `(Image uint8 (3, H, W), Mask (H, W)) -> (float32 (3, h, w) normalized, int64 (h, w))`.

    Train: resize the short side to a random `base_size * s`, s in `scale_range` (`base_size` defaults to
    the short side of `crop_size`), pad to at least `crop_size` (mask padded with `ignore_index`), random
    crop to `crop_size` (H, W), horizontal flip, sometimes a small roll, blur or JPEG round trip,
    brightness/contrast/saturation jitter. Eval: resize
    to `crop_size` (H, W) when given, else keep the size. Images resize bilinear + antialias; masks always
    nearest (v2 dispatches tv_tensors.Mask to nearest), so no interpolated ids appear.
    """
    if train:
        if crop_size is None:
            raise ValueError("get_transform(train=True) needs crop_size=(H, W)")
        base = base_size if base_size is not None else min(crop_size)
        lo, hi = int(base * scale_range[0]), int(base * scale_range[1])
        steps = [
            v2.RandomResize(lo, max(hi, lo + 1), interpolation=v2.InterpolationMode.BILINEAR, antialias=True),
            v2.RandomCrop(crop_size, pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}),
            v2.RandomHorizontalFlip(0.5),
            # What a real camera does that a rendered frame may not: a little roll (corners become
            # ignore), defocus, JPEG blocking. No hue jitter: at +-0.02 it barely moved colours yet was 2/3
            # of the pipeline's time (3.2 of 4.8 ms a 256x256 crop, one thread) on a 2-core CPU.
            v2.RandomApply([v2.RandomRotation(4.0, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index})],
                           p=0.2),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.4))], p=0.15),
            v2.RandomApply([v2.JPEG((35, 95))], p=0.2),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),
        ]
    else:
        steps = [] if crop_size is None else [
            v2.Resize(crop_size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
        ]
    steps += [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.int64, "others": None}, scale=True),
        v2.Normalize(mean=mean, std=std),
        v2.ToPureTensor(),
    ]
    return v2.Compose(steps)
