"""Model registry: `create_model(name, num_classes)` over torchvision's segmentation builders.

Every builder is called with `weights=None, weights_backbone=None`, so nothing is ever downloaded.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torchvision.models import segmentation as tvseg

MODELS: dict[str, Callable[..., nn.Module]] = {
    "deeplabv3_mobilenet_v3_large": tvseg.deeplabv3_mobilenet_v3_large,
    "lraspp_mobilenet_v3_large": tvseg.lraspp_mobilenet_v3_large,
    "deeplabv3_resnet50": tvseg.deeplabv3_resnet50,
    "deeplabv3_resnet101": tvseg.deeplabv3_resnet101,
}
DEFAULT_ARCH = "deeplabv3_mobilenet_v3_large"


class SegModel(nn.Module):
    """Wraps a torchvision segmentation model so `forward` returns the logits tensor, not a dict.

    forward: (B, 3, H, W) float -> (B, num_classes, H, W) logits.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


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
