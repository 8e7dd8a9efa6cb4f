"""Class balance and post-training calibration: loss weights for rare classes, the logit offset that
undoes their bias at the end, batch-norm statistics re-estimated for the final weights, and per-class
logit offsets fitted to held-out frames."""
from __future__ import annotations

import torch
from torch import nn

from seg.train import distributed as D
from seg.evaluate.metrics import class_iou


def class_weights(dataset, num_classes: int, ignore_index: int | None, samples: int, device) -> torch.Tensor:
    """Per-class loss weights 1/sqrt(pixel frequency) over `samples` training items, summed over ranks.

    mIoU averages classes, not pixels: without weights, thin rare classes (poles, lights, markings) barely
    move the loss. Scaled so the pixel-weighted mean weight is 1 and capped at 10x; classes not seen in the
    sample get the largest weight. Returns (C,) float32 on `device`.
    """
    counts = torch.zeros(num_classes, dtype=torch.float64)
    items = iter(dataset) if not hasattr(dataset, "__len__") else (
        dataset[i] for i in torch.linspace(0, len(dataset) - 1, min(samples, len(dataset))).long().tolist())
    for _, (_, target) in zip(range(samples), items):
        t = target.reshape(-1)
        t = t[(t >= 0) & (t < num_classes)]
        counts += torch.bincount(t, minlength=num_classes).double()
    counts = D.all_reduce_sum(counts.to(device)).cpu()
    if ignore_index is not None and 0 <= ignore_index < num_classes:  # else already out of range above
        counts[ignore_index] = 0
    freq = counts / counts.sum().clamp(min=1)
    w = torch.where(freq > 0, freq.clamp(min=1e-12).rsqrt(), torch.zeros_like(freq))
    w = w / (w * freq).sum().clamp(min=1e-12)
    w = w.clamp(max=10.0)
    w[freq == 0] = w.max()
    return w.float().to(device)


def logit_adjustment(weight: torch.Tensor, alpha: float) -> torch.Tensor:
    """Per-class logit offset -alpha * log(w) that undoes (alpha=1) or tempers a class-weighted loss.

    A loss weighted by w_c trains scores whose softmax leans toward p(c) * w_c, so rare classes are
    over-predicted (an earlier bundled LR-ASPP painted 2.5x the true street-light area). Subtracting log(w_c)
    restores the unweighted posterior; mIoU, which punishes false positives and misses alike, is best a
    little short of that (best alpha on 48 held-out synthetic frames: 0.5 for LR-ASPP+, 0.75 for LR-ASPP).
    Classes with weight 0 get 0.
    """
    w = weight.detach().float().cpu()
    return torch.where(w > 0, -alpha * torch.log(w.clamp(min=1e-12)), torch.zeros_like(w))


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches, device, channels_last: bool = False) -> int:
    """Re-estimate batch-norm running statistics for the final weights (cumulative average over `batches`).

    During training the running statistics trail weights that keep moving, so eval mode sees stale
    statistics; a pass over fresh training batches with the weights frozen fixes that. Under DDP the
    estimates are averaged over ranks. Returns the number of batches used.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    n = 0
    for image, _ in batches:
        image = image.to(device)
        model(image.contiguous(memory_format=torch.channels_last) if channels_last else image)
        n += 1
    for m, mom in zip(bns, momenta):
        m.momentum = mom
        if D.world_size() > 1:
            for buf in (m.running_mean, m.running_var):
                buf.copy_(D.all_reduce_sum(buf.clone()) / D.world_size())
    return n


@torch.inference_mode()
def heldout_scores(model: nn.Module, frames, device, every: int = 16,
                   seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-size logits of held-out frames at a random 1/`every` of their pixels, and the labels there.

    `frames` yields (normalized (3, H, W) image, (H, W) int64 label) pairs. The logits are the model's own
    (bilinear upsample to the frame, as evaluation scores them), so a fit on them sees the boundaries and
    thin structures that evaluation counts; a fit on the head's low-resolution grid did not carry over to
    full-size mIoU (bundled model: +0.7 points there, +0.04 at full size). Returns ((N, C) float32, (N,) int64).
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    scores, labels = [], []
    for image, target in frames:
        logits = model(image.unsqueeze(0).to(device))[0].float().cpu()  # (C, H, W)
        n = target.numel()
        idx = torch.randperm(n, generator=g)[: max(1, n // every)]
        scores.append(logits.flatten(1)[:, idx].T.contiguous())
        labels.append(target.reshape(-1)[idx])
    return torch.cat(scores), torch.cat(labels)


def _miou(labels: torch.Tensor, pred: torch.Tensor, c: int, ignore_index: int | None) -> float:
    """mIoU by evaluation's rule (`seg.metrics.class_iou`) of labels already free of the ignore index.

    The fit calls this hundreds of times, so it bins directly instead of going through
    ConfusionMatrix.update's per-call range checks.
    """
    iou, present = class_iou(torch.bincount(labels * c + pred, minlength=c * c).reshape(c, c), ignore_index)
    return float(iou[present].mean()) if present.any() else float("nan")


def miou_with_bias(scores: torch.Tensor, labels: torch.Tensor, bias: torch.Tensor, ignore_index: int | None) -> float:
    """mIoU of argmax(scores + bias) over (N, C) scores, classes present in truth or prediction."""
    c = scores.shape[1]
    keep = labels != ignore_index if ignore_index is not None else torch.ones_like(labels, dtype=torch.bool)
    return _miou(labels[keep], (scores[keep] + bias).argmax(1), c, ignore_index)


def fit_logit_bias(scores: torch.Tensor, labels: torch.Tensor, ignore_index: int | None,
                   steps: tuple[float, ...] = (1.0, 0.5, 0.25), rounds: int = 2) -> tuple[torch.Tensor, float, float]:
    """Per-class logit offsets that maximise mIoU on held-out pixels, by coordinate ascent.

    mIoU weighs a class's false positives against its misses in a way no single temperature or prior
    correction matches class by class. Each round tries every class (present in truth or prediction) at
    offsets +-steps (halved each round) and keeps the best gain. Held-out frames only: fitting on the
    validation set would make its score a training score. Returns ((C,) offsets, mIoU before, mIoU after).
    """
    c = scores.shape[1]
    if ignore_index is not None:
        keep = labels != ignore_index  # ignored pixels count for no class, whatever is predicted there
        scores, labels = scores[keep], labels[keep]
    bias = torch.zeros(c)
    before = best = miou_with_bias(scores, labels, bias, ignore_index)
    classes = sorted((set(labels.unique().tolist()) | set(scores.argmax(1).unique().tolist())) - {ignore_index})
    for r in range(rounds):
        for k in classes:
            # Moving class k's offset only decides between k and the best other class, so one pass for
            # that runner-up makes each trial offset a cheap comparison instead of a full argmax.
            shifted = scores + bias
            own = shifted[:, k].clone()
            shifted[:, k] = float("-inf")
            runner, runner_id = shifted.max(1)
            del shifted
            choice = 0.0
            for d in (s * 0.5 ** r * sign for s in steps for sign in (1, -1)):
                pred = torch.where(own + d > runner, k, runner_id)
                m = _miou(labels, pred, c, ignore_index)
                if m > best + 1e-6:
                    best, choice = m, d
            bias[k] += choice
    return bias, before, miou_with_bias(scores, labels, bias, ignore_index)
