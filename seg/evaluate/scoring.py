"""Scoring one frame and a set of frames: the one core behind `seg.evaluate` and the app's validation store.

A `Scorer` folds the ground truth (and, for a model of the dataset's own classes scored in a mapping, the
prediction) through a class map, keeps each frame's (C, C) confusion matrix, and builds the result dict
(miou, pixel_acc, per_class_iou, confusion, frames, num_frames) from any sum of those matrices. Every
figure comes from the one ConfusionMatrix that training uses; the ignore index is excluded from all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from seg.classes import ClassTable
from seg.classmap import ClassMap
from seg.evaluate.metrics import ConfusionMatrix


def json_number(x: float | None) -> float | None:
    """A metric as JSON wants it: None for a missing or NaN value (a class absent everywhere), else a float."""
    return None if x is None or math.isnan(x) else float(x)


def image_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) uint8 tensor, as a dataset yields it -> (H, W, 3) uint8 array, as a predictor takes it."""
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy())


@dataclass(frozen=True)
class ScoredFrame:
    """One frame's score in the Scorer's table.

    confusion: (C, C) int64 (rows = truth); labels: (H, W) uint8 prediction in the scored table; present:
    class ids in the (mapped) truth, ignore index left out; pixel_acc, miou: None when undefined.
    """

    confusion: np.ndarray
    labels: np.ndarray
    present: tuple[int, ...]
    pixel_acc: float | None
    miou: float | None


class Scorer:
    """Scores predictions against ground truth in one class table.

    Args:
        classes: the table scored in (its readable names label the results): the model's own, or a mapping's.
        dataset_classes: the dataset's own table (its labels' ids).
        truth_map: folds the dataset's labels into `classes` (None: already in them).
        pred_map: folds the model's predictions into `classes` (None: already in them).
        where: what error messages name (the dataset folder).
    Raises ValueError when the (mapped) truth table and `classes` differ in size.
    """

    def __init__(self, classes: ClassTable, dataset_classes: ClassTable, truth_map: ClassMap | None = None,
                 pred_map: ClassMap | None = None, where: object = "dataset"):
        truth = truth_map.table if truth_map is not None else dataset_classes
        if len(truth) != len(classes):
            raise ValueError(f"{where}: dataset has {len(truth)} classes but the checkpoint predicts {len(classes)}")
        self.classes, self.truth_map, self.pred_map = classes, truth_map, pred_map
        self.num_classes = len(classes)
        self.ignore = truth.ignore_index

    def score(self, target, pred) -> ScoredFrame:
        """Score one frame. target: (H, W) ids of the dataset's table (tensor or array); pred: (H, W) ids
        the model predicted."""
        target = np.asarray(target)
        if self.truth_map is not None:
            target = self.truth_map(target)
        if self.pred_map is not None:
            pred = self.pred_map(pred)
        cm = ConfusionMatrix(self.num_classes, self.ignore)
        cm.update(target, pred)
        r = cm.compute()
        present = tuple(int(c) for c in np.unique(target) if c != self.ignore and c < self.num_classes)
        return ScoredFrame(cm.mat.numpy(), np.asarray(pred, dtype=np.uint8), present, json_number(r["pixel_acc"]),
                           json_number(r["miou"]))

    def frame_row(self, stem: str, frame) -> dict:
        """The result's row of one frame: {stem, pixel_acc, miou, classes: readable names in its truth}.
        `frame`: a ScoredFrame, or anything with its `present`, `pixel_acc` and `miou`."""
        return {"stem": stem, "pixel_acc": frame.pixel_acc, "miou": frame.miou,
                "classes": [self.classes.readable[c] for c in frame.present]}

    def compute(self, confusion: np.ndarray) -> dict:
        """ConfusionMatrix.compute of a (C, C) int64 matrix: {pixel_acc, iou (C,), miou, present (C,)}."""
        cm = ConfusionMatrix(self.num_classes, self.ignore)
        cm.mat = torch.as_tensor(np.asarray(confusion, dtype=np.int64))
        return cm.compute()

    def result(self, confusion: np.ndarray, frames: list[dict]) -> dict:
        """The result over the frames whose matrices sum to `confusion` ((C, C) int64) and whose rows are
        `frames`: {miou, pixel_acc, per_class_iou {readable name: IoU, or None when the class is absent from
        truth and prediction; the ignore class left out}, confusion (C, C) nested list, frames, num_frames}."""
        r = self.compute(confusion)
        return {
            "miou": json_number(r["miou"]),
            "pixel_acc": json_number(r["pixel_acc"]),
            "per_class_iou": {self.classes.readable[c]: json_number(r["iou"][c])
                              for c in range(self.num_classes) if c != self.ignore},
            "confusion": np.asarray(confusion, dtype=np.int64).tolist(),
            "frames": frames,
            "num_frames": len(frames),
        }
