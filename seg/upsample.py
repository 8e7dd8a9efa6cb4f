"""Label and confidence maps from low-resolution logits, in torch ops (so they run where the logits are).

`upsample_argmax_t` is `seg.predict.upsample_argmax` on a torch device: the same exact labels (argmax of the
bilinear upsample of every logit channel) without materialising the (C, H, W) upsampled logits. On CUDA
this keeps the label map on the GPU; only the uint8 labels cross to the host. On the CPU the numpy version
stays faster (small-table fancy indexing is cheaper in numpy).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=64)
def _source_index_t(n_in: int, n_out: int, device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """F.interpolate's bilinear (align_corners=False) sampling along one axis on `device`: (i0, i1, w1), (n_out,)."""
    from .predict import _source_index

    i0, i1, w = _source_index(n_in, n_out)
    return (torch.from_numpy(i0).to(device), torch.from_numpy(i1).to(device), torch.from_numpy(w).to(device))


def upsample_argmax_t(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """argmax over classes of the bilinear upsample of low (1, C, h, w) to size (H, W) -> (H, W) uint8 on low's device.

    Where the 4 low-res neighbours of a pixel share their argmax, that is the pixel's class (a convex
    combination keeps the winner); only the boundary pixels are interpolated, exactly as F.interpolate does.
    """
    dev = str(low.device)
    y0, y1, wy = _source_index_t(low.shape[-2], int(size[0]), dev)
    x0, x1, wx = _source_index_t(low.shape[-1], int(size[1]), dev)
    hwc = low[0].float().permute(1, 2, 0)  # (h, w, C)
    lab = hwc.argmax(2)  # (h, w) int64
    r0, r1 = lab.index_select(0, y0), lab.index_select(0, y1)  # (H, w)
    l00, l01 = r0.index_select(1, x0), r0.index_select(1, x1)  # (H, W)
    l10, l11 = r1.index_select(1, x0), r1.index_select(1, x1)
    ys, xs = ((l00 != l01) | (l00 != l10) | (l00 != l11)).nonzero(as_tuple=True)
    if ys.numel():
        a, b = wy[ys, None], wx[xs, None]
        ya, yb, xa, xb = y0[ys], y1[ys], x0[xs], x1[xs]
        top = (1 - b) * hwc[ya, xa] + b * hwc[ya, xb]  # (N, C)
        bottom = (1 - b) * hwc[yb, xa] + b * hwc[yb, xb]
        l00[ys, xs] = ((1 - a) * top + a * bottom).argmax(1)
    return l00.to(torch.uint8)


def upsample_confidence(low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Max softmax probability of low (N, C, h, w) logits, bilinearly upsampled to size -> (N, H, W) float32.

    Computed at the logits' resolution (1 channel instead of C to upsample), the way the labels are: the
    confidence of a pixel is interpolated between its 4 low-res neighbours' confidences.
    """
    low = low.float()
    top = low.amax(1, keepdim=True)
    conf = torch.exp(low - top).sum(1, keepdim=True).reciprocal_()  # (N, 1, h, w): 1 / sum exp(l - max)
    if tuple(conf.shape[-2:]) != (int(size[0]), int(size[1])):
        conf = F.interpolate(conf, size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False)
    return conf[:, 0]
