"""webapp.scores: per-frame scores kept once, split figures equal to seg.evaluate for any first-N frames."""
import numpy as np
import pytest

from seg.data.vistas import VistasDataset
from seg.evaluate import evaluate
from webapp.scores import ValScores

from conftest import CAR, ROAD, SKY
from seg.classes import VISTAS


class Noisy:
    """Ignores the image: Sky on the top half, Road below, Car in a fixed box. The frames' cars move, so it is
    wrong in places and the IoUs are not trivially 1. Counts its calls."""

    classes = VISTAS

    def __init__(self):
        self.calls = 0

    def predict(self, image):
        self.calls += 1
        h, w = image.shape[:2]
        out = np.full((h, w), SKY, np.uint8)
        out[h // 2:] = ROAD
        out[h // 3: h // 2 + 4, w // 3: w // 2] = CAR
        return out


def test_result_equals_evaluate_for_every_prefix_and_frames_are_scored_once(tiny_vistas):
    ds = VistasDataset(tiny_vistas, "validation")
    pred = Noisy()
    store = ValScores(ds, VISTAS)
    assert store.missing(3) == [0, 1, 2]
    store.score(pred, 2)  # out of order, as the page scores the frames it shows first
    assert store.missing(3) == [0, 1] and pred.calls == 1
    for i in store.missing(len(ds)):
        store.score(pred, i)
    assert pred.calls == len(ds) and store.missing(len(ds)) == []
    for n in (len(ds), len(ds) - 1, 1):
        ref = evaluate(Noisy(), tiny_vistas, limit=n)
        got = store.result(n)
        assert got["miou"] == pytest.approx(ref["miou"]) and got["pixel_acc"] == pytest.approx(ref["pixel_acc"])
        assert got["confusion"] == ref["confusion"] and got["num_frames"] == n
        assert {k: v for k, v in got["per_class_iou"].items()} == pytest.approx(ref["per_class_iou"])
        assert [{k: f[k] for k in ("stem", "pixel_acc", "miou", "classes")} for f in got["frames"]] == ref["frames"]
    assert pred.calls == len(ds)  # changing the frame count scored nothing again


def test_stored_labels_and_frame_iou(tiny_vistas):
    ds = VistasDataset(tiny_vistas, "validation")
    pred = Noisy()
    store = ValScores(ds, VISTAS)
    image, target = ds[1]
    expected = Noisy().predict(image.permute(1, 2, 0).numpy())
    np.testing.assert_array_equal(store.labels(pred, 1), expected)
    np.testing.assert_array_equal(store.labels(pred, 1), expected)
    assert pred.calls == 1  # the frame shown is not predicted twice
    t = target.numpy()
    iou = store.frame_iou(1)
    for c in (SKY, ROAD, CAR):
        inter = np.sum((t == c) & (expected == c))
        union = np.sum((t == c) | (expected == c))
        assert iou[c] == pytest.approx(inter / union)
    assert set(iou) == {SKY, ROAD, CAR}


def test_partial_result_covers_only_scored_frames(tiny_vistas):
    ds = VistasDataset(tiny_vistas, "validation")
    store = ValScores(ds, VISTAS)
    store.score(Noisy(), 3)
    r = store.result(len(ds))
    assert r["num_frames"] == 1 and [f["index"] for f in r["frames"]] == [3]
    assert np.asarray(r["confusion"]).sum() == 64 * 48  # one frame's pixels (no Unlabeled in these frames)


def test_class_table_mismatch_is_refused(tiny_vistas):
    class Small:
        def __len__(self):
            return 3

    with pytest.raises(ValueError, match="predicts 3"):
        ValScores(VistasDataset(tiny_vistas, "validation"), Small())
