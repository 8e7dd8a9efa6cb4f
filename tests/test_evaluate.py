"""seg.evaluate on a hand-made split with a stub predictor: IoUs computed by hand, ignore index excluded."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from seg.classes import IGNORE_INDEX, VISTAS
from seg.evaluate import cli, evaluate
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


class LoadedAllRoad(AllRoad):
    """AllRoad standing in for the Predictor the CLI builds from its flags."""

    def __init__(self, checkpoint, **runtime):
        super().__init__()
        self.device, self.meta = torch.device("cpu"), {"path": f"{checkpoint}"}


def test_cli_json_and_table(split, capsys, monkeypatch):
    monkeypatch.setattr(cli, "Predictor", LoadedAllRoad)
    assert main(["--data", str(split), "--checkpoint", "stub.pt", "--limit", "1", "--json"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1
    r = json.loads(out)  # strict JSON: an absent class is null, never NaN
    assert list(r) == ["miou", "pixel_acc", "per_class_iou", "confusion", "frames", "num_frames", "root", "split",
                       "classmap", "checkpoint"]
    assert r["miou"] == pytest.approx(0.25) and r["pixel_acc"] == pytest.approx(0.5)
    assert r["per_class_iou"]["Road"] == pytest.approx(0.5) and r["per_class_iou"]["Car"] is None
    assert r["frames"] == [{"stem": "a", "pixel_acc": 0.5, "miou": 0.25, "classes": ["Road", "Sky"]}]
    assert (r["num_frames"], r["root"], r["split"], r["classmap"], r["checkpoint"]) == (
        1, str(split), "validation", None, "stub.pt")
    assert main(["--data", str(split), "--checkpoint", "stub.pt", "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"1 frames of {split} / validation" and lines[1] == "mIoU  25.0%   pixel accuracy  50.0%"
    assert lines[4:] == [f"{'Road':<28}  50.0%", f"{'Sky':<28}   0.0%", "(63 classes absent from truth and prediction)"]


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert main(["--data", str(tmp_path / "nothing"), "--checkpoint", str(tmp_path / "none.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


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
