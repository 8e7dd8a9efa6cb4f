"""Model registry: `create_model(name, num_classes)` over torchvision's segmentation builders.

Every builder is called with `weights=None, weights_backbone=None`, so nothing is ever downloaded.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torchvision.models import mobilenet_v3_large
from torchvision.models import segmentation as tvseg
from torchvision.models._utils import IntermediateLayerGetter

# ImageNet statistics: the input normalisation every model here is trained with (stored in each checkpoint).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class LRASPPPlusHead(nn.Module):
    """LR-ASPP's head plus one DeepLabV3+-style decoder stage on 1/4-resolution features.

    LR-ASPP classifies at 1/8 of the input, where a pole or a traffic-light housing a few pixels wide is
    less than one cell. Here the gated 1/16 features (LR-ASPP's `cbr * scale`) are upsampled, fused with the
    1/8 features, upsampled again and concatenated with projected 1/4 features, then a depthwise-separable
    3x3 conv and a 1x1 classifier give logits at 1/4 of the input.

    forward: {"quarter": (B, q, H/4, W/4), "low": (B, l, H/8, W/8), "high": (B, h, H/16, W/16)}
        -> (B, num_classes, H/4, W/4) logits.
    """

    def __init__(self, quarter_channels: int, low_channels: int, high_channels: int, num_classes: int,
                 inter_channels: int = 128, quarter_proj: int = 32, mid_channels: int = 96):
        super().__init__()
        self.cbr = nn.Sequential(
            nn.Conv2d(high_channels, inter_channels, 1, bias=False), nn.BatchNorm2d(inter_channels), nn.ReLU(True))
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(high_channels, inter_channels, 1, bias=False), nn.Sigmoid())
        self.low_proj = nn.Sequential(
            nn.Conv2d(low_channels, inter_channels, 1, bias=False), nn.BatchNorm2d(inter_channels), nn.ReLU(True))
        self.quarter_proj = nn.Sequential(
            nn.Conv2d(quarter_channels, quarter_proj, 1, bias=False), nn.BatchNorm2d(quarter_proj), nn.ReLU(True))
        fused = inter_channels + quarter_proj
        self.refine = nn.Sequential(
            nn.Conv2d(fused, fused, 3, padding=1, groups=fused, bias=False), nn.BatchNorm2d(fused), nn.ReLU(True),
            nn.Conv2d(fused, mid_channels, 1, bias=False), nn.BatchNorm2d(mid_channels), nn.ReLU(True))
        self.classifier = nn.Conv2d(mid_channels, num_classes, 1)

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        quarter, low, high = features["quarter"], features["low"], features["high"]
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False) + self.low_proj(low)
        x = F.interpolate(x, size=quarter.shape[-2:], mode="bilinear", align_corners=False)
        x = self.refine(torch.cat([x, self.quarter_proj(quarter)], 1))
        return self.classifier(x)


class LRASPPPlus(nn.Module):
    """MobileNetV3-Large (dilated, output stride 16) with `LRASPPPlusHead`; torchvision's dict-output API."""

    def __init__(self, num_classes: int):
        super().__init__()
        features = mobilenet_v3_large(weights=None, dilated=True).features
        # Strided blocks start each stage: features[3] ends the 1/4 stage, features[4] is LR-ASPP's 1/8 "low".
        stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [len(features) - 1]
        quarter, low, high = stages[-4] - 1, stages[-4], stages[-1]
        self.backbone = IntermediateLayerGetter(
            features, return_layers={str(quarter): "quarter", str(low): "low", str(high): "high"})
        self.classifier = LRASPPPlusHead(
            features[quarter].out_channels, features[low].out_channels, features[high].out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.classifier(self.backbone(x))
        return {"out": F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)}


def lraspp_plus_mobilenet_v3_large(*, weights=None, weights_backbone=None, num_classes: int = 21) -> LRASPPPlus:
    if weights is not None or weights_backbone is not None:
        raise ValueError("lraspp_plus_mobilenet_v3_large has no downloadable weights; use --backbone-weights")
    return LRASPPPlus(num_classes)

MODELS: dict[str, Callable[..., nn.Module]] = {
    "deeplabv3_mobilenet_v3_large": tvseg.deeplabv3_mobilenet_v3_large,
    "lraspp_mobilenet_v3_large": tvseg.lraspp_mobilenet_v3_large,
    "lraspp_plus_mobilenet_v3_large": lraspp_plus_mobilenet_v3_large,
    "deeplabv3_resnet50": tvseg.deeplabv3_resnet50,
    "deeplabv3_resnet101": tvseg.deeplabv3_resnet101,
}
DEFAULT_ARCH = "deeplabv3_mobilenet_v3_large"


class SegModel(nn.Module):
    """Wraps a torchvision segmentation model so `forward` returns the logits tensor, not a dict.

    forward: (B, 3, H, W) float -> (B, num_classes, H, W) logits; with `full_size=False`, the head's own
    low-resolution logits (B, num_classes, H/s, W/s), s = 4, 8 or 16 by architecture, skipping the final
    bilinear upsample of every class channel (which, at training crops, costs as much as the backbone).
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, full_size: bool = True) -> torch.Tensor:
        if full_size:
            return self.net(x)["out"]
        features = self.net.backbone(x)
        # DeepLabV3's head reads the last feature level ("out"); LR-ASPP's heads read several.
        return self.net.classifier(features["out"] if "out" in features else features)


def list_models() -> list[str]:
    return sorted(MODELS)


def create_model(name: str, num_classes: int, backbone_weights: str | Path | None = None) -> SegModel:
    """Build an untrained model by registry name.

    Args:
        name: one of `list_models()`; anything else raises ValueError listing the valid names.
        num_classes: output channels of the classifier.
        backbone_weights: optional local file of ImageNet weights for the backbone (a torchvision
            classification state_dict, loaded with weights_only=True); keys that do not belong to the
            backbone are ignored, and a file that matches no backbone key is an error.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(list_models())}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    kwargs = {"weights": None, "weights_backbone": None, "num_classes": num_classes}
    if "resnet" in name:
        kwargs["aux_loss"] = False
    model = SegModel(MODELS[name](**kwargs))
    if backbone_weights is not None:
        load_backbone_weights(model, backbone_weights)
    return model


