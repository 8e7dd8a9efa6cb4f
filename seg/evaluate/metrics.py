"""Segmentation metrics from one confusion matrix (rows = ground truth, columns = prediction)."""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist


def class_iou(mat: torch.Tensor, ignore_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class IoU of a (C, C) confusion matrix and the classes that count toward the mean.

    A class absent from both truth and prediction (union 0) has IoU NaN and does not count, nor does the
    ignore index. Returns ((C,) float64 IoU, (C,) bool present).
    """
    h = mat.double()
    tp = torch.diag(h)
    union = h.sum(0) + h.sum(1) - tp
    present = union > 0
    if ignore_index is not None and 0 <= ignore_index < len(present):  # a mapped table's 255 lies outside
        present[ignore_index] = False
    return torch.where(present, tp / union.clamp(min=1), torch.full_like(tp, float("nan"))), present


class ConfusionMatrix:
    """Accumulates a (C, C) int64 confusion matrix; pixels whose target is the ignore index are skipped.

    Args:
        num_classes: C.
        ignore_index: target id excluded from every metric (Vistas: 65, Unlabeled); None for none.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.mat = torch.zeros((num_classes, num_classes), dtype=torch.int64)

    def update(self, target: torch.Tensor | np.ndarray, pred: torch.Tensor | np.ndarray) -> None:
        """Add a batch. target, pred: integer arrays of the same shape (any, e.g. (B, H, W))."""
        t = torch.as_tensor(target).reshape(-1).to("cpu", torch.int64)
        p = torch.as_tensor(pred).reshape(-1).to("cpu", torch.int64)
        if t.shape != p.shape:
            raise ValueError(f"target and prediction sizes differ: {tuple(t.shape)} vs {tuple(p.shape)}")
        n = self.num_classes
        keep = (t >= 0) & (t < n) & (p >= 0) & (p < n)
        if self.ignore_index is not None:
            keep &= t != self.ignore_index
        idx = t[keep] * n + p[keep]
        self.mat += torch.bincount(idx, minlength=n * n).reshape(n, n)

    def compute(self) -> dict:
        """Returns {"pixel_acc": float, "iou": (C,) float array, "miou": float, "present": (C,) bool}.

        A class absent from both truth and prediction has IoU NaN and is left out of the mean, as is the
        ignore index; the mean over no class at all is NaN.
        """
        h = self.mat.double()
        iou, present = class_iou(h, self.ignore_index)
        total = h.sum()
        pixel_acc = float(torch.diag(h).sum() / total) if total > 0 else float("nan")
        miou = float(iou[present].mean()) if present.any() else float("nan")
        return {"pixel_acc": pixel_acc, "iou": iou.numpy(), "miou": miou, "present": present.numpy()}

    def reduce_from_all_processes(self) -> None:
        """Sum the matrices of all ranks (no-op outside torch.distributed)."""
        if not (dist.is_available() and dist.is_initialized()):
            return
        backend = dist.get_backend()
        mat = self.mat.cuda() if backend == "nccl" else self.mat.clone()
        dist.all_reduce(mat)
        self.mat = mat.cpu()
