"""Tests for the procedural street world (seg.synth): tiny frames, CPU, a few seconds in all."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seg import synth
from seg.classes import IGNORE_INDEX, NUM_CLASSES, VISTAS, load_config
from seg.paths import REPO_ROOT

SMALL = (64, 48)
# The classes the issue promises (readable names), each must show up across 20 small frames.
PROMISED = ["Sky", "Road", "Lane Marking - General", "Lane Marking - Crosswalk", "Sidewalk", "Curb", "Building",
            "Vegetation", "Terrain", "Pole", "Street Light", "Traffic Sign (Front)", "Traffic Light", "Fence", "Car",
            "Person"]


def test_render_shapes_and_types():
    img, lab = synth.render(3, SMALL)
    assert img.mode == "RGB" and img.size == SMALL
    assert lab.dtype == np.uint8 and lab.shape == (SMALL[1], SMALL[0])


def test_render_is_deterministic_per_seed():
    img1, lab1 = synth.render(11, SMALL)
    img2, lab2 = synth.render(11, SMALL)
    assert lab1.tobytes() == lab2.tobytes()
    assert np.array_equal(np.asarray(img1), np.asarray(img2))


def test_different_seeds_differ():
    labs = [synth.render(s, SMALL)[1] for s in range(4)]
    assert len({lab.tobytes() for lab in labs}) == 4


def test_labels_valid_and_promised_classes_appear():
    seen = set()
    for s in range(20):
        img, lab = synth.render(s, SMALL)
        assert lab.max() < NUM_CLASSES
        assert (lab == IGNORE_INDEX).mean() < 0.01  # every painted pixel carries a class
        seen |= set(np.unique(lab).tolist())
    assert seen <= set(synth.RENDERED_CLASSES)
    missing = [n for n in PROMISED if VISTAS.index(n) not in seen]
    assert not missing, f"never rendered in 20 frames: {missing}"
    assert VISTAS.index("Truck") in seen or VISTAS.index("Bus") in seen
    assert len(synth.RENDERED_CLASSES) >= 15


def test_image_matches_label():
    """Image and label agree: near lane-marking pixels are brighter than the road around them."""
    road, mark = VISTAS.index("Road"), VISTAS.index("Lane Marking - General")
    for seed in range(6):
        img, lab = synth.render(seed, (512, 384))
        gray = np.asarray(img.convert("L"), np.float32)[288:]  # near rows: little haze
        lab = lab[288:]
        if (lab == mark).sum() > 200:
            assert gray[lab == mark].mean() > 1.2 * gray[lab == road].mean(), seed


def test_kitti_shape_is_wide_not_stretched():
    img, lab = synth.render(2, (1242, 375))
    assert img.size == (1242, 375) and lab.shape == (375, 1242)
    # The same seeds at 4:3: a wide frame sees more of the street sideways, so the road (same pixel width at
    # the bottom row) covers a smaller share of it; a stretched 4:3 frame would keep the same share.
    road = VISTAS.index("Road")
    wide = np.mean([(synth.render(s, (1242, 375))[1][-1] == road).mean() for s in range(8)])
    narrow = np.mean([(synth.render(s, (512, 384))[1][-1] == road).mean() for s in range(8)])
    assert wide < 0.9 * narrow


def test_frame_seeds_disjoint():
    train = {synth.frame_seed("training", 0, i) for i in range(1000)}
    val = {synth.frame_seed("validation", 0, i) for i in range(1000)}
    assert len(train) == 1000 and len(val) == 1000 and not train & val
    assert synth.frame_seed("training", 1, 0) != synth.frame_seed("training", 0, 0)
    with pytest.raises(ValueError):
        synth.frame_seed("test", 0, 0)


def test_render_rejects_empty_size():
    with pytest.raises(ValueError):
        synth.render(0, (0, 5))


def _check_layout(root: Path, split: str, n: int):
    imgs = sorted((root / split / "images").glob("*.jpg"))
    labs = sorted((root / split / "labels").glob("*.png"))
    assert len(imgs) == n and [p.stem for p in imgs] == [p.stem for p in labs]
    for ip, lp in zip(imgs, labs):
        png = Image.open(lp)
        assert png.mode == "P"
        assert png.getpalette()[: 3 * NUM_CLASSES] == VISTAS.flat_palette()[: 3 * NUM_CLASSES]
        assert Image.open(ip).size == png.size == SMALL
        assert np.asarray(png).max() < NUM_CLASSES


def test_write_dataset_layout(tmp_path):
    synth.write_dataset(tmp_path, 2, 3, seed=4, size=SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "training", "validation"]
    assert load_config(tmp_path / "config.json") == VISTAS
    _check_layout(tmp_path, "training", 2)
    _check_layout(tmp_path, "validation", 3)
    # The label on disk is exactly the rendered one for that frame seed.
    _, lab = synth.render(synth.frame_seed("validation", 4, 1), SMALL)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "validation/labels/000001.png")), lab)


def test_write_dataset_parallel_matches_serial(tmp_path):
    synth.write_dataset(tmp_path / "a", 0, 3, seed=1, size=SMALL, workers=1)
    synth.write_dataset(tmp_path / "b", 0, 3, seed=1, size=SMALL, workers=2)
    for stem in ("000000", "000001", "000002"):
        a = np.asarray(Image.open(tmp_path / f"a/validation/labels/{stem}.png"))
        b = np.asarray(Image.open(tmp_path / f"b/validation/labels/{stem}.png"))
        assert np.array_equal(a, b)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "seg.synth", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_cli_writes_dataset_and_train_zero_has_no_training_folder(tmp_path):
    r = _cli("--out", str(tmp_path), "--train", "0", "--val", "2", "--seed", "7", "--size", "64x48")
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / "training").exists()
    _check_layout(tmp_path, "validation", 2)
    assert json.loads((tmp_path / "config.json").read_text())["labels"][IGNORE_INDEX]["evaluate"] is False


def test_cli_images_only(tmp_path):
    r = _cli("--out", str(tmp_path), "--train", "0", "--val", "2", "--size", "64x48", "--images-only",
             "--prefix", "kitti_")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kitti_000.png", "kitti_001.png"]
    assert Image.open(tmp_path / "kitti_000.png").size == SMALL


@pytest.mark.parametrize("bad", [["--size", "0x5"], ["--size", "abc"], ["--size", "64x"], ["--train", "-1"],
                                 ["--workers", "0"], ["--seed", "x"], ["--images-only", "--train", "1"]])
def test_cli_bad_arguments_one_line_error(tmp_path, bad):
    r = _cli("--out", str(tmp_path / "o"), "--train", "0", "--val", "1", *bad)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m seg.synth: error:"), r.stderr
    assert not (tmp_path / "o").exists()


def test_cli_missing_required_flag(tmp_path):
    r = _cli("--out", str(tmp_path), "--val", "1")
    assert r.returncode != 0 and "--train" in r.stderr and len(r.stderr.strip().splitlines()) == 1
