"""seg.evaluate on a hand-made split with a stub predictor: IoUs computed by hand, ignore index excluded."""
import json

import numpy as np
import pytest
from PIL import Image

from seg.classes import IGNORE_INDEX, VISTAS
from seg.evaluate import evaluate
from seg.evaluate.cli import format_table, main

ROAD, SKY = VISTAS.index("Road"), VISTAS.index("Sky")


class AllRoad:
    """Predicts Road everywhere, at the frame's size."""

    classes = VISTAS

    def __init__(self):
        self.sizes = []

    def predict(self, image):
        self.sizes.append(image.shape)
        return np.full(image.shape[:2], ROAD, np.uint8)


@pytest.fixture
def split(tmp_path):
    for sub in ("images", "labels"):
        (tmp_path / "validation" / sub).mkdir(parents=True)
    lab = np.full((6, 8), SKY, np.uint8)
    lab[:3] = ROAD
    lab[:, 0] = IGNORE_INDEX  # 6 ignored pixels, predicted Road: must not count
    for stem, label in (("a", lab), ("b", np.full((6, 8), ROAD, np.uint8))):
        Image.new("RGB", (8, 6), (9, 9, 9)).save(tmp_path / "validation" / "images" / f"{stem}.jpg")
        im = Image.fromarray(label)
        im.putpalette(VISTAS.flat_palette())
        im.save(tmp_path / "validation" / "labels" / f"{stem}.png")
    return tmp_path


def test_hand_computed_iou(split):
    stub = AllRoad()
    r = evaluate(stub, split, limit=1)
    assert stub.sizes == [(6, 8, 3)]
    # frame a: 42 scored pixels, 21 road (all right), 21 sky (all predicted road)
    assert r["per_class_iou"]["Road"] == pytest.approx(21 / 42)
    assert r["per_class_iou"]["Sky"] == 0.0
    assert r["per_class_iou"]["Car"] is None and "Unlabeled" not in r["per_class_iou"]
    assert r["miou"] == pytest.approx(0.25) and r["pixel_acc"] == pytest.approx(0.5)
    assert np.asarray(r["confusion"]).sum() == 42
    assert r["frames"] == [{"stem": "a", "pixel_acc": 0.5, "miou": 0.25, "classes": ["Road", "Sky"]}]

    seen = []
    r = evaluate(AllRoad(), split, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)] and r["num_frames"] == 2
    # + frame b: 48 road pixels all right -> road tp 69, union 90
    assert r["per_class_iou"]["Road"] == pytest.approx(69 / 90)
    assert r["frames"][1]["miou"] == 1.0
    assert "mIoU" in format_table(r) and "Road" in format_table(r)


def test_cli_json_and_errors(split, capsys, tmp_path):
    assert main(["--data", str(tmp_path / "nothing"), "--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    json.dumps(evaluate(AllRoad(), split))  # the --json payload is JSON-safe (None, not NaN)


class Batched(AllRoad):
    """AllRoad with a batch path that records the batch sizes it was given."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def predict_batch(self, images, batch_size):
        self.batches.append(len(images))
        return [self.predict(im) for im in images]


def test_batch_path_gives_the_same_result(split):
    one, many = AllRoad(), Batched()
    a, b = evaluate(one, split), evaluate(many, split, batch_size=2)
    assert many.batches and all(n <= 2 for n in many.batches) and sum(many.batches) == a["num_frames"]
    assert a == b and one.sizes == many.sizes  # same frames, same order, same figures
