"""Per-frame validation scores, computed once per (checkpoint, dataset split) and kept.

A `ValScores` holds, for each frame scored so far, its confusion matrix (sparse) and its predicted label map
(a lossless PNG, ~10-30 kB at 512x384). Split-level figures for any first-N frames are sums of the stored
matrices, so changing N costs nothing once those frames are scored; the frames a page shows reuse the stored
labels instead of predicting again. Frames can be scored in any order (the page's first frames first), by
several app sessions at once. The figures equal `seg.evaluate.evaluate` on the same frames: both score with
`seg.evaluate.scoring.Scorer`, after the same `predict`.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass

import numpy as np
from PIL import Image

from seg.classmap import get_classmap
from seg.evaluate.scoring import Scorer, image_hwc
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
    66-class model scored as lanes beside the lanes model (webapp.models.compare); `classes` is then the
    folded table. Raises ValueError when the (mapped) class tables differ in size, or the mapping does not fit
    the dataset's table.
    """

    def __init__(self, dataset, classes, classmap: str | None = None, fold=None):
        truth_map = get_classmap(classmap, dataset.classes) if classmap else None
        self.scorer = Scorer(classes, dataset.classes, truth_map, fold, where=dataset.root)
        self.dataset, self.classes = dataset, classes
        self.num_classes = self.scorer.num_classes
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
        scored = self.scorer.score(target, predictor.predict(image_hwc(image)))
        mat = scored.confusion.ravel()
        cells = np.flatnonzero(mat).astype(np.int32)
        buf = io.BytesIO()
        Image.fromarray(scored.labels).save(buf, format="PNG", compress_level=1)
        stem = printable(self.dataset.pairs[i][0].stem)  # undecodable name bytes cannot reach the page
        frame = FrameScore(stem, cells, mat[cells].astype(np.int64), buf.getvalue(), scored.present,
                           scored.pixel_acc, scored.miou)
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

    def frame_iou(self, i: int) -> dict[int, float]:
        """{class id: IoU} of frame `i` for the classes in its truth or prediction (ignore index left out)."""
        r = self.scorer.compute(self.confusion([i]))
        return {c: float(r["iou"][c]) for c in np.flatnonzero(r["present"])}

    def result(self, n: int) -> dict:
        """`seg.evaluate.evaluate`'s result over the scored frames among the first `n` (all of them once
        `missing(n)` is empty): miou, pixel_acc, per_class_iou, confusion, frames (each with its `index`),
        num_frames."""
        with self._lock:
            scored = dict(self._frames)
        idx = [i for i in range(min(n, len(self))) if i in scored]
        frames = [{**self.scorer.frame_row(scored[i].stem, scored[i]), "index": i} for i in idx]
        return self.scorer.result(self.confusion(idx), frames)
