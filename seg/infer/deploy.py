"""Deployment geometry and graph folding: the size a frame runs at, and BatchNorm folded into convs.

Geometry: the model sees the frame at its trained scale. The height is matched to the checkpoint's input
height and the width follows the frame's own aspect ratio, truncated as torchvision's `Resize` does, so a
1242x375 KITTI frame runs at 1271x384 (as the plain torchvision pipeline runs it) instead of being squashed to
512x384 (objects would be 2.4x thinner than in training). Frames larger than 4x the trained pixel count are
scaled down to that budget (and to multiples of 16, the output stride).
"""
from __future__ import annotations

import math

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

SIZE_MULTIPLE = 16  # output stride of the MobileNet models (ResNet's 8 divides it): the smallest side
MAX_AREA_FACTOR = 4  # model-input pixel budget, in units of the trained input area


def fold_conv_bn(model: nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into the conv (in place).

    This covers torchvision's Conv2dNormActivation blocks (MobileNet, ASPP, LR-ASPP heads). Eval mode only:
    uses the running statistics. Returns the number of pairs folded.
    """
    if model.training:
        raise ValueError("fold_conv_bn needs a model in eval mode")
    folded = 0
    for seq in list(model.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        layers = list(seq)
        for i, (conv, bn) in enumerate(zip(layers, layers[1:])):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i], seq[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
                folded += 1
    return folded


def model_size(h: int, w: int, input_size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) the model runs at for an h x w frame: trained height, aspect-kept width (see module doc)."""
    th, tw = input_size
    if abs(w / h - tw / th) < 0.01:
        return th, tw
    mh, mw = float(th), w * th / h
    budget = MAX_AREA_FACTOR * th * tw
    if mh * mw > budget:  # scaled down to the budget, rounded down to the output stride
        f = math.sqrt(budget / (mh * mw))
        snap = lambda v: max(SIZE_MULTIPLE, int(math.floor(v * f / SIZE_MULTIPLE)) * SIZE_MULTIPLE)  # noqa: E731
        return snap(mh), snap(mw)
    # The width as torchvision's Resize(th) computes it (truncated), so the frame is sampled exactly as the
    # plain pipeline samples it; the networks take any width (their head resizes to the input).
    return th, max(SIZE_MULTIPLE, int(mw))
