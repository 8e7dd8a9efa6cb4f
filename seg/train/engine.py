"""The pieces of a training step and its validation: the loss, the evaluation over tensors, training mode,
the learning-rate schedule and the endless batch stream."""
from __future__ import annotations

import torch
from torch import nn

from seg.evaluate.metrics import ConfusionMatrix
from seg.train import distributed as D

POLY_POWER = 0.9


def criterion(logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross-entropy; logits (B, C, h, w), target (B, H, W) int64, weight (C,) or None.

    Logits smaller than the target (`--loss-at head`) are scored against the target sampled at each logit
    cell's centre (nearest-exact), the pixel the bilinear upsample would place that logit on.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        target = nn.functional.interpolate(target[:, None].float(), size=logits.shape[-2:],
                                           mode="nearest-exact")[:, 0].long()
    return nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)


@torch.inference_mode()
def evaluate(model, dataset, device, num_classes: int, ignore_index: int, limit: int | None = None) -> dict:
    """Confusion matrix over the validation set, sharded across ranks without padding and summed.

    `dataset[i]` is (image (3, H, W) float, target (H, W) int64). Returns ConfusionMatrix.compute()'s dict
    (miou, pixel_acc, ...). Leaves the model in eval mode; the caller restores training mode.
    """
    model.eval()
    cm = ConfusionMatrix(num_classes, ignore_index)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    for i in range(D.rank(), n, D.world_size()):
        image, target = dataset[i]
        logits = model(image.unsqueeze(0).to(device))
        cm.update(target, logits.argmax(1).cpu())
    cm.reduce_from_all_processes()
    return cm.compute()


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """Training mode; with `freeze_bn`, batch-norm layers keep using (and stop updating) running stats.

    Frozen BN makes every sample's gradient independent of the batch it sits in, which is what small
    per-GPU batches want when fine-tuning, and what makes K processes x B equal 1 process x K*B exactly.
    """
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def poly_decay(progress: float, power: float = POLY_POWER) -> float:
    """The poly schedule's factor on the peak learning rate at `progress` (0 = start, 1 = end): 1 -> 0."""
    return max(0.0, 1 - progress) ** power


def poly_lambda(total_steps: int, warmup: int = 0, power: float = POLY_POWER):
    """LambdaLR factor by step: linear warm-up over `warmup` steps, then `poly_decay` to zero at `total_steps`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return poly_decay(step / max(1, total_steps), power)
    return f


def infinite(loader, sampler):
    """Endless batches; reshuffles a finite dataset each pass (DistributedSampler.set_epoch)."""
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1