def output_conv(model: SegModel) -> nn.Conv2d:
    """The last conv of the head that emits class logits (for LR-ASPP, one of its two summed classifiers)."""
    n = None
    for m in model.net.classifier.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            n = m
    if n is None:
        raise ValueError(f"{type(model.net).__name__}: no logit conv with a bias in its head")
    return n


@torch.no_grad()
def add_logit_bias(model: SegModel, bias: torch.Tensor) -> None:
    """Add a per-class constant (C,) to the model's logits by folding it into the output conv's bias."""
    conv = output_conv(model)
    if bias.shape != conv.bias.shape:
        raise ValueError(f"logit bias has shape {tuple(bias.shape)}, the model's logits {tuple(conv.bias.shape)}")
    conv.bias += bias.to(conv.bias)


def load_backbone_weights(model: SegModel, path: str | Path) -> int:
    """Copy matching tensors of an ImageNet classification checkpoint into the backbone.

    torchvision's segmentation backbones keep the classifier's module names (`features.*` for MobileNet,
    `layer1.*` ... for ResNet), so keys match directly. Returns the number of tensors loaded.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable or unsafe file: one clear line
        raise ValueError(f"{path}: cannot read backbone weights ({e.__class__.__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    backbone = model.net.backbone.state_dict()
    matched = {}
    for key, tensor in state.items():
        # MobileNet backbones are IntermediateLayerGetter over `features`, so "features.3.x" -> "3.x".
        k = key[len("features."):] if key.startswith("features.") and key[len("features."):] in backbone else key
        if k in backbone and backbone[k].shape == tensor.shape:
            matched[k] = tensor
    if not matched:
        raise ValueError(f"{path}: no tensor matches the {type(model.net.backbone).__name__} backbone")
    model.net.backbone.load_state_dict(matched, strict=False)
    return len(matched)
