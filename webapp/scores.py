"""Per-frame validation scores, computed once per (checkpoint, dataset split) and kept.

A `ValScores` holds, for each frame scored so far, its confusion matrix (sparse) and its predicted label map
(a lossless PNG, ~10-30 kB at 512x384). Split-level figures for any first-N frames are sums of the stored
matrices, so changing N costs nothing once those frames are scored; the frames a page shows reuse the stored
labels instead of predicting again. Frames can be scored in any order (the page's first frames first), by
several app sessions at once. The figures equal `seg.evaluate.evaluate` on the same frames: same `predict`,
same ConfusionMatrix, same ignore index.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from seg.classmap import get_classmap
from seg.evaluate.metrics import ConfusionMatrix
from seg.paths import printable


@dataclass(frozen=True)
class FrameScore:
    """One scored frame. `cells`/`counts`: nonzero entries of its (C, C) confusion matrix (flat index = t*C+p)."""

    stem: str
    cells: np.ndarray  # (K,) int32
    counts: np.ndarray  # (K,) int64
    labels_png: bytes  # predicted (H, W) class ids, mode-L PNG
    present: tuple[int, ...]  # class ids in the ground truth (ignore index left out)
    pixel_acc: float | None
    miou: float | None


class ValScores:
    """Scores of one predictor on one split. `dataset` is a seg.data.VistasDataset (ds[i] -> (image, target)).

    `classmap`: the predictor's class mapping (`meta["classmap"]`, e.g. "lanes"): the dataset's labels are
    folded through it before scoring, as `evaluate` does. `fold` (a ClassMap) folds the predictions too: a
    66-class model scored as lanes beside the lanes model (seg.models.compare); `classes` is then the
    folded table. Raises ValueError when the (mapped) class tables differ in size, or the mapping does not fit
    the dataset's table.
    """

    def __init__(self, dataset, classes, classmap: str | None = None, fold=None):
        self.map = get_classmap(classmap, dataset.classes) if classmap else None
        self.fold = fold
        truth_table = self.map.table if self.map else dataset.classes
        if len(truth_table) != len(classes):
            raise ValueError(f"{dataset.root}: dataset has {len(truth_table)} classes but the checkpoint "
                             f"predicts {len(classes)}")
        self.dataset, self.classes = dataset, classes
        self.num_classes = len(classes)
        self.ignore = truth_table.ignore_index
        self._frames: dict[int, FrameScore] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.dataset)

    def missing(self, n: int) -> list[int]:
        """Indices among the first `n` frames not scored yet, in order."""
        with self._lock:
            return [i for i in range(min(n, len(self))) if i not in self._frames]

    def score(self, predictor, i: int) -> FrameScore:
        """Frame `i`'s score, predicting it only the first time."""
        with self._lock:
            done = self._frames.get(i)
        if done is not None:
            return done
        image, target = self.dataset[i]  # (3, H, W) uint8, (H, W) int64
        if self.map is not None:
            target = self.map(target)
        labels = predictor.predict(np.ascontiguousarray(image.permute(1, 2, 0).numpy()))
        if self.fold is not None:
            labels = self.fold(labels).astype(np.uint8)
        cm = ConfusionMatrix(self.num_classes, self.ignore)
        cm.update(target.numpy(), labels)
        mat = cm.mat.numpy().ravel()
        cells = np.flatnonzero(mat).astype(np.int32)
        t = target.numpy()
        present = tuple(int(c) for c in np.unique(t) if c != self.ignore and c < self.num_classes)
        buf = io.BytesIO()
        Image.fromarray(np.asarray(labels, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
        r = cm.compute()
        stem = printable(self.dataset.pairs[i][0].stem)  # undecodable name bytes cannot reach the page
        frame = FrameScore(stem, cells, mat[cells].astype(np.int64), buf.getvalue(), present,
                           _num(r["pixel_acc"]), _num(r["miou"]))
        with self._lock:
            return self._frames.setdefault(i, frame)

    def labels(self, predictor, i: int) -> np.ndarray:
        """(H, W) uint8 predicted class ids of frame `i` (scored first if needed)."""
        return np.asarray(Image.open(io.BytesIO(self.score(predictor, i).labels_png)))

    def confusion(self, indices) -> np.ndarray:
        """(C, C) int64 confusion matrix summed over the scored frames among `indices` (rows = truth)."""
        with self._lock:
            frames = [self._frames[i] for i in indices if i in self._frames]
        c = self.num_classes
        if not frames:
            return np.zeros((c, c), np.int64)
        cells = np.concatenate([f.cells for f in frames])
        counts = np.concatenate([f.counts for f in frames])
        return np.bincount(cells, weights=counts, minlength=c * c).astype(np.int64).reshape(c, c)

    def _compute(self, mat: np.ndarray) -> dict:
        cm = ConfusionMatrix(self.num_classes, self.ignore)
        cm.mat = torch.from_numpy(mat)
        return cm.compute()

    def frame_iou(self, i: int) -> dict[int, float]:
        """{class id: IoU} of frame `i` for the classes in its truth or prediction (ignore index left out)."""
        r = self._compute(self.confusion([i]))
        return {c: float(r["iou"][c]) for c in np.flatnonzero(r["present"])}

    def result(self, n: int) -> dict:
        """`seg.evaluate.evaluate`'s result over the scored frames among the first `n` (all of them once
        `missing(n)` is empty): miou, pixel_acc, per_class_iou, confusion, frames, num_frames."""
        with self._lock:
            scored = dict(self._frames)
        idx = [i for i in range(min(n, len(self))) if i in scored]
        mat = self.confusion(idx)
        r = self._compute(mat)
        frames = [{"stem": scored[i].stem, "pixel_acc": scored[i].pixel_acc, "miou": scored[i].miou,
                   "classes": [self.classes.readable[c] for c in scored[i].present], "index": i} for i in idx]
        return {
            "miou": _num(r["miou"]),
            "pixel_acc": _num(r["pixel_acc"]),
            "per_class_iou": {self.classes.readable[c]: _num(r["iou"][c])
                              for c in range(self.num_classes) if c != self.ignore},
            "confusion": mat.tolist(),
            "frames": frames,
            "num_frames": len(idx),
        }


def _num(x) -> float | None:
    return None if x is None or np.isnan(x) else float(x)
